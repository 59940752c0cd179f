/**
 * The one retry-and-deadline policy for every storage backend: {@linkcode withPolicy} wraps any
 * {@linkcode ObjectStore}, whose backends implement single attempts and classify their errors.
 *
 * **Deadlines.** Every attempt is bounded:
 *
 * - metadata calls (`head`, `list`, `delete`, and `get` until its stream opens) by a deadline,
 *   {@linkcode StoragePolicy.callTimeoutMs} (30 s), clipped to what is left of the time budget;
 * - data transfer by an *idle* timeout, {@linkcode StoragePolicy.idleTimeoutMs} (60 s): an
 *   attempt fails only when no bytes have moved for that long, so a 1.5 GiB upload may take as
 *   long as it needs while a stalled one is cut off. For `get` the clock runs while the consumer
 *   waits for the next chunk (a slow consumer is not a stalled transfer); for `put` with a stream
 *   body it runs while the backend has not taken the next chunk, and once the body has been read
 *   the backend has `callTimeoutMs` to commit the object. A `put` of a `Uint8Array` exposes no
 *   progress, so it is bounded as a whole by `callTimeoutMs + idleTimeoutMs`.
 *
 * A call past its deadline is aborted through the `signal` the policy passes to the backend, and
 * fails with a transient {@linkcode StorageError} even if the backend ignores the signal.
 *
 * **Retries.** Only `transient` failures are retried; `permanent` and `corrupt` ones never are,
 * nor are failures this module does not recognise (see {@linkcode classifyError}: a bug does not
 * go away by retrying it). Waits use "full jitter" exponential backoff: before attempt n + 1 the
 * policy sleeps a uniformly random time in [0, min(cap, base * 2^(n-1))), base 100 ms, cap 30 s.
 *
 * **How many attempts.** WAL-E makes up to `WALE_RETRIES` (default 100) attempts with waits of up
 * to 120 s, and retries forever when it is ≤ 0, which can block recovery for hours (spec §11,
 * §12.10). wal-d:
 *
 * - honours `WALE_RETRIES` as the maximum number of ATTEMPTS when it is set (1 = no retry,
 *   ≤ 0 = no limit on the count);
 * - otherwise makes {@linkcode DEFAULT_MAX_ATTEMPTS} (8) attempts: the waits then add up to at
 *   most 12.7 s (6.4 s on average), enough to ride out a connection reset, a load balancer
 *   failover or a burst of throttling, while a storage service that is really down is reported
 *   within a few minutes at worst (8 deadlines of 30 s), not hours;
 * - and ALWAYS bounds the whole operation by a time budget, {@linkcode StoragePolicy.budgetMs}
 *   (10 min by default, `WALD_RETRY_BUDGET_SECONDS`): no new attempt starts, and no wait is begun
 *   that would end, after the budget is spent. "Forever" therefore means "for ten minutes". An
 *   attempt that is moving data is not cut off by the budget; its idle timeout bounds it.
 *
 * **Upload bodies.** A `put` whose body is a function gets a fresh stream from it per attempt and
 * can be retried. A body that is a plain `ReadableStream` can be read only once: a transient
 * failure is reported, not retried, and the error says so.
 *
 * Each retry logs a WARNING on logger `wal_e.retries`, as WAL-E does. Time, sleeping, timers and
 * randomness come from a {@linkcode PolicyRuntime} so that tests need not wait.
 *
 * @module
 */
import type { Logger } from "../log/logger.ts";
import type {
  CallOptions,
  DeleteResult,
  GetOptions,
  ListOptions,
  ListPage,
  ObjectInfo,
  ObjectStore,
  PutBody,
  PutOptions,
  StorageErrorKind,
} from "./types.ts";
import { StorageError } from "./types.ts";
import { type ChunkResult, relayStream } from "../io/byob.ts";
import { errorMessage } from "../io/error_message.ts";

/** Default number of attempts when `WALE_RETRIES` is not set. */
export const DEFAULT_MAX_ATTEMPTS = 8;

/** Name of the logger retry warnings go to (WAL-E's `retries.py`). */
export const RETRY_LOGGER_NAME = "wal_e.retries";

