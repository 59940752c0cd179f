/**
 * Progress of a base backup: bytes of the cluster read so far, of the total the walk found, with
 * the rate and the time left. On a terminal, a live line on stderr redrawn a few times a second;
 * otherwise an INFO log line at a fixed interval (default 30 s, `WALD_PROGRESS_SECONDS`).
 *
 * @module
 */

import type { Logger } from "../log/logger.ts";

/** Environment variable: seconds between progress log lines (0 turns them off). */
export const PROGRESS_SECONDS_ENV_VAR = "WALD_PROGRESS_SECONDS";
/** Default seconds between progress log lines. */
export const DEFAULT_PROGRESS_SECONDS = 30;

/** Where progress goes. */
export interface ProgressOptions {
  /** Redraw a live line on this terminal (stderr) instead of logging. */
  terminal?: { write(bytes: Uint8Array): void } | null;
  /** Seconds between log lines when not on a terminal; 0 = none. */
  logSeconds?: number;
  /** Clock in ms (tests). */
  now?: () => number;
  /** The log message of a report (default `backup progress`). */
  what?: string;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** `bytes` in binary units with one decimal, e.g. `1.5 GiB`. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** Seconds as `H:MM:SS` or `M:SS`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

/** Counts bytes and reports them. Call {@linkcode start}, {@linkcode add}, then {@linkcode stop}. */
export class BackupProgress {
  readonly #total: number;
  readonly #log: Logger;
  readonly #terminal: ProgressOptions["terminal"];
  readonly #logMs: number;
  readonly #now: () => number;
  readonly #what: string;
  #done = 0;
  #started = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly #encoder = new TextEncoder();

  constructor(totalBytes: number, log: Logger, options: ProgressOptions = {}) {
    this.#total = totalBytes;
    this.#log = log;
    this.#terminal = options.terminal ?? null;
    this.#logMs = (options.logSeconds ?? DEFAULT_PROGRESS_SECONDS) * 1000;
    this.#now = options.now ?? (() => performance.now());
    this.#what = options.what ?? "backup progress";
  }

  /** Bytes counted so far. */
  get done(): number {
    return this.#done;
  }

  /** Starts the clock and the periodic report. */
  start(): void {
    this.#started = this.#now();
    const interval = this.#terminal ? 250 : this.#logMs;
    if (interval <= 0) return;
    const timer = setInterval(() => this.report(), interval);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  /** Counts `bytes` more. */
  add(bytes: number): void {
    this.#done += bytes;
  }

  /** Takes back `bytes` counted by an attempt that is being redone. */
  subtract(bytes: number): void {
    this.#done = Math.max(0, this.#done - bytes);
  }

  /** The report line, e.g. `1.2 GiB of 3.4 GiB (35%), 420.0 MiB/s, 0:05 left`. */
  line(): string {
    const seconds = (this.#now() - this.#started) / 1000;
    const rate = seconds > 0 ? this.#done / seconds : 0;
    const percent = this.#total > 0
      ? Math.min(100, Math.floor(this.#done / this.#total * 100))
      : 100;
    const left = rate > 0 ? formatDuration(Math.max(0, this.#total - this.#done) / rate) : "?";
    return `${formatBytes(this.#done)} of ${formatBytes(this.#total)} (${percent}%), ` +
      `${formatBytes(rate)}/s, ${left} left`;
  }

  /** Reports now: redraws the terminal line, or logs one line. */
  report(): void {
    if (this.#terminal) {
      this.#terminal.write(this.#encoder.encode(`\r${this.line()}\x1b[K`));
    } else {
      this.#log.info(this.#what, { detail: this.line() });
    }
  }

  /** Stops reporting; on a terminal the last line is completed and kept. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#terminal) {
      this.report();
      this.#terminal.write(this.#encoder.encode("\n"));
    }
  }
}
