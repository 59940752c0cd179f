/**
 * Safe, streaming extraction of backup volumes (tar) into a data directory and its tablespace
 * locations.
 *
 * Nothing is ever written outside the roots: the data directory, and each tablespace location
 * that a `pg_tblspc/<oid>` link names (made from the restore spec, or already there). A member is
 * refused, failing the restore, when its name is absolute (except the root member `/`, WAL-E's
 * name for the data directory itself) or has a `..` component, when it would be written through a
 * symlink (every parent directory is checked with lstat, never followed), when it would replace a
 * directory, when it is a hard link to anything but a regular file already restored under a root,
 * and when it is a device, a fifo or a GNU sparse or unknown member. Symlink members are created as
 * they are (they are data: pg_wal may be one) and never followed afterwards.
 *
 * Files are written from the decompressor's memory through two reused 1 MiB buffers per volume
 * (one being written while the other fills), then fsynced in the background by a bounded queue;
 * directories are fsynced at the end. `global/pg_control` is written under a temporary name and
 * renamed last, once every volume has been verified ({@linkcode RestoreTarget.finish}): a restore
 * that fails leaves a data directory PostgreSQL refuses to start, never one that looks complete.
 *
 * @module
 */

import { lchownSync } from "node:fs";
import { syncDirectory } from "../io/atomic_file.ts";
import { writeAll, writeAllSync } from "../io/file_stream.ts";
import { currentUmask, lstatOrNull } from "../io/fs.ts";
import { join } from "../io/path.ts";
import { TAR_BLOCK_SIZE, tarPaddingLength } from "./tar.ts";
import {
  decodeField,
  isZeroBlock,
  parsePaxRecords,
  parseTarHeader,
  type PaxRecords,
  TarFormatError,
} from "./tar_header.ts";

/** A member that may not be restored; the message names the volume, the member and why. */
export class UnsafeMemberError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnsafeMemberError";
  }
}

/** A restored file could not be written or synced; the message names the file. */
export class RestoreWriteError extends Error {
  constructor(action: "write" | "fsync", path: string, cause: unknown) {
    super(`could not ${action} ${path}: ${(cause as Error).message}`, { cause });
    this.name = "RestoreWriteError";
  }
}

/** Whether a member name stands for the data directory itself (WAL-E's root member is `/`). */
function isRootName(name: string): boolean {
  return name === "/" || name === "" || name === "." || name === "./";
}

/** Where the restored files go. */
export interface RestoreRoots {
  /** The data directory (an existing directory, as a real path). */
  dataDir: string;
  /**
   * Tablespace OID → its location (an existing directory, as a real path): members under
   * `pg_tblspc/<oid>/` are written there instead of into the data directory.
   */
  tablespaces: ReadonlyMap<string, string>;
}

/** Options of a {@linkcode RestoreTarget}. */
export interface RestoreTargetOptions {
  /** Give every created file and directory this owner (when running as root for another user). */
  owner?: { uid: number; gid: number };
  /** fsyncs in flight at once (default 8). */
  syncConcurrency?: number;
  /** Called with the bytes of member data written, as they are written. */
  onBytes?: (bytes: number) => void;
}

/** The name `global/pg_control` is written under until the restore completes. */
export const PG_CONTROL_PARTIAL = "global/pg_control.wal-d-partial";
const PG_CONTROL = "global/pg_control";

/** Bytes of each of a volume's two write buffers; files up to this size are written in one call. */
export const WRITE_BUFFER_BYTES = 1024 * 1024;
/** Largest PAX or GNU long-name member accepted. */
const META_MAX_BYTES = 1024 * 1024;

interface DirectoryAttributes {
  mode: number;
  mtime: number;
}

