/**
 * wal-fetch: restore one WAL file from the archive into the path PostgreSQL gives.
 *
 * The destination is written atomically (temporary file in the same directory, fsync, rename),
 * so PostgreSQL never reads a partial file, not even when wal-fetch is killed midway. Every lzop
 * block checksum is verified while decoding, and a segment must decode to exactly the cluster's
 * wal_segment_size when that is known.
 *
 * @module
 */

import { LzopDecompressStream, LzopFormatError } from "../codec/lzop.ts";
import { writeFileAtomic } from "../io/atomic_file.ts";
import { classifyWalFileName, walKey } from "../layout/mod.ts";
import type { Logger } from "../log/logger.ts";
import { StorageError } from "../storage/types.ts";
import type { ObjectStore } from "../storage/types.ts";

/** What a wal-fetch needs. */
export interface WalFetchContext {
  store: ObjectStore;
  /** Logger for the restore lines. */
  log: Logger;
  /** The prefix's path, for the STRUCTURED `prefix=` field. */
  pathPrefix: string;
  /** The cluster's wal_segment_size when known: segments must decode to exactly this size. */
  segmentSize: number | null;
}

/** Outcome of a download. */
export type WalFetchOutcome = "restored" | "not-found";

/** A TransformStream that fails unless exactly `length` bytes pass through. */
function expectLength(
  length: number,
  what: string,
): TransformStream<Uint8Array, Uint8Array> {
  let seen = 0;
  return new TransformStream({
    transform(chunk, controller) {
      seen += chunk.length;
      if (seen > length) {
        controller.error(new StorageError("corrupt", `${what} is longer than ${length} bytes`));
        return;
      }
      controller.enqueue(chunk);
    },
    flush(controller) {
      if (seen !== length) {
        controller.error(
          new StorageError("corrupt", `${what} has ${seen} bytes where ${length} were expected`),
        );
      }
    },
  });
}

/** Downloads the archived WAL file `name` into `dest` atomically. */
export async function downloadWalFile(
  name: string,
  dest: string,
  context: WalFetchContext,
): Promise<WalFetchOutcome> {
  const key = walKey(name);
  const source = await context.store.get(key);
  if (source === null) return "not-found";
  let decoded = source.pipeThrough(new LzopDecompressStream());
  if (context.segmentSize !== null && classifyWalFileName(name) === "segment") {
    decoded = decoded.pipeThrough(expectLength(context.segmentSize, `archived segment ${name}`));
  }
  try {
    await writeFileAtomic(dest, decoded, { mode: 0o600 });
  } catch (error) {
    if (error instanceof LzopFormatError) {
      throw new StorageError(
        "corrupt",
        `archived WAL file "${context.store.url(key)}": ${error.message}`,
        {
          cause: error,
        },
      );
    }
    throw error;
  }
  return "restored";
}

/** Whether an error is worth another download attempt. */
function isTransient(error: unknown): boolean {
  return error instanceof StorageError && error.kind === "transient";
}

/**
 * {@linkcode downloadWalFile} with retries of transient failures that happen after the download
 * started (the store's policy already retries opening it).
 */
export async function downloadWalFileWithRetries(
  name: string,
  dest: string,
  context: WalFetchContext,
  attempts = 3,
): Promise<WalFetchOutcome> {
  for (let attempt = 1;; attempt++) {
    try {
      return await downloadWalFile(name, dest, context);
    } catch (error) {
      if (!isTransient(error) || attempt >= attempts) throw error;
      context.log.warning("retrying a WAL download after a transient error", {
        detail: `${name}: ${
          error instanceof Error ? error.message : error
        } (attempt ${attempt}/${attempts})`,
      });
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
}
