import assert from "node:assert/strict";
import { UserError } from "../../src/cli/errors.ts";
import { join } from "../../src/io/path.ts";
import { formatLsn, parseLsn, segmentNameOfLsn } from "../../src/layout/mod.ts";
import {
  BackupSession,
  type BackupStart,
  type BackupStop,
  parseBackupLabel,
} from "../../src/pg/backup_session.ts";
import { connectionSettings, type ServerNotice } from "../../src/pg/connection.ts";
import { readControlFile } from "../../src/pg/control.ts";
import {
  cloneStandby,
  type Cluster,
  createCluster,
  ignoreUnlessPg,
  type PgMajor,
  waitFor,
} from "../_pg/cluster.ts";

/** A HOME without a .pgpass, so the runner's own file never interferes. */
const EMPTY_HOME = await Deno.makeTempDir({ prefix: "wald-bs-home-" });
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(EMPTY_HOME, { recursive: true });
  } catch { /* gone */ }
});

interface Opened {
  session: BackupSession;
  notices: ServerNotice[];
}

async function open(pg: Cluster, vars: Record<string, string> = {}): Promise<Opened> {
  const all: Record<string, string> = { ...pg.pgEnv, HOME: EMPTY_HOME, ...vars };
  const notices: ServerNotice[] = [];
  const session = await BackupSession.open(connectionSettings({ get: (n) => all[n] }), {
    onNotice: (n) => notices.push(n),
  });
  return { session, notices };
}

function assertOneLineUserError(error: unknown, message: RegExp): UserError {
  assert.ok(error instanceof UserError, `expected a UserError, got ${error}`);
  assert.match(error.message, message);
  assert.ok(!error.message.includes("\n"), JSON.stringify(error.message));
  assert.ok(error.hint && !error.hint.includes("\n"), JSON.stringify(error.hint));
  return error;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a failure");
}

/** start + some writes on `writer` + stop, with the checks every backup must pass. */
async function roundTrip(
  opened: Opened,
  writer: Cluster,
  options: { fast: boolean; standby: boolean; timeline: number; pauseMs?: number },
): Promise<{ start: BackupStart; stop: BackupStop }> {
  const { session, notices } = opened;
  const info = await session.serverInfo();
  const label = `freeze_start_${new Date().toISOString()}_${options.fast ? "fast" : "spread"}`;
  const start = await session.start(label, options.fast);
  assert.equal(session.state, "started");
  assert.equal(start.timeline, options.timeline);
  assert.equal(start.inRecovery, options.standby);
  assert.equal(start.verified, true);
  await writer.exec("INSERT INTO t SELECT generate_series(1, 2000)");
  if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
  const stop = await session.stop(true);
  assert.equal(session.state, "stopped");
  const parsed = parseBackupLabel(stop.labelFile);
  assert.deepEqual(stop.label, parsed);
  assert.equal(parsed.startLsn, start.lsn);
  assert.equal(parsed.startTimeline, start.timeline);
  assert.equal(
    parsed.startWalFile,
    segmentNameOfLsn(start.lsn, start.timeline, info.walSegmentSize),
  );
  assert.equal(parsed.label, label);
  assert.equal(parsed.backupFrom, options.standby ? "standby" : "primary");
  assert.equal(parsed.backupMethod, "streamed");
  assert.match(
    stop.labelFile,
    new RegExp(`^START WAL LOCATION: ${formatLsn(start.lsn)} \\(file ${parsed.startWalFile}\\)\n`),
  );
  assert.match(stop.labelFile, new RegExp(`\nSTART TIMELINE: ${start.timeline}\n`));
  assert.ok(stop.lsn >= start.lsn, `stop ${formatLsn(stop.lsn)} < start ${formatLsn(start.lsn)}`);
  assert.equal(stop.timeline, options.timeline);
  assert.equal(stop.fromStandby, options.standby);
  assert.equal(stop.tablespaceMap, null);
  // archive_mode is off: the stop function says WAL must be copied by other means.
  assert.ok(
    notices.some((n) => n.severity === "NOTICE" && /WAL archiving is not enabled/.test(n.message)),
    JSON.stringify(notices),
  );
  return { start, stop };
}

const MAJORS: PgMajor[] = [13, 15, 17, 18];

