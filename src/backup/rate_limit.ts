/**
 * `--cluster-read-rate-limit`: one limit on the whole backup's reading of the cluster, shared by
 * every volume in flight (WAL-E gave each of its `pv` processes rate / pool size, so volumes that
 * finished early left their share unused).
 *
 * A token bucket on a virtual clock: each read of `n` bytes moves the clock `n / rate` seconds
 * ahead; a caller whose clock is ahead of real time waits for the difference. Up to `burst` bytes
 * may pass at once after an idle period. backup-push calls {@linkcode RateLimiter.take} before
 * each read of a file of the cluster (`TarVolumeReader`'s `beforeRead`).
 *
 * @module
 */

/** The clock and sleep a limiter uses (tests replace them). */
export interface LimiterClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const SYSTEM_CLOCK: LimiterClock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** A shared limit of `bytesPerSecond`. */
export class RateLimiter {
  readonly bytesPerSecond: number;
  readonly #burstMs: number;
  readonly #clock: LimiterClock;
  #virtualMs: number;

  constructor(bytesPerSecond: number, options: { burstBytes?: number; clock?: LimiterClock } = {}) {
    if (!Number.isFinite(bytesPerSecond) || bytesPerSecond <= 0) {
      throw new RangeError(`rate limit must be positive, got ${bytesPerSecond}`);
    }
    this.bytesPerSecond = bytesPerSecond;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    // Default burst: a tenth of a second of reading, at least one 256 KiB block.
    const burst = options.burstBytes ?? Math.max(256 * 1024, bytesPerSecond / 10);
    this.#burstMs = Math.min(burst / bytesPerSecond * 1000, 1000);
    this.#virtualMs = this.#clock.now() - this.#burstMs;
  }

  /** Accounts for `bytes` just read; resolves when the limit allows going on. */
  async take(bytes: number): Promise<void> {
    if (bytes <= 0) return;
    const now = this.#clock.now();
    this.#virtualMs = Math.max(this.#virtualMs, now - this.#burstMs) +
      bytes / this.bytesPerSecond * 1000;
    const wait = this.#virtualMs - now;
    if (wait > 0) await this.#clock.sleep(wait);
  }
}
