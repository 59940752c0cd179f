/**
 * Restoring a base backup (`backup-fetch`): check the destination, lay out tablespaces, then
 * download, decompress and extract the volumes (`--pool-size` at once), each verified against the
 * sentinel's list (size and SHA-256) as it streams; `pg_control` goes into place last.
 *
 * Per volume: store → SHA-256 → lzop decoder (views into wasm memory, no copies) → tar extractor
 * (src/backup/extract.ts) → files, written from two reused buffers and fsynced in the background.
 * Memory is bounded by the pool size: about 3 MiB per volume in flight.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { lchownSync } from "node:fs";
import { UserError } from "../cli/errors.ts";
import { LzopDecoder, LzopFormatError } from "../codec/lzop.ts";
import { readChunks } from "../io/byob.ts";
import { forEachLimited } from "../io/concurrency.ts";
import { writeFileAtomic } from "../io/atomic_file.ts";
import { lstatOrNull, realPathOrNull } from "../io/fs.ts";
import { join } from "../io/path.ts";
import { parseVolumeKey, volumeFolderKey } from "../layout/keys.ts";
import type { Logger } from "../log/logger.ts";
import { listObjects } from "../storage/list.ts";
import { hintForError } from "../storage/policy.ts";
import { type ObjectStore, StorageError } from "../storage/types.ts";
import type { BackupEntry } from "./catalog.ts";
import {
  PG_CONTROL_PARTIAL,
  type RestoreRoots,
  RestoreTarget,
  RestoreWriteError,
  UnsafeMemberError,
  VolumeExtractor,
  type VolumeExtractSummary,
} from "./extract.ts";
import { BackupProgress, type ProgressOptions } from "./progress.ts";
import { type TablespacePlan, tablespacePlan } from "./restore_spec.ts";
import type { Sentinel, SentinelVolume } from "./sentinel.ts";
import { TarFormatError } from "./tar_header.ts";

/** Bytes read from the store per call. */
const READ_BUFFER_BYTES = 1024 * 1024;
/** Entries a data directory may hold and still count as empty. */
const IGNORED_ENTRIES = new Set(["lost+found"]);

/** What {@linkcode fetchBackup} needs. */
export interface FetchOptions {
  store: ObjectStore;
  log: Logger;
  /** The data directory to restore into (created when missing). */
  pgdata: string;
  /** The backup, with its sentinel read (`detail`). */
  backup: BackupEntry & { detail: Sentinel };
  poolSize: number;
  /** Restore into a non-empty directory. */
  force: boolean;
  /** Do not require the links of the backup's tablespaces. */
  blindRestore: boolean;
  /** `--restore-spec`: null, "SOURCE" or a file. */
  restoreSpec: string | null;
  progress?: ProgressOptions;
}

/** What a restore did. */
export interface FetchResult {
  /** The data directory, as a real path. */
  dataDir: string;
  /** Tablespace OID → the location its files went to. */
  tablespaces: ReadonlyMap<string, string>;
  volumes: number;
  members: number;
  /** Bytes of file data written. */
  bytes: number;
  /** Whether the volumes were checked against a list with SHA-256 (wal-d backups). */
  verified: boolean;
  /** The owner given to restored files (running as root for another user), if any. */
  owner?: { uid: number; gid: number };
}

/**
 * Checks the destination before anything is downloaded: no `postmaster.pid` (a running or
 * crashed server), and empty (but for `lost+found` and `pg_tblspc` links made beforehand) unless
 * `force`. Creates it (0700) when missing, unless `create` is false (a check before the backup is
 * found). Returns its real path.
 */
