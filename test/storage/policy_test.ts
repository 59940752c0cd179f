import assert from "node:assert/strict";
import {
  classifyError,
  DEFAULT_STORAGE_POLICY,
  hintForError,
  type PolicyRuntime,
  RETRY_LOGGER_NAME,
  type StoragePolicy,
  SYSTEM_RUNTIME,
  toStorageError,
  withPolicy,
} from "../../src/storage/policy.ts";
import {
  type CallOptions,
  type DeleteResult,
  type GetOptions,
  type ListPage,
  type ObjectInfo,
  type ObjectStore,
  type PutBody,
  type PutOptions,
  StorageError,
} from "../../src/storage/types.ts";
import { readAll } from "../codec/_data.ts";
import type { Logger } from "../../src/log/logger.ts";
import { captureLogger } from "../log/_capture.ts";

/** Time passes only when the policy sleeps; timers are real (tests use short timeouts). */
class FakeRuntime implements PolicyRuntime {
  time = 0;
  readonly sleeps: number[] = [];
  randomValue = 0.5;
  now(): number {
    return this.time;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    this.sleeps.push(ms);
    this.time += ms;
    return Promise.resolve();
  }
  setTimer(callback: () => void, ms: number): () => void {
    return SYSTEM_RUNTIME.setTimer(callback, ms);
  }
  random(): number {
    return this.randomValue;
  }
}

/**
 * A scripted store behind the policy (`overrides` on the defaults), on a fake clock whose
 * random() is `random`; each test scripts the store's steps.
 */
function scripted(overrides: Partial<StoragePolicy> = {}, random = 0.5, log?: Logger) {
  const runtime = new FakeRuntime();
  runtime.randomValue = random;
  const store = new ScriptedStore();
  const policy = { ...DEFAULT_STORAGE_POLICY, ...overrides };
  return { runtime, store, wrapped: withPolicy(store, policy, log, runtime) };
}

type Step<T> = () => T | Promise<T>;

/**
 * A store whose calls run scripted steps in order (the last step repeats) and record what they
 * were given.
 */
class ScriptedStore implements ObjectStore {
  readonly scheme = "test";
  headSteps: Step<ObjectInfo | null>[] = [() => null];
  listSteps: Step<ListPage>[] = [() => ({ objects: [], prefixes: [] })];
  deleteSteps: Step<DeleteResult>[] = [() => ({ deleted: [], errors: [] })];
  getSteps: Step<ReadableStream<Uint8Array> | null>[] = [() => null];
  /** Runs with the body stream of each put attempt. */
  putSteps: ((body: Uint8Array | ReadableStream<Uint8Array>) => Promise<void>)[] = [];
  readonly calls: { op: string; signal?: AbortSignal }[] = [];
  readonly stored: Uint8Array[] = [];

  #next<T>(steps: Step<T>[], op: string, signal?: AbortSignal): Promise<T> {
    const index = this.calls.filter((call) => call.op === op).length;
    this.calls.push({ op, signal });
    return Promise.resolve().then(() => steps[Math.min(index, steps.length - 1)]());
  }

  url(key: string): string {
    return `test://bucket/${key}`;
  }
  head(_key: string, options?: CallOptions): Promise<ObjectInfo | null> {
    return this.#next(this.headSteps, "head", options?.signal);
  }
  list(_prefix: string, options?: CallOptions): Promise<ListPage> {
    return this.#next(this.listSteps, "list", options?.signal);
  }
  delete(_keys: readonly string[], options?: CallOptions): Promise<DeleteResult> {
    return this.#next(this.deleteSteps, "delete", options?.signal);
  }
  get(_key: string, options?: GetOptions): Promise<ReadableStream<Uint8Array> | null> {
    return this.#next(this.getSteps, "get", options?.signal);
  }
  put(_key: string, body: PutBody, options?: PutOptions): Promise<void> {
    assert.notEqual(typeof body, "function", "the policy hands backends a stream, not a factory");
    const index = this.calls.filter((call) => call.op === "put").length;
    this.calls.push({ op: "put", signal: options?.signal });
    const step = this.putSteps[Math.min(index, this.putSteps.length - 1)];
    return step(body as Uint8Array | ReadableStream<Uint8Array>);
  }
  count(op: string): number {
    return this.calls.filter((call) => call.op === op).length;
  }
}

