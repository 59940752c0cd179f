/**
 * `wal-d wal-push WAL_SEGMENT`: PostgreSQL's archive_command.
 *
 * A file already pushed ahead is answered from the local ledger before the storage and codec
 * modules are even loaded: during a catch-up PostgreSQL makes one call per file, and each must be
 * cheap.
 *
 * @module
 */

import { dirname, isAbsolute, resolve } from "../io/path.ts";
import { spawnSelfDetached } from "../cli/reinvoke.ts";
import type { Invocation } from "../cli/types.ts";
import type { Logger } from "../log/logger.ts";
import { answeredFromLedger, inspectWalFile, PushLedger } from "../wal/status.ts";
import { asUserError } from "./common.ts";

/** Archives the WAL file; exit 0 only once it is durably stored. */
export async function run(inv: Invocation<"wal-push">, log: Logger): Promise<number> {
  const path = inv.args.walSegment;
  const uploadLog = log.getLogger("wal_e.worker.upload");
  const ledgerContext = {
    log: uploadLog,
    pathPrefix: inv.prefix.pathPrefix,
    prefixUrl: inv.prefix.url,
  };
  try {
    const file = await inspectWalFile(path);
    const ledger = new PushLedger(dirname(path));
    if (await answeredFromLedger(ledger, file.name, file.info, ledgerContext)) {
      await ledger.prune().catch(() => {});
      return 0;
    }
    const [{ openStore }, { archiveWalFile }] = await Promise.all([
      import("../storage/mod.ts"),
      import("../wal/push.ts"),
    ]);
    const store = await openStore(inv.config, log);
    await archiveWalFile(file, { ...ledgerContext, store }, {
      poolSize: inv.args.poolSize,
      markDone: inv.args.markDone,
      startPushAhead: (walDir, exclude) => startPushAhead(inv, walDir, exclude),
    });
    return 0;
  } catch (error) {
    asUserError(error, 1);
  }
}

/** Starts a detached `wal-push-ahead` process; false if it could not be started. */
function startPushAhead(inv: Invocation<"wal-push">, walDir: string, exclude: string): boolean {
  return spawnSelfDetached(inv.globals, [
    "wal-push-ahead",
    `--pool-size=${inv.args.poolSize}`,
    ...(inv.args.markDone ? ["--mark-done"] : []),
    `--exclude=${exclude}`,
    "--lock-held",
    isAbsolute(walDir) ? walDir : resolve(walDir),
  ], true);
}
