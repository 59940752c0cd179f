/**
 * LZO1X block codec and the checksums lzop uses, backed by wal-d's own WebAssembly module
 * (src/codec/lzo/lzo1x.c, built by scripts/build-wasm.sh).
 *
 * Each {@linkcode LzoCodec} owns one module instance with fixed buffers, so one codec serves one
 * stream at a time; create one per concurrent stream (instantiation is cheap: the module is
 * compiled once per process).
 *
 * @module
 */

import { LZO1X_WASM_BASE64 } from "./lzo/lzo1x_wasm.ts";

/** The largest block the codec compresses or decompresses: lzop's block size, 256 KiB. */
export const LZO_BLOCK_MAX = 262144;

/** Why a block failed to decompress. */
export type LzoErrorKind =
  | "input-overrun"
  | "output-overrun"
  | "lookbehind-overrun"
  | "input-not-consumed"
  | "output-underrun"
  | "bad-argument";

const ERROR_KINDS: Record<number, LzoErrorKind> = {
  1: "input-overrun",
  2: "output-overrun",
  3: "lookbehind-overrun",
  4: "input-not-consumed",
  5: "bad-argument",
};

const ERROR_TEXT: Record<LzoErrorKind, string> = {
  "input-overrun": "compressed data ends before its end-of-stream marker",
  "output-overrun": "compressed data decodes to more bytes than the block header declares",
  "lookbehind-overrun": "compressed data refers to bytes before the start of the block",
  "input-not-consumed": "compressed data continues after its end-of-stream marker",
  "output-underrun": "compressed data decodes to fewer bytes than the block header declares",
  "bad-argument": "block is larger than the codec's 256 KiB buffers",
};

/** A block that is not valid LZO1X data. */
export class LzoDataError extends Error {
  /** What was wrong with the data. */
  readonly kind: LzoErrorKind;
  constructor(kind: LzoErrorKind) {
    super(`corrupt LZO1X block: ${ERROR_TEXT[kind]}`);
    this.name = "LzoDataError";
    this.kind = kind;
  }
}

interface LzoExports {
  memory: WebAssembly.Memory;
  in_ptr(): number;
  out_ptr(): number;
  block_max(): number;
  compress_bound(): number;
  lzo1x_compress(n: number): number;
  lzo1x_decompress(inLen: number, outCap: number): number;
  adler32(adler: number, ptr: number, len: number): number;
  crc32(crc: number, ptr: number, len: number): number;
}

let compiled: WebAssembly.Module | undefined;

function wasmModule(): WebAssembly.Module {
  if (!compiled) {
    const binary = Uint8Array.from(atob(LZO1X_WASM_BASE64), (c) => c.charCodeAt(0));
    compiled = new WebAssembly.Module(binary);
  }
  return compiled;
}

/**
 * One instance of the LZO1X module. The `input` and `output` views alias the module's memory:
 * write a block into `input`, call a method, and read the result from `output` before the next
 * call overwrites it.
 */
export class LzoCodec {
  readonly #x: LzoExports;
  /** Where blocks to compress or decompress are written: capacity {@linkcode compressBound}. */
  readonly input: Uint8Array;
  /** Where results appear: capacity {@linkcode compressBound}. */
  readonly output: Uint8Array;
  /** Largest possible compressed size of a {@linkcode LZO_BLOCK_MAX} block. */
  readonly compressBound: number;

  constructor() {
    const instance = new WebAssembly.Instance(wasmModule(), {});
    this.#x = instance.exports as unknown as LzoExports;
    if (this.#x.block_max() !== LZO_BLOCK_MAX) {
      throw new Error("LZO wasm module does not match src/codec/lzo.ts: rebuild it");
    }
    this.compressBound = this.#x.compress_bound();
    const buf = this.#x.memory.buffer;
    this.input = new Uint8Array(buf, this.#x.in_ptr(), this.compressBound);
    this.output = new Uint8Array(buf, this.#x.out_ptr(), this.compressBound);
  }

  /** Compresses `input[0..length)`; returns the compressed length, the data is in `output`. */
  compressInput(length: number): number {
    if (!Number.isInteger(length) || length < 0 || length > LZO_BLOCK_MAX) {
      throw new RangeError(`LZO block length ${length} is outside 0..${LZO_BLOCK_MAX}`);
    }
    return this.#x.lzo1x_compress(length);
  }

  /**
   * Decompresses `input[0..length)` into `output`, allowing at most `capacity` bytes; returns the
   * decompressed length. Throws {@linkcode LzoDataError} for any invalid data.
   */
  decompressInput(length: number, capacity: number): number {
    if (length < 0 || length > this.compressBound || capacity < 0 || capacity > LZO_BLOCK_MAX) {
      throw new LzoDataError("bad-argument");
    }
    const result = this.#x.lzo1x_decompress(length, capacity);
    if (result < 0) throw new LzoDataError(ERROR_KINDS[-result] ?? "bad-argument");
    return result;
  }

  /** Adler-32 of `input[0..length)`, continuing from `seed` (1 starts a new checksum). */
  adler32Input(length: number, seed = 1): number {
    return this.#x.adler32(seed, this.#x.in_ptr(), length) >>> 0;
  }

  /** Adler-32 of `output[0..length)`, continuing from `seed`. */
  adler32Output(length: number, seed = 1): number {
    return this.#x.adler32(seed, this.#x.out_ptr(), length) >>> 0;
  }

  /** CRC-32 of `input[0..length)`, continuing from `seed` (0 starts a new checksum). */
  crc32Input(length: number, seed = 0): number {
    return this.#x.crc32(seed, this.#x.in_ptr(), length) >>> 0;
  }

  /** CRC-32 of `output[0..length)`, continuing from `seed`. */
  crc32Output(length: number, seed = 0): number {
    return this.#x.crc32(seed, this.#x.out_ptr(), length) >>> 0;
  }

  /** Compresses one block (at most 256 KiB) into a new array. */
  compress(block: Uint8Array): Uint8Array {
    this.input.set(block);
    return this.output.slice(0, this.compressInput(block.length));
  }

  /** Decompresses one block that must decode to exactly `expectedLength` bytes. */
  decompress(data: Uint8Array, expectedLength: number): Uint8Array {
    if (data.length > this.compressBound) throw new LzoDataError("bad-argument");
    this.input.set(data);
    const n = this.decompressInput(data.length, expectedLength);
    if (n !== expectedLength) throw new LzoDataError("output-underrun");
    return this.output.slice(0, n);
  }

  /** Adler-32 of any byte array, in chunks through the module. */
  adler32(data: Uint8Array, seed = 1): number {
    return this.#throughInput(data, seed, (length, sum) => this.adler32Input(length, sum));
  }

  /** CRC-32 of any byte array, in chunks through the module. */
  crc32(data: Uint8Array, seed = 0): number {
    return this.#throughInput(data, seed, (length, crc) => this.crc32Input(length, crc));
  }

  /** Folds `step` over `data`, copied into `input` one chunk at a time. */
  #throughInput(data: Uint8Array, seed: number, step: (n: number, sum: number) => number): number {
    let sum = seed;
    for (let at = 0; at < data.length; at += this.compressBound) {
      const chunk = data.subarray(at, at + this.compressBound);
      this.input.set(chunk);
      sum = step(chunk.length, sum);
    }
    return sum;
  }
}
