import assert from "node:assert/strict";
import { LZO_BLOCK_MAX } from "../../src/codec/lzo.ts";
import { compressLzop, decompressLzop } from "../../src/codec/lzop.ts";
import { LzopBlockPool, newBlockSlot } from "../../src/codec/lzop_block_pool.ts";
import { lzopVolumeStream, type VolumeSource } from "../../src/backup/volume.ts";
import { concatBytes, randomBytes, sha256Hex, textBytes } from "../codec/_data.ts";

/** A source over bytes in memory, filling at most `maxFill` per read when given. */
class BytesSource implements VolumeSource {
  at = 0;
  closed = 0;
  reads = 0;
  constructor(readonly bytes: Uint8Array, readonly failAt?: number) {}
  read(into: Uint8Array): Promise<number> {
    this.reads++;
    if (this.failAt !== undefined && this.at >= this.failAt) {
      return Promise.reject(new Error("disk on fire"));
    }
    const n = Math.min(into.length, this.bytes.length - this.at);
    into.set(this.bytes.subarray(this.at, this.at + n));
    this.at += n;
    return Promise.resolve(n);
  }
  close(): void {
    this.closed++;
  }
}

async function readAllByob(stream: ReadableStream<Uint8Array>, bufferSize: number) {
  const reader = stream.getReader({ mode: "byob" });
  const parts: Uint8Array[] = [];
  let buffer = new Uint8Array(bufferSize);
  for (;;) {
    const { value, done } = await reader.read(buffer);
    if (value === undefined || done) break;
    parts.push(value.slice());
    buffer = new Uint8Array(value.buffer);
  }
  return concatBytes(parts);
}

const MTIME = 1_700_000_000;

Deno.test("volume: the lzop stream equals the single-threaded encoder's, byte for byte", async () => {
  const pool = new LzopBlockPool(2);
  try {
    const inputs: [string, Uint8Array][] = [
      ["empty", new Uint8Array(0)],
      ["one byte", new Uint8Array([7])],
      ["one block", textBytes(LZO_BLOCK_MAX)],
      ["one block + 1", textBytes(LZO_BLOCK_MAX + 1)],
      ["mixed 5 MiB", concatBytes([textBytes(3 << 20), randomBytes((2 << 20) + 333)])],
    ];
    for (const [what, bytes] of inputs) {
      for (const bufferSize of [100_000, 1 << 20]) {
        const source = new BytesSource(bytes);
        const volume = lzopVolumeStream(source, pool, { mtimeSeconds: MTIME, mode: 0 });
        const out = await readAllByob(volume.stream, bufferSize);
        const expected = compressLzop(bytes, { mtimeSeconds: MTIME, mode: 0 });
        assert.deepEqual(out, expected, `${what}, reads of ${bufferSize}`);
        assert.deepEqual(decompressLzop(out), bytes, what);
        const digest = await volume.digest;
        assert.equal(digest.size, out.length, what);
        assert.equal(digest.sha256, await sha256Hex(out), what);
        assert.equal(source.closed, 1, `${what}: the source is closed once`);
      }
    }
  } finally {
    pool.close();
  }
});

Deno.test("volume: a default reader gets the same bytes (chunks allocated by the stream)", async () => {
  const pool = new LzopBlockPool(1);
  try {
    const bytes = textBytes(3 * LZO_BLOCK_MAX + 5);
    const volume = lzopVolumeStream(new BytesSource(bytes), pool, { mtimeSeconds: MTIME });
    const out = new Uint8Array(await new Response(volume.stream).arrayBuffer());
    assert.deepEqual(out, compressLzop(bytes, { mtimeSeconds: MTIME }));
  } finally {
    pool.close();
  }
});

Deno.test("volume: memory is the slots: blocks in flight never exceed the limit", async () => {
  const pool = new LzopBlockPool(2);
  try {
    const bytes = randomBytes(40 * LZO_BLOCK_MAX);
    const source = new BytesSource(bytes);
    const volume = lzopVolumeStream(source, pool, { blocksInFlight: 3 });
    const reader = volume.stream.getReader({ mode: "byob" });
    // Read one small piece, then stop reading: the source must not run ahead of the slots.
    await reader.read(new Uint8Array(10));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(source.reads <= 3, `${source.reads} reads ahead with 3 slots`);
    await reader.cancel();
    assert.equal(source.closed, 1, "cancel closes the source");
    await assert.rejects(volume.digest);
  } finally {
    pool.close();
  }
});

Deno.test("volume: a failing source fails the stream and the digest, and is closed", async () => {
  const pool = new LzopBlockPool(2);
  try {
    const source = new BytesSource(textBytes(10 * LZO_BLOCK_MAX), 4 * LZO_BLOCK_MAX);
    const volume = lzopVolumeStream(source, pool);
    await assert.rejects(readAllByob(volume.stream, 1 << 20), /disk on fire/);
    await assert.rejects(volume.digest, /disk on fire/);
    assert.equal(source.closed, 1);
  } finally {
    pool.close();
  }
});

Deno.test("block pool: many blocks at once on few workers; slots come back usable", async () => {
  const pool = new LzopBlockPool(2);
  try {
    const blocks = Array.from({ length: 12 }, (_, i) => textBytes(LZO_BLOCK_MAX - i * 1000, i));
    const results = await Promise.all(blocks.map((block) => {
      const slot = newBlockSlot();
      slot.input.set(block);
      return pool.compress(slot, block.length);
    }));
    for (const [i, { slot, size }] of results.entries()) {
      assert.equal(slot.input.length, LZO_BLOCK_MAX, "the input buffer is back");
      // A one-block lzop stream made of the header, this block and the end marker decodes back.
      const header = compressLzop(new Uint8Array(0), { mtimeSeconds: MTIME }).subarray(0, -4);
      const stream = concatBytes([header, slot.output.subarray(0, size), new Uint8Array(4)]);
      assert.deepEqual(decompressLzop(stream), blocks[i]);
    }
    await assert.rejects(pool.compress(newBlockSlot(), 0), /bad block length/);
    pool.close();
    await assert.rejects(pool.compress(newBlockSlot(), 1), /closed/);
  } finally {
    pool.close();
  }
});
