import assert from "node:assert/strict";
import { lzopFileReadable, openLzopFileReadable } from "../../src/codec/lzop_file.ts";
import { decompressLzop, LzopDecoder, LzopEncoder } from "../../src/codec/lzop.ts";
import { LZO_BLOCK_MAX } from "../../src/codec/lzo.ts";
import { concatBytes, readAll, walLikeBytes } from "./_data.ts";

Deno.test("lzop file: compresses files of every size around the block size to their exact bytes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wald-lzopfile-" });
  try {
    const B = LZO_BLOCK_MAX;
    for (const size of [0, 1, B - 1, B, B + 1, 3 * B, 16 * 1024 * 1024]) {
      const data = walLikeBytes(size, size);
      const path = `${dir}/seg`;
      await Deno.writeFile(path, data, { mode: 0o600 });
      const mtime = new Date(1_700_000_000_000);
      await Deno.utime(path, mtime, mtime);
      const compressed = await readAll(openLzopFileReadable(path));
      const decoder = new LzopDecoder();
      const out = concatBytes(decoder.push(compressed));
      decoder.finish();
      assert.deepEqual(out, data, `size ${size}`);
      // Like `lzop -c < file`, the header records the file's mode and mtime.
      assert.equal(decoder.headers[0].mode, 0o100600);
      assert.equal(decoder.headers[0].mtimeSeconds, 1_700_000_000);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lzop file: same bytes as the push encoder, and reads from the current position", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wald-lzopfile-" });
  try {
    const data = walLikeBytes(LZO_BLOCK_MAX * 2 + 5);
    await Deno.writeFile(`${dir}/f`, data);
    const options = { mode: 0o100644, mtimeSeconds: 42 };
    const viaFile = await readAll(lzopFileReadable(await Deno.open(`${dir}/f`), options));
    const encoder = new LzopEncoder(options);
    const viaPush = concatBytes([...encoder.push(data), ...encoder.finish()]);
    assert.deepEqual(viaFile, viaPush);
    const file = await Deno.open(`${dir}/f`);
    await file.seek(100, Deno.SeekMode.Start);
    assert.deepEqual(decompressLzop(await readAll(lzopFileReadable(file))), data.subarray(100));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lzop file: pushBlock refuses to mix with buffered push data", () => {
  const encoder = new LzopEncoder();
  encoder.push(new Uint8Array(10));
  assert.throws(() => encoder.pushBlock(5), /already buffered/);
  assert.throws(() => new LzopEncoder().pushBlock(LZO_BLOCK_MAX + 1), RangeError);
});

Deno.test("lzop file: a missing file errors the stream", async () => {
  await assert.rejects(
    readAll(openLzopFileReadable("/nonexistent/wal-d/segment")),
    Deno.errors.NotFound,
  );
});
