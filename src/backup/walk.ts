/**
 * The walk of a PostgreSQL data directory for `backup-push`: which paths go into the base backup,
 * under which tar names, in which order.
 *
 * The rules are WAL-E's (spec §3.4) plus what `pg_basebackup` leaves out (PostgreSQL's
 * `src/backend/backup/basebackup.c`):
 *
 * - The cluster root is the first member, a directory named `/`, as WAL-E writes it: restores take
 *   the data directory's mode (0700 or 0750) and mtime from it.
 * - Kept as empty directories, contents skipped: `pg_wal`, `pg_xlog`, `pg_log`, `pg_replslot`,
 *   `pg_dynshmem`, `pg_notify`, `pg_serial`, `pg_snapshots`, `pg_subtrans` (top level), and
 *   `pgsql_tmp`, `pg_stat_tmp`, `.wal-e`, `.wal-d` at any depth. A symlinked `pg_wal` (or any
 *   other symlink) is kept as a symlink member.
 * - Skipped entirely: `lost+found` (any depth); the top-level files {@linkcode SKIPPED_TOP_FILES};
 *   `global/pg_control` (the caller appends a copy last, after the backup has stopped, as
 *   pg_basebackup does); `pg_internal.init*` files (relation cache files, rebuilt at start-up);
 *   `pgsql_tmp*` files; temporary relation files (`t<backend>_<relfilenode>...`) and the non-init
 *   forks of unlogged relations in database directories.
 * - Tablespaces: each `pg_tblspc/<oid>` symlink to a directory is listed in
 *   {@linkcode ClusterWalk.tablespaces} (the sentinel's `spec` entries) and walked through the
 *   link, its members named `pg_tblspc/<oid>/...`; the link itself is no member (restores
 *   recreate it from the spec).
 * - Other symlinks, to files or directories, or dangling, are symlink members (WAL-E dropped
 *   symlinks to directories). Sockets, fifos and devices are skipped and listed in
 *   {@linkcode ClusterWalk.skipped}. A second path to an inode already seen is a hard link member.
 *
 * The walk uses synchronous file system calls: an asynchronous Deno call costs about 45 µs (a hop
 * to a blocking thread pool) against 3-5 µs for `lstat` itself, which made a walk of 20000 files
 * take 0.9 s instead of 0.1 s. It lets the event loop run every 20 ms.
 *
 * Members come sorted by name within each directory, each directory before its contents. A file
 * or directory that vanishes during the walk (a dropped table or database) is listed as skipped,
 * not an error: WAL replay from the backup's start makes the restored cluster consistent.
 *
 * @module
 */

import { UserError } from "../cli/errors.ts";
import { resolve } from "../io/path.ts";
import type { TablespaceSpec } from "./sentinel.ts";
import type { TarEntry, TarEntryKind } from "./tar.ts";

/** What a member is in the tar stream. */
export type ClusterMemberKind = TarEntryKind;

/**
 * One path of the cluster, to be stored as one tar member: its header fields (`name` relative to
 * the data directory, `/` separators, no `./`, directories ending in `/`, the root named `/`;
 * `size` the lstat size of a file, 0 for other kinds; `mtime` fractional; `linkTarget` a symlink's
 * target, or for a hard link the tar name of the first member of the same inode), and where it is.
 */
export interface ClusterMember extends TarEntry {
  kind: ClusterMemberKind;
  /** Absolute filesystem path to read (through the tablespace link for tablespace members). */
  path: string;
  dev: number;
  ino: number;
}

/** A path that is not archived, and why. */
export interface SkippedPath {
  /** Absolute path. */
  path: string;
  reason: string;
}

/** What {@linkcode walkCluster} found. */
export interface ClusterWalk {
  members: ClusterMember[];
  /** The tablespaces (links in `pg_tblspc` to directories), in walk order. */
  tablespaces: TablespaceSpec[];
  /**
   * Paths that could not be archived (sockets, fifos, devices, names that are not UTF-8) or that
   * vanished during the walk, for the caller to log. Paths left out by the rules are not listed.
   */
  skipped: SkippedPath[];
}

/** Options of {@linkcode walkCluster}. */
export interface WalkOptions {
  /** Store the data directory itself as the first member, named `/` (default true, as WAL-E). */
  rootMember?: boolean;
}

/**
 * Top-level directories whose entry is stored but whose contents are not: WAL (archived on its
 * own), WAL-E's `pg_log`, and the runtime state pg_basebackup leaves out.
 */
export const CONTENTS_SKIPPED_TOP_DIRS: ReadonlySet<string> = new Set([
  "pg_wal",
  "pg_xlog",
  "pg_log",
  "pg_replslot",
  "pg_dynshmem",
  "pg_notify",
  "pg_serial",
  "pg_snapshots",
  "pg_subtrans",
  "pg_stat_tmp",
]);

