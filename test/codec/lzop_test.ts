import assert from "node:assert/strict";
import {
  adler32Small,
  compressLzop,
  crc32Small,
  decompressLzop,
  encodeLzopHeader,
  LzopCompressStream,
  LzopDecoder,
  LzopDecompressStream,
  LzopFlag,
  LzopFormatError,
} from "../../src/codec/lzop.ts";
import { LZO_BLOCK_MAX } from "../../src/codec/lzo.ts";
import {
  concatBytes,
  prng,
  randomBytes,
  randomChunks,
  sha256Hex,
  textBytes,
  throughStream,
  walLikeBytes,
} from "./_data.ts";

const fixtures = new URL("../fixtures/lzop/", import.meta.url);

interface Vector {
  file: string;
  input: string;
  sha256: string;
  header: {
    method: string;
    level: number;
    flags: string;
    mode: string;
    mtime: number;
    name: string;
    blocks: number;
    uncompressed_total: number;
  };
}

interface Index {
  inputs: Record<string, { size: number; sha256: string }>;
  vectors: Vector[];
}

const index: Index = JSON.parse(await Deno.readTextFile(new URL("index.json", fixtures)));

function readVector(file: string): Promise<Uint8Array> {
  return Deno.readFile(new URL(file, fixtures));
}

function formatError(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof LzopFormatError, `expected LzopFormatError, got ${error}`);
    return error.message;
  }
  assert.fail("expected the data to be rejected");
}

Deno.test("lzop: every vector made by the real lzop decodes to its exact input", async () => {
  assert.equal(index.vectors.length, 15);
  for (const vector of index.vectors) {
    const data = await readVector(vector.file);
    assert.equal(await sha256Hex(data), vector.sha256, `${vector.file} is the indexed file`);
    const input = index.inputs[vector.input];
    const decoder = new LzopDecoder();
    const out = concatBytes(decoder.push(data));
    decoder.finish();
    assert.equal(out.length, input.size, vector.file);
    assert.equal(await sha256Hex(out), input.sha256, vector.file);
    // The parsed header agrees with the index made by the reference tooling.
    const [header] = decoder.headers;
    assert.equal(`${header.method}`, vector.header.method.split(" ")[0], vector.file);
    assert.equal(header.level, vector.header.level, vector.file);
    assert.equal(header.flags, Number(vector.header.flags), vector.file);
    assert.equal(header.mode, parseInt(vector.header.mode, 8), vector.file);
    assert.equal(header.name, vector.header.name, vector.file);
    if (!vector.file.includes(".pipe.")) assert.equal(header.mtimeSeconds, vector.header.mtime);
  }
});

Deno.test("lzop: reads real lzop output with a delta filter, no checksums, and CRC-32 at -9", async () => {
  const unit = textBytes(30000, 11);
  const input = concatBytes(Array.from({ length: 10 }, () => unit));
  for (const name of ["filter3", "no-checksum", "crc32-9"]) {
    const data = await readVector(`extra/text-300000.${name}.lzo`);
    const decoder = new LzopDecoder();
    const out = concatBytes(decoder.push(data));
    decoder.finish();
    assert.deepEqual(out, input, name);
    if (name === "filter3") assert.equal(decoder.headers[0].filter, 3);
  }
  // A filter number lzop never writes is refused.
  const filtered = (await readVector("extra/text-300000.filter3.lzo")).slice();
  const view = new DataView(filtered.buffer);
  view.setUint32(21, 17);
  view.setUint32(38, adler32Small(filtered.subarray(9, 38)));
  assert.match(formatError(() => decompressLzop(filtered)), /lzop filter 17 is unknown/);
});

Deno.test("lzop: the streams decode every vector fed in random chunk sizes", async () => {
  for (const vector of index.vectors) {
    const data = await readVector(vector.file);
    for (const seed of [1, 2]) {
      const out = await throughStream(
        randomChunks(data, seed, 5000),
        new LzopDecompressStream(),
      );
      assert.equal(await sha256Hex(out), index.inputs[vector.input].sha256, vector.file);
    }
  }
});

Deno.test("lzop: round trips sizes 0, 1, block boundaries ±1 and 16 MiB of every data kind", async () => {
  const B = LZO_BLOCK_MAX;
  const sizes = [0, 1, B - 1, B, B + 1, 2 * B - 1, 2 * B, 2 * B + 1];
  const kinds: [string, (n: number) => Uint8Array][] = [
    ["zeros", (n) => new Uint8Array(n)],
    ["text", (n) => textBytes(n)],
    ["random", (n) => randomBytes(n)],
    ["wal-like", (n) => walLikeBytes(n)],
  ];
  for (const [kind, make] of kinds) {
    for (const size of sizes) {
      const data = make(size);
      const compressed = compressLzop(data);
      assert.deepEqual(decompressLzop(compressed), data, `${kind} ${size}`);
    }
    const big = make(16 * 1024 * 1024);
    const compressed = await throughStream(randomChunks(big, 7, 300_000), new LzopCompressStream());
    const back = await throughStream(
      randomChunks(compressed, 8, 70_000),
      new LzopDecompressStream(),
    );
    assert.equal(back.length, big.length, `${kind} 16 MiB`);
    assert.equal(await sha256Hex(back), await sha256Hex(big), `${kind} 16 MiB`);
  }
});

