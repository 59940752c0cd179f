/**
 * The bytes of one tar volume, written into the caller's buffers: headers are encoded in place
 * and file data is read from disk straight into the caller's buffer, so producing a volume
 * allocates nothing per chunk (the consumer compresses fixed 256 KiB blocks).
 *
 * Each file is opened just before its header is written, and its header records the size at that
 * moment (fstat). A file that grows afterwards is cut to that size; one that shrinks is padded with
 * NUL bytes up to it (WAL-E, spec §3.7): WAL replay from the backup's start repairs both. A file
 * that vanished before it could be opened is skipped. At most one file is open at a time.
 *
 * Files of up to {@linkcode SYNC_READ_MAX_BYTES} are opened and read with synchronous calls, larger
 * ones asynchronously. An asynchronous Deno file call costs about 45 µs (a hop to a blocking thread
 * pool), so reading a cluster of 8 KiB files with three of them per file (open, stat, read) ran at
 * 66 MB/s; reads of 256 KiB amortize it, and leave the event loop free while the disk works.
 * `fstat` on an open file does no I/O and is always synchronous.
 *
 * @module
 */

import { UserError } from "../cli/errors.ts";
import type { VolumeSource } from "./volume.ts";
import type { ClusterMember } from "./walk.ts";
import {
  encodeTarHeader,
  tarEndLength,
  type TarEntry,
  tarHeaderLength,
  tarPaddingLength,
} from "./tar.ts";

/** Files up to this size (at the walk) are opened and read synchronously: 64 KiB. */
export const SYNC_READ_MAX_BYTES = 64 * 1024;

/** A regular file whose bytes are in memory (backup_label, tablespace_map, a pg_control copy). */
export interface MemoryMember {
  kind: "data";
  /** Tar name relative to the data directory. */
  name: string;
  data: Uint8Array;
  /** Permission bits. */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
}

/** One member of a volume: a path of the cluster, or bytes in memory. */
export type VolumeMember = ClusterMember | MemoryMember;

/** Options of {@linkcode TarVolumeReader}. */
export interface TarVolumeReaderOptions {
  /** A member left out: it vanished before it was opened, or is no longer a regular file. */
  onMemberSkipped?: (member: VolumeMember, reason: string) => void;
  /** A file ended before the size its header records; the rest was written as NUL bytes. */
  onMemberShrank?: (member: VolumeMember, recordedSize: number, readSize: number) => void;
  /** Called after every read from disk, with the bytes read (file data only). */
  onBytes?: (n: number) => void;
  /**
   * Awaited before every read from disk, with the bytes about to be requested: a rate limiter's
   * hook. Headers and padding cost no disk reads and are not announced.
   */
  beforeRead?: (n: number) => Promise<void>;
  /** Files up to this size use synchronous calls; default {@linkcode SYNC_READ_MAX_BYTES}. */
  syncReadMaxBytes?: number;
}

/**
 * A tar stream of `members`, read into caller buffers: {@linkcode read} fills `into` fully unless
 * the volume ends, and returns 0 once it has ended. The stream ends with two zero blocks, padded to
 * a multiple of 10240 bytes.
 */
export class TarVolumeReader implements VolumeSource {
  readonly #members: readonly VolumeMember[];
  readonly #options: TarVolumeReaderOptions;
  #next = 0;
  #expandedBytes = 0;
  #membersWritten = 0;
  #position = 0;
  #ended = false;
  #closed = false;

  /** The member whose data is being read from #file. */
  #member: VolumeMember | null = null;
  #file: Deno.FsFile | null = null;
  /** Bytes of #member's data still to take from #file. */
  #fileLeft = 0;
  #recordedSize = 0;
  /** Whether #file is read with synchronous calls. */
  #sync = false;
  readonly #syncMax: number;
  /** Bytes to copy out before anything else: a header that did not fit, then in-memory data. */
  #copy: Uint8Array | null = null;
  #copyAt = 0;
  #copyNext: Uint8Array | null = null;
  /** NUL bytes due after the data: shrink filler, block padding, the end of the archive. */
  #zeros = 0;
  /** Where headers that do not fit the caller's buffer are encoded; grown, never per read. */
  #scratch = new Uint8Array(0);
  /** Skipped files' names, to the member that stands in for them in later hard links, if any. */
  readonly #replaced = new Map<string, string | null>();

  constructor(members: readonly VolumeMember[], options: TarVolumeReaderOptions = {}) {
    this.#members = members;
    this.#options = options;
    this.#syncMax = options.syncReadMaxBytes ?? SYNC_READ_MAX_BYTES;
  }

  /** Sum of the sizes recorded in the headers written so far (WAL-E's `expanded_size_bytes`). */
  get expandedBytes(): number {
    return this.#expandedBytes;
  }

  /** Members whose header has been written. */
  get membersWritten(): number {
    return this.#membersWritten;
  }

  /** Tar bytes produced so far. */
  get position(): number {
    return this.#position;
  }