/** Files waiting for their fsync; at most `limit` at once. */
class SyncQueue {
  readonly #limit: number;
  readonly #pending = new Set<Promise<void>>();
  #error: unknown = null;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Queues `file` for fsync and close; waits while the queue is full. */
  async add(file: Deno.FsFile, path: string): Promise<void> {
    while (this.#pending.size >= this.#limit) await Promise.race(this.#pending);
    this.#throwIfFailed();
    const task = (async () => {
      try {
        await file.sync();
      } catch (error) {
        this.#error ??= new RestoreWriteError("fsync", path, error);
      } finally {
        try {
          file.close();
        } catch {
          // already closed
        }
      }
    })();
    this.#pending.add(task);
    task.finally(() => this.#pending.delete(task));
  }

  /** Waits for every queued fsync; throws the first failure. */
  async drain(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all(this.#pending);
    this.#throwIfFailed();
  }

  #throwIfFailed(): void {
    if (this.#error !== null) throw this.#error;
  }
}

/**
 * The destination of one restore, shared by the volumes extracted into it (concurrently): the
 * roots, the directories already checked, directory attributes applied at the end, the fsync
 * queue and the deferred `pg_control`.
 */
export class RestoreTarget {
  readonly roots: RestoreRoots;
  readonly #owner?: { uid: number; gid: number };
  readonly #syncs: SyncQueue;
  readonly onBytes?: (bytes: number) => void;
  /** Directories known to be real directories (not symlinks) under a root. */
  readonly #checked = new Set<string>();
  /** Directories whose entries changed: fsynced at the end. */
  readonly #touched = new Set<string>();
  /** Directory members' mode and mtime, applied at the end (after their contents exist). */
  readonly #attributes = new Map<string, DirectoryAttributes>();
  #controlWritten = false;
  readonly #umask = currentUmask();

  constructor(roots: RestoreRoots, options: RestoreTargetOptions = {}) {
    this.roots = roots;
    this.#owner = options.owner;
    this.#syncs = new SyncQueue(options.syncConcurrency ?? 8);
    this.onBytes = options.onBytes;
    this.#checked.add(roots.dataDir);
    for (const location of roots.tablespaces.values()) this.#checked.add(location);
  }

  /** Whether `global/pg_control` has been written (under its temporary name). */
  get controlFileWritten(): boolean {
    return this.#controlWritten;
  }

  /**
   * Where member `name` goes, as an absolute path; null for the members that stand for an
   * existing root (`/`, and `pg_tblspc/<oid>` of a linked tablespace). Throws
   * {@linkcode UnsafeMemberError} for names that could leave the roots.
   */
  resolve(name: string, what: string): { path: string; root: string; rel: string } | null {
    if (isRootName(name)) return null;
    if (name.startsWith("/")) {
      throw new UnsafeMemberError(`${what} has an absolute name`);
    }
    const parts: string[] = [];
    for (const part of name.split("/")) {
      if (part === "" || part === ".") continue;
      if (part === "..") throw new UnsafeMemberError(`${what} has a '..' component`);
      parts.push(part);
    }
    if (parts.length === 0) return null;
    if (parts[0] === "pg_tblspc" && parts.length >= 2) {
      const location = this.roots.tablespaces.get(parts[1]);
      if (location !== undefined) {
        if (parts.length === 2) return null;
        const rel = parts.slice(2).join("/");
        return { path: join(location, rel), root: location, rel };
      }
    }
    const rel = parts.join("/");
    return { path: join(this.roots.dataDir, rel), root: this.roots.dataDir, rel };
  }

  /**
   * Makes sure every directory between `root` and `path` is a real directory (creating missing
   * ones, 0700): never a symlink, never followed.
   */
  ensureParents(root: string, rel: string, what: string): string {
    const parts = rel.split("/");
    let dir = root;
    for (let i = 0; i < parts.length - 1; i++) {
      const parent = dir;
      dir = `${dir}/${parts[i]}`;
      if (this.#checked.has(dir)) continue;
      this.#ensureDirectory(dir, parent, what);
    }
    return dir;
  }

  #ensureDirectory(dir: string, parent: string, what: string): void {
    try {
      Deno.mkdirSync(dir, { mode: 0o700 });
      this.#created(dir);
      this.#touched.add(parent);
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      const info = Deno.lstatSync(dir);
      if (info.isSymlink) {
        throw new UnsafeMemberError(`${what} would be written through the symlink ${dir}`);
      }
      if (!info.isDirectory) {
        throw new UnsafeMemberError(`${what} needs ${dir} to be a directory, but it is a file`);
      }
    }
    this.#checked.add(dir);
  }

  #created(path: string): void {
    if (this.#owner) Deno.chownSync(path, this.#owner.uid, this.#owner.gid);
  }

  /** Removes what is at `path` so a non-directory member can take its place. */
  #clear(path: string, what: string): void {
    const info = lstatOrNull(path);
    if (info === null) return;
    if (info.isDirectory) {
      throw new UnsafeMemberError(`${what} would replace the directory ${path}`);
    }
    Deno.removeSync(path);
  }

  /** Creates a directory member (or accepts an existing directory); attributes come at the end. */
  directory(name: string, mode: number, mtime: number, what: string): void {
    const target = this.resolve(name, what);
    if (target === null) {
      if (isRootName(name)) this.#attributes.set(this.roots.dataDir, { mode, mtime });
      return;
    }
    const parent = this.ensureParents(target.root, target.rel, what);
    if (!this.#checked.has(target.path)) {
      try {
        Deno.mkdirSync(target.path, { mode: 0o700 });
        this.#created(target.path);
        this.#touched.add(parent);
        this.#checked.add(target.path);
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
        const info = Deno.lstatSync(target.path);
        if (info.isSymlink) return; // kept as it is (a pg_wal link made beforehand); never followed
        if (!info.isDirectory) {
          throw new UnsafeMemberError(`${what} would replace the file ${target.path}`);
        }
        this.#checked.add(target.path);
      }
    }
    this.#attributes.set(target.path, { mode, mtime });
  }

  /** Creates a symlink member; it is never followed by later members. */
  symlink(name: string, linkName: string, what: string): void {
    const target = this.resolve(name, what);
    if (target === null) throw new UnsafeMemberError(`${what} is a symlink in place of a root`);
    if (linkName === "") throw new UnsafeMemberError(`${what} is a symlink with an empty target`);
    this.#refuseControlFileLink(target, what);
    const parent = this.ensureParents(target.root, target.rel, what);
    this.#clear(target.path, what);
    Deno.symlinkSync(linkName, target.path);
    if (this.#owner) lchownSync(target.path, this.#owner.uid, this.#owner.gid);
    this.#touched.add(parent);
  }

  /** Creates a hard link member: its target must be a regular file already restored. */
  hardlink(name: string, linkName: string, what: string): void {
    const target = this.resolve(name, what);
    if (target === null) throw new UnsafeMemberError(`${what} is a hard link in place of a root`);
    const source = this.resolve(linkName, `${what}'s link target ${JSON.stringify(linkName)}`);
    if (source === null) {
      throw new UnsafeMemberError(`${what} is a hard link to a root directory`);
    }
    this.ensureParents(source.root, source.rel, `${what}'s link target`);
    const info = lstatOrNull(source.path);
    if (info === null || !info.isFile) {
      throw new UnsafeMemberError(
        `${what} links to ${JSON.stringify(linkName)}, which is not a restored regular file`,
      );
    }
    if (source.path === target.path) {
      throw new UnsafeMemberError(`${what} is a hard link to itself`);
    }
    this.#refuseControlFileLink(target, what);
    const parent = this.ensureParents(target.root, target.rel, what);
    this.#clear(target.path, what);
    Deno.linkSync(source.path, target.path);
    this.#touched.add(parent);
  }

  /** `global/pg_control` must be a regular file: it is what is put in place last. */
  #refuseControlFileLink(target: { root: string; rel: string }, what: string): void {
    if (target.root === this.roots.dataDir && target.rel === PG_CONTROL) {
      throw new UnsafeMemberError(
        `${what} is a link, but global/pg_control must be a regular file`,
      );
    }
  }

  /**
   * Creates a regular file for writing (mode `mode`), replacing a file or symlink already there.
   * `global/pg_control` of the data directory is opened under its temporary name.
   */
  createFile(name: string, mode: number, what: string): { file: Deno.FsFile; path: string } {
    const target = this.resolve(name, what);
    if (target === null) throw new UnsafeMemberError(`${what} is a file in place of a root`);
    const parent = this.ensureParents(target.root, target.rel, what);
    let path = target.path;
    if (target.root === this.roots.dataDir && target.rel === PG_CONTROL) {
      path = join(this.roots.dataDir, PG_CONTROL_PARTIAL);
      this.#controlWritten = true;
    }
    const options = { write: true, createNew: true, mode: mode & 0o777 } as const;
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, options);
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      this.#clear(path, what);
      file = Deno.openSync(path, options);
    }
    // The mode as archived, not cut by the umask (group access: initdb --allow-group-access).
    if ((mode & 0o777 & this.#umask) !== 0) Deno.chmodSync(path, mode & 0o777);
    this.#created(path);
    this.#touched.add(parent);
    return { file, path };
  }

  /** Hands a completely written file to the fsync queue (which closes it). */
  finishFile(file: Deno.FsFile, path: string, mtime: number): Promise<void> {
    file.utimeSync(mtime, mtime);
    return this.#syncs.add(file, path);
  }

  /**
   * Completes the restore once every volume is extracted and verified: waits for the fsyncs,
   * applies directory modes and times, renames `pg_control` into place and fsyncs every directory
   * that changed.
   */
  async finish(): Promise<void> {
    await this.#syncs.drain();
    if (this.#controlWritten) {
      Deno.renameSync(
        join(this.roots.dataDir, PG_CONTROL_PARTIAL),
        join(this.roots.dataDir, PG_CONTROL),
      );
      this.#touched.add(join(this.roots.dataDir, "global"));
    }
    // Deepest first, so a directory's own time is set after its children's changes.
    const directories = [...this.#attributes.keys()].sort((a, b) => b.length - a.length);
    for (const dir of directories) {
      const { mode, mtime } = this.#attributes.get(dir)!;
      Deno.chmodSync(dir, mode & 0o777);
      Deno.utimeSync(dir, mtime, mtime);
    }
    await Promise.all([...this.#touched].map(syncDirectory));
  }

  /** Waits for queued fsyncs without completing (after a failure, before reporting it). */
  async abandon(): Promise<void> {
    await this.#syncs.drain().catch(() => {});
  }
}

const enum State {
  Header,
  /** Data of a regular file. */
  FileData,
  /** Data of a PAX or GNU long-name member, kept. */
  Meta,
  /** Data that is skipped (a global PAX header's). */
  Skip,
  /** Padding after member data. */
  Padding,
  /** After the end-of-archive blocks: the rest is ignored. */
  End,
}

/** What one volume held. */
export interface VolumeExtractSummary {
  /** Members restored (extended headers not counted). */
  members: number;
  /** Bytes of file data written. */
  bytes: number;
}

/** The file being written. */
interface OpenFile {
  file: Deno.FsFile;
  path: string;
  size: number;
  mtime: number;
  /** Bytes still to come from the tar stream. */
  remaining: number;
}

/**
 * Extracts one tar stream into a {@linkcode RestoreTarget}, fed with {@linkcode write} (views
 * may be reused by the caller once the returned promise resolves) and ended with
 * {@linkcode end}.
 */
export class VolumeExtractor {
  readonly #target: RestoreTarget;
  readonly #volume: string;
  #state = State.Header;
  readonly #header = new Uint8Array(TAR_BLOCK_SIZE);
  #headerFill = 0;
  #skip = 0;
  #sawZeroBlock = false;
  /** Overrides from PAX and GNU long-name members, for the next member. */
  #pending: PaxRecords = {};
  #meta:
    | { type: "pax" | "gnu-long-name" | "gnu-long-link"; data: Uint8Array; fill: number }
    | null = null;
  #open: OpenFile | null = null;
  readonly #buffers = [new Uint8Array(WRITE_BUFFER_BYTES), new Uint8Array(WRITE_BUFFER_BYTES)];
  #current = 0;
  #fill = 0;
  /** The write of the other buffer, in flight. */
  #inFlight: Promise<unknown> | null = null;
  #members = 0;
  #bytes = 0;

  constructor(target: RestoreTarget, volume: string) {
    this.#target = target;
    this.#volume = volume;
  }

  /** Consumes `view` completely. */
  async write(view: Uint8Array): Promise<void> {
    let at = 0;
    while (at < view.length) {
      switch (this.#state) {
        case State.Header: {
          if (this.#headerFill === 0 && view.length - at >= TAR_BLOCK_SIZE) {
            const block = view.subarray(at, at + TAR_BLOCK_SIZE);
            at += TAR_BLOCK_SIZE;
            await this.#onHeader(block);
          } else {
            const n = Math.min(TAR_BLOCK_SIZE - this.#headerFill, view.length - at);
            this.#header.set(view.subarray(at, at + n), this.#headerFill);
            this.#headerFill += n;
            at += n;
            if (this.#headerFill === TAR_BLOCK_SIZE) {
              this.#headerFill = 0;
              await this.#onHeader(this.#header);
            }
          }
          break;
        }
        case State.FileData: {
          const open = this.#open!;
          const n = Math.min(open.remaining, view.length - at);
          await this.#fileData(view.subarray(at, at + n));
          at += n;
          open.remaining -= n;
          if (open.remaining === 0) await this.#endFile();
          break;
        }
        case State.Meta: {
          const meta = this.#meta!;
          const n = Math.min(meta.data.length - meta.fill, view.length - at);
          meta.data.set(view.subarray(at, at + n), meta.fill);
          meta.fill += n;
          at += n;
          if (meta.fill === meta.data.length) this.#endMeta();
          break;
        }
        case State.Skip:
        case State.Padding: {
          const n = Math.min(this.#skip, view.length - at);
          this.#skip -= n;
          at += n;
          if (this.#skip === 0) this.#state = State.Header;
          break;
        }
        case State.End:
          return;
      }
    }
  }

  /** Ends the stream; throws if it stopped inside a member. */
  async end(): Promise<VolumeExtractSummary> {
    await this.#settle();
    const inside = this.#state === State.FileData || this.#state === State.Meta ||
      (this.#state === State.Header && this.#headerFill > 0) ||
      ((this.#state === State.Padding || this.#state === State.Skip) && this.#skip > 0);
    if (inside) {
      throw new TarFormatError(
        `${this.#volume}: the tar stream ends inside a member; the volume is truncated`,
      );
    }
    // A stream without the end-of-archive blocks is accepted after a complete member, as GNU tar
    // accepts it; the lzop end marker and the volume's checksum tell whether anything is missing.
    return { members: this.#members, bytes: this.#bytes };
  }

  /** Closes a file left open by a failure (its content is incomplete). */
  async abort(): Promise<void> {
    await this.#inFlight?.catch(() => {});
    if (this.#open) {
      try {
        this.#open.file.close();
      } catch {
        // already closed
      }
      this.#open = null;
    }
  }

  /** Runs a header parser, naming this volume in its format errors. */
  #inVolume<T>(parse: () => T): T {
    try {
      return parse();
    } catch (error) {
      if (error instanceof TarFormatError) {
        throw new TarFormatError(`${this.#volume}: ${error.message}`);
      }
      throw error;
    }
  }

  #what(name: string): string {
    return `${this.#volume}: member ${JSON.stringify(name)}`;
  }

  async #onHeader(block: Uint8Array): Promise<void> {
    if (isZeroBlock(block)) {
      if (this.#sawZeroBlock) this.#state = State.End;
      this.#sawZeroBlock = true;
      return;
    }
    if (this.#sawZeroBlock) {
      throw new TarFormatError(
        `${this.#volume}: a header follows an end-of-archive block; the volume is corrupt`,
      );
    }
    const header = this.#inVolume(() => parseTarHeader(block));
    switch (header.type) {
      case "pax":
      case "gnu-long-name":
      case "gnu-long-link":
        this.#startMeta(header.type, header.size);
        return;
      case "pax-global":
      case "gnu-volume-label":
        this.#skipData(header.size);
        return;
    }
    const pending = this.#pending;
    this.#pending = {};
    const name = pending.path ?? header.name;
    const linkName = pending.linkpath ?? header.linkName;
    const size = pending.size ?? header.size;
    const mtime = pending.mtime ?? header.mtime;
    const what = this.#what(name);
    if (pending.sparse) {
      throw new UnsafeMemberError(`${what} is a GNU sparse file, which wal-d does not restore`);
    }
    this.#members++;
    switch (header.type) {
      case "file": {
        const { file, path } = this.#target.createFile(name, header.mode, what);
        this.#open = { file, path, size, mtime, remaining: size };
        if (size === 0) await this.#endFile();
        else this.#state = State.FileData;
        return;
      }
      case "directory":
        this.#target.directory(name, header.mode, mtime, what);
        this.#skipData(size);
        return;
      case "symlink":
        this.#target.symlink(name, linkName, what);
        this.#skipData(size);
        return;
      case "hardlink":
        this.#target.hardlink(name, linkName, what);
        this.#skipData(size);
        return;
      case "character-device":
      case "block-device":
      case "fifo":
        throw new UnsafeMemberError(`${what} is a ${header.type}, which wal-d never restores`);
      default:
        throw new UnsafeMemberError(
          `${what} has the unknown tar type '${header.typeFlag}', which wal-d does not restore`,
        );
    }
  }

  #skipData(size: number): void {
    this.#skip = size + tarPaddingLength(size);
    this.#state = this.#skip > 0 ? State.Skip : State.Header;
  }

  #startMeta(type: "pax" | "gnu-long-name" | "gnu-long-link", size: number): void {
    if (size > META_MAX_BYTES) {
      throw new TarFormatError(
        `${this.#volume}: an extended header of ${size} bytes is implausibly large; the volume is corrupt`,
      );
    }
    this.#meta = { type, data: new Uint8Array(size), fill: 0 };
    if (size === 0) this.#endMeta();
    else this.#state = State.Meta;
  }

  #endMeta(): void {
    const meta = this.#meta!;
    this.#meta = null;
    switch (meta.type) {
      case "pax":
        Object.assign(this.#pending, this.#inVolume(() => parsePaxRecords(meta.data)));
        break;
      case "gnu-long-name":
        this.#pending.path = decodeField(meta.data, `${this.#volume}: a GNU long name`);
        break;
      case "gnu-long-link":
        this.#pending.linkpath = decodeField(meta.data, `${this.#volume}: a GNU long link`);
        break;
    }
    this.#skip = tarPaddingLength(meta.data.length);
    this.#state = this.#skip > 0 ? State.Padding : State.Header;
  }

  /** Copies file data into the current buffer, writing buffers out as they fill. */
  async #fileData(data: Uint8Array): Promise<void> {
    let at = 0;
    while (at < data.length) {
      const buffer = this.#buffers[this.#current];
      const n = Math.min(buffer.length - this.#fill, data.length - at);
      buffer.set(data.subarray(at, at + n), this.#fill);
      this.#fill += n;
      at += n;
      if (this.#fill === buffer.length) await this.#flush();
    }
  }

  /** Starts writing the current buffer and switches to the other one (once its write is done). */
  async #flush(): Promise<void> {
    const open = this.#open!;
    const buffer = this.#buffers[this.#current];
    const length = this.#fill;
    await this.#settle();
    if (length === 0) return;
    this.#bytes += length;
    this.#target.onBytes?.(length);
    const write = writeAll(open.file, buffer.subarray(0, length)).catch((error) => {
      throw new RestoreWriteError("write", open.path, error);
    });
    write.catch(() => {}); // awaited by #settle; handled here so it never counts as unhandled
    this.#inFlight = write;
    this.#current ^= 1;
    this.#fill = 0;
  }

  async #settle(): Promise<void> {
    const inFlight = this.#inFlight;
    this.#inFlight = null;
    if (inFlight) await inFlight;
  }

  async #endFile(): Promise<void> {
    const open = this.#open!;
    if (open.size <= WRITE_BUFFER_BYTES && this.#inFlight === null) {
      // A small file: one synchronous write from the buffer (cheaper than an async round trip).
      const buffer = this.#buffers[this.#current];
      writeAllSync(open.file, buffer.subarray(0, this.#fill));
      this.#bytes += this.#fill;
      this.#target.onBytes?.(this.#fill);
      this.#fill = 0;
    } else {
      await this.#flush();
      await this.#settle();
    }
    this.#open = null;
    this.#skip = tarPaddingLength(open.size);
    this.#state = this.#skip > 0 ? State.Padding : State.Header;
    await this.#target.finishFile(open.file, open.path, open.mtime);
  }
}