/** The numbers of the policy. All durations are in milliseconds. */
export interface StoragePolicy {
  /** Maximum attempts per operation: 1 = no retry; ≤ 0 = no count limit (the budget still holds). */
  readonly maxAttempts: number;
  /** Deadline of one metadata call (head, list, delete, get until its stream opens). */
  readonly callTimeoutMs: number;
  /** A data transfer fails when no bytes have moved for this long. */
  readonly idleTimeoutMs: number;
  /** Total time for one operation, all attempts and waits included; no attempt starts after it. */
  readonly budgetMs: number;
  /** Upper bound of the first backoff wait; it doubles per attempt. */
  readonly backoffBaseMs: number;
  /** Largest upper bound of a backoff wait. */
  readonly backoffCapMs: number;
}

/** The defaults; see the module documentation for the reasoning. */
export const DEFAULT_STORAGE_POLICY: StoragePolicy = Object.freeze({
  maxAttempts: DEFAULT_MAX_ATTEMPTS,
  callTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  budgetMs: 10 * 60_000,
  backoffBaseMs: 100,
  backoffCapMs: 30_000,
});

/** Time, sleeping, timers and randomness, injectable for tests. */
export interface PolicyRuntime {
  /** A monotonic clock in milliseconds. */
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Calls `callback` after `ms`; returns a function that cancels the timer. */
  setTimer(callback: () => void, ms: number): () => void;
  /** A uniformly distributed number in [0, 1). */
  random(): number;
}

/** The real clock, timers and `Math.random`. */
export const SYSTEM_RUNTIME: PolicyRuntime = Object.freeze({
  now: () => performance.now(),
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  },
  setTimer(callback: () => void, ms: number): () => void {
    const timer = setTimeout(callback, ms);
    return () => clearTimeout(timer);
  },
  random: () => Math.random(),
});

// ---------------------------------------------------------------------------------------------
// Error classification

const TRANSIENT_DENO_ERRORS = [
  "TimedOut",
  "ConnectionReset",
  "ConnectionRefused",
  "ConnectionAborted",
  "NotConnected",
  "BrokenPipe",
  "Interrupted",
  "UnexpectedEof",
  "WouldBlock",
  "AddrNotAvailable",
  "NetworkUnreachable",
  "Busy",
  "Http",
] as const;

const PERMANENT_DENO_ERRORS = [
  "PermissionDenied",
  "NotCapable",
  "NotFound",
  "NotADirectory",
  "IsADirectory",
  "InvalidData",
  "AlreadyExists",
  "NotSupported",
  "FilesystemLoop",
  "BadResource",
  "WriteZero",
] as const;

/** errno codes (`error.code`) that retrying may cure: I/O hiccups (NFS), exhausted descriptors. */
const TRANSIENT_CODES = new Set([
  "EIO",
  "ESTALE",
  "EAGAIN",
  "EINTR",
  "EBUSY",
  "EMFILE",
  "ENFILE",
  "ETIMEDOUT",
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
]);

/** errno codes that retrying cannot cure. */
const PERMANENT_CODES = new Set([
  "ENOSPC",
  "EDQUOT",
  "EROFS",
  "EFBIG",
  "ENAMETOOLONG",
  "ELOOP",
  "ENOTEMPTY",
  "EXDEV",
  "EACCES",
  "EPERM",
  "ENOTDIR",
  "EISDIR",
  "EINVAL",
]);

/** Hints for errno codes whose fix is the same whatever the backend. */
const CODE_HINTS: Record<string, string> = {
  ENOSPC: "The file system is full. Free space on it (or move the archive or TMPDIR elsewhere), " +
    "then run the command again.",
  EDQUOT: "The disk quota of this user is exhausted. Free space or raise the quota, " +
    "then run the command again.",
  EROFS: "The file system is mounted read-only. Remount it read-write or use another location.",
};

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function isDenoError(error: unknown, names: readonly (keyof typeof Deno.errors)[]): boolean {
  return names.some((name) => {
    const errorClass = Deno.errors[name] as unknown as (abstract new () => Error) | undefined;
    return errorClass !== undefined && error instanceof errorClass;
  });
}

const FETCH_NETWORK_FAILURE = /fetch failed|error sending request|connection (closed|reset)/i;

