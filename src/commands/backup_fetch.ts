/**
 * `wal-d backup-fetch PG_CLUSTER_DIRECTORY BACKUP_NAME|LATEST`: restores a base backup (see
 * src/backup/fetch.ts) and, with `--recover` or a `--target-*` option, prepares point-in-time
 * recovery: `recovery.signal`, and `restore_command` (this wal-d's wal-fetch, same
 * configuration) with the recovery target in `postgresql.auto.conf` (src/backup/recovery.ts).
 *
 * @module
 */

import type { Invocation } from "../cli/types.ts";
import type { Logger } from "../log/logger.ts";
import { UserError } from "../cli/errors.ts";
import { asUserError, progressOptions } from "./common.ts";

/** Restores; exit 0 only once every volume is extracted, verified and synced. */
export async function run(inv: Invocation<"backup-fetch">, log: Logger): Promise<number> {
  const args = inv.args;
  try {
    const progress = progressOptions(inv.config.environment);
    const [{ openStore }, { findBackup }, { fetchBackup, prepareDataDirectory }] = await Promise
      .all([
        import("../storage/mod.ts"),
        import("../backup/catalog.ts"),
        import("../backup/fetch.ts"),
      ]);
    // The destination is checked before the store is asked anything.
    prepareDataDirectory(args.pgClusterDirectory, args.force);
    const store = await openStore(inv.config, log);
    const backup = await findBackup(store, args.backupName, { detail: true, log });
    if (backup.detail === undefined) {
      throw new UserError(`cannot read the sentinel of backup ${backup.name}`, {
        hint: "Restore another backup (wal-d backup-list).",
      });
    }
    const result = await fetchBackup({
      store,
      log,
      pgdata: args.pgClusterDirectory,
      backup: { ...backup, detail: backup.detail },
      poolSize: args.poolSize,
      force: args.force,
      blindRestore: args.blindRestore,
      restoreSpec: args.restoreSpec,
      progress,
    });
    log.info(`restored backup ${backup.name} into ${result.dataDir}`, {
      detail: `${result.volumes} volume(s), ${result.members} members, ${result.bytes} bytes` +
        (result.verified ? "; every volume matched the sentinel's size and SHA-256" : ""),
    });
    return 0;
  } catch (error) {
    asUserError(error, 1);
  }
}