Deno.test("lzop: the writer's header and blocks follow lzop 1.04's layout", () => {
  const data = concatBytes([textBytes(LZO_BLOCK_MAX), randomBytes(1000)]);
  const out = compressLzop(data, { mode: 0o100600, mtimeSeconds: 1_600_000_000 });
  const view = new DataView(out.buffer);
  assert.equal(view.getUint16(9), 0x1040, "version");
  assert.equal(view.getUint16(13), 0x0940, "version needed to extract");
  assert.equal(out[15], 1, "method LZO1X-1");
  assert.equal(view.getUint32(17), 0x0300000d, "flags: ADLER32_D, STDIN, STDOUT, Unix");
  assert.equal(view.getUint32(21), 0o100600, "mode");
  assert.equal(view.getUint32(25), 1_600_000_000, "mtime");
  assert.equal(out[33], 0, "no name");
  assert.equal(view.getUint32(34), adler32Small(out.subarray(9, 34)), "header checksum");
  // Block 1: a full, compressed block. Block 2: 1000 random bytes, stored raw.
  assert.equal(view.getUint32(38), LZO_BLOCK_MAX);
  const firstSize = view.getUint32(42);
  assert.ok(firstSize < LZO_BLOCK_MAX);
  const second = 38 + 12 + firstSize;
  assert.equal(view.getUint32(second), 1000);
  assert.equal(view.getUint32(second + 4), 1000, "incompressible block is stored");
  assert.deepEqual(out.subarray(second + 12, second + 1012), data.subarray(LZO_BLOCK_MAX));
  assert.equal(view.getUint32(second + 1012), 0, "end marker");
  assert.equal(out.length, second + 1016, "nothing after the end marker");
  // Empty input: header and end marker only, 42 bytes like lzop.
  assert.equal(compressLzop(new Uint8Array(0)).length, 42);
  assert.equal(encodeLzopHeader().length, 38);
});

Deno.test("lzop: concatenated streams decode to the concatenation", () => {
  const a = textBytes(300_000, 1);
  const b = randomBytes(5000, 2);
  const joined = concatBytes([compressLzop(a), compressLzop(new Uint8Array(0)), compressLzop(b)]);
  const decoder = new LzopDecoder();
  const out = concatBytes(decoder.push(joined));
  decoder.finish();
  assert.deepEqual(out, concatBytes([a, b]));
  assert.equal(decoder.headers.length, 3);
});

Deno.test("lzop: rejects bad magic, empty input and trailing garbage", () => {
  const good = compressLzop(textBytes(1000));
  assert.match(formatError(() => decompressLzop(new Uint8Array(0))), /empty input/);
  assert.match(formatError(() => decompressLzop(textBytes(100))), /not an lzop stream/);
  assert.match(
    formatError(() => decompressLzop(concatBytes([good, new Uint8Array([1, 2, 3])]))),
    /trailing garbage/,
  );
  assert.match(
    formatError(() => decompressLzop(concatBytes([good, new Uint8Array(1)]))),
    /trailing garbage/,
  );
});

Deno.test("lzop: rejects a bad header checksum and unreadable header fields", () => {
  const good = compressLzop(textBytes(1000), { mtimeSeconds: 5 });
  const bad = good.slice();
  bad[28] ^= 0x01; // mtime changed, checksum not
  assert.match(formatError(() => decompressLzop(bad)), /header checksum mismatch/);
  const withHeader = (edit: (h: Uint8Array, v: DataView) => void) => {
    const copy = good.slice();
    const view = new DataView(copy.buffer);
    edit(copy, view);
    view.setUint32(34, adler32Small(copy.subarray(9, 34)));
    return copy;
  };
  assert.match(formatError(() => decompressLzop(withHeader((h) => (h[15] = 7)))), /method 7/);
  assert.match(
    formatError(() => decompressLzop(withHeader((_, v) => v.setUint16(13, 0x2000)))),
    /needs lzop version 0x2000/,
  );
  assert.match(
    formatError(() =>
      decompressLzop(withHeader((_, v) => v.setUint32(17, v.getUint32(17) | 0x4000)))
    ),
    /unknown flags/,
  );
  assert.match(
    formatError(() =>
      decompressLzop(withHeader((_, v) => v.setUint32(17, v.getUint32(17) | LzopFlag.MULTIPART)))
    ),
    /multipart/,
  );
});

