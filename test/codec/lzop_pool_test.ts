import assert from "node:assert/strict";
import { join } from "node:path";
import { decompressLzop } from "../../src/codec/lzop.ts";
import { LzopCompressionPool } from "../../src/codec/lzop_pool.ts";
import { readAll, walLikeBytes } from "./_data.ts";

Deno.test("lzop pool: many files at once on the main thread and workers, each exact", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wald-pool-" });
  const pool = new LzopCompressionPool(2);
  try {
    const files: { path: string; data: Uint8Array }[] = [];
    for (let i = 0; i < 7; i++) {
      const data = walLikeBytes(1024 * 1024 + i * 70_001, i + 1);
      const path = join(dir, `f${i}`);
      await Deno.writeFile(path, data, { mode: 0o600 });
      files.push({ path, data });
    }
    const outputs = await Promise.all(files.map((f) => readAll(pool.compressFile(f.path))));
    outputs.forEach((out, i) => assert.deepEqual(decompressLzop(out), files[i].data, `file ${i}`));
    // Same bytes whichever executor compressed it (the header records mode and mtime).
    const again = await readAll(pool.compressFile(files[3].path));
    assert.deepEqual(again, outputs[3]);
  } finally {
    pool.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lzop pool: errors keep their class, and cancelled streams free their executor", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wald-pool-" });
  const pool = new LzopCompressionPool(1);
  try {
    const big = join(dir, "big");
    await Deno.writeFile(big, walLikeBytes(8 * 1024 * 1024, 9));
    // Occupy the main thread's executor, so the next files go to the worker.
    const first = pool.compressFile(big).getReader();
    await first.read();
    await assert.rejects(readAll(pool.compressFile(join(dir, "missing"))), Deno.errors.NotFound);
    const onWorker = pool.compressFile(big).getReader();
    assert.equal((await onWorker.read()).done, false);
    await onWorker.cancel();
    await first.cancel();
    // Both executors are free again.
    const small = join(dir, "small");
    await Deno.writeFile(small, new Uint8Array(1000));
    const outs = await Promise.all([
      readAll(pool.compressFile(small)),
      readAll(pool.compressFile(small)),
    ]);
    for (const out of outs) assert.deepEqual(decompressLzop(out), new Uint8Array(1000));
  } finally {
    pool.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lzop pool: close() errors the streams on its workers and those still queued", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wald-pool-" });
  const pool = new LzopCompressionPool(1);
  try {
    const big = join(dir, "big");
    await Deno.writeFile(big, walLikeBytes(8 * 1024 * 1024, 11));
    const inline = pool.compressFile(big).getReader();
    await inline.read();
    const onWorker = pool.compressFile(big).getReader();
    assert.equal((await onWorker.read()).done, false);
    const queued = pool.compressFile(big);
    pool.close();
    await assert.rejects(async () => {
      while (!(await onWorker.read()).done);
    }, /compression pool was closed/);
    await assert.rejects(readAll(queued), /compression pool was closed/);
    await inline.cancel();
  } finally {
    pool.close();
    await Deno.remove(dir, { recursive: true });
  }
});
