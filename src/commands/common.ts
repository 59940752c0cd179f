/** Helpers shared by the command modules. @module */

import { dirname, join } from "../io/path.ts";
import { UserError } from "../cli/errors.ts";
import { walSegmentSizeOf } from "../pg/control.ts";
import { StorageError } from "../storage/types.ts";
import type { EffectiveEnvironment } from "../config/environment.ts";
import {
  DEFAULT_PROGRESS_SECONDS,
  PROGRESS_SECONDS_ENV_VAR,
  type ProgressOptions,
} from "../backup/progress.ts";

/**
 * Turns a classified storage failure into one clear log line (ERROR with the hint) and the
 * command's exit code; anything else is rethrown (an unexpected failure: exit 2).
 */
export function asUserError(error: unknown, exitCode: number): never {
  if (error instanceof UserError) {
    if (error.exitCode === exitCode) throw error;
    throw new UserError(error.message, {
      detail: error.detail,
      hint: error.hint,
      exitCode,
      cause: error,
    });
  }
  if (error instanceof StorageError) {
    const what = error.kind === "corrupt"
      ? "archived data is corrupt"
      : error.kind === "transient"
      ? "storage is not responding (gave up after retries)"
      : "storage refused the operation";
    throw new UserError(`${what}: ${error.message}`, { hint: error.hint, exitCode, cause: error });
  }
  throw error;
}

/**
 * The wal_segment_size of the cluster whose WAL directory is `walDir` (PostgreSQL runs archive and
 * restore commands in the data directory, with `%p` inside pg_wal), or `null` when no readable
 * pg_control is found.
 */
export async function segmentSizeNear(walDir: string): Promise<number | null> {
  for (const dataDir of [join(walDir, ".."), dirname(walDir), "."]) {
    const size = await walSegmentSizeOf(dataDir).catch(() => null);
    if (size !== null) return size;
  }
  return null;
}

/**
 * How a long command reports progress: a live line when stderr is a terminal, else a log line
 * every `WALD_PROGRESS_SECONDS` (checked here, before any work starts).
 */
export function progressOptions(environment: EffectiveEnvironment): ProgressOptions {
  const raw = environment.get(PROGRESS_SECONDS_ENV_VAR)?.trim();
  let logSeconds = DEFAULT_PROGRESS_SECONDS;
  if (raw !== undefined && raw !== "") {
    logSeconds = Number(raw);
    if (!Number.isFinite(logSeconds) || logSeconds < 0) {
      throw new UserError(
        `${PROGRESS_SECONDS_ENV_VAR} must be a number of seconds (0 for none), got "${raw}"`,
        { hint: `Unset it for a progress line every ${DEFAULT_PROGRESS_SECONDS} s.` },
      );
    }
  }
  const terminal = Deno.stderr.isTerminal()
    ? { write: (bytes: Uint8Array) => void Deno.stderr.writeSync(bytes) }
    : null;
  return { terminal, logSeconds };
}
