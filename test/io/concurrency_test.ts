import assert from "node:assert/strict";
import { forEachLimited } from "../../src/io/concurrency.ts";

const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

Deno.test("forEachLimited: every item once, never more than the limit at once", async () => {
  const seen: number[] = [];
  let running = 0;
  let most = 0;
  await forEachLimited([10, 11, 12, 13, 14, 15, 16], 3, async (item, index) => {
    running++;
    most = Math.max(most, running);
    await tick();
    seen.push(item - 10);
    assert.equal(item - 10, index);
    running--;
  });
  assert.deepEqual(seen.sort(), [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(most, 3);
  await forEachLimited([], 4, () => Promise.reject(new Error("never called")));
});

Deno.test("forEachLimited: the first failure is thrown once running calls end; no new starts", async () => {
  const started: number[] = [];
  let finished = 0;
  const error = await forEachLimited([0, 1, 2, 3, 4, 5], 2, async (item) => {
    started.push(item);
    await tick();
    if (item === 1) throw new Error("item 1 failed");
    finished++;
  }).then(() => null, (e) => e);
  assert.match(String(error), /item 1 failed/);
  assert.ok(!started.includes(5), `started ${started}`);
  assert.equal(finished, started.length - 1, "the other running call was awaited");
});