const reset = (): never => {
  throw new Deno.errors.ConnectionReset("connection reset by peer");
};

function streamOf(...chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

/** A put step that consumes the body, then fails with `fail` (or stores the bytes). */
function consumeThen(store: ScriptedStore, fail?: () => never) {
  return async (body: Uint8Array | ReadableStream<Uint8Array>) => {
    const bytes = body instanceof Uint8Array ? body : await readAll(body);
    if (fail !== undefined) fail();
    store.stored.push(bytes);
  };
}

Deno.test("policy: transient failures are retried up to maxAttempts with full-jitter backoff", async () => {
  const { log, text: lines } = await captureLogger();
  const { runtime, store, wrapped } = scripted({ maxAttempts: 4 }, 0.5, log);
  store.headSteps = [reset];
  const error = await wrapped.head("wal_005/x.lzo").then(() => null, (e) => e);
  assert.ok(error instanceof StorageError);
  assert.equal(error.kind, "transient");
  assert.match(error.message, /^head "test:\/\/bucket\/wal_005\/x\.lzo": connection reset/);
  assert.match(error.message, /gave up after 4 attempts/);
  assert.ok(error.hint?.includes("WALE_RETRIES"));
  assert.equal(store.count("head"), 4);
  // random() = 0.5: half of 100, 200, 400 ms.
  assert.deepEqual(runtime.sleeps, [50, 100, 200]);
  const text = lines();
  assert.equal(
    text.split(`${RETRY_LOGGER_NAME} WARNING  MSG: retrying after a transient`).length,
    4,
  );
  assert.match(text, /DETAIL: Attempt 1\/4 failed: head "test:\/\/bucket\/wal_005\/x\.lzo": /);
  assert.match(text, /Waiting 0\.05 seconds before the next attempt\./);
  assert.match(text, /Attempt 3\/4 failed/);
  assert.doesNotMatch(text, /Attempt 4\/4/);
});

Deno.test("policy: the backoff ceiling doubles up to the cap", async () => {
  const { runtime, store, wrapped } = scripted({
    maxAttempts: 9,
    backoffBaseMs: 100,
    backoffCapMs: 1000,
  }, 0.999);
  store.listSteps = [reset];
  await assert.rejects(wrapped.list("wal_005/"), StorageError);
  const ceilings = runtime.sleeps.map((ms) => Math.round(ms / 0.999));
  assert.deepEqual(ceilings, [100, 200, 400, 800, 1000, 1000, 1000, 1000]);
});

Deno.test("policy: a call that succeeds after transient failures returns its value", async () => {
  const { runtime, store, wrapped } = scripted();
  const info = { key: "k", size: 3, lastModified: new Date(0) };
  store.headSteps = [reset, () => {
    throw new Deno.errors.TimedOut("timed out");
  }, () => info];
  assert.equal(await wrapped.head("k"), info);
  assert.equal(store.count("head"), 3);
  assert.equal(runtime.sleeps.length, 2);
});

Deno.test("policy: permanent, corrupt and unknown failures are never retried", async () => {
  const cases: [unknown, (error: unknown) => void][] = [
    [
      new StorageError("permanent", "access denied"),
      (e) => assert.equal((e as Error).message, "access denied"),
    ],
    [
      new StorageError("corrupt", "checksum mismatch"),
      (e) => assert.equal((e as StorageError).kind, "corrupt"),
    ],
    [new Deno.errors.PermissionDenied("EACCES"), (e) => {
      assert.ok(e instanceof StorageError);
      assert.equal(e.kind, "permanent");
      assert.match(e.message, /^get "test:\/\/bucket\/k": EACCES/);
    }],
    [new Error("a bug"), (e) => assert.equal((e as Error).message, "a bug")],
  ];
  for (const [thrown, check] of cases) {
    const { runtime, store, wrapped } = scripted();
    store.getSteps = [() => {
      throw thrown;
    }];
    const error = await wrapped.get("k").then(() => null, (e) => e);
    if (thrown instanceof StorageError || !(thrown instanceof Deno.errors.PermissionDenied)) {
      assert.equal(error, thrown, "passed on unchanged");
    }
    check(error);
    assert.equal(store.count("get"), 1, String(thrown));
    assert.deepEqual(runtime.sleeps, []);
  }
});

Deno.test("policy: maxAttempts 1 (WALE_RETRIES=1) makes exactly one attempt", async () => {
  const { runtime, store, wrapped } = scripted({ maxAttempts: 1 });
  store.deleteSteps = [reset];
  await assert.rejects(wrapped.delete(["a", "b"]), (error: unknown) => {
    assert.ok(error instanceof StorageError);
    assert.equal(error.kind, "transient");
    assert.match(error.message, /^delete 2 keys under "test:\/\/bucket\/"/);
    assert.match(error.message, /gave up after 1 attempt in/);
    return true;
  });
  assert.equal(store.count("delete"), 1);
  assert.deepEqual(runtime.sleeps, []);
});

Deno.test("policy: maxAttempts ≤ 0 retries until the time budget is spent, not forever", async () => {
  for (const maxAttempts of [0, -1]) {
    const budgetMs = 10_000;
    const { runtime, store, wrapped } = scripted(
      { maxAttempts, budgetMs, backoffBaseMs: 100, backoffCapMs: 1000 },
      0.999,
    );
    store.headSteps = [() => {
      runtime.time += 50; // each attempt takes 50 ms
      return reset();
    }];
    const error = await wrapped.head("k").then(() => null, (e) => e);
    assert.ok(error instanceof StorageError);
    assert.equal(error.kind, "transient");
    assert.match(error.message, /the time budget of 10 s for one storage operation is spent/);
    assert.ok(store.count("head") > 9, `${store.count("head")} attempts`);
    assert.ok(runtime.time <= budgetMs, `stopped at ${runtime.time} ms`);
    // The next wait would have crossed the budget.
    assert.ok(runtime.time + 999 >= budgetMs);
  }
});

Deno.test("policy: the budget also bounds an explicit large attempt count", async () => {
  const { runtime, store, wrapped } = scripted({ maxAttempts: 100, budgetMs: 60_000 }, 0.999);
  store.headSteps = [reset];
  await assert.rejects(wrapped.head("k"), /time budget of 60 s/);
  assert.ok(store.count("head") < 100);
  assert.ok(runtime.time < 60_000);
});

Deno.test("policy: a deadline aborts a call that never answers, and it is retried", async () => {
  const { store, wrapped } = scripted({ maxAttempts: 2, callTimeoutMs: 20 });
  store.headSteps = [() => new Promise<never>(() => {})];
  const started = performance.now();
  const error = await wrapped.head("wal_005/x.lzo").then(() => null, (e) => e);
  const elapsed = performance.now() - started;
  assert.ok(error instanceof StorageError);
  assert.equal(error.kind, "transient");
  assert.match(error.message, /timed out: no answer within 0\.02 s/);
  assert.equal(store.count("head"), 2);
  for (const call of store.calls) {
    assert.equal(call.signal?.aborted, true, "the backend's signal is aborted at the deadline");
  }
  assert.ok(elapsed >= 35 && elapsed < 2000, `took ${elapsed} ms`);
});

Deno.test("policy: deadlines cover list, delete and get until the stream opens", async () => {
  const hang = () => new Promise<never>(() => {});
  const { store, wrapped } = scripted({ maxAttempts: 1, callTimeoutMs: 10 });
  store.listSteps = [hang];
  store.deleteSteps = [hang];
  store.getSteps = [hang];
  await assert.rejects(wrapped.list(""), /list "test:\/\/bucket\/" timed out/);
  await assert.rejects(wrapped.delete(["k"]), /delete "test:\/\/bucket\/k" timed out/);
  await assert.rejects(wrapped.get("k"), /get "test:\/\/bucket\/k" timed out: did not start/);
});

Deno.test("policy: the deadline is clipped to what is left of the budget", async () => {
  const { store, wrapped } = scripted({ maxAttempts: 1, callTimeoutMs: 30_000, budgetMs: 15 });
  store.headSteps = [() => new Promise<never>(() => {})];
  await assert.rejects(wrapped.head("k"), /no answer within 0\.01 s/);
});

Deno.test("policy: an idle timeout aborts a stalled download; a slow consumer is not stalled", async () => {
  let cancelled: unknown = null;
  const { store, wrapped } = scripted({ idleTimeoutMs: 25, callTimeoutMs: 1000 });
  store.getSteps = [() =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array([1, 2, 3]));
        // ...and then nothing, ever.
      },
      cancel(reason) {
        cancelled = reason;
      },
    })];
  const stream = await wrapped.get("k");
  assert.ok(stream !== null);
  // Not reading for longer than the idle timeout is the consumer's business.
  await new Promise((resolve) => setTimeout(resolve, 60));
  const reader = stream.getReader();
  assert.deepEqual((await reader.read()).value, new Uint8Array([1, 2, 3]));
  const error = await reader.read().then(() => null, (e) => e);
  assert.ok(error instanceof StorageError);
  assert.equal(error.kind, "transient");
  assert.match(error.message, /get "test:\/\/bucket\/k" timed out: no bytes received for 0\.03 s/);
  assert.equal(cancelled, error, "the backend's stream is cancelled");
  assert.equal(store.calls[0].signal?.aborted, true, "and its signal aborted");
});

