/**
 * `wal-d backup-push PG_CLUSTER_DIRECTORY`: a base backup (see src/backup/push.ts).
 *
 * Online (the default): connects with libpq's variables (`PGHOST`, `PGPORT`, `PGUSER`,
 * `PGPASSWORD`, `PGDATABASE`, `.pgpass`), checks that the directory is the server's
 * `data_directory`, and runs a non-exclusive backup on that one connection; primaries and
 * standbys alike. `--while-offline`: a stopped cluster, from its control file.
 *
 * @module
 */

import type { Invocation } from "../cli/types.ts";
import type { Logger } from "../log/logger.ts";
import type { BackupServer } from "../backup/push.ts";
import { writeAllSync } from "../io/file_stream.ts";
import { asUserError } from "./common.ts";
import { progressOptions } from "./progress.ts";

/** Takes the backup; exit 0 only once its sentinel is stored. */
export async function run(inv: Invocation<"backup-push">, log: Logger): Promise<number> {
  const args = inv.args;
  try {
    const progress = progressOptions(inv.config.environment);
    const [{ openStore }, { pushBackup }] = await Promise.all([
      import("../storage/mod.ts"),
      import("../backup/push.ts"),
    ]);
    // The settings are checked before anything starts on the server.
    const store = await openStore(inv.config, log);
    // From here on pushBackup owns the server session and ends it, whatever happens.
    const server = args.whileOffline ? null : await openServer(inv, log);
    const pushed = await pushBackup({
      pgdata: args.pgClusterDirectory,
      store,
      log,
      poolSize: args.poolSize,
      rateLimit: args.clusterReadRateLimit,
      fastCheckpoint: args.fastCheckpoint,
      server,
      progress,
    });
    // The name on stdout, for scripts (the log goes to stderr).
    writeAllSync(Deno.stdout, new TextEncoder().encode(`${pushed.name}\n`));
    return 0;
  } catch (error) {
    asUserError(error, 1);
  }
}

/** Connects, checks the data directory, and adapts the session for push. */
async function openServer(inv: Invocation<"backup-push">, log: Logger): Promise<BackupServer> {
  const [{ connectionSettings }, { BackupSession }] = await Promise.all([
    import("../pg/connection.ts"),
    import("../pg/backup_session.ts"),
  ]);
  const pgLog = log.getLogger("wal_e.worker.pg.backup");
  const settings = connectionSettings(inv.config.environment);
  for (const warning of settings.warnings) pgLog.warning(warning);
  const session = await BackupSession.open(settings, {
    onNotice: (notice) =>
      pgLog.info(`PostgreSQL ${notice.severity}: ${notice.message}`, {
        detail: notice.detail,
        hint: notice.hint,
      }),
  });
  try {
    const info = await session.serverInfo();
    await session.checkDataDirectory(inv.args.pgClusterDirectory);
    return {
      versionString: info.version,
      versionNum: info.versionNum,
      systemIdentifier: info.systemIdentifier.toString(),
      walSegmentSize: info.walSegmentSize,
      inRecovery: info.inRecovery,
      start: (label, fast) => session.start(label, fast),
      stop: () => session.stop(true),
      close: () => session.close(),
    };
  } catch (error) {
    await session.close();
    throw error;
  }
}
