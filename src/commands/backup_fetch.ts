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
import { asUserError } from "./common.ts";
import { progressOptions } from "./progress.ts";

/** Restores; exit 0 only once every volume is extracted, verified and synced. */
export async function run(inv: Invocation<"backup-fetch">, log: Logger): Promise<number> {
  const args = inv.args;
  try {
    const progress = progressOptions(inv.config.environment);
    const [
      { openStore },
      { findBackup, listBackups },
      { fetchBackup, prepareDataDirectory },
      recovery,
    ] = await Promise.all([
      import("../storage/mod.ts"),
      import("../backup/catalog.ts"),
      import("../backup/fetch.ts"),
      import("../backup/recovery.ts"),
    ]);
    const request = args.recovery;
    // Everything that can be checked locally is, before the store is asked anything: the
    // destination, and the restore_command the recovery settings will hold.
    prepareDataDirectory(args.pgClusterDirectory, args.force, { create: false });
    const pitr = request === null
      ? null
      : { request, restore: recovery.restoreCommandFor(inv.globals, inv.config.environment) };
    const store = await openStore(inv.config, log);
    const choosing = recovery.needsEveryBackup(request);
    const backup = choosing
      ? recovery.chooseBackup(
        await listBackups(store, { detail: true, log }),
        request,
        args.backupName,
      )
      : await findBackup(store, args.backupName, { detail: true, log });
    if (backup.detail === undefined) {
      throw new UserError(`cannot read the sentinel of backup ${backup.name}`, {
        hint: "Restore another backup (wal-d backup-list).",
      });
    }
    if (choosing) {
      log.info(`chose backup ${backup.name} for the recovery target`, {
        detail: `Target: ${recovery.describeTarget(request.target)}` +
          (request.timeline === null ? "" : `, timeline ${request.timeline}`) + ".",
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
    if (pitr !== null) {
      for (const warning of pitr.restore.warnings) log.warning(warning);
      const settings = recovery.recoverySettings(pitr.request, pitr.restore.command);
      await recovery.writeRecoveryConfig(result.dataDir, settings, { owner: result.owner });
      log.info(`wrote recovery settings into ${result.dataDir}`, {
        detail: `recovery.signal, and in ${recovery.AUTO_CONF}: ` +
          settings.map(([name]) => name).join(", ") +
          `; recovery target: ${recovery.describeTarget(pitr.request.target)}.`,
        hint: "Start PostgreSQL on the directory to recover.",
      });
    }
    log.info(`restored backup ${backup.name} into ${result.dataDir}`, {
      detail: `${result.volumes} volume(s), ${result.members} members, ${result.bytes} bytes` +
        (result.verified ? "; every volume matched the sentinel's size and SHA-256" : ""),
    });
    return 0;
  } catch (error) {
    asUserError(error, 1);
  }
}
