/**
 * A file compressed into an lzop stream, as one stream source: the fast path for wal-push.
 *
 * Each pull reads the next 256 KiB block of the file straight into the codec's WebAssembly
 * memory (no intermediate buffer and no copy) and emits the encoded block, so back-pressure from
 * the consumer (encryption, upload) paces the file reads. Reads are synchronous: a WAL segment
 * was just written by PostgreSQL and is in the page cache, where a 256 KiB read takes tens of
 * microseconds, while an async read costs a round trip through the event loop per block.
 *
 * @module
 */

import { fileCloser, readFullSync } from "../io/file_stream.ts";
import { LZO_BLOCK_MAX } from "./lzo.ts";
import { LzopEncoder, type LzopWriterOptions } from "./lzop.ts";

/** Options for {@linkcode lzopFileReadable}. */
export interface LzopFileOptions extends LzopWriterOptions {
  /** Close the file when the stream ends, errors or is cancelled; default true. */
  autoClose?: boolean;
}

/** Streams the lzop compression of an open file, from its current position to its end. */
export function lzopFileReadable(
  file: Deno.FsFile,
  options: LzopFileOptions = {},
): ReadableStream<Uint8Array> {
  const encoder = new LzopEncoder(options);
  const close = fileCloser(file, options.autoClose ?? true);
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const block = encoder.blockInput;
      let filled = 0;
      try {
        filled = readFullSync(file, block);
      } catch (error) {
        close();
        controller.error(error);
        return;
      }
      for (const piece of encoder.pushBlock(filled)) controller.enqueue(piece);
      if (filled < LZO_BLOCK_MAX) {
        for (const piece of encoder.finish()) controller.enqueue(piece);
        close();
        controller.close();
      }
    },
    cancel() {
      close();
    },
  }, { highWaterMark: 1 });
}

/**
 * Opens the file at `path` and streams its lzop compression, recording its mode and mtime as
 * `lzop -c < file` does.
 */
export async function openLzopFile(path: string | URL): Promise<ReadableStream<Uint8Array>> {
  const file = await Deno.open(path, { read: true });
  try {
    const info = await file.stat();
    return lzopFileReadable(file, {
      mode: info.mode ?? 0,
      mtimeSeconds: Math.floor((info.mtime?.getTime() ?? Date.now()) / 1000),
    });
  } catch (error) {
    file.close();
    throw error;
  }
}

/**
 * {@linkcode openLzopFile}, with the file opened when the stream starts, so the stream can be
 * created synchronously (e.g. by a storage upload that may retry); open errors error the stream.
 */
export function openLzopFileReadable(path: string | URL): ReadableStream<Uint8Array> {
  let inner: ReadableStreamDefaultReader<Uint8Array> | undefined;
  return new ReadableStream<Uint8Array>({
    async start() {
      inner = (await openLzopFile(path)).getReader();
    },
    async pull(controller) {
      const { done, value } = await inner!.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel(reason) {
      await inner?.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
