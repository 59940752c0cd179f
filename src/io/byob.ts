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

/** One read's result, as both reader kinds give it. */
export interface ChunkResult {
  done: boolean;
  value?: Uint8Array;
}

/** Options of {@linkcode relayStream}. */
export interface RelayOptions {
  /** Performs one read of the source (to put a deadline on it, or map its errors). */
  read?: (read: () => Promise<ChunkResult>) => Promise<ChunkResult>;
  /** The consumer cancelled (before the source is cancelled too). */
  onCancel?: (reason: unknown) => void;
}

/** A relayed stream, and a way to stop it from outside. */
export interface Relay {
  readonly stream: ReadableStream<Uint8Array>;
  /** Cancels the source (a pending read then ends) and errors the stream with `reason`. */
  abort(reason: unknown): void;
}

/**
 * `source` passed on one read at a time, each read going through `options.read`. A byte stream
 * stays a byte stream: the consumer's views are handed to the source, which reads into them, so
 * a consumer that reuses its buffers allocates nothing per chunk. Nothing is read ahead.
 */
export function relayStream(source: ReadableStream<Uint8Array>, options: RelayOptions = {}): Relay {
  const byob = byobReader(source);
  const reader = byob ?? source.getReader();
  const read = options.read ?? ((next) => next());
  let controller: ReadableStreamDefaultController<Uint8Array> | ReadableByteStreamController;
  const cancel = async (reason: unknown) => {
    options.onCancel?.(reason);
    await reader.cancel(reason).catch(() => {});
  };
  let stream: ReadableStream<Uint8Array>;
  if (byob !== null) {
    stream = new ReadableStream({
      type: "bytes",
      autoAllocateChunkSize: 1 << 20, // for a consumer that reads without views
      start(c) {
        controller = c;
      },
      async pull(c) {
        const request = c.byobRequest!;
        // Reading transfers the view's buffer: the answer is the returned view, same memory.
        const { value, done } = await read(() => byob.read(request.view as Uint8Array));
        if (done || value === undefined) c.close();
        if (value !== undefined) request.respondWithNewView(value);
      },
      cancel,
    });
  } else {
    const chunks = reader as ReadableStreamDefaultReader<Uint8Array>;
    stream = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c;
      },
      async pull(c) {
        const { value, done } = await read(() => chunks.read());
        if (done || value === undefined) c.close();
        else c.enqueue(value);
      },
      cancel,
    }, { highWaterMark: 0 });
  }
  return {
    stream,
    abort(reason) {
      reader.cancel(reason).catch(() => {});
      try {
        controller.error(reason);
      } catch {
        // already closed
      }
    },
  };
}
