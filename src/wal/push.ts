/**
 * wal-push: archive one WAL file as `wal_005/<name>.lzo`, and push other segments that are ready
 * at the same time (`--pool-size`).
 *
 * Guarantees:
 * - success is reported only once the object is durably stored (the store's put resolves after
 *   the data is safe: fsync on file://, a completed upload on object stores);
 * - an object already archived with the same content is not rewritten; one with different content
 *   is never overwritten (wal-push fails, and PostgreSQL keeps the segment and retries);
 * - segments pushed ahead of PostgreSQL's request are recorded in `pg_wal/.wal-d/pushed/`, so its
 *   later call for them returns after a local check. Their `.ready` files are left alone unless
 *   `--mark-done` asks for WAL-E's renaming (which hides them from a second archiver).
 *
 * @module
 */

import { dirname, join } from "../io/path.ts";
import { UserError } from "../cli/errors.ts";
import { LzopDecompressStream, LzopFormatError } from "../codec/lzop.ts";
import { openLzopFileReadable } from "../codec/lzop_file.ts";
import { LzopCompressionPool } from "../codec/lzop_pool.ts";
import { streamsEqual } from "../io/compare.ts";
import { openFileReadable } from "../io/file_stream.ts";
import { walKey } from "../layout/mod.ts";
import type { Logger } from "../log/logger.ts";
import type { ObjectStore } from "../storage/types.ts";
import {
  answeredFromLedger,
  inspectWalFile,
  PushAheadState,
  PushLedger,
  unarchivedReadyNames,
  type WalFile,
} from "./status.ts";
import { errorMessage } from "../io/error_message.ts";

/** What a wal-push needs. */
export interface WalPushContext {
  store: ObjectStore;
  /** Logger for the upload lines (WAL-E: `wal_e.worker.upload`). */
  log: Logger;
  /** The prefix's path, for the STRUCTURED `prefix=` field. */
  pathPrefix: string;
  /** The configured prefix URL: ledger entries are valid only for the prefix they name. */
  prefixUrl: string;
  /** Produces a file's lzop stream; default: compress on this thread. */
  compress?: (path: string) => ReadableStream<Uint8Array>;
}

/** Outcome of archiving one file. */
export type WalPushOutcome = "uploaded" | "already-archived";

/** Archives one WAL file; see the module documentation for the guarantees. */
export async function pushWalFile(
  file: WalFile,
  context: WalPushContext,
): Promise<WalPushOutcome> {
  const { path, name } = file;
  const { store, log } = context;
  const key = walKey(name);
  const url = store.url(key);
  const fields = { action: "push-wal", key: url, prefix: context.pathPrefix, seg: name };

  if (await store.head(key)) {
    if (await archivedCopyMatches(path, key, context)) {
      log.info("skipping a WAL file that is already archived with the same content", {
        detail: `"${url}" already holds the contents of "${path}".`,
        structured: { ...fields, state: "skip" },
      });
      return "already-archived";
    }
    throw new UserError("refusing to overwrite an archived WAL file with different content", {
      detail: `"${url}" already exists and does not match "${path}".`,
      hint: "Another server may be archiving into the same prefix (two clusters, or a promoted " +
        "standby on the same timeline). Give each cluster its own prefix; wal-push overwrites nothing.",
    });
  }

  log.info("begin archiving a file", {
    detail: `Uploading "${path}" to "${url}".`,
    structured: { ...fields, state: "begin" },
  });
  const started = performance.now();
  // A factory, so that the storage policy can retry the upload from the start of the file.
  const compress = context.compress ?? openLzopFileReadable;
  await store.put(key, () => compress(path));
  const seconds = Math.max((performance.now() - started) / 1000, 1e-6);
  const rate = (file.info.size / 1024 / seconds).toFixed(1);
  log.info("completed archiving to a file", {
    detail: `Archiving to "${url}" complete at ${rate}KiB/s.`,
    structured: { ...fields, rate, state: "complete" },
  });
  return "uploaded";
}

/** Whether the archived object decodes to exactly the bytes of the local file. */
async function archivedCopyMatches(
  path: string,
  key: string,
  context: WalPushContext,
): Promise<boolean> {
  const archived = await context.store.get(key);
  if (archived === null) return false;
  try {
    return await streamsEqual(
      archived.pipeThrough(new LzopDecompressStream()),
      await openFileReadable(path),
    );
  } catch (error) {
    if (error instanceof LzopFormatError) {
      throw new UserError("refusing to overwrite an archived WAL file that cannot be read", {
        detail: `"${context.store.url(key)}" exists but is not readable: ${error.message}`,
        hint: "Inspect the object (it may be encrypted with a key that is not configured, or " +
          "damaged); wal-push overwrites nothing.",
      });
    }
    throw error;
  }
}

