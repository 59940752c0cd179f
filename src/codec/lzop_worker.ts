/**
 * Worker side of {@linkcode LzopCompressionPool}: compresses whole files into lzop streams with
 * its own codec instance and hands the blocks to the main thread (transferred, not copied).
 *
 * Protocol (main -> worker): `{ type: "start", id, path }`, `{ type: "credit", id, blocks }`,
 * `{ type: "cancel", id }`. Worker -> main: `{ type: "chunk", id, data }`, `{ type: "end", id }`,
 * `{ type: "error", id, name, message }`. A worker sends a chunk only against a credit, so the
 * main thread bounds how much compressed data waits in memory.
 *
 * @module
 */

/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />

import { openLzopFile } from "./lzop_file.ts";
import { errorMessage } from "../io/error_message.ts";

/** Messages the main thread sends. */
export type ToWorker =
  | { type: "start"; id: number; path: string }
  | { type: "credit"; id: number; blocks: number }
  | { type: "cancel"; id: number };

/** Messages the worker sends. */
export type FromWorker =
  | { type: "chunk"; id: number; data: Uint8Array }
  | { type: "end"; id: number }
  | { type: "error"; id: number; name: string; message: string };

interface Job {
  reader?: ReadableStreamDefaultReader<Uint8Array>;
  credits: number;
  pumping: boolean;
  cancelled: boolean;
}

const jobs = new Map<number, Job>();

function post(message: FromWorker, transfer: Transferable[] = []): void {
  self.postMessage(message, transfer);
}

function fail(id: number, error: unknown): void {
  jobs.delete(id);
  const name = error instanceof Error ? error.name : "Error";
  const message = errorMessage(error);
  post({ type: "error", id, name, message });
}

async function pump(id: number): Promise<void> {
  const job = jobs.get(id);
  if (!job || job.pumping || !job.reader) return;
  job.pumping = true;
  try {
    while (job.credits > 0 && !job.cancelled) {
      const { done, value } = await job.reader.read();
      if (done) {
        jobs.delete(id);
        post({ type: "end", id });
        return;
      }
      job.credits--;
      // Blocks are fresh arrays from the encoder; copy only if one is a view into a larger buffer.
      const owned = value.byteOffset === 0 && value.byteLength === value.buffer.byteLength
        ? value
        : value.slice();
      post({ type: "chunk", id, data: owned }, [owned.buffer as ArrayBuffer]);
    }
  } catch (error) {
    fail(id, error);
  } finally {
    job.pumping = false;
  }
}

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  switch (message.type) {
    case "start": {
      const job: Job = { credits: 0, pumping: false, cancelled: false };
      jobs.set(message.id, job);
      try {
        job.reader = (await openLzopFile(message.path)).getReader();
      } catch (error) {
        fail(message.id, error);
        return;
      }
      await pump(message.id);
      break;
    }
    case "credit": {
      const job = jobs.get(message.id);
      if (!job) return;
      job.credits += message.blocks;
      await pump(message.id);
      break;
    }
    case "cancel": {
      const job = jobs.get(message.id);
      if (!job) return;
      job.cancelled = true;
      jobs.delete(message.id);
      await job.reader?.cancel().catch(() => {});
      break;
    }
  }
};