Deno.test("policy: download errors are classified; the stream ends normally otherwise", async () => {
  const { store, wrapped } = scripted({ idleTimeoutMs: 1000 });
  store.getSteps = [() => streamOf(new Uint8Array([7]), new Uint8Array([8, 9]))];
  assert.deepEqual(await readAll((await wrapped.get("k"))!), new Uint8Array([7, 8, 9]));

  store.getSteps = [() =>
    new ReadableStream<Uint8Array>({
      pull() {
        throw new Deno.errors.ConnectionReset("reset");
      },
    })];
  const error = await readAll((await wrapped.get("k"))!).then(() => null, (e) => e);
  assert.ok(error instanceof StorageError);
  assert.equal(error.kind, "transient");
  assert.match(error.message, /^get "test:\/\/bucket\/k": reset/);
});

Deno.test("policy: a factory body is re-created for each attempt", async () => {
  const { runtime, store, wrapped } = scripted();
  store.putSteps = [consumeThen(store, reset), consumeThen(store, reset), consumeThen(store)];
  let made = 0;
  const factory = () => {
    made++;
    return streamOf(new Uint8Array([made]), new Uint8Array([42]));
  };
  await wrapped.put("k", factory);
  assert.equal(made, 3);
  assert.equal(store.count("put"), 3);
  assert.deepEqual(store.stored, [new Uint8Array([3, 42])]);
  assert.equal(runtime.sleeps.length, 2);
});

