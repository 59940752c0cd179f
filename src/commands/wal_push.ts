/** `wal-d wal-push WAL_SEGMENT`: PostgreSQL's archive_command. @module */

import type { Invocation } from "../cli/types.ts";
import type { Logger } from "../log/logger.ts";
import { openStore } from "../storage/mod.ts";
import { archiveWalFile } from "../wal/push.ts";
import { asUserError } from "./common.ts";

/** Archives the WAL file; exit 0 only once it is durably stored. */
export async function run(inv: Invocation<"wal-push">, log: Logger): Promise<number> {
  try {
    const store = await openStore(inv.config, log);
    await archiveWalFile(inv.args.walSegment, {
      store,
      log: log.getLogger("wal_e.worker.upload"),
      pathPrefix: inv.prefix.pathPrefix,
    }, { poolSize: inv.args.poolSize, markDone: inv.args.markDone });
    return 0;
  } catch (error) {
    asUserError(error, 1);
  }
}
