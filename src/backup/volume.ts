/**
 * A base backup volume as an lzop byte stream: tar bytes pulled from a {@linkcode VolumeSource}
 * in 256 KiB blocks, compressed in parallel by an {@linkcode LzopBlockPool}, written in order into
 * the consumer's own buffers (a `type: "bytes"` stream, read by the stores with BYOB readers), and
 * hashed (SHA-256) and counted on the way, for the sentinel's volume list.
 *
 * Memory is fixed: `blocksInFlight` pairs of 256 KiB buffers, reused for the whole volume, and
 * nothing allocated per block.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { LZO_BLOCK_MAX } from "../codec/lzo.ts";
import { encodeLzopHeader, type LzopWriterOptions } from "../codec/lzop.ts";
import { type BlockSlot, type LzopBlockPool, newBlockSlot } from "../codec/lzop_block_pool.ts";

/** Fills buffers with the volume's tar bytes. */
export interface VolumeSource {
  /**
   * Fills `into` and returns how many bytes it wrote: `into.length` unless the volume ends, then
   * fewer, and 0 once it has ended.
   */
  read(into: Uint8Array): Promise<number>;
  /** Releases what the source holds (open files), when the stream ends or is cancelled. */
  close?(): void;
}

/** What was stored: the lzop stream's size and SHA-256. */
export interface VolumeDigest {
  /** Bytes of the lzop stream. */
  size: number;
  /** Lower-case hex SHA-256 of the lzop stream. */
  sha256: string;
}

/** Options of {@linkcode lzopVolumeStream}. */
export interface VolumeStreamOptions extends LzopWriterOptions {
  /** Blocks compressed ahead of the consumer (default 4; 2 × 256 KiB of buffers each). */
  blocksInFlight?: number;
}

/** A volume's byte stream, and its digest once the stream has been read to its end. */
export interface VolumeStream {
  readonly stream: ReadableStream<Uint8Array>;
  /** Resolves when the consumer has read the last byte; rejects if the stream fails. */
  readonly digest: Promise<VolumeDigest>;
}

const END_MARKER = new Uint8Array(4);

/**
 * The lzop compression of `source`, as `lzop -1 -c` writes it from a pipe (spec §6.1), with its
 * blocks compressed on `pool`.
 */
export function lzopVolumeStream(
  source: VolumeSource,
  pool: LzopBlockPool,
  options: VolumeStreamOptions = {},
): VolumeStream {
  const inFlight = Math.max(1, options.blocksInFlight ?? 4);
  const free: BlockSlot[] = [];
  for (let i = 0; i < inFlight; i++) free.push(newBlockSlot());
  const queue: Promise<{ slot: BlockSlot; size: number }>[] = [];
  const hash = createHash("sha256");
  let size = 0;
  let sourceDone = false;
  let closed = false;
  let filling: Promise<void> | null = null;
  let fillFailure: { error: unknown } | null = null;

  // Pending output: the header first, then each block's bytes, then the end marker.
  let current: Uint8Array | null = encodeLzopHeader(options);
  let currentSlot: BlockSlot | null = null;
  let currentAt = 0;
  let ended = false;

  let resolveDigest!: (digest: VolumeDigest) => void;
  let rejectDigest!: (error: unknown) => void;
  const digest = new Promise<VolumeDigest>((resolve, reject) => {
    resolveDigest = resolve;
    rejectDigest = reject;
  });
  digest.catch(() => {}); // the stream's reader sees the error; the digest may go unobserved

  const release = () => {
    if (closed) return;
    closed = true;
    source.close?.();
  };

  /** Reads the source into free slots and queues their compression, while slots are free. */
  const fill = async (): Promise<void> => {
    while (!sourceDone && free.length > 0) {
      const slot = free.pop()!;
      const n = await source.read(slot.input.subarray(0, LZO_BLOCK_MAX));
      if (n > 0) {
        const block = pool.compress(slot, n);
        block.catch(() => {}); // observed in order by nextPiece
        queue.push(block);
      } else free.push(slot);
      if (n < LZO_BLOCK_MAX) sourceDone = true;
    }
  };
  const ensureFilling = (): Promise<void> => {
    filling ??= fill().catch((error) => {
      fillFailure ??= { error };
    }).finally(() => (filling = null));
    return filling;
  };

  const throwIfFillFailed = () => {
    if (fillFailure !== null) throw fillFailure.error;
  };

  /** The next bytes to hand out, or null at the end. */
  const nextPiece = async (): Promise<Uint8Array | null> => {
    for (;;) {
      throwIfFillFailed();
      if (current !== null && currentAt < current.length) return current.subarray(currentAt);
      if (currentSlot !== null) {
        free.push(currentSlot);
        currentSlot = null;
      }
      current = null;
      currentAt = 0;
      if (queue.length === 0) {
        await ensureFilling();
        throwIfFillFailed();
        if (queue.length === 0) {
          if (ended) return null;
          ended = true;
          current = END_MARKER;
          continue;
        }
      }
      void ensureFilling(); // reads ahead while the workers compress; failures are kept
      const { slot, size: blockSize } = await queue.shift()!;
      currentSlot = slot;
      current = slot.output.subarray(0, blockSize);
    }
  };

  const stream = new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: 256 * 1024,
    async pull(controller) {
      try {
        const piece = await nextPiece();
        const request = controller.byobRequest!;
        if (piece === null) {
          release();
          resolveDigest({ size, sha256: hash.digest("hex") });
          controller.close();
          request.respond(0);
          return;
        }
        const view = request.view as Uint8Array;
        const n = Math.min(view.length, piece.length);
        view.set(piece.subarray(0, n));
        hash.update(view.subarray(0, n));
        size += n;
        currentAt += n;
        request.respond(n);
      } catch (error) {
        release();
        rejectDigest(error);
        throw error;
      }
    },
    cancel(reason) {
      release();
      rejectDigest(reason ?? new Error("the volume stream was cancelled"));
    },
  });
  return { stream, digest };
}
