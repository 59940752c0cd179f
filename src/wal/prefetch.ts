/**
 * Prefetching: while PostgreSQL replays one segment, detached `wal-d wal-prefetch` processes
 * download the next ones into `pg_wal/.wal-d/prefetch/`, and the next wal-fetch only renames the
 * file into place (WAL-E's `.wal-e/prefetch` idea).
 *
 * Layout under the WAL directory:
 * - `.wal-d/prefetch/<SEG>`: a complete, verified segment (written atomically and fsynced);
 * - `.wal-d/prefetch/running/<SEG>`: a lock held by the process downloading `<SEG>`.
 *
 * A prefetched file is promoted only if it has the expected size; anything else is deleted and
 * the segment downloaded again, so a partial or corrupt prefetched file is never served.
 *
 * @module
 */

import { join } from "../io/path.ts";
import { isTemporaryName } from "../io/atomic_file.ts";
import { isSegmentName } from "../layout/mod.ts";
import { isLockFresh, takeLockFile, WALD_DIRECTORY } from "./status.ts";

/** A lock older than this is left over from a dead process. */
export const STALE_LOCK_MS = 5 * 60 * 1000;

/** The prefetch directory of one WAL directory. */
export class PrefetchDirectory {
  readonly root: string;
  readonly running: string;

  constructor(walDir: string) {
    this.root = join(walDir, WALD_DIRECTORY, "prefetch");
    this.running = join(this.root, "running");
  }

  /** Path of the prefetched copy of `segment`. */
  pathOf(segment: string): string {
    return join(this.root, segment);
  }

  async ensure(): Promise<void> {
    await Deno.mkdir(this.running, { recursive: true, mode: 0o700 });
  }

  /**
   * Moves the prefetched `segment` onto `dest` if it is there and complete; returns whether it
   * did. An incomplete file (wrong size) is removed.
   */
  async promote(segment: string, dest: string, expectedSize: number | null): Promise<boolean> {
    const path = this.pathOf(segment);
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(path);
    } catch {
      return false;
    }
    if (!info.isFile || info.size === 0 || (expectedSize !== null && info.size !== expectedSize)) {
      await Deno.remove(path).catch(() => {});
      return false;
    }
    await Deno.rename(path, dest);
    return true;
  }

  /** Whether a live process is prefetching `segment`. */
  async isRunning(segment: string): Promise<boolean> {
    return await isLockFresh(join(this.running, segment), STALE_LOCK_MS);
  }

  /**
   * Takes the lock for downloading `segment`; returns false if another live process holds it.
   * A stale lock (older than {@linkcode STALE_LOCK_MS}) is taken over.
   */
  async lock(segment: string): Promise<boolean> {
    await this.ensure();
    return await takeLockFile(join(this.running, segment), STALE_LOCK_MS);
  }

  async unlock(segment: string): Promise<void> {
    await Deno.remove(join(this.running, segment)).catch(() => {});
  }

  /** Waits while another process prefetches `segment`, up to `timeoutMs`. */
  async waitWhileRunning(segment: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && await this.isRunning(segment)) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Whether `segment` is prefetched or being prefetched. */
  async isPresentOrRunning(segment: string): Promise<boolean> {
    try {
      await Deno.stat(this.pathOf(segment));
      return true;
    } catch {
      return await this.isRunning(segment);
    }
  }

  /**
   * Removes prefetched segments not in `wanted`, temporary files and stale locks left behind by
   * killed processes.
   */
  async cleanup(wanted: ReadonlySet<string>): Promise<void> {
    const now = Date.now();
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(this.root));
    } catch {
      return;
    }
    for (const entry of entries) {
      const path = join(this.root, entry.name);
      if (entry.isFile && isSegmentName(entry.name) && !wanted.has(entry.name)) {
        await Deno.remove(path).catch(() => {});
      } else if (entry.isFile && isTemporaryName(entry.name)) {
        const info = await Deno.stat(path).catch(() => null);
        if (info && now - (info.mtime?.getTime() ?? 0) > STALE_LOCK_MS) {
          await Deno.remove(path).catch(() => {});
        }
      }
    }
    const locks = await Array.fromAsync(Deno.readDir(this.running)).catch(() => []);
    for (const lock of locks) {
      if (!(await this.isRunning(lock.name))) await this.unlock(lock.name);
    }
  }
}