Deno.test("lzop: rejects bad block checksums (Adler-32 and CRC-32, data and compressed)", async () => {
  // Our own output: Adler-32 of the uncompressed data.
  const ours = compressLzop(textBytes(100_000));
  const corrupt = ours.slice();
  corrupt[38 + 8] ^= 0xff; // the stored Adler-32 of block 0
  assert.match(formatError(() => decompressLzop(corrupt)), /Adler-32 of the uncompressed data/);
  // Real lzop --crc32 output: CRC-32 of the uncompressed data in a compressed block.
  const crc = (await readVector("lzo/compressible-1MiB.txt.crc32.lzo")).slice();
  const headerLength = 38;
  crc[headerLength + 8] ^= 0x01;
  assert.match(formatError(() => decompressLzop(crc)), /CRC-32 of the uncompressed data/);
  // Compressed-data checksums: add F_ADLER32_C and F_CRC32_C to a stream of ours.
  const both = withCompressedChecksums(ours);
  assert.deepEqual(decompressLzop(both), textBytes(100_000));
  const badC = both.slice();
  badC[headerLength + 12] ^= 0x10; // Adler-32 of the compressed data
  assert.match(formatError(() => decompressLzop(badC)), /Adler-32 of the compressed data/);
  const badCrcC = both.slice();
  badCrcC[headerLength + 16] ^= 0x10; // CRC-32 of the compressed data
  assert.match(formatError(() => decompressLzop(badCrcC)), /CRC-32 of the compressed data/);
  // A flipped byte of compressed data is caught by the decoder or the data checksum.
  const flipped = ours.slice();
  flipped[38 + 12 + 500] ^= 0x20;
  assert.match(formatError(() => decompressLzop(flipped)), /lzop block 0/);
});

/** Rewrites a single-block stream of ours with both compressed-data checksums added. */
function withCompressedChecksums(stream: Uint8Array): Uint8Array {
  const view = new DataView(stream.buffer, stream.byteOffset);
  const header = stream.slice(0, 38);
  const hview = new DataView(header.buffer);
  hview.setUint32(17, hview.getUint32(17) | LzopFlag.ADLER32_C | LzopFlag.CRC32_C);
  hview.setUint32(34, adler32Small(header.subarray(9, 34)));
  const ulen = view.getUint32(38);
  const clen = view.getUint32(42);
  assert.ok(clen < ulen);
  const data = stream.subarray(50, 50 + clen);
  assert.equal(view.getUint32(50 + clen), 0, "single block");
  const blockHeader = new Uint8Array(20);
  const bview = new DataView(blockHeader.buffer);
  bview.setUint32(0, ulen);
  bview.setUint32(4, clen);
  bview.setUint32(8, view.getUint32(46));
  bview.setUint32(12, adler32Small(data));
  bview.setUint32(16, crc32Small(data));
  return concatBytes([header, blockHeader, data, new Uint8Array(4)]);
}

Deno.test("lzop: rejects oversized and inconsistent block lengths", () => {
  const good = compressLzop(textBytes(1000));
  const oversized = good.slice();
  new DataView(oversized.buffer).setUint32(38, LZO_BLOCK_MAX + 1);
  assert.match(formatError(() => decompressLzop(oversized)), /over lzop's 256 KiB block limit/);
  const larger = good.slice();
  new DataView(larger.buffer).setUint32(42, 1001);
  assert.match(formatError(() => decompressLzop(larger)), /declares 1001 compressed bytes/);
  const zero = good.slice();
  new DataView(zero.buffer).setUint32(42, 0);
  assert.match(formatError(() => decompressLzop(zero)), /declares 0 compressed bytes/);
});

Deno.test("lzop: every truncation of a stream is reported as truncated", () => {
  const data = concatBytes([textBytes(LZO_BLOCK_MAX + 700), randomBytes(300)]);
  const full = compressLzop(data);
  for (let cut = 1; cut < full.length; cut += cut < 100 ? 1 : 97) {
    const message = formatError(() => decompressLzop(full.subarray(0, cut)));
    assert.match(message, /truncated lzop stream/, `cut at ${cut}`);
  }
  // The end marker alone missing is truncation too.
  assert.match(formatError(() => decompressLzop(full.subarray(0, full.length - 4))), /truncated/);
});

Deno.test("lzop: thousands of mutated streams never crash or hang the reader", () => {
  const next = prng(2024);
  const sources = [
    compressLzop(textBytes(70_000, 3)),
    compressLzop(walLikeBytes(300_000, 4)),
    compressLzop(randomBytes(2000, 5)),
  ];
  let accepted = 0;
  for (let round = 0; round < 3000; round++) {
    const data = sources[round % sources.length].slice();
    const edits = 1 + (next() % 3);
    for (let e = 0; e < edits; e++) {
      const at = next() % data.length;
      data[at] = round % 2 ? next() : data[at] ^ (1 << (next() % 8));
    }
    const cut = round % 7 === 0 ? next() % data.length : data.length;
    const decoder = new LzopDecoder();
    try {
      for (const chunk of randomChunks(data.subarray(0, cut), round, 40_000)) decoder.push(chunk);
      decoder.finish();
      accepted++;
    } catch (error) {
      assert.ok(error instanceof LzopFormatError, `only LzopFormatError may escape, got ${error}`);
    }
  }
  // A mutation can only go unnoticed where no checksum covers it (the mode/mtime fields are
  // covered by the header checksum, so almost nothing is accepted).
  assert.ok(accepted < 100, `mutations accepted: ${accepted}`);
});