/** The kind of a failure this module recognises, or `null` for an unknown one. */
function recognizedKind(error: unknown, depth = 0): StorageErrorKind | null {
  if (error instanceof StorageError) return error.kind;
  if (isDenoError(error, TRANSIENT_DENO_ERRORS)) return "transient";
  if (isDenoError(error, PERMANENT_DENO_ERRORS)) return "permanent";
  const code = errorCode(error);
  if (code !== undefined && TRANSIENT_CODES.has(code)) return "transient";
  if (code !== undefined && PERMANENT_CODES.has(code)) return "permanent";
  const name = (error as { name?: unknown } | null)?.name;
  // Our own deadlines abort with a StorageError; an AbortError or TimeoutError that still gets
  // here came from a timeout somewhere below (a caller's own abort is handled before this).
  if (name === "AbortError" || name === "TimeoutError") return "transient";
  if (error instanceof Error && error.cause !== undefined && depth < 4) {
    const fromCause = recognizedKind(error.cause, depth + 1);
    if (fromCause !== null) return fromCause;
  }
  if (error instanceof TypeError && FETCH_NETWORK_FAILURE.test(error.message)) return "transient";
  return null;
}

/**
 * How a failure should be treated. Timeouts, resets, refused connections, broken pipes, `EIO`
 * and aborts are `transient`; permission problems, missing or wrong-typed paths, invalid data and
 * a full disk (`ENOSPC`, `EDQUOT`, `EROFS`) are `permanent`. A {@linkcode StorageError} keeps its
 * kind. Anything unrecognised is `permanent`: retrying a bug does not fix it.
 */
export function classifyError(error: unknown): StorageErrorKind {
  return recognizedKind(error) ?? "permanent";
}

/** A fix to suggest for `error`, when one is known (a full or read-only disk, ...). */
export function hintForError(error: unknown): string | undefined {
  if (error instanceof StorageError) return error.hint;
  const code = errorCode(error);
  return code === undefined ? undefined : CODE_HINTS[code];
}

/**
 * `error` as a {@linkcode StorageError}: a StorageError as it is, anything else classified by
 * {@linkcode classifyError}, its message prefixed with `context` (e.g. `put "s3://b/k"`).
 */
export function toStorageError(error: unknown, context: string): StorageError {
  if (error instanceof StorageError) return error;
  return new StorageError(classifyError(error), `${context}: ${errorMessage(error)}`, {
    hint: hintForError(error),
    cause: error,
  });
}

/** Like {@linkcode toStorageError}, but `null` for a failure this module does not recognise. */
function toRecognizedStorageError(error: unknown, context: string): StorageError | null {
  return recognizedKind(error) === null ? null : toStorageError(error, context);
}

// ---------------------------------------------------------------------------------------------
// One attempt: its abort controller and its deadline

/**
 * The controller of one attempt: a signal for the backend, a re-armable deadline, and races that
 * reject when the deadline passes or the caller aborts (so a backend that ignores its signal
 * cannot hang us).
 */
class AttemptGuard {
  readonly #runtime: PolicyRuntime;
  readonly #controller = new AbortController();
  readonly #callerSignal: AbortSignal | undefined;
  readonly #onCallerAbort: () => void;
  #cancelTimer: (() => void) | null = null;
  #failed = false;
  #failReason: unknown;
  /** Rejecters of the {@linkcode race} calls still pending. */
  readonly #pending = new Set<(reason: unknown) => void>();
  /** Passed to the backend: aborts on the deadline and on the caller's abort. */
  readonly signal: AbortSignal;

