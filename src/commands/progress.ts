/** Progress reporting of the long commands (backup-push, backup-fetch). @module */

import { UserError } from "../cli/errors.ts";
import type { EffectiveEnvironment } from "../config/environment.ts";
import {
  DEFAULT_PROGRESS_SECONDS,
  PROGRESS_SECONDS_ENV_VAR,
  type ProgressOptions,
} from "../backup/progress.ts";
import { writeAllSync } from "../io/file_stream.ts";

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
    ? { write: (bytes: Uint8Array) => writeAllSync(Deno.stderr, bytes) }
    : null;
  return { terminal, logSeconds };
}
