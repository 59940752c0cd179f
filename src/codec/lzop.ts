/**
 * The lzop container (the `.lzo` files WAL-E writes and reads), as web streams.
 *
 * {@linkcode LzopCompressStream} writes what `lzop -c` writes when reading stdin: a version 1.04
 * header, 256 KiB blocks with the Adler-32 of their uncompressed bytes, blocks stored raw when
 * compression does not shrink them, and the end marker. Genuine lzop and WAL-E read it.
 *
 * {@linkcode LzopDecompressStream} reads anything lzop writes: methods 1-3, Adler-32 or CRC-32 of
 * the uncompressed and compressed data, stored names, extra fields, concatenated streams. It
 * checks every checksum present and rejects truncation, oversized blocks and trailing bytes.
 *
 * @module
 */

import { concatBytes } from "../io/bytes.ts";
import { LZO_BLOCK_MAX, LzoCodec, LzoDataError } from "./lzo.ts";
import { compressCodecInput, LZOP_BLOCK_HEADER, writeLzopBlock } from "./lzop_block.ts";

/** The 9 bytes every lzop file starts with. */
export const LZOP_MAGIC: Uint8Array = new Uint8Array([
  0x89,
  0x4c,
  0x5a,
  0x4f,
  0x00,
  0x0d,
  0x0a,
  0x1a,
  0x0a,
]);

/** Header flag bits (lzop's F_* constants). */
export const LzopFlag = {
  ADLER32_D: 0x1,
  ADLER32_C: 0x2,
  STDIN: 0x4,
  STDOUT: 0x8,
  NAME_DEFAULT: 0x10,
  DOSISH: 0x20,
  H_EXTRA_FIELD: 0x40,
  H_GMTDIFF: 0x80,
  CRC32_D: 0x100,
  CRC32_C: 0x200,
  MULTIPART: 0x400,
  H_FILTER: 0x800,
  H_CRC32: 0x1000,
  H_PATH: 0x2000,
} as const;

const FLAGS_RESERVED = 0x000fc000;
/** The lzop version our writer claims, and the newest `version_needed_to_extract` we accept. */
const LZOP_VERSION = 0x1040;
const LZO_LIB_VERSION = 0x20a0;
const VERSION_NEEDED = 0x0940;
/** LZO1X-1, lzop's default method, with lzop's default level byte (what WAL-E's `lzop -c` writes). */
const METHOD_LZO1X_1 = 1;
const DEFAULT_LEVEL = 5;
const OS_UNIX = 0x03000000;
/** Largest header extra field we accept; lzop itself never writes one. */
const EXTRA_FIELD_MAX = 65536;

/** Options for {@linkcode LzopCompressStream}. */
export interface LzopWriterOptions {
  /** `st_mode` to record, as lzop does for a file on stdin; 0 (the default) is what a pipe gives. */
  mode?: number;
  /** Modification time to record, in seconds since the epoch; defaults to now. */
  mtimeSeconds?: number;
}

/** A parsed lzop file header. */
export interface LzopHeader {
  version: number;
  libVersion: number;
  versionNeeded: number;
  method: number;
  level: number;
  flags: number;
  mode: number;
  mtimeSeconds: number;
  name: string;
  /** `lzop --filter=N`: each block was delta-coded with stride N (1-16) before compression. */
  filter: number;
}

/** Data that is not a valid lzop stream; the message names what is wrong. */
export class LzopFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LzopFormatError";
  }
}

/** Adler-32 in plain TypeScript, for headers (blocks go through the wasm module). */
export function adler32Small(data: Uint8Array, seed = 1): number {
  let a = seed & 0xffff;
  let b = seed >>> 16;
  for (let i = 0; i < data.length; i++) {
    a = (a + data[i]) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

let crcTable: Uint32Array | undefined;

/** CRC-32 in plain TypeScript, for headers. */
export function crc32Small(data: Uint8Array, seed = 0): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[i] = c >>> 0;
    }
  }
  let c = ~seed >>> 0;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** Builds the header our writer emits: 38 bytes, as `lzop -c < file` writes with no name. */
