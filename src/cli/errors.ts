/**
 * The two kinds of expected failure, and the exit codes the runner maps them to (spec §11).
 *
 * - {@link UserError}: a problem the user can fix (configuration, missing data, …). The runner logs it
 *   at ERROR with MSG/DETAIL/HINT and exits 1, like WAL-E's UserException.
 * - {@link UsageError}: the command line is wrong. The runner prints ONE line
 *   `wal-d: error: <message>` to stderr and exits 2, like argparse.
 *
 * Anything else that reaches the runner is logged at CRITICAL as
 * `An unprocessed exception has avoided all error handling` and exits 2.
 */

/** Options of a {@link UserError}. */
export interface UserErrorOptions {
  /** Extra facts, logged as `DETAIL: …`. */
  readonly detail?: string;
  /** What the user can do about it, logged as `HINT: …`. */
  readonly hint?: string;
  /** Exit code; defaults to 1. */
  readonly exitCode?: number;
  /** Log at CRITICAL instead of ERROR (WAL-E's UserCritical). */
  readonly critical?: boolean;
  /** The underlying error, if any. */
  readonly cause?: unknown;
}

/** A failure caused by the user's input or environment: logged at ERROR, exit 1. */
export class UserError extends Error {
  readonly detail: string | undefined;
  readonly hint: string | undefined;
  readonly exitCode: number;
  readonly critical: boolean;

  constructor(message: string, options: UserErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "UserError";
    this.detail = options.detail;
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? 1;
    this.critical = options.critical ?? false;
  }
}

/** Exit code of a command-line usage error (argparse's code). */
export const USAGE_EXIT_CODE = 2;

/** A wrong command line: one line `wal-d: error: <message>` on stderr, exit 2. */
export class UsageError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode: number = USAGE_EXIT_CODE) {
    super(message);
    this.name = "UsageError";
    this.exitCode = exitCode;
  }
}