  constructor(runtime: PolicyRuntime, callerSignal: AbortSignal | undefined) {
    this.#runtime = runtime;
    this.#callerSignal = callerSignal;
    this.signal = callerSignal === undefined
      ? this.#controller.signal
      : AbortSignal.any([callerSignal, this.#controller.signal]);
    this.#onCallerAbort = () => this.fail(callerSignal?.reason);
    callerSignal?.addEventListener("abort", this.#onCallerAbort, { once: true });
  }

  /** (Re)starts the deadline: after `ms`, the attempt fails with `makeError()`. */
  arm(ms: number, makeError: () => StorageError): void {
    this.disarm();
    if (this.#failed) return;
    this.#cancelTimer = this.#runtime.setTimer(() => {
      this.#cancelTimer = null;
      this.fail(makeError());
    }, Math.max(0, ms));
  }

  /** Stops the deadline. */
  disarm(): void {
    this.#cancelTimer?.();
    this.#cancelTimer = null;
  }

  /** Fails the attempt: aborts the backend's signal and rejects every pending {@linkcode race}. */
  fail(reason: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#failReason = reason;
    this.disarm();
    for (const reject of this.#pending) reject(reason);
    this.#pending.clear();
    this.#controller.abort(reason);
  }

  /**
   * `promise`, unless the attempt fails first. Not `Promise.race` with one long-lived promise:
   * each such race leaves a reaction on it that holds the settled value until the attempt ends,
   * so a download (one race per chunk) would keep every chunk it read in memory.
   */
  race<T>(promise: Promise<T>): Promise<T> {
    promise.catch(() => {}); // It may settle after we gave up on it.
    if (this.#failed) return Promise.reject(this.#failReason);
    return new Promise<T>((resolve, reject) => {
      this.#pending.add(reject);
      promise.then((value) => {
        this.#pending.delete(reject);
        resolve(value);
      }, (error) => {
        this.#pending.delete(reject);
        reject(error);
      });
    });
  }

  /** Stops the timer and forgets the caller's signal. */
  dispose(): void {
    this.disarm();
    this.#callerSignal?.removeEventListener("abort", this.#onCallerAbort);
  }
}

// ---------------------------------------------------------------------------------------------
// Streams that watch for stalls

/**
 * `source` re-emitted chunk by chunk, with the guard armed for `idleMs` while the consumer waits
 * for a chunk. Errors of the source become StorageErrors with `context`; when the guard fails, the
 * stream errors and the source is cancelled.
 */
function idleWatchedReadable(
  source: ReadableStream<Uint8Array>,
  guard: AttemptGuard,
  idleMs: number,
  idleError: () => StorageError,
  context: string,
): ReadableStream<Uint8Array> {
  const onFail = () => relay.abort(guard.signal.reason);
  const finish = () => {
    guard.signal.removeEventListener("abort", onFail);
    guard.dispose();
  };
  const relay = relayStream(source, {
    async read(next) {
      guard.arm(idleMs, idleError);
      let result: ChunkResult;
      try {
        result = await guard.race(next());
      } catch (error) {
        finish();
        if (guard.signal.aborted && error === guard.signal.reason) throw error;
        throw toRecognizedStorageError(error, context) ?? error;
      } finally {
        guard.disarm();
      }
      // Cancelling the source on failure ends its pending read as if it were complete.
      if (guard.signal.aborted) {
        finish();
        throw guard.signal.reason;
      }
      if (result.done) finish();
      return result;
    },
    onCancel: finish,
  });
  guard.signal.addEventListener("abort", onFail, { once: true });
  return relay.stream;
}

// ---------------------------------------------------------------------------------------------
// The wrapper

interface Operation {
  /** e.g. `put "file:///archive/wal_005/x.lzo"`. */
  readonly context: string;
  readonly op: string;
  readonly callerSignal?: AbortSignal;
  /** Why a transient failure of this operation must not be retried, if it must not. */
  readonly notRetryable?: string;
}

function seconds(ms: number): string {
  const s = ms / 1000;
  return s >= 10 ? s.toFixed(0) : s >= 1 ? s.toFixed(1) : s.toFixed(2);
}

class PolicyStore implements ObjectStore {
  readonly scheme: string;
  readonly #store: ObjectStore;
  readonly #policy: StoragePolicy;
  readonly #log: Logger | undefined;
  readonly #runtime: PolicyRuntime;

  constructor(
    store: ObjectStore,
    policy: StoragePolicy,
    log: Logger | undefined,
    runtime: PolicyRuntime,
  ) {
    this.scheme = store.scheme;
    this.#store = store;
    this.#policy = policy;
    this.#log = log?.getLogger(RETRY_LOGGER_NAME);
    this.#runtime = runtime;
  }

  url(key: string): string {
    return this.#store.url(key);
  }

  head(key: string, options: CallOptions = {}): Promise<ObjectInfo | null> {
    const operation = this.#operation("head", `"${this.url(key)}"`, options.signal);
    return this.#metadataCall(operation, (signal) => this.#store.head(key, { signal }));
  }

  list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    const operation = this.#operation("list", `"${this.url(prefix)}"`, options.signal);
    return this.#metadataCall(
      operation,
      (signal) => this.#store.list(prefix, { ...options, signal }),
    );
  }

  delete(keys: readonly string[], options: CallOptions = {}): Promise<DeleteResult> {
    const what = keys.length === 1
      ? `"${this.url(keys[0])}"`
      : `${keys.length} keys under "${this.url("")}"`;
    const operation = this.#operation("delete", what, options.signal);
    return this.#metadataCall(operation, (signal) => this.#store.delete(keys, { signal }));
  }

  get(key: string, options: GetOptions = {}): Promise<ReadableStream<Uint8Array> | null> {
    const operation = this.#operation("get", `"${this.url(key)}"`, options.signal);
    const { callTimeoutMs, idleTimeoutMs } = this.#policy;
    return this.#run(operation, async (guard, remainingMs) => {
      const openMs = Math.min(callTimeoutMs, remainingMs);
      guard.arm(
        openMs,
        () => this.#timeoutError(operation, `did not start within ${seconds(openMs)} s`),
      );
      const stream = await guard.race(this.#store.get(key, { ...options, signal: guard.signal }));
      guard.disarm();
      if (stream === null) return { value: null, keepGuard: false };
      const idleError = () =>
        this.#timeoutError(operation, `no bytes received for ${seconds(idleTimeoutMs)} s`);
      return {
        value: idleWatchedReadable(stream, guard, idleTimeoutMs, idleError, operation.context),
        keepGuard: true,
      };
    });
  }

  put(key: string, body: PutBody, options: PutOptions = {}): Promise<void> {
    const oneShot = body instanceof ReadableStream;
    const operation = this.#operation(
      "put",
      `"${this.url(key)}"`,
      options.signal,
      oneShot
        ? "the upload body was a one-shot stream, which cannot be sent twice " +
          "(pass a function returning a fresh stream to allow retries)"
        : undefined,
    );
    const { callTimeoutMs, idleTimeoutMs } = this.#policy;
    return this.#run(operation, async (guard) => {
      if (body instanceof Uint8Array) {
        const totalMs = callTimeoutMs + idleTimeoutMs;
        guard.arm(
          totalMs,
          () => this.#timeoutError(operation, `not done in ${seconds(totalMs)} s`),
        );
        await guard.race(this.#store.put(key, body, { ...options, signal: guard.signal }));
        return { value: undefined, keepGuard: false };
      }
      const source = typeof body === "function" ? body() : body;
      const watched = this.#progressWatchedBody(source, guard, operation);
      guard.arm(
        idleTimeoutMs,
        () => this.#timeoutError(operation, `no bytes sent for ${seconds(idleTimeoutMs)} s`),
      );
      try {
        await guard.race(this.#store.put(key, watched, { ...options, signal: guard.signal }));
      } catch (error) {
        if (!watched.locked) watched.cancel(error).catch(() => {});
        throw error;
      }
      return { value: undefined, keepGuard: false };
    });
  }

