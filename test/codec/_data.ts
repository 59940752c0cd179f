/** Deterministic test data for the codec tests, and reading streams whole. */

export { concatBytes } from "../../src/io/bytes.ts";

/** A seeded 32-bit PRNG (mulberry32): the same seed gives the same bytes on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Incompressible bytes. */
export function randomBytes(length: number, seed = 1): Uint8Array {
  const next = prng(seed);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 4) {
    const v = next();
    out[i] = v;
    if (i + 1 < length) out[i + 1] = v >>> 8;
    if (i + 2 < length) out[i + 2] = v >>> 16;
    if (i + 3 < length) out[i + 3] = v >>> 24;
  }
  return out;
}

const WORDS = ["alpha", "beta", "gamma", "delta", "insert", "update", "wal", "segment", "row"];

/** Text lines with numbers and words: compresses well, with matches at many distances. */
export function textBytes(length: number, seed = 2): Uint8Array {
  const next = prng(seed);
  const encoder = new TextEncoder();
  const out = new Uint8Array(length);
  let at = 0;
  let line = 0;
  while (at < length) {
    const text = `${line++} ${WORDS[next() % WORDS.length]} ${next() % 1000} ${
      WORDS[next() % WORDS.length]
    }\n`;
    const bytes = encoder.encode(text);
    out.set(bytes.subarray(0, length - at), at);
    at += bytes.length;
  }
  return out;
}

/**
 * Bytes shaped like a WAL segment: 8 KiB pages with a header, records with increasing ids and
 * pseudo-random checksums, and the zero-filled tail of a switched segment.
 */
export function walLikeBytes(length: number, seed = 3): Uint8Array {
  const next = prng(seed);
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  const used = Math.floor(length * 0.6);
  let xid = 1000;
  for (let page = 0; page * 8192 < used; page++) {
    const base = page * 8192;
    if (base + 24 > length) break;
    view.setUint16(base, 0xd110, true);
    view.setUint32(base + 4, 1, true);
    view.setUint32(base + 8, base, true);
    let at = base + 24;
    const end = Math.min(base + 8192, length);
    for (;;) {
      const size = 48 + (next() % 4) * 8;
      if (at + size > end) break;
      view.setUint32(at, size, true);
      view.setUint32(at + 4, xid++, true);
      view.setUint32(at + 8, at - size, true);
      view.setUint32(at + 20, next(), true);
      for (let i = 24; i < size; i += 4) view.setUint32(at + i, (xid * 7 + i) & 0xffff, true);
      at += size;
    }
  }
  return out;
}

/** Hex sha256 of bytes. */
export async function sha256Hex(data: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data.slice()));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Splits bytes into chunks of pseudo-random sizes (1 byte up to `max`). */
export function* randomChunks(
  data: Uint8Array,
  seed: number,
  max = 100_000,
): Generator<Uint8Array> {
  const next = prng(seed);
  let at = 0;
  while (at < data.length) {
    const n = 1 + (next() % max);
    yield data.subarray(at, at + n);
    at += n;
  }
}

/** Every byte of a stream, in one array (the stream's error, unchanged, if it fails). */
export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Runs bytes through a TransformStream, feeding them in the given chunks. */
export function throughStream(
  chunks: Iterable<Uint8Array>,
  transform: TransformStream<Uint8Array, Uint8Array>,
): Promise<Uint8Array> {
  return readAll(ReadableStream.from(chunks).pipeThrough(transform));
}