for (const major of MAJORS) {
  const name = `BackupSession on PostgreSQL ${major}: primary, failures, privileges, standby`;
  Deno.test({
    name,
    ignore: await ignoreUnlessPg([major], name),
    async fn(t) {
      // 1 MiB WAL segments on one major, to check the segment arithmetic of the label.
      const primary = await createCluster({
        major,
        initdbArgs: major === 15 ? ["--wal-segsize=1"] : [],
      });
      let standby: Cluster | undefined;
      const scratch = await Deno.makeTempDir({ prefix: "wald-bs-" });
      try {
        await primary.start();
        await primary.exec("CREATE TABLE t (i int)");

        await t.step("serverInfo matches SQL and pg_control", async () => {
          const { session } = await open(primary);
          try {
            const info = await session.serverInfo();
            const [sql] = await primary.sql<{ num: string; version: string; dir: string }>(
              "SELECT current_setting('server_version_num') AS num, version() AS version, " +
                "current_setting('data_directory') AS dir",
            );
            const control = await readControlFile(primary.dataDir);
            assert.equal(info.versionNum, Number(sql.num));
            assert.equal(info.major, major);
            assert.equal(info.version, sql.version);
            assert.match(info.version, new RegExp(`^PostgreSQL ${major}\\.`));
            assert.equal(info.dataDirectory, sql.dir);
            assert.equal(info.inRecovery, false);
            assert.equal(info.walSegmentSize, major === 15 ? 1024 * 1024 : 16 * 1024 * 1024);
            assert.equal(info.walSegmentSize, control.walSegmentSize);
            assert.equal(info.systemIdentifier, control.systemIdentifier);
            assert.equal(info.checkpointTimeline, control.timeline);
            assert.equal(info.timeline, 1);
            assert.equal(info.role, "postgres");
            assert.equal(info.superuser, true);
            assert.equal(info.backendPid, session.backendPid);
            const [{ pid }] = await primary.sql<{ pid: number }>(
              "SELECT pid FROM pg_stat_activity WHERE application_name = 'wal-d'",
            );
            assert.equal(pid, session.backendPid);
          } finally {
            await session.close();
          }
        });

        await t.step(
          "checkDataDirectory: the path or a symlink to it; another dir is refused",
          async () => {
            const { session } = await open(primary);
            try {
              const real = await Deno.realPath(primary.dataDir);
              assert.equal(await session.checkDataDirectory(primary.dataDir), real);
              assert.equal(await session.checkDataDirectory(`${primary.dataDir}/`), real);
              const link = join(scratch, "pgdata-link");
              await Deno.symlink(primary.dataDir, link);
              assert.equal(await session.checkDataDirectory(link), real);
              const other = join(scratch, "other");
              await Deno.mkdir(other);
              const error = assertOneLineUserError(
                await rejection(session.checkDataDirectory(other)),
                /is not the data directory of the server at socket /,
              );
              assert.ok(error.message.includes(other) && error.message.includes(primary.dataDir));
              assertOneLineUserError(
                await rejection(session.checkDataDirectory(join(scratch, "missing"))),
                /^cannot resolve the data directory .*missing/,
              );
            } finally {
              await session.close();
            }
          },
        );

        await t.step("start and stop on a primary, fast and spread checkpoints", async () => {
          for (const fast of [true, false]) {
            const opened = await open(primary);
            try {
              await roundTrip(opened, primary, { fast, standby: false, timeline: 1 });
            } finally {
              await opened.session.close();
            }
          }
        });

        await t.step(
          "a failed start is reported as itself; the session can start again",
          async () => {
            const opened = await open(primary);
            try {
              const error = assertOneLineUserError(
                await rejection(opened.session.start("x".repeat(2000), true)),
                /^starting the backup \(pg_(backup_start|start_backup)\(.*\)\) failed: backup label too long/,
              );
              assert.equal(opened.session.state, "ready");
              assert.ok(!/stop/.test(error.message));
              await opened.session.abort(); // never throws, never masks
              const again = await open(primary);
              try {
                await roundTrip(again, primary, { fast: true, standby: false, timeline: 1 });
              } finally {
                await again.session.close();
              }
            } finally {
              await opened.session.close();
            }
          },
        );

        await t.step("abort ends the backup on the server; a second backup starts", async () => {
          const { session } = await open(primary);
          await session.start("to-be-aborted", true);
          const pid = session.backendPid;
          await session.abort();
          assert.equal(session.state, "closed");
          assert.equal(session.lost, false);
          // The backend aborts the backup before it closes the socket, so it is gone already.
          const rows = await primary.sql("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid]);
          assert.equal(rows.length, 0);
          await waitFor(
            async () =>
              /aborting backup due to backend exiting before pg_(backup_stop|stop_backup) was called/
                .test(await Deno.readTextFile(primary.logFile)),
            { what: "the server's abort warning", cluster: primary, timeoutMs: 5000 },
          );
          const second = await open(primary);
          try {
            await roundTrip(second, primary, { fast: true, standby: false, timeline: 1 });
          } finally {
            await second.session.close();
          }
        });

        await t.step("a session killed during the backup: stop fails clearly", async () => {
          const { session } = await open(primary);
          try {
            await session.start("killed", true);
            await primary.sql("SELECT pg_terminate_backend($1)", [session.backendPid]);
            await waitFor(
              async () =>
                (await primary.sql("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [
                  session.backendPid,
                ])).length === 0,
              { cluster: primary, what: "the killed backend to exit" },
            );
            assertOneLineUserError(
              await rejection(session.stop()),
              /^lost the connection to the server at socket .* while /,
            );
            assert.equal(session.state, "failed");
            assert.equal(session.lost, true);
          } finally {
            await session.abort();
          }
        });

        await t.step("a role without backup privileges: the GRANTs to run", async () => {
          await primary.exec('CREATE ROLE "No Priv" LOGIN');
          const opened = await open(primary, { PGUSER: "No Priv" });
          let grants: string[];
          try {
            const error = assertOneLineUserError(
              await rejection(opened.session.serverInfo()),
              /^role "No Priv" may not take base backups on the server at socket /,
            );
            const fns = major >= 15
              ? ["pg_backup_start(text, boolean)", "pg_backup_stop(boolean)"]
              : ["pg_start_backup(text, boolean, boolean)", "pg_stop_backup(boolean, boolean)"];
            for (const fn of fns) {
              assert.ok(
                error.hint!.includes(`GRANT EXECUTE ON FUNCTION ${fn} TO "No Priv"`),
                error.hint,
              );
            }
            assert.ok(error.hint!.includes(`GRANT pg_read_all_settings TO "No Priv"`));
            grants = /run: (.*?); \(or/.exec(error.hint!)![1].split("; ");
            assert.equal(grants.length, 3);
            // A direct call names the missing privilege too.
            assertOneLineUserError(
              await rejection(opened.session.start("denied", true)),
              /^role "No Priv" may not take base backups/,
            );
          } finally {
            await opened.session.close();
          }
          // The GRANTs of the hint are enough.
          for (const grant of grants) await primary.exec(grant);
          // A role-wide idle_session_timeout (14+) must not end the session between start and stop.
          if (major >= 14) {
            await primary.exec(`ALTER ROLE "No Priv" SET idle_session_timeout = '1s'`);
          }
          const granted = await open(primary, { PGUSER: "No Priv" });
          try {
            const info = await granted.session.serverInfo();
            assert.equal(info.superuser, false);
            assert.equal(info.role, "No Priv");
            await granted.session.checkDataDirectory(primary.dataDir);
            await roundTrip(granted, primary, {
              fast: true,
              standby: false,
              timeline: 1,
              pauseMs: major >= 14 ? 1500 : 0,
            });
            assert.equal(granted.session.lost, false);
          } finally {
            await granted.session.close();
          }
        });

        await t.step("a hot standby takes backups and reports recovery", async () => {
          standby = await cloneStandby(primary);
          await waitFor(
            async () =>
              (await primary.sql("SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'"))
                .length > 0,
            { cluster: standby, what: "the standby to stream" },
          );
          const opened = await open(standby);
          try {
            const info = await opened.session.serverInfo();
            const [{ r }] = await standby.sql<{ r: boolean }>("SELECT pg_is_in_recovery() AS r");
            assert.equal(r, true);
            assert.equal(info.inRecovery, true);
            assert.equal(info.timeline, 1);
            const primaryInfo = await readControlFile(primary.dataDir);
            assert.equal(info.systemIdentifier, primaryInfo.systemIdentifier);
            await opened.session.checkDataDirectory(standby.dataDir);
            assertOneLineUserError(
              await rejection(opened.session.checkDataDirectory(primary.dataDir)),
              /is not the data directory of the server/,
            );
            const { stop } = await roundTrip(opened, primary, {
              fast: true,
              standby: true,
              timeline: 1,
            });
            // The stop LSN of a standby backup is its minimum recovery point.
            const [rec] = await standby.sql<{ lsn: string }>(
              "SELECT min_recovery_end_lsn::text AS lsn FROM pg_control_recovery()",
            );
            assert.ok(stop.lsn <= parseLsn(rec.lsn), `${formatLsn(stop.lsn)} > ${rec.lsn}`);
          } finally {
            await opened.session.close();
          }
        });

        await t.step("after promotion: timeline 2 at start and stop", async () => {
          const promoted = standby!;
          await promoted.sql("SELECT pg_promote(true, 60)");
          const opened = await open(promoted);
          try {
            const info = await opened.session.serverInfo();
            assert.equal(info.inRecovery, false);
            assert.equal(info.timeline, 2);
            const { stop } = await roundTrip(opened, promoted, {
              fast: true,
              standby: false,
              timeline: 2,
            });
            assert.equal(stop.label.startTimeline, 2);
          } finally {
            await opened.session.close();
          }
        });
      } finally {
        await standby?.close();
        await primary.close();
        await Deno.remove(scratch, { recursive: true });
      }
    },
  });
}

Deno.test("parseBackupLabel: PostgreSQL 13's 'master' and a label with colons", () => {
  const label = parseBackupLabel(
    "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n" +
      "CHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: master\n" +
      "START TIME: 2026-01-01 00:00:00 UTC\nLABEL: freeze_start_2026-01-01T00:00:00\n" +
      "START TIMELINE: 1\n",
  );
  assert.deepEqual(label, {
    startLsn: 0x2000028n,
    startWalFile: "000000010000000000000002",
    checkpointLsn: 0x2000060n,
    backupMethod: "streamed",
    backupFrom: "primary",
    startTime: "2026-01-01 00:00:00 UTC",
    label: "freeze_start_2026-01-01T00:00:00",
    startTimeline: 1,
  });
  assert.throws(() => parseBackupLabel("LABEL: x\n"), /without a valid START WAL LOCATION/);
});
