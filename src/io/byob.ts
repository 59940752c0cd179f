/**
 * Byte streams read into the reader's own buffers.
 *
 * @module
 */

/**
 * A BYOB reader of `stream` if it is a byte stream (`type: "bytes"`), else null: the caller then
 * reads its chunks with a default reader.
 */
export function byobReader(stream: ReadableStream<Uint8Array>): ReadableStreamBYOBReader | null {
  try {
    return stream.getReader({ mode: "byob" });
  } catch (error) {
    if (error instanceof TypeError) return null; // not a byte stream
    throw error;
  }
}

/** Options of {@linkcode readChunks}. */
export interface ReadChunksOptions {
  /** Size of each of the two buffers a byte stream is read into; default 1 MiB. */
  bufferBytes?: number;
  /** Cancels the stream (a pending read then ends as if the stream were done). */
  signal?: AbortSignal;
}

/**
 * The chunks of `stream`, each valid only until the next one is asked for. A byte stream is read
 * into two reused buffers, the next read in flight while the caller works on the current chunk,
 * so nothing is allocated per chunk; another stream's chunks are passed on as they come. Leaving
 * the loop early (a `break` or an error) cancels the stream.
 */
export async function* readChunks(
  stream: ReadableStream<Uint8Array>,
  options: ReadChunksOptions = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  const byob = byobReader(stream);
  const reader = byob ?? stream.getReader();
  const { signal } = options;
  const onAbort = () => reader.cancel(signal?.reason).catch(() => {});
  signal?.addEventListener("abort", onAbort, { once: true });
  let done = false;
  try {
    if (byob === null) {
      const chunks = reader as ReadableStreamDefaultReader<Uint8Array>;
      for (;;) {
        const result = await chunks.read();
        if (result.done) break;
        yield result.value;
      }
    } else {
      const size = options.bufferBytes ?? 1024 * 1024;
      const read = (buffer: Uint8Array) => {
        const result = byob.read(buffer);
        result.catch(() => {}); // awaited below; a read left pending by an early exit is dropped
        return result;
      };
      let spare = new Uint8Array(size);
      let pending = read(new Uint8Array(size));
      for (;;) {
        const { value, done: ended } = await pending;
        if (ended || value === undefined) break;
        pending = read(spare);
        yield value;
        spare = new Uint8Array(value.buffer as ArrayBuffer, 0, size);
      }
    }
    done = true;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (!done) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