export function encodeLzopHeader(options: LzopWriterOptions = {}): Uint8Array {
  const mtime = options.mtimeSeconds ?? Math.floor(Date.now() / 1000);
  const header = new Uint8Array(38);
  const view = new DataView(header.buffer);
  header.set(LZOP_MAGIC, 0);
  view.setUint16(9, LZOP_VERSION);
  view.setUint16(11, LZO_LIB_VERSION);
  view.setUint16(13, VERSION_NEEDED);
  header[15] = METHOD_LZO1X_1;
  header[16] = DEFAULT_LEVEL;
  view.setUint32(17, OS_UNIX | LzopFlag.ADLER32_D | LzopFlag.STDIN | LzopFlag.STDOUT);
  view.setUint32(21, (options.mode ?? 0) >>> 0);
  view.setUint32(25, mtime >>> 0);
  view.setUint32(29, Math.floor(mtime / 2 ** 32) >>> 0);
  header[33] = 0;
  view.setUint32(34, adler32Small(header.subarray(9, 34)));
  return header;
}

/**
 * Incremental lzop writer: feed bytes with {@linkcode push}, end with {@linkcode finish}. Each
 * returned array is a fresh copy the caller may keep.
 */
export class LzopEncoder {
  readonly #codec = new LzoCodec();
  #fill = 0;
  #header: Uint8Array | undefined;

  constructor(options: LzopWriterOptions = {}) {
    this.#header = encodeLzopHeader(options);
  }

