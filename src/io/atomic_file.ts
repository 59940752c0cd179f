/**
 * Crash-safe file replacement: write a temporary file in the destination's directory, fsync it,
 * rename it over the destination, fsync the directory. A reader sees the old file or the complete
 * new one, never a partial one; after a crash at any point the destination is either absent (or
 * its old self) or complete. A failed or aborted write removes its temporary file.
 *
 * @module
 */

import { writeAll } from "./file_stream.ts";
import { currentUmask } from "./fs.ts";
import { basename, dirname, join } from "./path.ts";

/** Options for {@linkcode writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** Permission bits of the new file, whatever the umask; default 0o600. */
  mode?: number;
  /** Give the new file this owner (a file written as root for another user). */
  owner?: { uid: number; gid: number };
  /** Aborts the write; the temporary file is removed and the destination is left untouched. */
  signal?: AbortSignal;
}

/** Temporary names: `.<name>.tmp-<12 hex digits>` (also the file store's, which never lists them). */
const TEMP_NAME = /^\..+\.tmp-[0-9a-f]{12}$/;

/** Whether a file name is one of wal-d's temporary names. */
export function isTemporaryName(name: string): boolean {
  return TEMP_NAME.test(name);
}

/** The temporary name for a write of the file `name`, from 6 random bytes. */
export function temporaryName(
  name: string,
  random: Uint8Array = crypto.getRandomValues(new Uint8Array(6)),
): string {
  const hex = Array.from(random.subarray(0, 6), (b) => b.toString(16).padStart(2, "0")).join("");
  return `.${name}.tmp-${hex}`;
}

/** A fresh temporary path next to `path`. */
export function temporaryPathFor(path: string): string {
  return join(dirname(path), temporaryName(basename(path)));
}

/** fsyncs a directory, making renames and creations in it durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await Deno.open(dir, { read: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
}

/**
 * Writes `source` (bytes, or a stream of them) into `path` atomically and durably; returns the
 * number of bytes written. The destination's directory must exist. Whatever is at `path` (a file,
 * or a link, which is not followed) is replaced; the temporary file is created exclusively.
 */
export async function writeFileAtomic(
  path: string,
  source: Uint8Array | ReadableStream<Uint8Array>,
  options: AtomicWriteOptions = {},
): Promise<number> {
  const temporary = temporaryPathFor(path);
  const mode = options.mode ?? 0o600;
  const file = await Deno.open(temporary, { write: true, createNew: true, mode });
  let written = 0;
  let renamed = false;
  try {
    if (source instanceof Uint8Array) {
      options.signal?.throwIfAborted();
      await writeAll(file, source);
      written = source.length;
    } else {
      const reader = source.getReader();
      try {
        for (;;) {
          options.signal?.throwIfAborted();
          const { done, value } = await reader.read();
          if (done) break;
          await writeAll(file, value);
          written += value.length;
        }
      } catch (error) {
        await reader.cancel(error).catch(() => {});
        throw error;
      } finally {
        reader.releaseLock();
      }
    }
    options.signal?.throwIfAborted();
    if ((mode & currentUmask()) !== 0) await Deno.chmod(temporary, mode);
    if (options.owner) await Deno.chown(temporary, options.owner.uid, options.owner.gid);
    await file.sync();
    file.close();
    await Deno.rename(temporary, path);
    renamed = true;
    await syncDirectory(dirname(path));
    return written;
  } finally {
    if (!renamed) {
      try {
        file.close();
      } catch {
        // already closed
      }
      await Deno.remove(temporary).catch(() => {});
    }
  }
}