/** Directories whose entry is stored but not their contents, at any depth. */
export const CONTENTS_SKIPPED_DIRS: ReadonlySet<string> = new Set([
  "pgsql_tmp",
  "pg_stat_tmp",
  ".wal-e",
  ".wal-d",
]);

/**
 * Top-level files that are not archived: the running server's state, files that would make a
 * restore start in the wrong mode (a stale backup_label, recovery or standby signals), and
 * temporary files. Unlike WAL-E, the configuration files (`postgresql.conf`, `pg_hba.conf`,
 * `pg_ident.conf`, `postgresql.auto.conf`) ARE archived, as pg_basebackup does: a restored data
 * directory must be startable as it is, and clusters whose configuration lives in PGDATA (the
 * default) cannot start without it. Packagings that keep it elsewhere (Debian's /etc/postgresql)
 * are unaffected.
 */
export const SKIPPED_TOP_FILES: ReadonlySet<string> = new Set([
  "postmaster.pid",
  "postmaster.opts",
  "backup_label",
  "backup_label.old",
  "backup_manifest",
  "tablespace_map",
  "tablespace_map.old",
  "recovery.signal",
  "standby.signal",
  "recovery.conf",
  "recovery.done",
  "promote",
  // The running logger's file names: the restored server's logger writes its own.
  "current_logfiles",
  "current_logfiles.tmp",
  "postgresql.auto.conf.tmp",
]);

/** How a directory's children are judged. */
type DirKind =
  | "root"
  | "base" // <root>/base: children are database directories
  | "global"
  | "tblspc" // <root>/pg_tblspc
  | "tablespace" // pg_tblspc/<oid>
  | "tsversion" // pg_tblspc/<oid>/PG_<major>_<catversion>: children are database directories
  | "database"
  | "other";

const TABLESPACE_VERSION_DIR = /^PG_\d+_\d+$/;
const TEMP_RELATION = /^t\d+_\d+(?:_(?:fsm|vm|init))?(?:\.\d+)?$/;
const RELATION_FILE = /^(\d+)(?:_(fsm|vm|init))?(?:\.\d+)?$/;
const INIT_FORK = /^(\d+)_init(?:\.\d+)?$/;

/** The cluster's files, in archive order, and its tablespaces. */
export async function walkCluster(
  pgdata: string,
  options: WalkOptions = {},
): Promise<ClusterWalk> {
  const root = resolve(pgdata);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(root);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new UserError(`data directory ${root} does not exist`, {
        hint: "pass the PostgreSQL data directory (PGDATA) to backup-push",
        cause: error,
      });
    }
    throw accessError(error, root);
  }
  if (!info.isDirectory) {
    throw new UserError(`data directory ${root} is not a directory`, {
      hint: "pass the PostgreSQL data directory (PGDATA) to backup-push",
    });
  }
  const walker = new Walker(root);
  if (options.rootMember ?? true) walker.add("/", root, info, "directory");
  await walker.walkDirectory(root, "", "root");
  return { members: walker.members, tablespaces: walker.tablespaces, skipped: walker.skipped };
}

/** The UserError for a permission failure on `path`, or `error` itself. */
function accessError(error: unknown, path: string): unknown {
  if (error instanceof Deno.errors.PermissionDenied) {
    return new UserError(`permission denied reading ${path}`, {
      hint:
        "run backup-push as the PostgreSQL OS user that owns the data directory, or grant that user read access to it",
      cause: error,
    });
  }
  return error;
}

const VANISHED = "vanished during the walk";

function vanished(error: unknown): boolean {
  return error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory;
}

class Walker {
  readonly members: ClusterMember[] = [];
  readonly tablespaces: TablespaceSpec[] = [];
  readonly skipped: SkippedPath[] = [];
  /** `dev:ino` of files with more than one link, to the first member's name. */
  readonly #inodes = new Map<string, string>();

  #lastYield = performance.now();

  constructor(readonly root: string) {}

  /** Lets timers and I/O callbacks run every 20 ms of walking. */
  async #yieldNow(): Promise<void> {
    if (performance.now() - this.#lastYield < 20) return;
    await new Promise((resolve) => setTimeout(resolve, 0));
    this.#lastYield = performance.now();
  }

  add(name: string, path: string, info: Deno.FileInfo, kind: ClusterMemberKind, link?: string) {
    const member: ClusterMember = {
      name,
      path,
      kind,
      size: kind === "file" ? info.size : 0,
      mode: (info.mode ?? 0) & 0o7777,
      uid: info.uid ?? 0,
      gid: info.gid ?? 0,
      mtime: (info.mtime?.getTime() ?? 0) / 1000,
      dev: info.dev,
      ino: info.ino ?? 0,
    };
    if (link !== undefined) member.linkTarget = link;
    this.members.push(member);
  }

