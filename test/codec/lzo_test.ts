import assert from "node:assert/strict";
import { LZO_BLOCK_MAX, LzoCodec, LzoDataError } from "../../src/codec/lzo.ts";
import { adler32Small, crc32Small } from "../../src/codec/lzop.ts";
import { prng, randomBytes, textBytes, walLikeBytes } from "./_data.ts";

const codec = new LzoCodec();

function roundTrip(block: Uint8Array): number {
  const compressed = codec.compress(block);
  assert.ok(compressed.length <= codec.compressBound, "compressed size within the bound");
  const back = codec.decompress(compressed, block.length);
  assert.deepEqual(back, block);
  return compressed.length;
}

Deno.test("lzo: round trips of edge sizes and data kinds", () => {
  const sizes = [0, 1, 2, 3, 4, 5, 15, 16, 17, 18, 19, 20, 21, 31, 32, 33, 238, 239, 1000, 65535];
  sizes.push(LZO_BLOCK_MAX - 1, LZO_BLOCK_MAX);
  for (const size of sizes) {
    roundTrip(new Uint8Array(size));
    roundTrip(randomBytes(size, size));
    roundTrip(textBytes(size, size));
    roundTrip(walLikeBytes(size, size));
  }
});

Deno.test("lzo: compresses repetitive data and leaves random data near its size", () => {
  assert.ok(roundTrip(new Uint8Array(LZO_BLOCK_MAX)) < 1200);
  assert.ok(roundTrip(textBytes(LZO_BLOCK_MAX)) < LZO_BLOCK_MAX / 2);
  assert.ok(roundTrip(walLikeBytes(LZO_BLOCK_MAX)) < LZO_BLOCK_MAX / 2);
  const random = roundTrip(randomBytes(LZO_BLOCK_MAX));
  assert.ok(random > LZO_BLOCK_MAX && random <= codec.compressBound);
});

Deno.test("lzo: every match distance class and long length encodings round trip", () => {
  const next = prng(9);
  // Repeats at distances spanning M2 (<= 2048), M3 (<= 16384) and M4 (<= 49151), with lengths
  // that need the zero-run length extension.
  for (const distance of [1, 2, 7, 8, 9, 2048, 2049, 16384, 16385, 40000, 49151, 49152, 60000]) {
    for (const length of [3, 4, 8, 9, 33, 34, 300, 5000]) {
      const block = randomBytes(distance + length + 64, distance * 31 + length);
      block.copyWithin(distance, 0, length);
      for (let i = 0; i < 16; i++) block[block.length - 1 - i] = next();
      roundTrip(block);
    }
  }
});

Deno.test("lzo: decodes hand-assembled streams using every instruction", () => {
  // End-of-stream marker alone: empty output.
  assert.deepEqual(codec.decompress(new Uint8Array([0x11, 0, 0]), 0), new Uint8Array(0));
  // First-literal form (17 + 3 literals), then M2 (len 3, dist 3), then EOF.
  const m2 = new Uint8Array([20, 0x61, 0x62, 0x63, (2 << 5) | (2 << 2), 0, 0x11, 0, 0]);
  assert.equal(new TextDecoder().decode(codec.decompress(m2, 6)), "abcabc");
  // A literal run after a match; M3 with an extended length; M1 (2 bytes) after trailing literals.
  const stream = new Uint8Array([
    21, // 4 literals
    0x77,
    0x78,
    0x79,
    0x7a,
    32 | 0, // M3, length extension follows
    2, // length = 33 + 2 = 35
    (3 << 2) | 1, // distance 4, one trailing literal
    0,
    0x21, // the trailing literal "!"
    (1 << 2) | 0, // M1: distance 1 + 1 + (0 << 2) = 2, length 2
    0,
    0x11,
    0,
    0,
  ]);
  const expected = "wxyz" + "wxyz".repeat(9).slice(0, 35) + "!" + "y!";
  assert.equal(new TextDecoder().decode(codec.decompress(stream, expected.length)), expected);
});

