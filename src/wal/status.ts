/**
 * What wal-push knows about PostgreSQL's WAL directory: the files PostgreSQL has marked ready for
 * archiving (`archive_status/<name>.ready`), and our own ledger of files pushed ahead of
 * PostgreSQL's request (`pg_wal/.wal-d/pushed/<name>`).
 *
 * A ledger entry is written only after the file is durably archived, and records the file's size,
 * mtime and inode. PostgreSQL never rewrites a completed segment before it has been archived, so
 * when it later asks for the same name and the file still matches, the archived copy is that file.
 *
 * @module
 */

import { basename, join } from "../io/path.ts";
import { UserError } from "../cli/errors.ts";
import { syncDirectory, writeFileAtomic } from "../io/atomic_file.ts";
import { classifyWalFileName, walKey } from "../layout/mod.ts";
import type { Logger } from "../log/logger.ts";

/** Our directory inside pg_wal (WAL-E used `.wal-e`). */
export const WALD_DIRECTORY = ".wal-d";

/** A WAL file checked by {@linkcode inspectWalFile}: readable, regular, with a WAL file name. */
export interface WalFile {
  path: string;
  name: string;
  /** Its stat when inspected (the ledger records size, mtime and inode). */
  info: Deno.FileInfo;
}

/** Checks that `path` names a WAL file and can be read. */
export async function inspectWalFile(path: string): Promise<WalFile> {
  const name = basename(path);
  if (classifyWalFileName(name) === null) {
    throw new UserError(`"${name}" is not the name of a WAL file`, {
      detail:
        `wal-push archives WAL segments, .history, .backup and .partial files; got "${path}".`,
      hint: "Use archive_command = 'wal-d wal-push %p' so PostgreSQL passes the file's path.",
    });
  }
  let info: Deno.FileInfo;
  try {
    // Open it, not just stat it: a file we cannot read must fail here, with a clear message.
    const file = await Deno.open(path, { read: true });
    try {
      info = await file.stat();
    } finally {
      file.close();
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new UserError("could not find file for wal-push", {
        detail: `The file "${path}" does not exist.`,
        hint: "wal-push takes the path PostgreSQL passes as %p, relative to the data directory.",
      });
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new UserError("could not read file for wal-push", {
        detail: `Permission denied reading "${path}".`,
        hint: "Run wal-push as the operating system user that runs PostgreSQL.",
      });
    }
    throw error;
  }
  if (!info.isFile) {
    throw new UserError("wal-push needs a regular file", {
      detail: `"${path}" is not a regular file.`,
    });
  }
  return { path, name, info };
}

/** Names of WAL files with an `archive_status/<name>.ready` marker, oldest first. */
async function readyWalNames(walDir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(join(walDir, "archive_status"))) {
      if (!entry.name.endsWith(".ready")) continue;
      const name = entry.name.slice(0, -".ready".length);
      if (classifyWalFileName(name) !== null) names.push(name);
    }
  } catch (error) {
    // No archive_status directory (wal-push pointed at a copy, or an odd layout): nothing to add.
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return [];
    }
    throw error;
  }
  return names.sort();
}

/** Which ready files {@linkcode unarchivedReadyNames} looks at. */
export interface ReadyNameFilter {
  /** Names the caller handles itself (not even looked at: no stat, no ledger read). */
  skip?: (name: string) => boolean;
  /** Stop once this many names are found. */
  limit?: number;
}

/**
 * Ready files not yet archived to `prefix` according to the ledger, oldest first: the first
 * `limit` of them, leaving out those `skip` names.
 */
export async function unarchivedReadyNames(
  walDir: string,
  ledger: PushLedger,
  prefix: string,
  filter: ReadyNameFilter = {},
): Promise<string[]> {
  const names: string[] = [];
  const limit = filter.limit ?? Infinity;
  for (const name of await readyWalNames(walDir)) {
    if (names.length >= limit) break;
    if (filter.skip?.(name)) continue;
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(join(walDir, name));
    } catch {
      continue; // gone meanwhile
    }
    if (!(await ledger.matches(name, info, prefix))) names.push(name);
  }
  return names;
}

/** One ledger entry. */
export interface PushedRecord {
  /** The storage prefix URL the file was archived under. */
  prefix: string;
  key: string;
  size: number;
  mtimeMs: number | null;
  ino: number | null;
  pushedAt: string;
}

/** The ledger of WAL files pushed ahead of PostgreSQL's request. */
export class PushLedger {
  readonly #walDir: string;
  readonly #dir: string;

  constructor(walDir: string) {
    this.#walDir = walDir;
    this.#dir = join(walDir, WALD_DIRECTORY, "pushed");
  }

