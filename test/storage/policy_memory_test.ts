import assert from "node:assert/strict";
import { DEFAULT_STORAGE_POLICY, withPolicy } from "../../src/storage/policy.ts";
import type { ObjectStore } from "../../src/storage/types.ts";

/** A store whose one object is `size` bytes generated in 64 KiB chunks as they are read. */
function generatingStore(size: number): ObjectStore {
  const unused = () => Promise.reject(new Error("unused"));
  return {
    scheme: "mem",
    url: (key) => `mem:///${key}`,
    put: unused,
    head: unused,
    list: unused,
    delete: unused,
    get() {
      let sent = 0;
      return Promise.resolve(
        new ReadableStream<Uint8Array>({
          pull(controller) {
            if (sent >= size) return controller.close();
            const chunk = new Uint8Array(Math.min(65536, size - sent));
            chunk.fill(sent & 0xff); // touched, so that a retained chunk costs RSS
            sent += chunk.length;
            controller.enqueue(chunk);
          },
        }, { highWaterMark: 0 }),
      );
    },
  };
}

Deno.test("policy: a download through the policy does not keep the chunks it has passed on", async () => {
  const size = 384 * 1024 * 1024;
  const store = withPolicy(generatingStore(size), DEFAULT_STORAGE_POLICY);
  const before = Deno.memoryUsage().rss;
  let peak = before;
  let total = 0;
  let chunks = 0;
  for await (const chunk of (await store.get("big"))!) {
    total += chunk.length;
    if (++chunks % 256 === 0) peak = Math.max(peak, Deno.memoryUsage().rss);
  }
  assert.equal(total, size);
  const grownMiB = (peak - before) / 1048576;
  assert.ok(grownMiB < 192, `RSS grew by ${grownMiB.toFixed(0)} MiB reading ${size >> 20} MiB`);
});
