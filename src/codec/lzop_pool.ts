/**
 * Compressing several files into lzop streams on all cores.
 *
 * One JavaScript thread compresses about 400 MB/s; a backlog of WAL segments (or, later, backup
 * volumes) should use every core, as parallel `lzop` processes would. The pool runs each file on
 * one executor: the main thread itself (no start-up cost: the first file never waits for a
 * worker) or one of up to `workers` Web Workers, started only when a second file is queued.
 * Executors take files in the order they were asked for.
 *
 * Each file's stream has back-pressure: a worker sends a block only when the consumer has room
 * (a few blocks of credit), so a slow upload bounds the memory held.
 *
 * @module
 */

import { openLzopFileReadable } from "./lzop_file.ts";
import type { FromWorker, ToWorker } from "./lzop_worker.ts";

/** Blocks a worker may send ahead of the consumer (each at most ~256 KiB). */
const CREDIT_BLOCKS = 4;

/** Workers that make sense on this machine: one per core besides the main thread. */
function defaultWorkerCount(): number {
  return Math.max(1, (navigator.hardwareConcurrency ?? 2) - 1);
}

interface Task {
  path: string;
  /** Called with the stream that produces this file's lzop bytes, once an executor takes it. */
  start(source: ReadableStream<Uint8Array>): void;
  cancelled: boolean;
}

interface WorkerSlot {
  worker: Worker;
  busy: boolean;
}

/** A pool of lzop compressors: the main thread plus lazily started workers. */
export class LzopCompressionPool {
  readonly #maxWorkers: number;
  readonly #workers: WorkerSlot[] = [];
  readonly #queue: Task[] = [];
  readonly #handlers = new Map<number, (message: FromWorker) => void>();
  #inlineBusy = false;
  #nextId = 1;
  #closed = false;

  constructor(maxWorkers: number = defaultWorkerCount()) {
    this.#maxWorkers = maxWorkers;
  }

  /** The lzop compression of the file at `path`, as `lzop -c < file` writes it. */
  compressFile(path: string): ReadableStream<Uint8Array> {
    if (this.#closed) throw new Error("the compression pool is closed");
    let source: ReadableStreamDefaultReader<Uint8Array> | undefined;
    let resolveStarted!: () => void;
    const started = new Promise<void>((resolve) => (resolveStarted = resolve));
    const task: Task = {
      path,
      cancelled: false,
      start: (stream) => {
        source = stream.getReader();
        resolveStarted();
      },
    };
    this.#queue.push(task);
    this.#schedule();
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        await started;
        const { done, value } = await source!.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      async cancel(reason) {
        task.cancelled = true;
        resolveStarted();
        await source?.cancel(reason);
      },
    }, { highWaterMark: 0 });
  }

  /**
   * Stops the workers; streams still running on them, or still waiting for an executor, error
   * (one running on the main thread goes on to its end).
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const slot of this.#workers) slot.worker.terminate();
    this.#workers.length = 0;
    const message = "the compression pool was closed";
    for (const task of this.#queue.splice(0)) {
      task.start(
        new ReadableStream({ start: (controller) => controller.error(new Error(message)) }),
      );
    }
    for (const [id, handler] of this.#handlers) {
      handler({ type: "error", id, name: "Error", message });
    }
  }

  #schedule(): void {
    while (this.#queue.length > 0) {
      if (this.#queue[0].cancelled) {
        this.#queue.shift();
        continue;
      }
      if (!this.#inlineBusy) {
        this.#runInline(this.#queue.shift()!);
        continue;
      }
      let slot = this.#workers.find((w) => !w.busy);
      if (!slot && this.#workers.length < this.#maxWorkers) slot = this.#startWorker();
      if (!slot) return;
      this.#runOnWorker(slot, this.#queue.shift()!);
    }
  }

  #runInline(task: Task): void {
    this.#inlineBusy = true;
    const inner = openLzopFileReadable(task.path).getReader();
    const release = () => {
      this.#inlineBusy = false;
      this.#schedule();
    };
    task.start(
      new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            const { done, value } = await inner.read();
            if (done) {
              controller.close();
              release();
            } else controller.enqueue(value);
          } catch (error) {
            controller.error(error);
            release();
          }
        },
        async cancel(reason) {
          await inner.cancel(reason);
          release();
        },
      }, { highWaterMark: 0 }),
    );
  }

  #startWorker(): WorkerSlot {
    const worker = new Worker(new URL("./lzop_worker.ts", import.meta.url).href, {
      type: "module",
    });
    worker.onmessage = (event: MessageEvent<FromWorker>) => {
      this.#handlers.get(event.data.id)?.(event.data);
    };
    const slot: WorkerSlot = { worker, busy: false };
    this.#workers.push(slot);
    return slot;
  }

  #runOnWorker(slot: WorkerSlot, task: Task): void {
    slot.busy = true;
    const id = this.#nextId++;
    const send = (message: ToWorker) => slot.worker.postMessage(message);
    const chunks: Uint8Array[] = [];
    let finished = false;
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    const release = () => {
      this.#handlers.delete(id);
      slot.busy = false;
      this.#schedule();
    };
    this.#handlers.set(id, (message) => {
      if (message.type === "chunk") chunks.push(message.data);
      else if (message.type === "end") {
        finished = true;
        release();
      } else {
        failure = rebuildError(message.name, message.message);
        finished = true;
        release();
      }
      wake?.();
    });
    send({ type: "start", id, path: task.path });
    send({ type: "credit", id, blocks: CREDIT_BLOCKS });
    task.start(
      new ReadableStream<Uint8Array>({
        async pull(controller) {
          while (chunks.length === 0 && !finished) {
            await new Promise<void>((resolve) => (wake = resolve));
          }
          if (chunks.length > 0) {
            controller.enqueue(chunks.shift()!);
            send({ type: "credit", id, blocks: 1 });
          } else if (failure) controller.error(failure);
          else controller.close();
        },
        cancel() {
          if (!finished) {
            send({ type: "cancel", id });
            finished = true;
            release();
          }
        },
      }, { highWaterMark: 0 }),
    );
  }
}

/** Recreates a worker's error, keeping Deno's error classes (e.g. `Deno.errors.NotFound`). */
function rebuildError(name: string, message: string): Error {
  const DenoError =
    (Deno.errors as unknown as Record<string, (new (m: string) => Error) | undefined>)[
      name
    ];
  const error = DenoError ? new DenoError(message) : new Error(message);
  if (!DenoError) error.name = name;
  return error;
}
