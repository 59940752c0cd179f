/**
 * `wal-d wal-fetch WAL_SEGMENT WAL_DESTINATION`: PostgreSQL's restore_command.
 *
 * Exit 0 when the file is restored, 1 when it is not in the archive (an INFO line: PostgreSQL
 * asks for files that do not exist as part of normal recovery), 2 on any other failure. The
 * destination is written atomically, so no exit leaves a partial file behind.
 *
 * A segment already prefetched is only renamed into place: the store (for S3, the AWS SDK) and the
 * codec are loaded after that check, when there is something to download.
 *
 * @module
 */

import { dirname, isAbsolute, resolve } from "../io/path.ts";
import { spawnSelfDetached } from "../cli/reinvoke.ts";
import { UserError } from "../cli/errors.ts";
import type { Invocation } from "../cli/types.ts";
import { objectUrl } from "../config/prefix.ts";
import {
  classifyWalFileName,
  DEFAULT_WAL_SEGMENT_SIZE,
  segmentsAfter,
  walKey,
} from "../layout/mod.ts";
import type { Logger } from "../log/logger.ts";
import { PrefetchDirectory } from "../wal/prefetch.ts";
import { asUserError, segmentSizeNear } from "./common.ts";

/** Exit code for every failure other than "not in the archive". */
const FAILURE = 2;
/** How long to wait for a prefetch of the requested segment that is under way. */
const RUNNING_PREFETCH_WAIT_MS = 30_000;

export async function run(inv: Invocation<"wal-fetch">, log: Logger): Promise<number> {
  const { walSegment: name, walDestination: dest, prefetch } = inv.args;
  const fetchLog = log.getLogger("wal_e.operator.backup");
  try {
    const kind = classifyWalFileName(name);
    if (kind === null) {
      throw new UserError(`"${name}" is not the name of a WAL file`, {
        hint: "Use restore_command = 'wal-d wal-fetch %f %p'.",
        exitCode: FAILURE,
      });
    }
    const walDir = dirname(dest);
    const segmentSize = await segmentSizeNear(walDir);
    const url = objectUrl(inv.prefix, walKey(name));
    const fields = { action: "wal-fetch", key: url, prefix: inv.prefix.pathPrefix, seg: name };
    const prefetchDir = new PrefetchDirectory(walDir);
    const upcoming = prefetch > 0 && kind === "segment"
      ? segmentsAfter(name, prefetch, segmentSize ?? DEFAULT_WAL_SEGMENT_SIZE)
      : [];

    if (upcoming.length > 0) {
      if (await prefetchDir.isRunning(name)) {
        await prefetchDir.waitWhileRunning(name, RUNNING_PREFETCH_WAIT_MS);
      }
      if (await prefetchDir.promote(name, dest, segmentSize)) {
        log.getLogger("wal_e.worker.prefetch").info("promoted prefetched wal segment", {
          structured: fields,
        });
        await startPrefetches(inv, prefetchDir, walDir, upcoming);
        return 0;
      }
    }

    const [{ openStore }, { downloadWalFileWithRetries }] = await Promise.all([
      import("../storage/mod.ts"),
      import("../wal/fetch.ts"),
    ]);
    const store = await openStore(inv.config, log);
    fetchLog.info("begin wal restore", { structured: { ...fields, state: "begin" } });
    const outcome = await downloadWalFileWithRetries(name, dest, {
      store,
      log: fetchLog,
      pathPrefix: inv.prefix.pathPrefix,
      segmentSize,
    });
    if (outcome === "not-found") {
      fetchLog.info("WAL file is not in the archive", {
        detail: `"${url}" does not exist.`,
        structured: { ...fields, state: "not-found" },
      });
      return 1;
    }
    fetchLog.info("complete wal restore", { structured: { ...fields, state: "complete" } });
    if (upcoming.length > 0) await startPrefetches(inv, prefetchDir, walDir, upcoming);
    return 0;
  } catch (error) {
    asUserError(error, FAILURE);
  }
}

/** Starts a detached `wal-prefetch` process for each upcoming segment not already handled. */
async function startPrefetches(
  inv: Invocation<"wal-fetch">,
  prefetchDir: PrefetchDirectory,
  walDir: string,
  upcoming: string[],
): Promise<void> {
  await prefetchDir.ensure();
  await prefetchDir.cleanup(new Set(upcoming));
  const base = isAbsolute(walDir) ? walDir : resolve(walDir);
  for (const segment of upcoming) {
    if (await prefetchDir.isPresentOrRunning(segment)) continue;
    // Prefetching is an optimisation: without it the next wal-fetch downloads in-band.
    if (!spawnSelfDetached(inv.globals, ["wal-prefetch", base, segment], false)) return;
  }
}