  /** Lists `dir` (a directory already added, or reached through a tablespace link) and recurses. */
  async walkDirectory(dir: string, rel: string, kind: DirKind): Promise<void> {
    await this.#yieldNow();
    const names = this.#unlessVanished(
      dir,
      "directory vanished during the walk",
      () => Array.from(Deno.readDirSync(dir), (entry) => entry.name),
    );
    if (names === undefined) return;
    names.sort(compareNames);
    const unlogged = kind === "database" ? unloggedRelations(names) : undefined;
    for (const name of names) {
      const path = `${dir}/${name}`;
      const tarName = rel === "" ? name : `${rel}/${name}`;
      if (name.includes("\uFFFD")) {
        this.skipped.push({ path, reason: "the file name is not valid UTF-8" });
        continue;
      }
      if (name === "lost+found") continue;
      const info = this.#unlessVanished(path, VANISHED, () => Deno.lstatSync(path));
      if (info === undefined) continue;
      if (info.isDirectory) {
        await this.#directory(path, tarName, name, kind, info);
      } else if (info.isSymlink) {
        await this.#symlink(path, tarName, name, kind, info);
      } else if (info.isFile) {
        if (!keepFile(name, kind, unlogged)) continue;
        this.#file(path, tarName, info);
      } else {
        const what = info.isFifo
          ? "a fifo"
          : info.isSocket
          ? "a socket"
          : info.isBlockDevice || info.isCharDevice
          ? "a device"
          : "not a regular file, directory or symlink";
        this.skipped.push({ path, reason: `${what}: tar members cannot hold it` });
      }
    }
  }

  async #directory(
    path: string,
    tarName: string,
    name: string,
    parent: DirKind,
    info: Deno.FileInfo,
  ): Promise<void> {
    this.add(`${tarName}/`, path, info, "directory");
    if (CONTENTS_SKIPPED_DIRS.has(name)) return;
    if (parent === "root" && CONTENTS_SKIPPED_TOP_DIRS.has(name)) return;
    await this.walkDirectory(path, tarName, childKind(parent, name));
  }

  async #symlink(
    path: string,
    tarName: string,
    name: string,
    parent: DirKind,
    info: Deno.FileInfo,
  ): Promise<void> {
    const target = this.#unlessVanished(path, VANISHED, () => Deno.readLinkSync(path));
    if (target === undefined) return;
    if (parent === "tblspc" && isDirectory(path)) {
      this.tablespaces.push({ name, loc: `${target}/`, link: tarName });
      await this.walkDirectory(path, tarName, "tablespace");
      return;
    }
    this.add(tarName, path, info, "symlink", target);
  }

  /**
   * `op()` on `path`; undefined when the path vanished meanwhile (listed in `skipped` with
   * `reason`); any other failure is the access error naming the path.
   */
  #unlessVanished<T>(path: string, reason: string, op: () => T): T | undefined {
    try {
      return op();
    } catch (error) {
      if (!vanished(error)) throw accessError(error, path);
      this.skipped.push({ path, reason });
      return undefined;
    }
  }

  #file(path: string, tarName: string, info: Deno.FileInfo): void {
    if (info.nlink !== null && info.nlink > 1 && info.ino !== null) {
      const key = `${info.dev}:${info.ino}`;
      const first = this.#inodes.get(key);
      if (first !== undefined) {
        this.add(tarName, path, info, "hardlink", first);
        return;
      }
      this.#inodes.set(key, tarName);
    }
    this.add(tarName, path, info, "file");
  }
}

/** Whether `path` resolves (through symlinks) to a directory. */
function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

function childKind(parent: DirKind, name: string): DirKind {
  switch (parent) {
    case "root":
      return name === "base"
        ? "base"
        : name === "global"
        ? "global"
        : name === "pg_tblspc"
        ? "tblspc"
        : "other";
    case "base":
      return "database";
    case "tblspc":
      return "tablespace"; // an in-place tablespace directory
    case "tablespace":
      return TABLESPACE_VERSION_DIR.test(name) ? "tsversion" : "other";
    case "tsversion":
      return "database";
    default:
      return "other";
  }
}

/** Relfilenodes of a database directory that have an init fork: unlogged relations. */
function unloggedRelations(names: readonly string[]): Set<string> {
  const result = new Set<string>();
  for (const name of names) {
    const match = INIT_FORK.exec(name);
    if (match !== null) result.add(match[1]);
  }
  return result;
}

/** Whether a regular file named `name`, in a directory of kind `kind`, is archived. */
function keepFile(name: string, kind: DirKind, unlogged: Set<string> | undefined): boolean {
  if (kind === "root" && SKIPPED_TOP_FILES.has(name)) return false;
  if (kind === "global" && name === "pg_control") return false;
  if (name.startsWith("pg_internal.init") || name.startsWith("pgsql_tmp")) return false;
  if (kind === "database") {
    if (TEMP_RELATION.test(name)) return false;
    if (unlogged !== undefined && unlogged.size > 0) {
      const match = RELATION_FILE.exec(name);
      if (match !== null && match[2] !== "init" && unlogged.has(match[1])) return false;
    }
  }
  return true;
}

/** Code-unit order: deterministic, and locale-independent. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
