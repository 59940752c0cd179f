/**
 * One lzop data block: `uncompressed length`, `compressed length`, `Adler-32 of the uncompressed
 * bytes` (each 32-bit big-endian), then the LZO1X data, or the bytes stored as they are when
 * compression does not shrink them (compressed length = uncompressed length), as `lzop -1` writes
 * with its default flags (spec §6.2).
 *
 * @module
 */

import { LZO_BLOCK_MAX, type LzoCodec } from "./lzo.ts";

/** Bytes of a block header. */
export const LZOP_BLOCK_HEADER = 12;

/**
 * Largest encoded block (header included): a block that LZO1X does not shrink is stored, so the
 * data never exceeds {@linkcode LZO_BLOCK_MAX}.
 */
export const LZOP_BLOCK_BOUND = LZOP_BLOCK_HEADER + LZO_BLOCK_MAX;

/** What compressing `codec.input[0..length)` gave: the data is in `codec.output` unless stored. */
export interface CompressedInput {
  /** The Adler-32 of the uncompressed bytes. */
  adler: number;
  /** Whether the block is stored uncompressed (LZO1X did not shrink it). */
  stored: boolean;
  /** Bytes of block data after the header. */
  size: number;
}

/** Compresses `codec.input[0..length)` as one lzop block. */
export function compressCodecInput(codec: LzoCodec, length: number): CompressedInput {
  const adler = codec.adler32Input(length);
  const compressed = codec.compressInput(length);
  const stored = compressed >= length;
  return { adler, stored, size: stored ? length : compressed };
}

/**
 * Writes the block that {@linkcode compressCodecInput} made of `codec.input[0..length)` into
 * `into` (at least 12 + `block.size` bytes): the header, then the LZO1X data from `codec.output`
 * or, stored, the input itself. Returns the bytes written.
 */
export function writeLzopBlock(
  codec: LzoCodec,
  length: number,
  block: CompressedInput,
  into: Uint8Array,
): number {
  const view = new DataView(into.buffer, into.byteOffset, LZOP_BLOCK_HEADER);
  view.setUint32(0, length);
  view.setUint32(4, block.size);
  view.setUint32(8, block.adler);
  into.set(
    block.stored ? codec.input.subarray(0, length) : codec.output.subarray(0, block.size),
    LZOP_BLOCK_HEADER,
  );
  return LZOP_BLOCK_HEADER + block.size;
}

/**
 * Encodes `data` (1 to {@linkcode LZO_BLOCK_MAX} bytes) as one block into `into` (at least
 * {@linkcode LZOP_BLOCK_BOUND} bytes, or exactly enough); returns the bytes written.
 */
export function encodeLzopBlock(codec: LzoCodec, data: Uint8Array, into: Uint8Array): number {
  if (data.length === 0 || data.length > LZO_BLOCK_MAX) {
    throw new RangeError(`lzop block length ${data.length} is outside 1..${LZO_BLOCK_MAX}`);
  }
  codec.input.set(data);
  const block = compressCodecInput(codec, data.length);
  const total = LZOP_BLOCK_HEADER + block.size;
  if (into.length < total) {
    throw new RangeError(`lzop block of ${total} bytes does not fit in ${into.length}`);
  }
  return writeLzopBlock(codec, data.length, block, into);
}