export function prepareDataDirectory(
  pgdata: string,
  force: boolean,
  options: { create?: boolean } = {},
): string {
  const info = lstatOrNull(pgdata);
  if (info === null) {
    if (options.create === false) {
      // Checked only: the directory is made once the backup is known to exist.
      const parent = lstatOrNull(join(pgdata, ".."));
      if (parent === null || !Deno.statSync(join(pgdata, "..")).isDirectory) {
        throw new UserError(`cannot create ${pgdata}: its parent directory does not exist`, {
          hint: "Create the parent directory first, or give a directory that exists.",
        });
      }
      return pgdata;
    }
    try {
      Deno.mkdirSync(pgdata, { mode: 0o700 });
    } catch (error) {
      throw new UserError(`cannot create ${pgdata}: ${(error as Error).message}`, {
        hint: "Create the parent directory first, or give a directory that exists.",
      });
    }
  } else if (!Deno.statSync(pgdata).isDirectory) {
    throw new UserError(`${pgdata} is not a directory`, {
      hint: "Give the path of an empty directory (or one to create) for the restored cluster.",
    });
  }
  const dataDir = Deno.realPathSync(pgdata);
  if (lstatOrNull(join(dataDir, "postmaster.pid")) !== null) {
    throw new UserError(
      `attempting to overwrite a live data directory: ${join(dataDir, "postmaster.pid")} exists`,
      {
        hint: "Stop the server (or, if none runs, remove the stale postmaster.pid) and fetch " +
          "into an empty directory.",
      },
    );
  }
  if (!force) {
    const occupied: string[] = [];
    for (const entry of Deno.readDirSync(dataDir)) {
      if (IGNORED_ENTRIES.has(entry.name)) continue;
      if (entry.name === "pg_tblspc" && entry.isDirectory) {
        const others = [...Deno.readDirSync(join(dataDir, "pg_tblspc"))].filter((e) =>
          !e.isSymlink
        );
        if (others.length === 0) continue;
      }
      occupied.push(entry.name);
    }
    if (occupied.length > 0) {
      throw new UserError(`${dataDir} is not empty`, {
        detail: `It holds ${occupied.length} entr${occupied.length === 1 ? "y" : "ies"}: ${
          occupied.slice(0, 5).join(", ")
        }${occupied.length > 5 ? ", ..." : ""}.`,
        hint: "Restore into an empty directory, or add --force to overwrite what is there.",
      });
    }
  }
  return dataDir;
}

/** The volumes to fetch, in order, checked against the sentinel's list when it has one. */
export async function volumesToFetch(
  store: ObjectStore,
  backup: BackupEntry & { detail: Sentinel },
  log: Logger,
): Promise<{ key: string; name: string; expected?: SentinelVolume }[]> {
  const folder = volumeFolderKey(backup.name);
  const found = new Map<string, { key: string; partition: number }>(); // by volume name
  for await (const object of listObjects(store, folder)) {
    const parsed = parseVolumeKey(object.key);
    if (parsed === null || parsed.backup !== backup.name) {
      log.warning(`skipping an object that is not a backup volume: ${store.url(object.key)}`);
      continue;
    }
    found.set(object.key.slice(folder.length), { key: object.key, partition: parsed.partition });
  }

  const listed = backup.detail.volumes;
  if (listed !== undefined) {
    const missing = listed.filter((v) => !found.has(v.name)).map((v) => v.name);
    const names = new Set(listed.map((v) => v.name));
    const extra = [...found.keys()].filter((name) => !names.has(name));
    if (missing.length > 0 || extra.length > 0) {
      const problems = [
        missing.length > 0 ? `missing: ${missing.join(", ")}` : "",
        extra.length > 0 ? `not in the backup's list: ${extra.join(", ")}` : "",
      ].filter(Boolean).join("; ");
      throw new UserError(
        `backup ${backup.name} is damaged: its volumes do not match its sentinel (${problems})`,
        {
          detail: `The sentinel lists ${listed.length} volume(s) under "${store.url(folder)}".`,
          hint: "Restore an older backup (wal-d backup-list), and take a new backup.",
        },
      );
    }
    return listed.map((v) => ({ key: found.get(v.name)!.key, name: v.name, expected: v }));
  }
  // A WAL-E backup: no list, but the numbering must have no gap.
  const numbered = [...found.entries()]
    .map(([name, { key, partition }]) => ({ name, key, n: partition }))
    .sort((a, b) => a.n - b.n);
  if (numbered.length === 0) {
    throw new UserError(`backup ${backup.name} has no volumes`, {
      detail: `Nothing is stored under "${store.url(folder)}".`,
      hint: "Restore an older backup (wal-d backup-list), and take a new backup.",
    });
  }
  numbered.forEach((v, i) => {
    if (v.n !== i) {
      throw new UserError(
        `backup ${backup.name} is damaged: volume ${i} is missing (found ${v.name} next)`,
        { hint: "Restore an older backup (wal-d backup-list), and take a new backup." },
      );
    }
  });
  return numbered.map(({ name, key }) => ({ name, key }));
}