  /**
   * The body handed to the backend: each chunk it takes restarts the idle deadline; once the body
   * is exhausted the backend has `callTimeoutMs` to commit the object. A byte stream stays a byte
   * stream: the backend's views are passed through to the source, which writes into them.
   */
  #progressWatchedBody(
    source: ReadableStream<Uint8Array>,
    guard: AttemptGuard,
    operation: Operation,
  ): ReadableStream<Uint8Array> {
    const { callTimeoutMs, idleTimeoutMs } = this.#policy;
    const onFail = () => relay.abort(guard.signal.reason);
    const relay = relayStream(source, {
      read: async (next) => {
        const result = await next();
        // Cancelling the source on failure ends its pending read as if it were complete.
        if (guard.signal.aborted) throw guard.signal.reason;
        // Re-arm the deadline that now applies.
        if (result.done) {
          guard.signal.removeEventListener("abort", onFail);
          guard.arm(
            callTimeoutMs,
            () =>
              this.#timeoutError(
                operation,
                `the upload was not committed within ${seconds(callTimeoutMs)} s`,
              ),
          );
        } else {
          guard.arm(
            idleTimeoutMs,
            () => this.#timeoutError(operation, `no bytes sent for ${seconds(idleTimeoutMs)} s`),
          );
        }
        return result;
      },
      onCancel: () => guard.signal.removeEventListener("abort", onFail),
    });
    guard.signal.addEventListener("abort", onFail, { once: true });
    return relay.stream;
  }

  #operation(op: string, target: string, callerSignal?: AbortSignal, notRetryable?: string) {
    return { op, context: `${op} ${target}`, callerSignal, notRetryable } satisfies Operation;
  }

  #timeoutError(operation: Operation, what: string): StorageError {
    return new StorageError("transient", `${operation.context} timed out: ${what}`);
  }

  #metadataCall<T>(operation: Operation, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const { callTimeoutMs } = this.#policy;
    return this.#run(operation, async (guard, remainingMs) => {
      const deadlineMs = Math.min(callTimeoutMs, remainingMs);
      guard.arm(
        deadlineMs,
        () => this.#timeoutError(operation, `no answer within ${seconds(deadlineMs)} s`),
      );
      return { value: await guard.race(call(guard.signal)), keepGuard: false };
    });
  }

  /** Runs attempts until one succeeds, a failure is not retryable, or the limits are reached. */
  async #run<T>(
    operation: Operation,
    attempt: (
      guard: AttemptGuard,
      remainingMs: number,
    ) => Promise<{ value: T; keepGuard: boolean }>,
  ): Promise<T> {
    const { maxAttempts, budgetMs } = this.#policy;
    const runtime = this.#runtime;
    const { callerSignal } = operation;
    const started = runtime.now();
    for (let attemptNumber = 1;; attemptNumber++) {
      callerSignal?.throwIfAborted();
      const guard = new AttemptGuard(runtime, callerSignal);
      let failure: unknown;
      try {
        const remainingMs = budgetMs - (runtime.now() - started);
        const { value, keepGuard } = await attempt(guard, remainingMs);
        if (!keepGuard) guard.dispose();
        return value;
      } catch (error) {
        guard.dispose();
        failure = error;
      }
      if (callerSignal?.aborted) throw callerSignal.reason;
      const storageError = toRecognizedStorageError(failure, operation.context);
      if (storageError === null) throw failure;
      if (storageError.kind !== "transient") throw storageError;
      if (operation.notRetryable !== undefined) {
        throw new StorageError(
          "transient",
          `${storageError.message} (not retried: ${operation.notRetryable})`,
          { hint: storageError.hint, cause: storageError },
        );
      }
      const elapsedMs = runtime.now() - started;
      if (maxAttempts > 0 && attemptNumber >= maxAttempts) {
        throw this.#gaveUp(storageError, attemptNumber, elapsedMs, "attempts");
      }
      const ceilingMs = Math.min(
        this.#policy.backoffCapMs,
        this.#policy.backoffBaseMs * 2 ** (attemptNumber - 1),
      );
      const waitMs = runtime.random() * ceilingMs;
      if (elapsedMs + waitMs >= budgetMs) {
        throw this.#gaveUp(storageError, attemptNumber, elapsedMs, "budget");
      }
      this.#logRetry(operation, storageError, attemptNumber, waitMs);
      await runtime.sleep(waitMs, callerSignal);
    }
  }

  #gaveUp(
    last: StorageError,
    attempts: number,
    elapsedMs: number,
    limit: "attempts" | "budget",
  ): StorageError {
    const tries = attempts === 1 ? "1 attempt" : `${attempts} attempts`;
    const why = limit === "attempts"
      ? `gave up after ${tries} in ${seconds(elapsedMs)} s`
      : `gave up after ${tries}: the time budget of ${
        seconds(this.#policy.budgetMs)
      } s for one storage operation is spent`;
    const hint = last.hint ??
      "The storage kept failing with transient errors: check the network and the storage " +
        "service. WALE_RETRIES sets the maximum number of attempts and " +
        "WALD_RETRY_BUDGET_SECONDS the time allowed for one operation.";
    return new StorageError("transient", `${last.message} (${why})`, { hint, cause: last });
  }

  #logRetry(operation: Operation, error: StorageError, attempt: number, waitMs: number): void {
    const of = this.#policy.maxAttempts > 0
      ? `${attempt}/${this.#policy.maxAttempts}`
      : `${attempt}`;
    this.#log?.warning("retrying after a transient storage error", {
      detail: `Attempt ${of} failed: ${error.message}. ` +
        `Waiting ${seconds(waitMs)} seconds before the next attempt.`,
      structured: { action: "storage-retry", attempt, op: operation.op },
    });
  }
}

/**
 * Wraps `store` with deadlines and retries (see the module documentation). `log` receives the
 * retry warnings (as `wal_e.retries`); `runtime` replaces the clock, timers and randomness.
 */
export function withPolicy(
  store: ObjectStore,
  policy: StoragePolicy = DEFAULT_STORAGE_POLICY,
  log?: Logger,
  runtime: PolicyRuntime = SYSTEM_RUNTIME,
): ObjectStore {
  return new PolicyStore(store, policy, log, runtime);
}
