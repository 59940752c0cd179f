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

import { basename, dirname, join } from "node:path";
import { UserError } from "../cli/errors.ts";
import { LzopDecompressStream, LzopFormatError } from "../codec/lzop.ts";
import { openLzopFileReadable } from "../codec/lzop_file.ts";
import { LzopCompressionPool } from "../codec/lzop_pool.ts";
import { streamsEqual } from "../io/compare.ts";
import { openFileReadable } from "../io/file_stream.ts";
import { classifyWalFileName, walKey } from "../layout/mod.ts";
import type { Logger } from "../log/logger.ts";
import type { ObjectStore } from "../storage/types.ts";
import { PushLedger, readyWalNames } from "./status.ts";

/** What a wal-push needs. */
export interface WalPushContext {
  store: ObjectStore;
  /** Logger for the upload lines (WAL-E: `wal_e.worker.upload`). */
  log: Logger;
  /** The prefix's path, for the STRUCTURED `prefix=` field. */
  pathPrefix: string;
  /** Produces a file's lzop stream; default: compress on this thread. */
  compress?: (path: string) => ReadableStream<Uint8Array>;
}

/** Outcome of archiving one file. */
export type WalPushOutcome = "uploaded" | "already-archived";

/** Checks that `path` names a WAL file and can be read; returns its name and stat. */
export async function inspectWalFile(path: string): Promise<{ name: string; info: Deno.FileInfo }> {
  const name = basename(path);
  if (classifyWalFileName(name) === null) {
    throw new UserError(`"${name}" is not the name of a WAL file`, {
      detail:
        `wal-push archives WAL segments, .history, .backup and .partial files; got "${path}".`,
      hint: "Use archive_command = 'wal-d wal-push %p' so PostgreSQL passes the file's path.",
    });
  }
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new UserError("could not find file for wal-push", {
        detail: `The file "${path}" does not exist.`,
        hint: "wal-push takes the path PostgreSQL passes as %p, relative to the data directory.",
      });
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new UserError("could not read file for wal-push", {
        detail: `Permission denied reading "${path}".`,
        hint: "Run wal-push as the operating system user that runs PostgreSQL.",
      });
    }
    throw error;
  }
  if (!info.isFile) {
    throw new UserError("wal-push needs a regular file", {
      detail: `"${path}" is not a regular file.`,
    });
  }
  return { name, info };
}

/** Archives one WAL file; see the module documentation for the guarantees. */
export async function pushWalFile(path: string, context: WalPushContext): Promise<WalPushOutcome> {
  const { name } = await inspectWalFile(path);
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
  const size = (await Deno.stat(path)).size;
  const seconds = Math.max((performance.now() - started) / 1000, 1e-6);
  const rate = (size / 1024 / seconds).toFixed(1);
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
}

/**
 * The wal-push command's work: archive `path` and, with a pool larger than one, other WAL files
 * PostgreSQL has marked ready, oldest first. Resolves when `path` is durably archived; a failure
 * to push another file is logged and does not fail the call.
 */
export async function archiveWalFile(
  path: string,
  context: WalPushContext,
  options: ArchiveOptions,
): Promise<void> {
  const { name, info } = await inspectWalFile(path);
  const walDir = dirname(path);
  const ledger = new PushLedger(walDir);

  if (await ledger.matches(name, info)) {
    context.log.info("WAL file was already archived by an earlier wal-push", {
      detail: `"${path}" was pushed ahead of PostgreSQL's request for it.`,
      structured: {
        action: "push-wal",
        key: context.store.url(walKey(name)),
        prefix: context.pathPrefix,
        seg: name,
        state: "skip",
      },
    });
    await ledger.forget(name);
    return;
  }

  const extras: string[] = [];
  if (options.poolSize > 1) {
    for (const candidate of await readyWalNames(walDir)) {
      if (extras.length >= options.poolSize - 1) break;
      if (candidate === name) continue;
      const candidateInfo = await statOrNull(join(walDir, candidate));
      if (candidateInfo === null || await ledger.matches(candidate, candidateInfo)) continue;
      extras.push(candidate);
    }
  }

  // With files to push ahead, compress on every core (the requested file on this thread first).
  const pool = extras.length > 0 ? new LzopCompressionPool() : undefined;
  const pushContext: WalPushContext = pool
    ? { ...context, compress: (file) => pool.compressFile(file) }
    : context;

  const pushAhead = async (extra: string) => {
    const extraPath = join(walDir, extra);
    const before = await Deno.stat(extraPath);
    await pushWalFile(extraPath, pushContext);
    if (options.markDone) {
      const status = join(walDir, "archive_status");
      await Deno.rename(join(status, `${extra}.ready`), join(status, `${extra}.done`));
    } else {
      await ledger.record(extra, before, walKey(extra));
    }
  };

  let results: PromiseSettledResult<unknown>[];
  try {
    results = await Promise.allSettled([pushWalFile(path, pushContext), ...extras.map(pushAhead)]);
  } finally {
    pool?.close();
  }
  results.slice(1).forEach((result, i) => {
    if (result.status === "rejected") {
      context.log.warning("could not push a ready WAL file ahead of time", {
        detail: `${extras[i]}: ${messageOf(result.reason)}`,
        hint: "PostgreSQL will ask for it again; nothing is lost.",
      });
    }
  });
  await ledger.prune().catch(() => {});
  if (results[0].status === "rejected") throw results[0].reason;
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch {
    return null;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
