import assert from "node:assert/strict";
import { fileReadable, openFileReadable } from "../../src/io/file_stream.ts";
import { concatBytes, randomBytes } from "../codec/_data.ts";

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

Deno.test("file stream: yields the exact bytes in full chunks for every size around a chunk", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wald-io-" });
  try {
    const chunkBytes = 4096;
    for (const size of [0, 1, chunkBytes - 1, chunkBytes, chunkBytes + 1, 5 * chunkBytes + 7]) {
      const data = randomBytes(size, size);
      const path = `${dir}/f${size}`;
      await Deno.writeFile(path, data);
      const chunks = await collect(await openFileReadable(path, { chunkBytes }));
      assert.deepEqual(concatBytes(chunks), data, `size ${size}`);
      // Every chunk but the last is full: later stages rely on large, even chunks.
      for (const chunk of chunks.slice(0, -1)) assert.equal(chunk.length, chunkBytes);
      assert.ok(chunks.every((c) => c.length > 0), "no empty chunks");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("file stream: a read error errors the stream and closes the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wald-io-" });
  try {
    // Reading a directory fails with EISDIR on Linux (while it is open: closed, BadResource).
    const file = await Deno.open(dir, { read: true });
    await assert.rejects(collect(fileReadable(file)), Deno.errors.IsADirectory);
    assert.throws(() => file.readSync(new Uint8Array(1)), Deno.errors.BadResource, "closed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("file stream: cancelling closes the file unless autoClose is off", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wald-io-" });
  try {
    await Deno.writeFile(`${dir}/f`, randomBytes(100_000));
    const file = await Deno.open(`${dir}/f`, { read: true });
    const reader = fileReadable(file, { chunkBytes: 1000 }).getReader();
    assert.equal((await reader.read()).value?.length, 1000);
    await reader.cancel();
    assert.throws(() => file.readSync(new Uint8Array(1)), Deno.errors.BadResource, "closed");
    const kept = await Deno.open(`${dir}/f`, { read: true });
    const keptReader = fileReadable(kept, { chunkBytes: 1000, autoClose: false }).getReader();
    await keptReader.read();
    await keptReader.cancel();
    assert.ok(kept.readSync(new Uint8Array(1)) !== undefined, "still open");
    kept.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