Deno.test("policy: a one-shot stream body is not retried, and the error says why", async () => {
  const { runtime, store, wrapped } = scripted();
  store.putSteps = [consumeThen(store, reset), consumeThen(store)];
  const error = await wrapped.put("k", streamOf(new Uint8Array([1]))).then(() => null, (e) => e);
  assert.ok(error instanceof StorageError);
  assert.equal(error.kind, "transient");
  assert.match(error.message, /^put "test:\/\/bucket\/k": connection reset/);
  assert.match(error.message, /not retried: the upload body was a one-shot stream/);
  assert.match(error.message, /pass a function returning a fresh stream/);
  assert.equal(store.count("put"), 1);
  assert.deepEqual(runtime.sleeps, []);
});

Deno.test("policy: byte bodies are retried as they are", async () => {
  const { store, wrapped } = scripted();
  store.putSteps = [consumeThen(store, reset), consumeThen(store)];
  await wrapped.put("k", new Uint8Array([5, 6]));
  assert.deepEqual(store.stored, [new Uint8Array([5, 6])]);
  assert.equal(store.count("put"), 2);
});

Deno.test("policy: an idle timeout aborts an upload whose body stalls; the factory retries", async () => {
  const { store, wrapped } = scripted({ maxAttempts: 2, idleTimeoutMs: 20 });
  store.putSteps = [consumeThen(store)];
  const cancelled: unknown[] = [];
  let made = 0;
  const stalling = () => {
    made++;
    return new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array([1]));
      },
      cancel(reason) {
        cancelled.push(reason);
      },
    });
  };
  const error = await wrapped.put("k", stalling).then(() => null, (e) => e);
  assert.ok(error instanceof StorageError);
  assert.equal(error.kind, "transient");
  assert.match(error.message, /put "test:\/\/bucket\/k" timed out: no bytes sent for 0\.02 s/);
  assert.match(error.message, /gave up after 2 attempts/);
  assert.equal(made, 2);
  assert.equal(cancelled.length, 2, "each stalled body is cancelled");
  assert.deepEqual(store.stored, []);
});

