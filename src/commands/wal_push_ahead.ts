/** `wal-d wal-push-ahead WAL_DIRECTORY`: internal, started detached by wal-push. @module */

import type { Invocation } from "../cli/types.ts";
import type { Logger } from "../log/logger.ts";
import { openStore } from "../storage/mod.ts";
import { pushAheadLoop } from "../wal/push_ahead.ts";

export async function run(inv: Invocation<"wal-push-ahead">, log: Logger): Promise<number> {
  const store = await openStore(inv.config, log);
  await pushAheadLoop(inv.args.walDirectory, {
    store,
    log: log.getLogger("wal_e.worker.upload"),
    pathPrefix: inv.prefix.pathPrefix,
    prefixUrl: inv.prefix.url,
  }, {
    poolSize: inv.args.poolSize,
    markDone: inv.args.markDone,
    exclude: inv.args.exclude,
    lockHeld: inv.args.lockHeld,
  });
  return 0;
}