  /** Whether `name` was pushed ahead to `prefix` and the file is unchanged since. */
  async matches(name: string, info: Deno.FileInfo, prefix: string): Promise<boolean> {
    let record: PushedRecord;
    try {
      record = JSON.parse(await Deno.readTextFile(join(this.#dir, name)));
    } catch {
      return false;
    }
    return record.prefix === prefix && record.size === info.size &&
      record.mtimeMs === (info.mtime?.getTime() ?? null) &&
      record.ino === (info.ino ?? null);
  }

  /**
   * Records that `name` (as it was when `info` was taken) is durably archived under `key` of
   * `prefix`.
   */
  async record(name: string, info: Deno.FileInfo, prefix: string, key: string): Promise<void> {
    const created = await ensureDirectory(this.#dir);
    const entry: PushedRecord = {
      prefix,
      key,
      size: info.size,
      mtimeMs: info.mtime?.getTime() ?? null,
      ino: info.ino ?? null,
      pushedAt: new Date().toISOString(),
    };
    const body = new TextEncoder().encode(JSON.stringify(entry) + "\n");
    await writeFileAtomic(join(this.#dir, name), body);
    if (created) await syncDirectory(join(this.#walDir, WALD_DIRECTORY));
  }

  /** Drops the entry for `name` (PostgreSQL has now been told it is archived). */
  async forget(name: string): Promise<void> {
    await Deno.remove(join(this.#dir, name)).catch(() => {});
  }

  /**
   * Drops entries PostgreSQL no longer needs: those whose `archive_status/<name>.ready` is gone
   * (PostgreSQL marked the file done after our answer, or removed it). An entry is kept while the
   * file is still ready, even after a call was answered from it: until PostgreSQL renames the
   * `.ready`, the entry is what tells the background pusher that the file is archived.
   */
  async prune(): Promise<void> {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(this.#dir));
    } catch {
      return;
    }
    for (const entry of entries) {
      // Only entries: a ledger write in progress (a temporary name) is not ours to remove.
      if (classifyWalFileName(entry.name) === null) continue;
      try {
        await Deno.lstat(join(this.#walDir, "archive_status", `${entry.name}.ready`));
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) await this.forget(entry.name);
      }
    }
  }
}

/** Creates `dir` (and parents) if needed; returns whether it had to. */
async function ensureDirectory(dir: string): Promise<boolean> {
  try {
    await Deno.stat(dir);
    return false;
  } catch {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    return true;
  }
}

/** What {@linkcode answeredFromLedger} needs to log its answer. */
export interface LedgerContext {
  log: Logger;
  pathPrefix: string;
  prefixUrl: string;
}

/** If the ledger says `name` is archived, logs the skip, drops the entry and returns true. */
export async function answeredFromLedger(
  ledger: PushLedger,
  name: string,
  info: Deno.FileInfo,
  context: LedgerContext,
): Promise<boolean> {
  if (!(await ledger.matches(name, info, context.prefixUrl))) return false;
  context.log.info("WAL file was already archived by an earlier wal-push", {
    detail: `"${name}" was pushed ahead of PostgreSQL's request for it.`,
    structured: {
      action: "push-wal",
      key: `${context.prefixUrl.replace(/\/+$/, "")}/${walKey(name)}`,
      prefix: context.pathPrefix,
      seg: name,
      state: "skip",
    },
  });
  return true;
}

/** Whether the lock file at `path` exists and was touched less than `staleMs` ago. */
export async function isLockFresh(path: string, staleMs: number): Promise<boolean> {
  try {
    const info = await Deno.stat(path);
    return Date.now() - (info.mtime?.getTime() ?? 0) < staleMs;
  } catch {
    return false;
  }
}

/**
 * Creates the lock file `path` (holding our pid); false if another process holds it, that is if
 * it is {@linkcode isLockFresh}. A stale one is taken over.
 */
export async function takeLockFile(path: string, staleMs: number): Promise<boolean> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
      await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
      file.close();
      return true;
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      if (await isLockFresh(path, staleMs)) return false;
      await Deno.remove(path).catch(() => {});
    }
  }
  return false;
}

/** A push-ahead process's lock is stale when its heartbeat is older than this. */
export const PUSH_AHEAD_STALE_MS = 10_000;
/** How often a push-ahead process refreshes its lock. */
export const PUSH_AHEAD_HEARTBEAT_MS = 2_000;

/**
 * Coordination between PostgreSQL's wal-push calls and the background `wal-push-ahead` process
 * of a WAL directory: a lock (one pusher at a time, with a heartbeat), and a marker per file the
 * pusher could not archive (the foreground call then archives it itself and reports the real
 * error).
 */
export class PushAheadState {
  readonly #lock: string;
  readonly #failed: string;

  constructor(walDir: string) {
    const root = join(walDir, WALD_DIRECTORY);
    this.#lock = join(root, "push-ahead.lock");
    this.#failed = join(root, "failed");
  }

  /** Takes the lock; false if a live pusher holds it. A stale lock is taken over. */
  async acquire(): Promise<boolean> {
    await Deno.mkdir(this.#failed, { recursive: true, mode: 0o700 });
    return await takeLockFile(this.#lock, PUSH_AHEAD_STALE_MS);
  }

  /** Refreshes the lock's heartbeat. */
  async heartbeat(): Promise<void> {
    const now = new Date();
    await Deno.utime(this.#lock, now, now).catch(() => {});
  }

  async release(): Promise<void> {
    await Deno.remove(this.#lock).catch(() => {});
  }

  /** Whether a live pusher holds the lock. */
  async isActive(): Promise<boolean> {
    return await isLockFresh(this.#lock, PUSH_AHEAD_STALE_MS);
  }

  /** Records that the pusher could not archive `name`. */
  async markFailed(name: string): Promise<void> {
    await Deno.writeFile(join(this.#failed, name), new Uint8Array(0)).catch(() => {});
  }

  /** Whether the pusher gave up on `name` (and forgets that, so the caller handles it). */
  async takeFailure(name: string): Promise<boolean> {
    try {
      await Deno.remove(join(this.#failed, name));
      return true;
    } catch {
      return false;
    }
  }
}
