/**
 * Crash-safe file replacement: write a temporary file in the destination's directory, fsync it,
 * rename it over the destination, fsync the directory. A reader sees the old file or the complete
 * new one, never a partial one; after a crash at any point the destination is either absent (or
 * its old self) or complete. A failed or aborted write removes its temporary file.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";

/** Options for {@linkcode writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** Permission bits of the new file; default 0o600. */
  mode?: number;
  /** Aborts the write; the temporary file is removed and the destination is left untouched. */
  signal?: AbortSignal;
}

/** Marker in temporary file names, so directory scans can tell them apart. */
export const TEMP_MARKER = ".wal-d-tmp-";

/** A fresh temporary path next to `path`: `<dir>/.<name>.wal-d-tmp-<random>`. */
export function temporaryPathFor(path: string): string {
  const random = crypto.getRandomValues(new Uint32Array(2));
  const suffix = `${random[0].toString(16)}${random[1].toString(16)}`;
  return join(dirname(path), `.${basename(path)}${TEMP_MARKER}${suffix}`);
}

/** Whether a directory entry is one of our temporary files. */
export function isTemporaryName(name: string): boolean {
  return name.startsWith(".") && name.includes(TEMP_MARKER);
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
 * Streams `source` into `path` atomically and durably; returns the number of bytes written.
 * The destination's directory must exist.
 */
export async function writeFileAtomic(
  path: string,
  source: ReadableStream<Uint8Array>,
  options: AtomicWriteOptions = {},
): Promise<number> {
  const temporary = temporaryPathFor(path);
  const file = await Deno.open(temporary, {
    write: true,
    createNew: true,
    mode: options.mode ?? 0o600,
  });
  let written = 0;
  let renamed = false;
  try {
    const reader = source.getReader();
    try {
      for (;;) {
        options.signal?.throwIfAborted();
        const { done, value } = await reader.read();
        if (done) break;
        for (let at = 0; at < value.length;) at += await file.write(value.subarray(at));
        written += value.length;
      }
    } catch (error) {
      await reader.cancel(error).catch(() => {});
      throw error;
    } finally {
      reader.releaseLock();
    }
    options.signal?.throwIfAborted();
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