  /** Adds bytes; returns the output produced so far (the header, then whole blocks). */
  push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (this.#header) {
      out.push(this.#header);
      this.#header = undefined;
    }
    const input = this.#codec.input;
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(LZO_BLOCK_MAX - this.#fill, chunk.length - at);
      input.set(chunk.subarray(at, at + n), this.#fill);
      this.#fill += n;
      at += n;
      if (this.#fill === LZO_BLOCK_MAX) out.push(this.#block(0));
    }
    return out;
  }

  /**
   * The codec's input block (256 KiB, in WebAssembly memory). To encode without copying, fill
   * `blockInput[0..n)` and call {@linkcode pushBlock}; only valid while nothing is buffered by
   * {@linkcode push}.
   */
  get blockInput(): Uint8Array {
    return this.#codec.input.subarray(0, LZO_BLOCK_MAX);
  }

  /**
   * Encodes `blockInput[0..length)` as the next block. Every block but the last must be full
   * (256 KiB), as lzop writes them; returns the header (first call) and the encoded block.
   */
  pushBlock(length: number): Uint8Array[] {
    if (this.#fill !== 0) throw new Error("pushBlock after push: bytes are already buffered");
    if (length < 0 || length > LZO_BLOCK_MAX) throw new RangeError(`bad block length ${length}`);
    const out = this.push(new Uint8Array(0));
    if (length > 0) {
      this.#fill = length;
      out.push(this.#block(0));
    }
    return out;
  }

  /** Ends the stream: the last partial block and the end marker. */
  finish(): Uint8Array[] {
    const out = this.push(new Uint8Array(0));
    out.push(this.#fill > 0 ? this.#block(4) : new Uint8Array(4));
    return out;
  }

  /** Encodes the buffered block, with `tail` zero bytes after it (room for the end marker). */
  #block(tail: number): Uint8Array {
    const codec = this.#codec;
    const n = this.#fill;
    this.#fill = 0;
    const compressed = compressCodecInput(codec, n);
    const block = new Uint8Array(LZOP_BLOCK_HEADER + compressed.size + tail);
    writeLzopBlock(codec, n, compressed, block);
    return block;
  }
}

/** Compresses a byte stream into an lzop stream. */
export class LzopCompressStream extends TransformStream<Uint8Array, Uint8Array> {
  constructor(options: LzopWriterOptions = {}) {
    const encoder = new LzopEncoder(options);
    super({
      transform(chunk, controller) {
        for (const piece of encoder.push(chunk)) controller.enqueue(piece);
      },
      flush(controller) {
        for (const piece of encoder.finish()) controller.enqueue(piece);
      },
    });
  }
}

const enum State {
  /** Expecting a header: at the start, or after an end marker (concatenated streams). */
  Header,
  /** Expecting a block's uncompressed length (0 = end marker). */
  BlockLength,
  /** Expecting the rest of a block header: compressed length and checksums. */
  BlockHeader,
  /** Copying a block's data into the codec. */
  BlockData,
}

/** Largest header without an extra field: version 0x0940+, a filter and a 255-byte name. */
const HEADER_MAX = 9 + 8 + 6 + 4 + 12 + 1 + 255 + 4;

/**
 * Incremental lzop reader: feed bytes with {@linkcode push}, end with {@linkcode finish}. Throws
 * {@linkcode LzopFormatError} as soon as the data is known to be invalid.
 */
export class LzopDecoder {
  readonly #codec = new LzoCodec();
  #state = State.Header;
  /** Bytes of the structure being read (a header or a block header). */
  #stage = new Uint8Array(HEADER_MAX + 8 + EXTRA_FIELD_MAX);
  #staged = 0;
  #header: LzopHeader | undefined;
  #streams = 0;
  #blocks = 0;
  #uncompressedLength = 0;
  #compressedLength = 0;
  #checksums: number[] = [];
  #dataFill = 0;

  /** Headers of the streams read so far (more than one for concatenated streams). */
  readonly headers: LzopHeader[] = [];

  /** Adds bytes; returns the decompressed blocks they complete (fresh copies). */
  push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const view of this.views(chunk)) out.push(view.slice());
    return out;
  }

  /**
   * Adds bytes and yields each decompressed block they complete as a view into the codec's
   * memory, without copying: a view is valid only until the generator resumes (the next block is
   * decoded into the same memory). The caller may await between blocks; `chunk` must stay
   * unchanged until the generator is done.
   */
  *views(chunk: Uint8Array): Generator<Uint8Array, void, undefined> {
    let at = 0;
    while (at < chunk.length) {
      switch (this.#state) {
        case State.Header: {
          at = this.#stageUntil(chunk, at, () => this.#headerLength());
          if (this.#staged < this.#headerLength()) break;
          this.#parseHeader();
          break;
        }
        case State.BlockLength: {
          at = this.#stageUntil(chunk, at, () => 4);
          if (this.#staged < 4) break;
          const length = this.#u32(0);
          this.#staged = 0;
          if (length === 0) {
            this.#state = State.Header;
            break;
          }
          if (length > LZO_BLOCK_MAX) {
            throw new LzopFormatError(
              `lzop block ${this.#blocks} declares ${length} bytes, over lzop's 256 KiB block limit; the data is corrupt or not from lzop`,
            );
          }
          this.#uncompressedLength = length;
          this.#state = State.BlockHeader;
          break;
        }
        case State.BlockHeader: {
          at = this.#stageUntil(chunk, at, () => this.#blockHeaderLength());
          if (this.#staged < this.#blockHeaderLength()) break;
          this.#parseBlockHeader();
          break;
        }
        case State.BlockData: {
          const n = Math.min(this.#compressedLength - this.#dataFill, chunk.length - at);
          this.#codec.input.set(chunk.subarray(at, at + n), this.#dataFill);
          this.#dataFill += n;
          at += n;
          if (this.#dataFill === this.#compressedLength) {
            this.#state = State.BlockLength;
            yield this.#decodeBlock();
          }
          break;
        }
      }
    }
  }

  /** Ends the input; throws if it stopped anywhere but after a complete stream. */
  finish(): void {
    if (this.#state === State.Header && this.#staged === 0) {
      if (this.#streams === 0) {
        throw new LzopFormatError("empty input is not an lzop stream");
      }
      return;
    }
    const where = this.#state === State.Header
      ? (this.#streams === 0 ? "in the file header" : "in bytes after the end marker")
      : `in block ${this.#blocks}`;
    if (this.#state === State.Header && this.#streams > 0 && !this.#stagedLooksLikeMagic()) {
      throw new LzopFormatError(
        `trailing garbage after the lzop end marker (${this.#staged} bytes); the object is corrupt`,
      );
    }
    throw new LzopFormatError(`truncated lzop stream: it ends ${where}; the object is incomplete`);
  }

  /** Copies bytes into the stage until `need()` bytes are there; returns the new chunk offset. */
  #stageUntil(chunk: Uint8Array, at: number, need: () => number): number {
    // The needed length can grow as more of a header arrives (name, extra field).
    for (;;) {
      const want = need();
      if (this.#staged >= want || at >= chunk.length) return at;
      const n = Math.min(want - this.#staged, chunk.length - at);
      this.#stage.set(chunk.subarray(at, at + n), this.#staged);
      this.#staged += n;
      at += n;
      if (this.#state === State.Header) this.#checkMagic();
    }
  }

  #stagedLooksLikeMagic(): boolean {
    const n = Math.min(this.#staged, LZOP_MAGIC.length);
    for (let i = 0; i < n; i++) if (this.#stage[i] !== LZOP_MAGIC[i]) return false;
    return true;
  }

  #checkMagic(): void {
    if (this.#stagedLooksLikeMagic()) return;
    if (this.#streams > 0) {
      throw new LzopFormatError(
        "trailing garbage after the lzop end marker; the object is corrupt",
      );
    }
    throw new LzopFormatError(
      "not an lzop stream (bad magic); the object is corrupt, or encrypted and no key is configured",
    );
  }

  #u16(at: number): number {
    return (this.#stage[at] << 8) | this.#stage[at + 1];
  }

  #u32(at: number): number {
    return ((this.#stage[at] << 24) | (this.#stage[at + 1] << 16) | (this.#stage[at + 2] << 8) |
      this.#stage[at + 3]) >>> 0;
  }

  /**
   * Offsets of a header's variable fields, and how many bytes the header needs in view of what is
   * staged so far: the need grows step by step (version, flags, name length, extra field), so the
   * stage never takes bytes that belong to the first block.
   */
  #headerLayout(): { flagsAt: number; nameLenAt: number; checksumAt: number; need: number } {
    const unknown = { flagsAt: 0, nameLenAt: 0, checksumAt: 0 };
    if (this.#staged < 11) return { ...unknown, need: 11 };
    const modern = this.#u16(9) >= 0x0940;
    let at = 13; // after magic, version, lib version
    if (modern) at += 2; // version needed to extract
    at += 1; // method
    if (modern) at += 1; // level
    const flagsAt = at;
    at += 4;
    if (this.#staged < at) return { ...unknown, need: at };
    const flags = this.#u32(flagsAt);
    if (flags & LzopFlag.H_FILTER) at += 4;
    at += 8; // mode, mtime low
    if (modern) at += 4; // mtime high
    const nameLenAt = at;
    if (this.#staged <= nameLenAt) return { ...unknown, flagsAt, need: nameLenAt + 1 };
    const checksumAt = nameLenAt + 1 + this.#stage[nameLenAt];
    let need = checksumAt + 4;
    if (flags & LzopFlag.H_EXTRA_FIELD) {
      need += 4;
      if (this.#staged >= need) {
        const extra = this.#u32(need - 4);
        if (extra > EXTRA_FIELD_MAX) {
          throw new LzopFormatError(
            `lzop header extra field of ${extra} bytes is implausibly large; the data is corrupt`,
          );
        }
        need += extra + 4;
      }
    }
    return { flagsAt, nameLenAt, checksumAt, need };
  }

  #headerLength(): number {
    return this.#headerLayout().need;
  }

  #headerChecksum(flags: number, bytes: Uint8Array): number {
    return flags & LzopFlag.H_CRC32 ? crc32Small(bytes) : adler32Small(bytes);
  }

  #parseHeader(): void {
    const layout = this.#headerLayout();
    const version = this.#u16(9);
    const modern = version >= 0x0940;
    if (version < 0x0900) {
      throw new LzopFormatError(`lzop header version 0x${hex4(version)} is too old to read`);
    }
    const versionNeeded = modern ? this.#u16(13) : version;
    if (versionNeeded > LZOP_VERSION) {
      throw new LzopFormatError(
        `lzop stream needs lzop version 0x${hex4(versionNeeded)} to extract; wal-d reads up to 0x${
          hex4(LZOP_VERSION)
        }`,
      );
    }
    const methodAt = modern ? 15 : 13;
    const method = this.#stage[methodAt];
    const level = modern ? this.#stage[methodAt + 1] : 0;
    const flags = this.#u32(layout.flagsAt);
    const stored = this.#u32(layout.checksumAt);
    const computed = this.#headerChecksum(flags, this.#stage.subarray(9, layout.checksumAt));
    if (stored !== computed) {
      throw new LzopFormatError(
        "lzop header checksum mismatch; the object is corrupt",
      );
    }
    if (method < 1 || method > 3) {
      throw new LzopFormatError(
        `lzop method ${method} is not LZO1X (methods 1-3); wal-d cannot read this file`,
      );
    }
    if (flags & FLAGS_RESERVED) {
      throw new LzopFormatError(
        `lzop header has unknown flags 0x${(flags >>> 0).toString(16)}; the data is corrupt`,
      );
    }
    const filter = flags & LzopFlag.H_FILTER ? this.#u32(layout.flagsAt + 4) : 0;
    if (flags & LzopFlag.H_FILTER && (filter < 1 || filter > 16)) {
      throw new LzopFormatError(
        `lzop filter ${filter} is unknown (lzop writes filters 1-16); the data is corrupt`,
      );
    }
    if (flags & LzopFlag.MULTIPART) {
      throw new LzopFormatError("multipart lzop streams are not supported");
    }
    if (flags & LzopFlag.H_EXTRA_FIELD) {
      const fieldAt = layout.checksumAt + 4;
      const length = this.#u32(fieldAt);
      const data = this.#stage.subarray(fieldAt, fieldAt + 4 + length);
      if (this.#u32(fieldAt + 4 + length) !== this.#headerChecksum(flags, data)) {
        throw new LzopFormatError(
          "lzop header extra-field checksum mismatch; the object is corrupt",
        );
      }
    }
    const modeAt = layout.flagsAt + (flags & LzopFlag.H_FILTER ? 8 : 4);
    const mtimeLow = this.#u32(modeAt + 4);
    const mtimeHigh = modern ? this.#u32(modeAt + 8) : 0;
    const nameLength = this.#stage[layout.nameLenAt];
    const name = new TextDecoder("latin1").decode(
      this.#stage.subarray(layout.nameLenAt + 1, layout.nameLenAt + 1 + nameLength),
    );
    this.#header = {
      version,
      libVersion: this.#u16(11),
      versionNeeded,
      method,
      level,
      flags,
      mode: this.#u32(modeAt),
      mtimeSeconds: mtimeHigh * 2 ** 32 + mtimeLow,
      name,
      filter,
    };
    this.headers.push(this.#header);
    this.#streams++;
    this.#staged = 0;
    this.#state = State.BlockLength;
  }

  /** Bytes after the uncompressed length: compressed length, then the checksums present. */
  #blockHeaderLength(): number {
    const flags = this.#header!.flags;
    let n = 4;
    if (flags & LzopFlag.ADLER32_D) n += 4;
    if (flags & LzopFlag.CRC32_D) n += 4;
    if (this.#staged >= 4 && this.#u32(0) < this.#uncompressedLength) {
      if (flags & LzopFlag.ADLER32_C) n += 4;
      if (flags & LzopFlag.CRC32_C) n += 4;
    }
    return n;
  }

  #parseBlockHeader(): void {
    const compressed = this.#u32(0);
    const uncompressed = this.#uncompressedLength;
    if (compressed === 0 || compressed > uncompressed) {
      throw new LzopFormatError(
        `lzop block ${this.#blocks} declares ${compressed} compressed bytes for ${uncompressed} bytes of data; the object is corrupt`,
      );
    }
    this.#compressedLength = compressed;
    this.#checksums = [];
    for (let at = 4; at < this.#staged; at += 4) this.#checksums.push(this.#u32(at));
    this.#staged = 0;
    this.#dataFill = 0;
    this.#state = State.BlockData;
  }

  #decodeBlock(): Uint8Array {
    const codec = this.#codec;
    const { flags, filter } = this.#header!;
    const block = this.#blocks++;
    const uncompressed = this.#uncompressedLength;
    const compressed = this.#compressedLength;
    const sums = this.#checksums;
    let next = 0;
    const expectD = (kind: "Adler-32" | "CRC-32", actual: () => number) =>
      this.#verify(block, `${kind} of the uncompressed data`, sums[next++], actual());
    let data: Uint8Array;
    if (compressed === uncompressed) {
      // A stored block: the bytes are the data, and only the uncompressed checksums apply.
      if (filter) undoDeltaFilter(codec.input.subarray(0, uncompressed), filter);
      if (flags & LzopFlag.ADLER32_D) expectD("Adler-32", () => codec.adler32Input(uncompressed));
      if (flags & LzopFlag.CRC32_D) expectD("CRC-32", () => codec.crc32Input(uncompressed));
      data = codec.input.subarray(0, uncompressed);
    } else {
      const sumD = [
        flags & LzopFlag.ADLER32_D ? sums[next++] : undefined,
        flags & LzopFlag.CRC32_D ? sums[next++] : undefined,
      ];
      if (flags & LzopFlag.ADLER32_C) {
        this.#verify(
          block,
          "Adler-32 of the compressed data",
          sums[next++],
          codec.adler32Input(compressed),
        );
      }
      if (flags & LzopFlag.CRC32_C) {
        this.#verify(
          block,
          "CRC-32 of the compressed data",
          sums[next++],
          codec.crc32Input(compressed),
        );
      }
      let produced: number;
      try {
        produced = codec.decompressInput(compressed, uncompressed);
      } catch (error) {
        if (error instanceof LzoDataError) {
          throw new LzopFormatError(`lzop block ${block}: ${error.message}; the object is corrupt`);
        }
        throw error;
      }
      if (produced !== uncompressed) {
        throw new LzopFormatError(
          `lzop block ${block} decodes to ${produced} bytes but declares ${uncompressed}; the object is corrupt`,
        );
      }
      if (filter) undoDeltaFilter(codec.output.subarray(0, produced), filter);
      if (sumD[0] !== undefined) {
        this.#verify(
          block,
          "Adler-32 of the uncompressed data",
          sumD[0],
          codec.adler32Output(produced),
        );
      }
      if (sumD[1] !== undefined) {
        this.#verify(
          block,
          "CRC-32 of the uncompressed data",
          sumD[1],
          codec.crc32Output(produced),
        );
      }
      data = codec.output.subarray(0, produced);
    }
    return data;
  }

  #verify(block: number, what: string, stored: number, computed: number): void {
    if (stored !== computed) {
      throw new LzopFormatError(
        `lzop block ${block}: ${what} does not match (stored ${hex8(stored)}, computed ${
          hex8(computed)
        }); the object is corrupt`,
      );
    }
  }
}

/** Decompresses an lzop stream into the original bytes. */
export class LzopDecompressStream extends TransformStream<Uint8Array, Uint8Array> {
  constructor() {
    const decoder = new LzopDecoder();
    super({
      transform(chunk, controller) {
        for (const piece of decoder.push(chunk)) controller.enqueue(piece);
      },
      flush() {
        decoder.finish();
      },
    });
  }
}

/** Compresses a whole byte array (for small objects and tests). */
export function compressLzop(data: Uint8Array, options: LzopWriterOptions = {}): Uint8Array {
  const encoder = new LzopEncoder(options);
  return concatBytes([...encoder.push(data), ...encoder.finish()]);
}

/** Decompresses a whole lzop byte array (for small objects and tests). */
export function decompressLzop(data: Uint8Array): Uint8Array {
  const decoder = new LzopDecoder();
  const parts = decoder.push(data);
  decoder.finish();
  return concatBytes(parts);
}

/**
 * Reverses `lzop --filter=N`: lzop replaces each byte of a block, from the N-th on, by its
 * difference from the byte N positions earlier (checksums cover the original bytes).
 */
function undoDeltaFilter(block: Uint8Array, stride: number): void {
  for (let i = stride; i < block.length; i++) block[i] += block[i - stride];
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, "0");
}

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, "0");
}