Deno.test("lzo: rejects invalid streams with the right error kind", () => {
  const kind = (bytes: number[], capacity: number) => {
    try {
      codec.decompress(new Uint8Array(bytes), capacity);
      return "ok";
    } catch (error) {
      assert.ok(error instanceof LzoDataError, `LzoDataError, got ${error}`);
      return error.kind;
    }
  };
  assert.equal(kind([], 0), "input-overrun");
  assert.equal(kind([0x11, 0], 0), "input-overrun");
  assert.equal(kind([20, 0x61, 0x62], 3), "input-overrun");
  assert.equal(kind([0x11, 0, 0, 0], 0), "input-not-consumed");
  assert.equal(kind([20, 0x61, 0x62, 0x63, 0x11, 0, 0], 2), "output-overrun");
  assert.equal(kind([20, 0x61, 0x62, 0x63, 0x11, 0, 0], 5), "output-underrun");
  // M2 reaching 8 bytes back after only 3 bytes of output.
  assert.equal(
    kind([20, 0x61, 0x62, 0x63, (2 << 5) | (7 << 2), 0, 0x11, 0, 0], 6),
    "lookbehind-overrun",
  );
  // A literal-run length extension that never ends.
  assert.equal(kind([0, 0, 0, 0, 0, 0], 100), "input-overrun");
});

Deno.test("lzo: random and mutated input never crashes, hangs or writes into the input", () => {
  const next = prng(42);
  const valid = [
    codec.compress(textBytes(20000, 5)),
    codec.compress(walLikeBytes(30000, 6)),
    codec.compress(randomBytes(3000, 7)),
  ];
  let rejected = 0;
  for (let round = 0; round < 6000; round++) {
    let data: Uint8Array;
    if (round % 3 === 0) {
      data = randomBytes(1 + (next() % 2000), round);
    } else {
      data = valid[round % valid.length].slice();
      const edits = 1 + (next() % 4);
      for (let e = 0; e < edits; e++) data[next() % data.length] = next();
      if (round % 5 === 0) data = data.subarray(0, next() % data.length);
    }
    codec.input.set(data);
    const guard = codec.input.slice(data.length, data.length + 4096);
    const capacity = next() % (LZO_BLOCK_MAX + 1);
    try {
      const n = codec.decompressInput(data.length, capacity);
      assert.ok(n >= 0 && n <= capacity);
    } catch (error) {
      assert.ok(error instanceof LzoDataError, `only LzoDataError may escape, got ${error}`);
      rejected++;
    }
    assert.deepEqual(codec.input.subarray(0, data.length), data, "decoder wrote into its input");
    assert.deepEqual(codec.input.slice(data.length, data.length + 4096), guard);
  }
  assert.ok(rejected > 3000, `most corrupt inputs are rejected (${rejected})`);
});

Deno.test("lzo: codec buffers reject blocks over 256 KiB", () => {
  assert.throws(() => codec.compressInput(LZO_BLOCK_MAX + 1), RangeError);
  assert.throws(() => codec.decompressInput(10, LZO_BLOCK_MAX + 1), LzoDataError);
});

Deno.test("checksums: wasm Adler-32 and CRC-32 agree with the plain versions and known values", () => {
  const abc = new TextEncoder().encode("abc");
  assert.equal(codec.adler32(abc), 0x024d0127);
  assert.equal(codec.crc32(abc), 0x352441c2);
  assert.equal(codec.adler32(new Uint8Array(0)), 1);
  assert.equal(codec.crc32(new Uint8Array(0)), 0);
  for (const size of [1, 15, 16, 17, 4095, 4096, 4097, 5552, 100_000, 600_000]) {
    for (const data of [randomBytes(size, size), new Uint8Array(size).fill(0xff)]) {
      assert.equal(codec.adler32(data), adler32Small(data), `adler32 of ${size} bytes`);
      assert.equal(codec.crc32(data), crc32Small(data), `crc32 of ${size} bytes`);
    }
  }
  // Seeds continue a running checksum.
  const data = textBytes(10000);
  assert.equal(
    codec.adler32(data.subarray(5000), codec.adler32(data.subarray(0, 5000))),
    codec.adler32(data),
  );
  assert.equal(
    codec.crc32(data.subarray(5000), codec.crc32(data.subarray(0, 5000))),
    codec.crc32(data),
  );
});
