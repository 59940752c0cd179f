/** Comparing: strings in code-unit order, and byte streams without buffering them whole. @module */

/** Orders strings by UTF-16 code units (as object stores order keys), not by locale. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A reader that hands out bytes in requested amounts across chunk boundaries. */
class ChunkCursor {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #chunk: Uint8Array = new Uint8Array(0);
  #at = 0;
  #done = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /** The next bytes available (at most `max`), or an empty array at the end. */
  async next(max: number): Promise<Uint8Array> {
    while (this.#at >= this.#chunk.length && !this.#done) {
      const { done, value } = await this.#reader.read();
      if (done) this.#done = true;
      else {
        this.#chunk = value;
        this.#at = 0;
      }
    }
    const n = Math.min(max, this.#chunk.length - this.#at);
    const out = this.#chunk.subarray(this.#at, this.#at + n);
    this.#at += n;
    return out;
  }

  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

/**
 * Whether two byte streams have the same content. Stops reading (and cancels both) at the first
 * difference; errors of either stream propagate.
 */
export async function streamsEqual(
  a: ReadableStream<Uint8Array>,
  b: ReadableStream<Uint8Array>,
): Promise<boolean> {
  const left = new ChunkCursor(a);
  const right = new ChunkCursor(b);
  let equal = false;
  try {
    for (;;) {
      const x = await left.next(1 << 20);
      const y = await right.next(x.length || 1 << 20);
      if (x.length === 0 || y.length === 0) {
        equal = x.length === 0 && y.length === 0;
        return equal;
      }
      // y may be shorter than x at a chunk boundary: compare what both have, put back the rest.
      for (let i = 0; i < y.length; i++) if (x[i] !== y[i]) return false;
      if (y.length < x.length) {
        let rest = x.subarray(y.length);
        while (rest.length > 0) {
          const more = await right.next(rest.length);
          if (more.length === 0) return false;
          for (let i = 0; i < more.length; i++) if (rest[i] !== more[i]) return false;
          rest = rest.subarray(more.length);
        }
      }
    }
  } finally {
    if (!equal) {
      await left.cancel();
      await right.cancel();
    }
  }
}