/** Makes the tablespace locations and links of a plan; returns the roots of the restore. */
function layOutTablespaces(
  dataDir: string,
  plan: TablespacePlan,
  options: { force: boolean; blindRestore: boolean; owner?: { uid: number; gid: number } },
): RestoreRoots {
  const tblspc = join(dataDir, "pg_tblspc");
  if (plan.makeLinks) {
    if (lstatOrNull(tblspc) === null) {
      Deno.mkdirSync(tblspc, { mode: 0o700 });
      if (options.owner) Deno.chownSync(tblspc, options.owner.uid, options.owner.gid);
    }
    for (const ts of plan.tablespaces) {
      const loc = ts.loc.replace(/\/+$/, "") || "/";
      if (lstatOrNull(loc) === null) {
        Deno.mkdirSync(loc, { mode: 0o700, recursive: true });
        if (options.owner) Deno.chownSync(loc, options.owner.uid, options.owner.gid);
      }
      const link = join(tblspc, ts.name);
      const existing = lstatOrNull(link);
      if (existing === null) {
        Deno.symlinkSync(loc, link);
        if (options.owner) lchownSync(link, options.owner.uid, options.owner.gid);
      } else if (!existing.isSymlink || realPathOrNull(link) !== realPathOrNull(loc)) {
        throw new UserError(`${link} already exists and does not link to ${loc}`, {
          hint: "Remove it, or leave the tablespace out of the restore spec and keep the link.",
        });
      }
    }
  }
  // Every pg_tblspc/<oid> link to a directory is a root: made now, or beforehand by the user.
  const tablespaces = new Map<string, string>();
  if (lstatOrNull(tblspc)?.isDirectory) {
    for (const entry of Deno.readDirSync(tblspc)) {
      if (!entry.isSymlink) continue;
      const location = realPathOrNull(join(tblspc, entry.name));
      if (location !== null && Deno.statSync(location).isDirectory) {
        tablespaces.set(entry.name, location);
      }
    }
  }
  if (!options.blindRestore) {
    const unlinked = plan.tablespaces.filter((ts) => !tablespaces.has(ts.name)).map((t) => t.name);
    if (unlinked.length > 0) {
      throw new UserError(
        `tablespace link(s) missing for ${unlinked.join(", ")}: each needs ${tblspc}/<oid> to be ` +
          "a symlink to an existing directory",
        {
          hint: "Create the links, or give --restore-spec SOURCE (the recorded locations) or " +
            "--restore-spec FILE; --blind-restore extracts them as directories inside the data " +
            "directory.",
        },
      );
    }
  }
  for (const [name, location] of tablespaces) {
    if (options.force) continue;
    const entries = [...Deno.readDirSync(location)];
    if (entries.length > 0) {
      throw new UserError(`tablespace ${name}'s location ${location} is not empty`, {
        hint: "Give it an empty directory, or add --force to overwrite what is there.",
      });
    }
  }
  return { dataDir, tablespaces };
}

/** The owner restored files get: the data directory's, when running as root for another user. */
function ownerFor(dataDir: string): { uid: number; gid: number } | undefined {
  if (Deno.uid() !== 0) return undefined;
  const info = Deno.statSync(dataDir);
  if (info.uid === null || info.gid === null || info.uid === 0) return undefined;
  return { uid: info.uid, gid: info.gid };
}

