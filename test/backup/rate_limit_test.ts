import assert from "node:assert/strict";
import { type LimiterClock, rateLimited, RateLimiter } from "../../src/backup/rate_limit.ts";

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

Deno.test("rate limit: a limited source passes bytes through and closes its source", async () => {
  const clock = new FakeClock();
  let closed = false;
  const source = rateLimited({
    read: (into) => {
      into.fill(7);
      return Promise.resolve(into.length);
    },
    close: () => closed = true,
  }, new RateLimiter(100, { burstBytes: 1, clock }));
  const buffer = new Uint8Array(50);
  assert.equal(await source.read(buffer), 50);
  assert.equal(buffer[49], 7);
  source.close?.();
  assert.ok(closed);
  assert.throws(() => new RateLimiter(0), /must be positive/);
});
