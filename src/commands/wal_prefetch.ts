/**
 * `wal-d wal-prefetch BASE_DIRECTORY SEGMENT`: internal, started detached by wal-fetch. Downloads
 * one segment into BASE_DIRECTORY/.wal-d/prefetch/ (atomically), holding a lock so that only one
 * process fetches a segment. Exit 0 when prefetched (or already being prefetched), 1 when the
 * segment is not in the archive, 2 on failure.
 *
 * @module
 */

import { UserError } from "../cli/errors.ts";
import type { Invocation } from "../cli/types.ts";
import { isSegmentName } from "../layout/mod.ts";
import type { Logger } from "../log/logger.ts";
import { openStore } from "../storage/mod.ts";
import { downloadWalFile } from "../wal/fetch.ts";
import { PrefetchDirectory } from "../wal/prefetch.ts";
import { asUserError, segmentSizeNear } from "./common.ts";

export async function run(inv: Invocation<"wal-prefetch">, log: Logger): Promise<number> {
  const { baseDirectory, segment } = inv.args;
  if (!isSegmentName(segment)) {
    throw new UserError(`"${segment}" is not a WAL segment name`, { exitCode: 2 });
  }
  const prefetchDir = new PrefetchDirectory(baseDirectory);
  if (!(await prefetchDir.lock(segment))) return 0;
  const prefetchLog = log.getLogger("wal_e.worker.prefetch");
  try {
    const store = await openStore(inv.config, log);
    const fields = { action: "wal-prefetch", prefix: inv.prefix.pathPrefix, seg: segment };
    prefetchLog.info("begin wal prefetch", { structured: { ...fields, state: "begin" } });
    const outcome = await downloadWalFile(segment, prefetchDir.pathOf(segment), {
      store,
      log: prefetchLog,
      pathPrefix: inv.prefix.pathPrefix,
      segmentSize: await segmentSizeNear(baseDirectory),
    });
    if (outcome === "not-found") return 1;
    prefetchLog.info("complete wal prefetch", { structured: { ...fields, state: "complete" } });
    return 0;
  } catch (error) {
    asUserError(error, 2);
  } finally {
    await prefetchDir.unlock(segment);
  }
}
