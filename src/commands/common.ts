/**
 * Helpers shared by the command modules. Every command imports this module, wal-push included
 * (once per WAL segment): it loads nothing that only some commands need (pg_control reading is
 * imported when asked for; backup progress lives in progress.ts).
 *
 * @module
 */

import { dirname, join } from "../io/path.ts";
import { UserError } from "../cli/errors.ts";
import { StorageError } from "../storage/types.ts";

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
  const { walSegmentSizeOf } = await import("../pg/control.ts");
  for (const dataDir of [join(walDir, ".."), dirname(walDir), "."]) {
    const size = await walSegmentSizeOf(dataDir).catch(() => null);
    if (size !== null) return size;
  }
  return null;
}