  /**
   * Fills `into` with the next bytes of the volume and returns how many it wrote: `into.length`
   * unless the volume ends within it; 0 once it has ended (or after {@linkcode close}).
   */
  async read(into: Uint8Array): Promise<number> {
    let filled = 0;
    try {
      while (filled < into.length && !this.#closed) {
        if (this.#copy !== null) {
          const n = Math.min(into.length - filled, this.#copy.length - this.#copyAt);
          into.set(this.#copy.subarray(this.#copyAt, this.#copyAt + n), filled);
          filled += n;
          this.#copyAt += n;
          if (this.#copyAt === this.#copy.length) {
            this.#copy = this.#copyNext;
            this.#copyNext = null;
            this.#copyAt = 0;
          }
        } else if (this.#fileLeft > 0) {
          filled += await this.#readFile(into, filled);
        } else if (this.#zeros > 0) {
          const n = Math.min(into.length - filled, this.#zeros);
          into.fill(0, filled, filled + n);
          filled += n;
          this.#zeros -= n;
        } else if (this.#ended) {
          break;
        } else {
          filled = await this.#startMember(into, filled);
        }
      }
    } catch (error) {
      this.#closeFile();
      throw error;
    } finally {
      this.#position += filled;
    }
    return filled;
  }

  /** Closes the open file, if any; later reads return 0. */
  close(): void {
    this.#closeFile();
    this.#closed = true;
    this.#ended = true;
  }

  async #readFile(into: Uint8Array, filled: number): Promise<number> {
    const want = Math.min(into.length - filled, this.#fileLeft);
    if (this.#options.beforeRead !== undefined) await this.#options.beforeRead(want);
    const view = into.subarray(filled, filled + want);
    const n = this.#sync ? this.#file!.readSync(view) : await this.#file!.read(view);
    if (n === null) {
      // Shrunk since it was opened: NUL bytes up to the recorded size (before the padding).
      this.#options.onMemberShrank?.(
        this.#member!,
        this.#recordedSize,
        this.#recordedSize - this.#fileLeft,
      );
      this.#zeros += this.#fileLeft;
      this.#fileLeft = 0;
      this.#closeFile();
      return 0;
    }
    this.#fileLeft -= n;
    this.#options.onBytes?.(n);
    if (this.#fileLeft === 0) this.#closeFile(); // grown bytes past the recorded size are left
    return n;
  }

  /** Writes the next member's header (or queues it), or the end of the archive. */
  async #startMember(into: Uint8Array, filled: number): Promise<number> {
    for (;;) {
      if (this.#next >= this.#members.length) {
        this.#ended = true;
        this.#zeros += tarEndLength(this.#position + filled);
        return filled;
      }
      const member = this.#members[this.#next++];
      const entry = await this.#prepare(member);
      if (entry === null) continue;
      const length = tarHeaderLength(entry);
      if (into.length - filled >= length) {
        filled += encodeTarHeader(entry, into, filled);
      } else {
        if (this.#scratch.length < length) this.#scratch = new Uint8Array(Math.max(length, 4096));
        encodeTarHeader(entry, this.#scratch, 0);
        this.#queueCopy(this.#scratch.subarray(0, length));
      }
      const size = entry.kind === "file" ? entry.size : 0;
      if (member.kind === "data" && size > 0) this.#queueCopy(member.data);
      this.#zeros += tarPaddingLength(size);
      this.#membersWritten++;
      this.#expandedBytes += size;
      return filled;
    }
  }

  #queueCopy(bytes: Uint8Array): void {
    if (this.#copy === null) {
      this.#copy = bytes;
      this.#copyAt = 0;
    } else this.#copyNext = bytes;
  }

  /** The header of `member`, with its file opened when it has data; null if it is skipped. */
  async #prepare(member: VolumeMember): Promise<TarEntry | null> {
    switch (member.kind) {
      case "data":
        return {
          name: member.name,
          kind: "file",
          size: member.data.length,
          mode: member.mode,
          uid: member.uid,
          gid: member.gid,
          mtime: member.mtime,
        };
      case "directory":
      case "symlink":
        return member;
      case "hardlink": {
        const target = member.linkTarget ?? "";
        if (!this.#replaced.has(target)) return member;
        const standIn = this.#replaced.get(target);
        if (standIn !== null && standIn !== undefined) return { ...member, linkTarget: standIn };
        // Its target was skipped: store this path's own bytes, and let later links point here.
        const entry = await this.#open(member);
        if (entry !== null) this.#replaced.set(target, member.name);
        return entry;
      }
      case "file":
        return await this.#open(member);
    }
  }

  /** Opens a cluster file and returns its header, sized by fstat; null if it is skipped. */
  async #open(member: ClusterMember): Promise<TarEntry | null> {
    let file: Deno.FsFile;
    try {
      file = member.size <= this.#syncMax
        ? Deno.openSync(member.path, { read: true })
        : await Deno.open(member.path, { read: true });
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        this.#skip(member, "vanished before it was read");
        return null;
      }
      if (error instanceof Deno.errors.PermissionDenied) {
        throw new UserError(`permission denied reading ${member.path}`, {
          hint:
            "run backup-push as the PostgreSQL OS user that owns the data directory, or grant that user read access to the file",
          cause: error,
        });
      }
      throw error;
    }
    let info: Deno.FileInfo;
    try {
      info = file.statSync();
    } catch (error) {
      file.close();
      throw error;
    }
    if (!info.isFile) {
      file.close();
      this.#skip(member, "no longer a regular file");
      return null;
    }
    this.#member = member;
    this.#recordedSize = info.size;
    this.#sync = info.size <= this.#syncMax;
    this.#fileLeft = info.size;
    if (info.size > 0) this.#file = file;
    else file.close();
    return {
      name: member.name,
      kind: "file",
      size: info.size,
      mode: (info.mode ?? member.mode) & 0o7777,
      uid: info.uid ?? member.uid,
      gid: info.gid ?? member.gid,
      mtime: info.mtime === null ? member.mtime : info.mtime.getTime() / 1000,
    };
  }

  #skip(member: ClusterMember, reason: string): void {
    if (!this.#replaced.has(member.name)) this.#replaced.set(member.name, null);
    this.#options.onMemberSkipped?.(member, reason);
  }

  #closeFile(): void {
    if (this.#file !== null) {
      try {
        this.#file.close();
      } catch {
        // already closed
      }
      this.#file = null;
    }
    this.#member = null;
  }
}
