/**
 * The background pusher (`wal-d wal-push-ahead WAL_DIRECTORY`), started detached by a wal-push
 * that finds other WAL files ready. It archives them oldest first, `poolSize` at a time, on every
 * core (the compression pool), and records each one in the ledger only once it is durable, so
 * that PostgreSQL's own calls for them return after a local check; it keeps going while new files
 * become ready and exits when none is left. One pusher per WAL directory (a lock with a
 * heartbeat); a file it cannot archive is marked failed, and PostgreSQL's call archives it itself
 * and reports the error.
 *
 * @module
 */

import { LzopCompressionPool } from "../codec/lzop_pool.ts";
import { pushAheadOne, type WalPushContext, warnPushAheadFailed } from "./push.ts";
import {
  PUSH_AHEAD_HEARTBEAT_MS,
  PushAheadState,
  PushLedger,
  unarchivedReadyNames,
} from "./status.ts";

/** Options of {@linkcode pushAheadLoop}. */
export interface PushAheadOptions {
  poolSize: number;
  markDone: boolean;
  /** A file the starting wal-push archives itself. */
  exclude: string | null;
  /** The starting wal-push took the lock for this process (no start-up gap for others). */
  lockHeld?: boolean;
}

/** Runs the background pusher for `walDir`; returns at once if another one is running. */
export async function pushAheadLoop(
  walDir: string,
  context: WalPushContext,
  options: PushAheadOptions,
): Promise<void> {
  const state = new PushAheadState(walDir);
  if (options.lockHeld) await state.heartbeat();
  else if (!(await state.acquire())) return;
  const ledger = new PushLedger(walDir);
  const pool = new LzopCompressionPool();
  const pushContext: WalPushContext = { ...context, compress: (file) => pool.compressFile(file) };
  const heartbeat = setInterval(() => state.heartbeat(), PUSH_AHEAD_HEARTBEAT_MS);
  const inFlight = new Map<string, Promise<void>>();
  // Names finished by this process: a candidate list read while a push was completing can still
  // name it, after it has left `inFlight`.
  const finished = new Set<string>();
  const failed = new Set<string>();
  try {
    for (;;) {
      const room = options.poolSize - inFlight.size;
      if (room > 0) {
        const candidates = await unarchivedReadyNames(walDir, ledger, context.prefixUrl, {
          skip: (name) =>
            name === options.exclude || inFlight.has(name) || finished.has(name) ||
            failed.has(name),
          limit: room,
        });
        for (const name of candidates) {
          const job = pushAheadOne(walDir, name, pushContext, ledger, options)
            .then(() => void finished.add(name))
            .catch(async (error) => {
              failed.add(name);
              warnPushAheadFailed(context.log, name, error);
              await state.markFailed(name);
            })
            .finally(() => inFlight.delete(name));
          inFlight.set(name, job);
        }
        // Pushes that ended while the list was read left room: fill it before waiting.
        if (candidates.length === room && inFlight.size < options.poolSize) continue;
      }
      if (inFlight.size === 0) break;
      await Promise.race(inFlight.values());
    }
    await ledger.prune().catch(() => {});
  } finally {
    clearInterval(heartbeat);
    pool.close();
    await state.release();
  }
}
