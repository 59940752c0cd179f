import assert from "node:assert/strict";
import { type LimiterClock, RateLimiter } from "../../src/backup/rate_limit.ts";
import { TarVolumeReader } from "../../src/backup/tar_reader.ts";

/** A clock that only moves when someone sleeps. */
class FakeClock implements LimiterClock {
  ms = 1000;
  slept = 0;
  now(): number {
    return this.ms;
  }
  sleep(ms: number): Promise<void> {
    this.ms += ms;
    this.slept += ms;
    return Promise.resolve();
  }
}

Deno.test("rate limit: reading N bytes takes N / rate seconds, after the burst", async () => {
  const clock = new FakeClock();
  const limiter = new RateLimiter(1024 * 1024, { burstBytes: 256 * 1024, clock });
  for (let i = 0; i < 16; i++) await limiter.take(256 * 1024); // 4 MiB at 1 MiB/s
  // The first 256 KiB pass as the burst; the rest take 3.75 s.
  assert.ok(Math.abs(clock.slept - 3750) < 1, `slept ${clock.slept} ms`);
});

Deno.test("rate limit: one limit for every volume: concurrent readers share it", async () => {
  const clock = new FakeClock();
  const limiter = new RateLimiter(1000, { burstBytes: 1, clock });
  await Promise.all([limiter.take(500), limiter.take(500), limiter.take(1000)]);
  // 2000 bytes at 1000 B/s: 2 s in all, not 1 s per reader.
  assert.ok(clock.ms - 1000 >= 1999, `clock moved ${clock.ms - 1000} ms`);
});

Deno.test("rate limit: idle time is not banked beyond the burst", async () => {
  const clock = new FakeClock();
  const limiter = new RateLimiter(1000, { burstBytes: 100, clock });
  clock.ms += 60_000; // a minute idle
  await limiter.take(1100);
  assert.ok(Math.abs(clock.slept - 1000) < 1, `slept ${clock.slept} ms`);
});

Deno.test("rate limit: a volume reader with the limiter as beforeRead keeps its bytes and pays", async () => {
  const clock = new FakeClock();
  const dir = await Deno.makeTempDir({ prefix: "wald-rate-" });
  try {
    const data = new Uint8Array(50).fill(7);
    await Deno.writeFile(`${dir}/f`, data);
    const info = await Deno.lstat(`${dir}/f`);
    const limiter = new RateLimiter(100, { burstBytes: 1, clock });
    const reader = new TarVolumeReader([{
      name: "f",
      path: `${dir}/f`,
      kind: "file",
      size: 50,
      mode: 0o600,
      uid: 0,
      gid: 0,
      mtime: 0,
      dev: info.dev,
      ino: info.ino!,
    }], { beforeRead: (n) => limiter.take(n) });
    const buffer = new Uint8Array(16384);
    const n = await reader.read(buffer);
    assert.equal(n, 10240, "one tar record: header, data, padding, end");
    assert.deepEqual(buffer.subarray(512, 562), data, "the file's bytes pass through");
    assert.equal(buffer[562], 0);
    // 50 bytes at 100 B/s, less the 1-byte burst: 490 ms.
    assert.ok(Math.abs(clock.slept - 490) < 1, `slept ${clock.slept} ms`);
    reader.close();
    assert.equal(await reader.read(buffer), 0, "closed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.throws(() => new RateLimiter(0), /must be positive/);
});