Deno.test("policy: an upload that keeps moving is not cut off by the idle timeout", async () => {
  const { store, wrapped } = scripted({ maxAttempts: 1, idleTimeoutMs: 30 });
  store.putSteps = [consumeThen(store)];
  const body = () =>
    new ReadableStream<Uint8Array>({
      async pull(controller) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        controller.enqueue(new Uint8Array([1]));
        if (++sent === 12) controller.close();
      },
    });
  let sent = 0;
  await wrapped.put("k", body);
  assert.equal(store.stored[0].length, 12);
});

Deno.test("policy: a byte-stream body stays one: the backend's views reach the source", async () => {
  const { store, wrapped } = scripted({ maxAttempts: 1, idleTimeoutMs: 30 });
  const offered: number[] = []; // byte lengths of the buffers behind the views
  let stall = false;
  const body = () => {
    let sent = 0;
    return new ReadableStream({
      type: "bytes",
      async pull(controller) {
        const request = controller.byobRequest!;
        offered.push(request.view!.buffer.byteLength);
        if (stall && sent > 0) return await new Promise<void>(() => {});
        if (sent === 6) {
          controller.close();
          request.respond(0);
          return;
        }
        (request.view as Uint8Array).set([1, 2, 3]);
        request.respond(3);
        sent += 3;
      },
    });
  };
  // A backend reading with its own buffer (as the S3 multipart upload does).
  store.putSteps = [async (stream) => {
    const reader = (stream as ReadableStream<Uint8Array>).getReader({ mode: "byob" });
    let buffer = new Uint8Array(64);
    let filled = 0;
    for (;;) {
      const { value, done } = await reader.read(buffer.subarray(filled));
      buffer = new Uint8Array(value!.buffer);
      if (done) break;
      filled += value!.length;
    }
    store.stored.push(buffer.slice(0, filled));
  }];
  await wrapped.put("k", body);
  assert.deepEqual(store.stored[0], new Uint8Array([1, 2, 3, 1, 2, 3]));
  assert.ok(offered.length >= 3);
  for (const length of offered) assert.equal(length, 64, "the backend's buffer");
  // A backend reading chunks still gets them (allocated per read by the wrapper).
  store.putSteps = [consumeThen(store)];
  await wrapped.put("k2", body);
  assert.deepEqual(store.stored[1], new Uint8Array([1, 2, 3, 1, 2, 3]));
  // A byte source that stalls is cut off by the idle timeout like any other.
  stall = true;
  await assert.rejects(wrapped.put("k3", body), /timed out: no bytes sent for 0\.03 s/);
});