/** Restores `options.backup` into `options.pgdata`. */
export async function fetchBackup(options: FetchOptions): Promise<FetchResult> {
  const { store, log, backup } = options;
  const dataDir = prepareDataDirectory(options.pgdata, options.force);
  const owner = ownerFor(dataDir);
  const plan = await tablespacePlan(
    options.restoreSpec,
    backup.detail.spec,
    dataDir,
    backup.name,
  );
  const volumes = await volumesToFetch(store, backup, log);
  const roots = layOutTablespaces(dataDir, plan, {
    force: options.force,
    blindRestore: options.blindRestore,
    owner,
  });
  // A pg_control left by an earlier restore must not outlive a failure of this one.
  if (options.force) {
    for (const stale of ["global/pg_control", PG_CONTROL_PARTIAL]) {
      if (lstatOrNull(join(dataDir, stale))?.isFile) Deno.removeSync(join(dataDir, stale));
    }
  }
  const progress = new BackupProgress(backup.detail.expandedSizeBytes ?? 0, log, {
    ...options.progress,
    what: "restore progress",
  });
  const target = new RestoreTarget(roots, { owner, onBytes: (n) => progress.add(n) });
  log.info(`restoring backup ${backup.name} into ${dataDir}`, {
    detail: `${volumes.length} volume(s), ${options.poolSize} at a time` +
      (roots.tablespaces.size > 0
        ? `; tablespaces: ${
          [...roots.tablespaces].map(([oid, loc]) => `${oid} -> ${loc}`).join(", ")
        }`
        : ""),
  });
  let members = 0;
  progress.start();
  try {
    await forEachLimited(volumes, options.poolSize, async (volume) => {
      const summary = await withVolumeRetries(
        volume.name,
        log,
        progress,
        () => fetchVolume(store, target, volume),
      );
      members += summary.members;
      log.info(`restored volume ${volume.name}`, {
        detail: `${summary.members} members, ${summary.bytes} bytes of data` +
          (volume.expected ? ", size and SHA-256 verified" : ""),
      });
    });
    if (!target.controlFileWritten) {
      throw new UserError(`backup ${backup.name} holds no global/pg_control`, {
        hint: "The backup is incomplete; restore an older backup (wal-d backup-list).",
      });
    }
    await rewriteTablespaceMap(dataDir, roots.tablespaces, owner, log);
    await target.finish();
  } catch (error) {
    await target.abandon();
    throw restoreFailure(error, dataDir);
  } finally {
    progress.stop();
  }
  if (lstatOrNull(join(dataDir, "backup_label")) === null) {
    log.warning(`backup ${backup.name} restored no backup_label`, {
      detail: "Without it PostgreSQL starts from the checkpoint in pg_control, which is only " +
        "right for a backup of a stopped cluster (backup-push --while-offline).",
    });
  }
  return {
    dataDir,
    tablespaces: roots.tablespaces,
    volumes: volumes.length,
    members,
    bytes: progress.done,
    verified: backup.detail.volumes !== undefined,
    owner,
  };
}

/**
 * Points the restored `tablespace_map` at the locations the tablespaces were restored to.
 * PostgreSQL remakes the `pg_tblspc/<oid>` links from this file when recovery starts, so left as
 * backed up it would point them back at the source's locations. A tablespace restored as a
 * directory inside `pg_tblspc` (`--blind-restore` without a link) loses its line: PostgreSQL could
 * not replace that directory by a link, and reads it where it is.
 */
export async function rewriteTablespaceMap(
  dataDir: string,
  tablespaces: ReadonlyMap<string, string>,
  owner: { uid: number; gid: number } | undefined,
  log: Logger,
): Promise<void> {
  const path = join(dataDir, "tablespace_map");
  const info = lstatOrNull(path);
  if (info === null) return;
  if (!info.isFile) {
    // Read through a link, it could copy a file from outside the restore into the data directory.
    throw new UnsafeMemberError("the backup's tablespace_map is not a regular file");
  }
  const text = Deno.readTextFileSync(path);
  const lines: string[] = [];
  for (const line of tablespaceMapLines(text)) {
    const oid = line.slice(0, Math.max(0, line.indexOf(" ")));
    if (!/^[0-9]+$/.test(oid)) {
      throw new UnsafeMemberError(
        'the backup\'s tablespace_map has a line that is not "<oid> <location>"',
      );
    }
    const location = tablespaces.get(oid);
    if (location === undefined) {
      log.warning(`tablespace ${oid} was restored inside pg_tblspc, not through a link`, {
        detail: "Its line is left out of tablespace_map, so PostgreSQL reads it where it is.",
      });
      continue;
    }
    // PostgreSQL's reader takes a backslash as an escape for the next character.
    lines.push(`${oid} ${location.replace(/[\\\n\r]/g, (c) => `\\${c}`)}\n`);
  }
  // Through a fresh temporary file created exclusively: never written through a link.
  await writeFileAtomic(path, new TextEncoder().encode(lines.join("")), { mode: 0o600, owner });
}

/** The lines of a tablespace_map, read as PostgreSQL reads it (a backslash escapes the next character). */
function tablespaceMapLines(text: string): string[] {
  const lines: string[] = [];
  let line = "";
  let escaped = false;
  for (const ch of text) {
    if (!escaped && (ch === "\n" || ch === "\r")) {
      if (line !== "") lines.push(line);
      line = "";
    } else if (!escaped && ch === "\\") {
      escaped = true;
    } else {
      line += ch;
      escaped = false;
    }
  }
  if (line !== "") lines.push(line);
  return lines;
}

