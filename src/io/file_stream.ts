/**
 * File byte streams sized for the codec pipeline.
 *
 * `Deno.FsFile.readable` reads 64 KiB at a time, which measured at 1.1-1.4 GB/s on this class of
 * machine: a fifth of what 1 MiB reads give, and enough to cost the lzop pipeline 30-40% of its
 * throughput. These streams read large chunks and keep reads in flight ahead of the consumer, so
 * file I/O (done off the JavaScript thread) overlaps with compression.
 *
 * @module
 */

/** Default read size: 1 MiB (four lzop blocks). */
export const FILE_CHUNK_BYTES = 1024 * 1024;

/** Options for {@linkcode fileReadable}. */
export interface FileReadableOptions {
  /** Bytes per read; default {@linkcode FILE_CHUNK_BYTES}. */
  chunkBytes?: number;
  /** Chunks read ahead of the consumer; default 2. */
  readAhead?: number;
  /** Close the file when the stream ends, errors or is cancelled; default true. */
  autoClose?: boolean;
}

/** Reads into `buffer` until it is full or the file ends; returns the bytes read. */
export async function readFull(file: Deno.FsFile, buffer: Uint8Array): Promise<number> {
  let filled = 0;
  while (filled < buffer.length) {
    const n = await file.read(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return filled;
}

/** Writes all of `bytes` to `file` (a write may take fewer bytes than given). */
export async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
}

/** {@linkcode writeAll}, synchronously. */
export function writeAllSync(
  file: { writeSync(bytes: Uint8Array): number },
  bytes: Uint8Array,
): void {
  for (let at = 0; at < bytes.length;) at += file.writeSync(bytes.subarray(at));
}

/** {@linkcode readFull}, synchronously. */
export function readFullSync(file: Deno.FsFile, buffer: Uint8Array): number {
  let filled = 0;
  while (filled < buffer.length) {
    const n = file.readSync(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return filled;
}

/**
 * Returns a function that closes `file` the first time it is called (when `autoClose` is true),
 * for stream sources that end, fail or are cancelled.
 */
export function fileCloser(file: Deno.FsFile, autoClose: boolean): () => void {
  let closed = !autoClose;
  return () => {
    if (!closed) {
      closed = true;
      file.close();
    }
  };
}

/** A readable stream of a file's bytes, read in large chunks with read-ahead. */
export function fileReadable(
  file: Deno.FsFile,
  options: FileReadableOptions = {},
): ReadableStream<Uint8Array> {
  const chunkBytes = options.chunkBytes ?? FILE_CHUNK_BYTES;
  const close = fileCloser(file, options.autoClose ?? true);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const buffer = new Uint8Array(chunkBytes);
      let filled = 0;
      try {
        // Fill the whole chunk unless the file ends: short reads would shrink every later step.
        filled = await readFull(file, buffer);
      } catch (error) {
        close();
        controller.error(error);
        return;
      }
      if (filled > 0) {
        controller.enqueue(filled === chunkBytes ? buffer : buffer.subarray(0, filled));
      }
      if (filled < chunkBytes) {
        close();
        controller.close();
      }
    },
    cancel() {
      close();
    },
  }, { highWaterMark: options.readAhead ?? 2 });
}

/**
 * A byte stream (`type: "bytes"`) of a file's bytes: a BYOB reader's reads go straight into the
 * reader's buffer, so a consumer that reuses its buffers allocates nothing per chunk. It reads
 * only when asked (high-water mark 0); a consumer overlaps I/O by asking for the next chunk into
 * a second buffer before it processes the current one. Default readers get `chunkBytes` chunks.
 */
export function fileByteStream(
  file: Deno.FsFile,
  options: Omit<FileReadableOptions, "readAhead"> & { signal?: AbortSignal } = {},
): ReadableStream<Uint8Array> {
  const close = fileCloser(file, options.autoClose ?? true);
  const { signal } = options;
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: options.chunkBytes ?? FILE_CHUNK_BYTES,
    start(controller) {
      // An abort errors the stream (and closes the file) at once, even between reads.
      signal?.addEventListener("abort", () => {
        close();
        try {
          controller.error(signal.reason);
        } catch {
          // already closed
        }
      }, { once: true });
    },
    async pull(controller) {
      const request = controller.byobRequest!;
      const view = request.view!;
      let filled = 0;
      try {
        filled = await readFull(
          file,
          new Uint8Array(view.buffer, view.byteOffset, view.byteLength),
        );
      } catch (error) {
        close();
        controller.error(error);
        return;
      }
      // A short read is the end of the file: respond with the bytes, then close (a closed
      // stream accepts only an empty response).
      if (filled > 0) request.respond(filled);
      if (filled < view.byteLength) {
        close();
        controller.close();
        if (filled === 0) request.respond(0);
      }
    },
    cancel() {
      close();
    },
  }, { highWaterMark: 0 });
}

/** Opens `path` and streams its bytes; see {@linkcode fileReadable}. */
export async function openFileReadable(
  path: string | URL,
  options: Omit<FileReadableOptions, "autoClose"> = {},
): Promise<ReadableStream<Uint8Array>> {
  const file = await Deno.open(path, { read: true });
  return fileReadable(file, { ...options, autoClose: true });
}
