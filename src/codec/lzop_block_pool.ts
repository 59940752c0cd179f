/**
 * Compressing lzop blocks on every core: a pool of Web Workers, each with its own LZO1X codec,
 * that compress single 256 KiB blocks handed to them with their input and output buffers
 * (transferred both ways, never copied or allocated per block).
 *
 * lzop blocks are independent (each is compressed on its own and carries its own checksum), so
 * one stream's blocks can be compressed in parallel and written in order: a base backup volume is
 * compressed on all cores while its tar bytes are produced on the main thread.
 *
 * @module
 */

import { LZO_BLOCK_MAX } from "./lzo.ts";
import { LZOP_BLOCK_BOUND } from "./lzop_block.ts";
import type { BlockReply, BlockRequest } from "./lzop_block_worker.ts";

/** Compressors worth running here: one per core. */
function defaultBlockWorkers(): number {
  return Math.max(1, navigator.hardwareConcurrency ?? 2);
}

/**
 * A pair of buffers for one block: `input` holds up to {@linkcode LZO_BLOCK_MAX} bytes to
 * compress, `output` receives the encoded block ({@linkcode LZOP_BLOCK_BOUND} bytes). Passing a
 * slot to {@linkcode LzopBlockPool.compress} detaches both arrays until it resolves; use the
 * arrays of the resolved slot afterwards.
 */
export interface BlockSlot {
  input: Uint8Array;
  output: Uint8Array;
}

/** A new pair of block buffers. */
export function newBlockSlot(): BlockSlot {
  return { input: new Uint8Array(LZO_BLOCK_MAX), output: new Uint8Array(LZOP_BLOCK_BOUND) };
}

interface Pending {
  resolve(result: { slot: BlockSlot; size: number }): void;
  reject(error: Error): void;
  worker: WorkerState;
}

interface WorkerState {
  worker: Worker;
  pending: number;
}

/** A pool of block-compressing workers, started on first use. */
export class LzopBlockPool {
  readonly #size: number;
  readonly #workers: WorkerState[] = [];
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;

  constructor(workers: number = defaultBlockWorkers()) {
    if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`bad worker count`);
    this.#size = workers;
  }

  /**
   * Compresses `slot.input[0..length)` (1 to {@linkcode LZO_BLOCK_MAX} bytes) into an lzop block;
   * resolves with the slot (new arrays over the same memory) and the block's size in
   * `slot.output`. Blocks are compressed in parallel; callers keep their own order.
   */
  compress(slot: BlockSlot, length: number): Promise<{ slot: BlockSlot; size: number }> {
    if (this.#closed) return Promise.reject(new Error("the block compression pool is closed"));
    if (length < 1 || length > LZO_BLOCK_MAX || slot.input.byteLength < length) {
      return Promise.reject(new RangeError(`bad block length ${length}`));
    }
    const state = this.#leastBusy();
    const id = this.#nextId++;
    const input = slot.input.buffer as ArrayBuffer;
    const output = slot.output.buffer as ArrayBuffer;
    const request: BlockRequest = { id, input, length, output };
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, worker: state });
      state.pending++;
      state.worker.postMessage(request, [input, output]);
    });
  }

  /** Stops the workers; blocks still being compressed are rejected. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const state of this.#workers) state.worker.terminate();
    this.#workers.length = 0;
    for (const pending of this.#pending.values()) {
      pending.reject(new Error("the block compression pool was closed"));
    }
    this.#pending.clear();
  }

  #leastBusy(): WorkerState {
    let best = this.#workers.find((state) => state.pending === 0);
    if (best === undefined && this.#workers.length < this.#size) best = this.#start();
    if (best === undefined) {
      best = this.#workers.reduce((a, b) => (b.pending < a.pending ? b : a));
    }
    return best;
  }

  #start(): WorkerState {
    const worker = new Worker(new URL("./lzop_block_worker.ts", import.meta.url).href, {
      type: "module",
    });
    const state: WorkerState = { worker, pending: 0 };
    worker.onmessage = (event: MessageEvent<BlockReply>) => {
      const reply = event.data;
      const pending = this.#pending.get(reply.id);
      if (pending === undefined) return;
      this.#pending.delete(reply.id);
      state.pending--;
      const slot = { input: new Uint8Array(reply.input), output: new Uint8Array(reply.output) };
      if (reply.error !== undefined) pending.reject(new Error(reply.error));
      else pending.resolve({ slot, size: reply.size! });
    };
    worker.onerror = (event) => {
      event.preventDefault();
      const error = new Error(`a compression worker failed: ${event.message}`);
      for (const [id, pending] of this.#pending) {
        if (pending.worker === state) {
          this.#pending.delete(id);
          pending.reject(error);
        }
      }
      state.pending = 0;
      worker.terminate();
      this.#workers.splice(this.#workers.indexOf(state), 1);
    };
    this.#workers.push(state);
    return state;
  }
}