/** Attempts at a volume whose download fails part-way with a transient storage error. */
export const VOLUME_ATTEMPTS = 3;

/**
 * Runs one volume's restore, again from its start (files already extracted are replaced) when
 * the download fails part-way with a transient storage error, as WAL-E retried a volume in full.
 */
async function withVolumeRetries(
  name: string,
  log: Logger,
  progress: BackupProgress,
  attempt: () => Promise<VolumeExtractSummary>,
): Promise<VolumeExtractSummary> {
  for (let n = 1;; n++) {
    const before = progress.done;
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof StorageError && error.kind === "transient") || n >= VOLUME_ATTEMPTS) {
        throw error;
      }
      progress.subtract(progress.done - before);
      log.warning(
        `retrying volume ${name} from its start (attempt ${n + 1} of ${VOLUME_ATTEMPTS})`,
        {
          detail: error.message,
        },
      );
      await new Promise((resolve) => setTimeout(resolve, 1000 * n));
    }
  }
}

/** Whether `error` is one of Deno's file system errors (permission, space, missing path, ...). */
function isFileSystemError(error: unknown): boolean {
  return Object.values(Deno.errors).some((kind) => error instanceof kind);
}

/** One clear error for a failed restore, saying what state the directory is left in. */
function restoreFailure(error: unknown, dataDir: string): unknown {
  const state = `The restore of ${dataDir} is incomplete and PostgreSQL will not start it ` +
    "(global/pg_control was not put in place).";
  if (error instanceof UserError) {
    return new UserError(error.message, {
      detail: [error.detail, state].filter(Boolean).join(" "),
      hint: error.hint,
      cause: error,
    });
  }
  if (error instanceof UnsafeMemberError) {
    return new UserError(`refused to restore: ${error.message}`, {
      detail: `Nothing was written outside the data directory and tablespace locations. ${state}`,
      hint: "The backup is damaged or was tampered with; restore another backup.",
      cause: error,
    });
  }
  if (error instanceof RestoreWriteError || isFileSystemError(error)) {
    return new UserError(`restore failed: ${(error as Error).message}`, {
      detail: state,
      hint: hintForError(error instanceof RestoreWriteError ? error.cause : error) ??
        "Check the permissions and free space of the data directory and tablespace " +
          "locations, then restore again into an empty directory.",
      cause: error,
    });
  }
  if (error instanceof LzopFormatError || error instanceof TarFormatError) {
    return new UserError(`backup volume is corrupt: ${error.message}`, {
      detail: state,
      hint: "Restore an older backup (wal-d backup-list), and take a new backup.",
      cause: error,
    });
  }
  return error;
}

/** Streams one volume into the target, verifying it against the sentinel's entry. */
async function fetchVolume(
  store: ObjectStore,
  target: RestoreTarget,
  volume: { key: string; name: string; expected?: SentinelVolume },
): Promise<VolumeExtractSummary> {
  const body = await store.get(volume.key);
  if (body === null) {
    throw new UserError(`volume ${volume.name} vanished during the restore`, {
      detail: `"${store.url(volume.key)}" was listed but no longer exists.`,
      hint: "A concurrent delete may have removed the backup; restore another backup.",
    });
  }
  const hash = createHash("sha256");
  const decoder = new LzopDecoder();
  const extractor = new VolumeExtractor(target, volume.name);
  let size = 0;
  try {
    try {
      for await (const chunk of readChunks(body, { bufferBytes: READ_BUFFER_BYTES })) {
        hash.update(chunk);
        size += chunk.length;
        for (const view of decoder.views(chunk)) await extractor.write(view);
      }
      decoder.finish();
    } catch (error) {
      if (error instanceof LzopFormatError) {
        throw new LzopFormatError(`${volume.name}: ${error.message}`);
      }
      throw error;
    }
    const summary = await extractor.end();
    const expected = volume.expected;
    if (expected !== undefined) {
      const sha256 = hash.digest("hex");
      if (size !== expected.size || sha256 !== expected.sha256) {
        throw new UserError(`volume ${volume.name} is corrupt: it does not match the sentinel`, {
          detail:
            `Stored: ${size} bytes, SHA-256 ${sha256}; the sentinel recorded ${expected.size} ` +
            `bytes, SHA-256 ${expected.sha256}.`,
          hint: "Restore an older backup (wal-d backup-list), and take a new backup.",
        });
      }
    }
    return summary;
  } catch (error) {
    await extractor.abort();
    throw error;
  }
}