/** Options of {@linkcode archiveWalFile}. */
export interface ArchiveOptions {
  /** Uploads at once, the requested file included (`--pool-size`). */
  poolSize: number;
  /** Rename `.ready` to `.done` for files pushed ahead, as WAL-E does (`--mark-done`). */
  markDone: boolean;
  /**
   * Starts the background pusher for the other ready files of `walDir` (all but `exclude`);
   * returns false if it could not, and the files are then pushed in this process.
   */
  startPushAhead?: (walDir: string, exclude: string) => boolean;
}

/** How long a call waits for a background pusher to archive its file before doing it itself. */
const PUSH_AHEAD_WAIT_MS = 120_000;

/**
 * The wal-push command's work: resolves once `path` is durably archived. With a pool larger than
 * one, the other files PostgreSQL has marked ready are pushed ahead, oldest first: by a
 * background `wal-push-ahead` process when `startPushAhead` is given (so that PostgreSQL's calls
 * overlap with the work), else in this process. A failure to push another file never fails this
 * call. The caller has already checked the ledger for `file` (see src/commands/wal_push.ts, which
 * does so before loading the storage modules).
 */
export async function archiveWalFile(
  file: WalFile,
  context: WalPushContext,
  options: ArchiveOptions,
): Promise<void> {
  const { path, name, info } = file;
  const walDir = dirname(path);
  const ledger = new PushLedger(walDir);

  // A background pusher may be archiving this very file: wait for it rather than do it twice.
  const pushAhead = new PushAheadState(walDir);
  if (await pushAhead.isActive()) {
    const deadline = Date.now() + PUSH_AHEAD_WAIT_MS;
    while (Date.now() < deadline && await pushAhead.isActive()) {
      if (await pushAhead.takeFailure(name)) break;
      if (await answeredFromLedger(ledger, name, info, context)) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    if (await answeredFromLedger(ledger, name, info, context)) return;
  }

  let extras: string[] = [];
  if (options.poolSize > 1) {
    extras = await unarchivedReadyNames(walDir, ledger, context.prefixUrl, {
      skip: (candidate) => candidate === name,
      limit: options.poolSize - 1,
    });
    if (extras.length > 0 && options.startPushAhead) {
      // Take the pusher lock here and hand it to the child: a call that PostgreSQL makes while
      // the child is still starting then sees an active pusher and waits, instead of pushing
      // the same file in parallel. If another pusher holds the lock, it picks these files up.
      if (!(await pushAhead.acquire())) extras = [];
      else if (options.startPushAhead(walDir, name)) extras = [];
      else await pushAhead.release();
    }
  }

  // With files to push here, compress on every core (the requested file on this thread first).
  const pool = extras.length > 0 ? new LzopCompressionPool() : undefined;
  const pushContext: WalPushContext = pool
    ? { ...context, compress: (file) => pool.compressFile(file) }
    : context;
  const pushOne = (extra: string) => pushAheadOne(walDir, extra, pushContext, ledger, options);
  let results: PromiseSettledResult<unknown>[];
  try {
    results = await Promise.allSettled([pushWalFile(file, pushContext), ...extras.map(pushOne)]);
  } finally {
    pool?.close();
  }
  results.slice(1).forEach((result, i) => {
    if (result.status === "rejected") warnPushAheadFailed(context.log, extras[i], result.reason);
  });
  await ledger.prune().catch(() => {});
  if (results[0].status === "rejected") throw results[0].reason;
}

/** Pushes one file ahead of PostgreSQL's call, then records it (or renames its .ready). */
export async function pushAheadOne(
  walDir: string,
  name: string,
  context: WalPushContext,
  ledger: PushLedger,
  options: { markDone: boolean },
): Promise<void> {
  const file = await inspectWalFile(join(walDir, name));
  await pushWalFile(file, context);
  if (options.markDone) {
    const status = join(walDir, "archive_status");
    await Deno.rename(join(status, `${name}.ready`), join(status, `${name}.done`));
  } else {
    await ledger.record(name, file.info, context.prefixUrl, walKey(name));
  }
}

/** Logs that a file could not be pushed ahead (PostgreSQL will ask for it; nothing is lost). */
export function warnPushAheadFailed(log: Logger, name: string, reason: unknown): void {
  log.warning("could not push a ready WAL file ahead of time", {
    detail: `${name}: ${errorMessage(reason)}`,
    hint: "PostgreSQL will ask for it again; nothing is lost.",
  });
}