Deno.test("policy: a backend that never commits after reading the body times out", async () => {
  const { store, wrapped } = scripted({ maxAttempts: 1, idleTimeoutMs: 1000, callTimeoutMs: 15 });
  store.putSteps = [async (body) => {
    await readAll(body as ReadableStream<Uint8Array>);
    await new Promise<never>(() => {});
  }];
  await assert.rejects(
    wrapped.put("k", () => streamOf(new Uint8Array([1]))),
    /timed out: the upload was not committed within 0\.01 s/,
  );
});

Deno.test("policy: a caller's abort is passed on and never retried", async () => {
  const { store, wrapped } = scripted({ callTimeoutMs: 10_000 });
  const controller = new AbortController();
  store.headSteps = [() => new Promise<never>(() => {})];
  const pending = wrapped.head("k", { signal: controller.signal });
  const reason = new Error("stop");
  setTimeout(() => controller.abort(reason), 5);
  await assert.rejects(pending, (error) => error === reason);
  assert.equal(store.count("head"), 1);
  assert.equal(store.calls[0].signal?.aborted, true);
  await assert.rejects(wrapped.head("k", { signal: controller.signal }), (e) => e === reason);
});

Deno.test("policy: scheme and url come from the wrapped store", () => {
  const wrapped = withPolicy(new ScriptedStore());
  assert.equal(wrapped.scheme, "test");
  assert.equal(wrapped.url("a/b"), "test://bucket/a/b");
});

Deno.test("classifyError: transient, permanent, and hints", async () => {
  const transient = [
    new Deno.errors.TimedOut("t"),
    new Deno.errors.ConnectionReset("r"),
    new Deno.errors.ConnectionRefused("r"),
    new Deno.errors.BrokenPipe("p"),
    new Deno.errors.Interrupted("i"),
    new DOMException("deadline", "AbortError"),
    new DOMException("deadline", "TimeoutError"),
    Object.assign(new Error("Input/output error (os error 5)"), { code: "EIO" }),
    new TypeError("fetch failed", { cause: new Error("error sending request for url") }),
    new Error("wrapped", { cause: new Deno.errors.ConnectionReset("inner") }),
    new StorageError("transient", "503"),
  ];
  for (const error of transient) assert.equal(classifyError(error), "transient", String(error));
  const permanent = [
    new Deno.errors.PermissionDenied("p"),
    new Deno.errors.NotFound("n"),
    new Deno.errors.NotADirectory("n"),
    new Deno.errors.IsADirectory("i"),
    new Deno.errors.InvalidData("i"),
    new Error("unknown"),
    new TypeError("x is not a function"),
    "a string",
    null,
  ];
  for (const error of permanent) assert.equal(classifyError(error), "permanent", String(error));
  assert.equal(classifyError(new StorageError("corrupt", "bad")), "corrupt");

  // A real ENOSPC, from /dev/full.
  let enospc: unknown = null;
  try {
    const full = await Deno.open("/dev/full", { write: true });
    try {
      await full.write(new Uint8Array(1));
    } finally {
      full.close();
    }
  } catch (error) {
    enospc = error;
  }
  // Deno lets only --allow-all open /dev/full ("Requires all access"): without it, or where
  // writing to it does not fail, use an ENOSPC error of the same shape.
  const isEnospc = (e: unknown) => e instanceof Error && /No space left on device/.test(e.message);
  if (!isEnospc(enospc)) {
    console.log(`used a synthetic ENOSPC: /dev/full gave ${enospc ?? "no error"}`);
    enospc = Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
  }
  assert.equal(classifyError(enospc), "permanent");
  assert.match(hintForError(enospc) ?? "", /file system is full/);
  const wrapped = toStorageError(enospc, 'put "file:///a/b"');
  assert.equal(wrapped.kind, "permanent");
  assert.match(wrapped.message, /^put "file:\/\/\/a\/b": No space left on device/);
  assert.match(wrapped.hint ?? "", /Free space/);
});
