/**
 * backup-fetch and point-in-time recovery against real PostgreSQL 13, 15, 17 and 18: a primary
 * archiving through wal-push, with a tablespace, backed up under a write load; the backup restored
 * by `wal-d backup-fetch` (tablespace moved by a restore spec, files given to the PostgreSQL user,
 * recovery.signal and restore_command written by backup-fetch) and started by PostgreSQL, which
 * recovers to the end of the archive, and to a restore point, with the primary's exact rows.
 * On 17 also: time and LSN targets (and a time no backup ends before), damaged backups (a missing,
 * a corrupt and a truncated volume), and data directories backup-fetch must refuse.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { parseSentinel, type Sentinel } from "../../src/backup/sentinel.ts";
import {
  adoptDataDir,
  type Cluster,
  createCluster,
  ignoreUnlessPg,
  makePgUserTempDir,
  type PgMajor,
  pgUser,
  switchWal,
  waitForArchived,
  waitForRecoveryEnd,
} from "../_pg/cluster.ts";
import { ARCHIVE_SETTINGS, snapshot } from "../wal/_cycle.ts";
import { type CliResult, walD } from "../wal/_cli.ts";
import { BACKUP_MAJORS as MAJORS, createLoadTables, startLoad } from "./_load.ts";
import { exists } from "./_restore_scratch.ts";

Deno.env.set("AWS_EC2_METADATA_DISABLED", "true");

/** The major the time/LSN targets, damaged backups and refusals run on. */
const EXTRAS_MAJOR: PgMajor = 17;

/**
 * Secrets in backup-fetch's environment: none of them may reach postgresql.auto.conf (the file
 * backend needs none, and secrets are never written to files anyway).
 */
const SECRETS: Record<string, string> = {
  AWS_SECRET_ACCESS_KEY: "wald-test-secret-aws-4f1c9e",
  AWS_SESSION_TOKEN: "wald-test-secret-token-77ab01",
  WABS_ACCESS_KEY: "wald-test-secret-wabs-c3d2e1",
  SWIFT_PASSWORD: "wald-test-secret-swift-9a8b7c",
  PGPASSWORD: "wald-test-secret-pg-5e6f70",
};

/** The exact contents of both tables: counts and md5 of the ordered rows. */
async function state(pg: Cluster): Promise<string> {
  const [row] = await pg.sql<{ n: string; h: string }>(
    "SELECT count(*) AS n, md5(string_agg(v::text, ',' ORDER BY v)) AS h FROM in_ts",
  );
  return `t ${await snapshot(pg)}; in_ts ${row.n}|${row.h}`;
}

/** The server's clock now, in UTC, as `--target-time` takes it (microseconds, `Z`). */
async function serverTime(pg: Cluster): Promise<string> {
  const [{ now }] = await pg.sql<{ now: string }>(
    `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || 'Z'
       AS now`,
  );
  return now;
}

/** The `ERROR` log lines of a run. */
function errorLines(result: CliResult): string[] {
  return result.stderr.split("\n").filter((line) => / ERROR +MSG:/.test(line));
}

/** Asserts a run failed as a user error: exit 1, exactly one ERROR line, matching `pattern`. */
function assertUserError(result: CliResult, pattern: RegExp, what: string): string {
  assert.equal(result.code, 1, `${what}: exit ${result.code}\n${result.stderr}`);
  const errors = errorLines(result);
  assert.equal(errors.length, 1, `${what}: one ERROR line\n${result.stderr}`);
  assert.match(errors[0], pattern, `${what}\n${result.stderr}`);
  return errors[0];
}

/** Paths under `root` (itself included, symlinks not followed) not owned by `uid`. */
function notOwnedBy(root: string, uid: number): string[] {
  const wrong: string[] = [];
  const visit = (path: string) => {
    const info = Deno.lstatSync(path);
    if (info.isSymlink) return; // PostgreSQL never looks at a link's owner
    if (info.uid !== uid) wrong.push(`${path} (uid ${info.uid})`);
    if (info.isDirectory) {
      for (const entry of Deno.readDirSync(path)) visit(join(path, entry.name));
    }
  };
  visit(root);
  return wrong;
}

/** Names in the store's wal_005/ (to check that restored servers archive nothing there). */
function archivedNames(storeRoot: string): string[] {
  return [...Deno.readDirSync(join(storeRoot, "wal_005"))].map((e) => e.name).sort();
}

/** The setting lines (not comments) of a configuration file. */
function settingLines(text: string): string[] {
  return text.split("\n").filter((line) => line.trim() !== "" && !line.trimStart().startsWith("#"));
}

/** Everything one test made, removed at its end. */
class Scratch {
  readonly dirs: string[] = [];
  readonly clusters: Cluster[] = [];

  async dir(prefix: string): Promise<string> {
    const dir = await makePgUserTempDir(prefix);
    this.dirs.push(dir);
    return dir;
  }

  async cleanup(): Promise<void> {
    for (const cluster of this.clusters) await cluster.close().catch(() => {});
    for (const dir of this.dirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The primary's history, as the restores are checked against it. */
interface History {
  prefix: string;
  storeRoot: string;
  backupName: string;
  sentinel: Sentinel;
  /** OID of tablespace `ts`, and the primary's location of it. */
  oid: string;
  tablespace: string;
  /** The server's clock before the backup started. */
  beforeBackup: string;
  /** At the restore point `wald_rp`: the rows, the time and the WAL insert position. */
  atA: { rows: string; time: string; lsn: string };
  /** At the end of the archive. */
  atB: string;
}

/**
 * A primary with a tablespace, archiving through wal-push; a backup taken under a write load;
 * writes, the restore point `wald_rp` (state A), more writes archived (state B); the primary is
 * stopped at the end.
 */
async function primaryHistory(major: PgMajor, scratch: Scratch): Promise<History> {
  const storeRoot = await scratch.dir(`wald-fetch${major}-store-`);
  const prefix = `file://${storeRoot}`;
  const tablespace = await scratch.dir(`wald-fetch${major}-ts-`);
  const pg = await createCluster({
    major,
    settings: ARCHIVE_SETTINGS,
    env: { WALE_FILE_PREFIX: prefix },
  });
  scratch.clusters.push(pg);
  await pg.start();
  await createLoadTables(pg, tablespace);
  await pg.exec("INSERT INTO in_ts SELECT i FROM generate_series(1, 5000) i");
  const [{ oid }] = await pg.sql<{ oid: string }>(
    "SELECT oid::text AS oid FROM pg_tablespace WHERE spcname = 'ts'",
  );

  const beforeBackup = await serverTime(pg);
  const load = startLoad(pg);
  let pushed: CliResult;
  try {
    pushed = await walD(["backup-push", "--fast-checkpoint", pg.dataDir], {
      env: { ...pg.pgEnv, WALE_FILE_PREFIX: prefix },
    });
  } finally {
    const batches = await load.stop();
    assert.ok(batches > 0, "the load ran during the backup");
  }
  assert.equal(pushed.code, 0, pushed.stderr);
  const backupName = pushed.stdout.trim();
  const atBackupEnd = await state(pg);

  // After the backup: writes, the restore point, state A; more writes, archived, state B.
  await pg.exec(`
    INSERT INTO t SELECT i, 'after the backup ' || i FROM generate_series(900001, 902000) i;
    UPDATE t SET payload = payload || '-w1' WHERE id % 13 = 1;
    INSERT INTO in_ts SELECT -i FROM generate_series(1, 300) i;
  `);
  await pg.sql("SELECT pg_create_restore_point('wald_rp')");
  const rowsA = await state(pg);
  const [{ lsn }] = await pg.sql<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn");
  const timeA = await serverTime(pg);
  await new Promise((resolve) => setTimeout(resolve, 50));
  await pg.exec(`
    INSERT INTO t SELECT i, 'after the restore point ' || i FROM generate_series(910001, 912000) i;
    DELETE FROM t WHERE id % 17 = 2;
    UPDATE in_ts SET v = v - 1000 WHERE v < 0;
    INSERT INTO in_ts SELECT 100000 + i FROM generate_series(1, 200) i;
  `);
  const last = await switchWal(pg);
  await waitForArchived(pg, last);
  const atB = await state(pg);
  assert.notEqual(rowsA, atBackupEnd, "writes between the backup and the restore point");
  assert.notEqual(atB, rowsA, "writes after the restore point");
  const [stats] = await pg.sql<{ failed: string }>(
    "SELECT failed_count::text AS failed FROM pg_stat_archiver",
  );
  assert.equal(stats.failed, "0", await pg.logTail());
  await pg.stop();

  const sentinel = parseSentinel(
    await Deno.readTextFile(
      join(storeRoot, "basebackups_005", `${backupName}_backup_stop_sentinel.json`),
    ),
    backupName,
  );
  return {
    prefix,
    storeRoot,
    backupName,
    sentinel,
    oid,
    tablespace,
    beforeBackup,
    atA: { rows: rowsA, time: timeA, lsn },
    atB,
  };
}

/** A restore-spec file moving tablespace `oid` to `location`. */
async function restoreSpec(scratch: Scratch, oid: string, location: string): Promise<string> {
  const dir = await scratch.dir("wald-fetch-spec-");
  const file = join(dir, "spec.json");
  await Deno.writeTextFile(
    file,
    JSON.stringify({
      tablespaces: [oid],
      [oid]: { loc: `${location}/`, link: `pg_tblspc/${oid}` },
    }),
  );
  return file;
}

/** backup-fetch with the store's prefix (and secrets in its environment). */
function backupFetch(
  history: History,
  args: string[],
  prefix = history.prefix,
): Promise<CliResult> {
  return walD(["backup-fetch", ...args], { env: { WALE_FILE_PREFIX: prefix, ...SECRETS } });
}

/**
 * A restore with recovery: backup-fetch LATEST into a new directory, the tablespace moved to a
 * new location; checks ownership and the recovery settings; then PostgreSQL on it until recovery
 * ends. Returns the running cluster.
 */
async function restoreAndRecover(
  major: PgMajor,
  history: History,
  scratch: Scratch,
  label: string,
  fetchArgs: string[],
  expectedSettings: RegExp[],
  serverEnv: Record<string, string>,
): Promise<{ cluster: Cluster; tsLocation: string; autoConf: string }> {
  const dataDir = await scratch.dir(`wald-fetch${major}-${label}-`);
  const tsLocation = join(await scratch.dir(`wald-fetch${major}-${label}-ts-`), "location");
  const spec = await restoreSpec(scratch, history.oid, tsLocation);
  const fetched = await backupFetch(history, [
    dataDir,
    "LATEST",
    "--restore-spec",
    spec,
    ...fetchArgs,
  ]);
  assert.equal(fetched.code, 0, `${label}: ${fetched.stderr}`);
  assert.doesNotMatch(fetched.stderr, / (ERROR|WARNING) +MSG:/, label);
  assert.match(fetched.stderr, new RegExp(history.backupName), `${label}: names the backup`);

  // Files, tablespace location and link, as backup-fetch left them (before the harness chowns).
  const user = await pgUser();
  assert.deepEqual(notOwnedBy(dataDir, user.uid), [], `${label}: owned by ${user.name}`);
  assert.deepEqual(notOwnedBy(tsLocation, user.uid), [], `${label}: tablespace owned too`);
  const link = join(dataDir, "pg_tblspc", history.oid);
  assert.ok(Deno.lstatSync(link).isSymlink, `${label}: pg_tblspc/${history.oid} is a link`);
  assert.equal(Deno.realPathSync(link), Deno.realPathSync(tsLocation));
  const versionDirs = [...Deno.readDirSync(tsLocation)].map((e) => e.name);
  assert.equal(versionDirs.length, 1, `${label}: ${versionDirs}`);
  assert.match(versionDirs[0], new RegExp(`^PG_${major}_`));
  assert.ok(exists(join(dataDir, "global", "pg_control")));
  assert.ok(exists(join(dataDir, "backup_label")));

  // recovery.signal and postgresql.auto.conf: restore_command carrying the prefix, no secret.
  assert.ok(exists(join(dataDir, "recovery.signal")), `${label}: recovery.signal`);
  assert.ok(!exists(join(dataDir, "standby.signal")), `${label}: not a standby`);
  const autoConf = await Deno.readTextFile(join(dataDir, "postgresql.auto.conf"));
  const restoreLines = settingLines(autoConf).filter((l) => /^\s*restore_command\s*=/.test(l));
  assert.equal(restoreLines.length, 1, `${label}: one restore_command\n${autoConf}`);
  assert.ok(
    restoreLines[0].includes(`WALE_FILE_PREFIX=${history.prefix}`),
    `${label}: restore_command carries the prefix\n${autoConf}`,
  );
  assert.match(restoreLines[0], / wal-fetch "?%f"? "?%p"?'$/, label);
  for (const [name, secret] of Object.entries(SECRETS)) {
    assert.ok(!autoConf.includes(secret), `${label}: ${name}'s value is not in auto.conf`);
    assert.ok(!fetched.stderr.includes(secret), `${label}: ${name}'s value is not logged`);
  }
  for (const pattern of expectedSettings) assert.match(autoConf, pattern, label);

  // The harness's settings replace the primary's (wald-harness.conf, which held its
  // archive_command); postgresql.conf and backup-fetch's postgresql.auto.conf stay.
  const cluster = await adoptDataDir(major, dataDir, {
    settings: { archive_mode: "off" },
    env: serverEnv,
  });
  scratch.clusters.push(cluster);
  await cluster.start();
  await waitForRecoveryEnd(cluster, 60_000);
  const [restoreSetting] = await cluster.sql<{ setting: string; sourcefile: string }>(
    "SELECT setting, sourcefile FROM pg_settings WHERE name = 'restore_command'",
  );
  assert.match(restoreSetting.sourcefile, /postgresql\.auto\.conf$/, label);
  assert.ok(restoreSetting.setting.includes(`WALE_FILE_PREFIX=${history.prefix}`), label);
  const [{ archiveMode }] = await cluster.sql<{ archiveMode: string }>(
    `SELECT setting AS "archiveMode" FROM pg_settings WHERE name = 'archive_mode'`,
  );
  assert.equal(archiveMode, "off", label);
  return { cluster, tsLocation, autoConf };
}

/** The tablespace of a restored, running cluster is the new location, and its table reads. */
async function checkTablespace(
  cluster: Cluster,
  history: History,
  tsLocation: string,
  label: string,
): Promise<void> {
  const link = join(cluster.dataDir, "pg_tblspc", history.oid);
  assert.equal(
    Deno.realPathSync(link),
    Deno.realPathSync(tsLocation),
    `${label}: after recovery pg_tblspc/${history.oid} still links to the new location ` +
      `(not the primary's ${history.tablespace})`,
  );
  const [{ location }] = await cluster.sql<{ location: string }>(
    "SELECT pg_tablespace_location(oid) AS location FROM pg_tablespace WHERE spcname = 'ts'",
  );
  assert.equal(location.replace(/\/+$/, ""), tsLocation, label);
  const [{ path }] = await cluster.sql<{ path: string }>(
    "SELECT pg_relation_filepath('in_ts') AS path",
  );
  const file = Deno.realPathSync(join(cluster.dataDir, path));
  assert.ok(
    file.startsWith(`${Deno.realPathSync(tsLocation)}/`),
    `${label}: in_ts's file ${file} is in ${tsLocation}`,
  );
  assert.ok(Deno.statSync(file).size > 0, `${label}: in_ts's file holds data`);
  const [{ n }] = await cluster.sql<{ n: string }>("SELECT count(*)::text AS n FROM in_ts");
  assert.ok(Number(n) > 0, `${label}: in_ts reads`);
}

/** The restored server's log says wal-fetch restored WAL and nothing failed. */
async function checkServerLog(cluster: Cluster, label: string, stop?: RegExp): Promise<void> {
  const log = await Deno.readTextFile(cluster.logFile);
  assert.match(log, /action=wal-fetch .*state=complete/, `${label}: wal-fetch ran\n${log}`);
  assert.doesNotMatch(log, / ERROR +MSG:/, label);
  if (stop) assert.match(log, stop, `${label}\n${log}`);
}

// ---------------------------------------------------------------------------------------------

/**
 * restoreAndRecover to a target that stops at state A (`--target-action promote` added, the
 * primary's store as the server's own prefix): the rows, the tablespace, and the server log
 * saying where recovery stopped (`stop`).
 */
async function recoverToStateA(
  major: PgMajor,
  history: History,
  scratch: Scratch,
  label: string,
  targetArgs: string[],
  expectedSettings: RegExp[],
  stop: RegExp,
): Promise<void> {
  const { cluster, tsLocation } = await restoreAndRecover(
    major,
    history,
    scratch,
    label,
    [...targetArgs, "--target-action", "promote"],
    expectedSettings,
    { WALE_FILE_PREFIX: history.prefix },
  );
  assert.equal(await state(cluster), history.atA.rows);
  await checkTablespace(cluster, history, tsLocation, label);
  await checkServerLog(cluster, label, stop);
  await cluster.close();
}

async function extrasOn17(history: History, scratch: Scratch, t: Deno.TestContext) {
  const major = EXTRAS_MAJOR;

  await t.step("--target-time between the restore point and the end: state A", async () => {
    await recoverToStateA(
      major,
      history,
      scratch,
      "time",
      ["--target-time", history.atA.time],
      [/^recovery_target_time = '\d{4}-\d\d-\d\dT[0-9:.]+\+00:00'$/m],
      /recovery stopping before commit of transaction/,
    );
  });

  await t.step("--target-lsn at the restore point: state A", async () => {
    await recoverToStateA(
      major,
      history,
      scratch,
      "lsn",
      ["--target-lsn", history.atA.lsn],
      [new RegExp(`^recovery_target_lsn = '${history.atA.lsn}'$`, "m")],
      /recovery stopping after WAL location \(LSN\)/,
    );
  });

  await t.step("--target-time before the backup ended: no backup, nothing written", async () => {
    const dataDir = await scratch.dir(`wald-fetch${major}-early-`);
    const result = await backupFetch(history, [
      dataDir,
      "LATEST",
      "--blind-restore",
      "--target-time",
      history.beforeBackup,
    ]);
    assertUserError(result, /no backup ends before/, "a target before the backup's end");
    assert.deepEqual([...Deno.readDirSync(dataDir)], [], "the data directory is left empty");
    // Naming the backup does not get around it.
    const named = await backupFetch(history, [
      dataDir,
      history.backupName,
      "--blind-restore",
      "--target-time",
      history.beforeBackup,
    ]);
    assertUserError(named, /after the recovery target/, "a named backup that ends later");
    assert.deepEqual([...Deno.readDirSync(dataDir)], []);
  });

  await t.step("damaged backups: exit 1, one ERROR line, no pg_control", async () => {
    // A copy of the backups (no WAL needed) to damage.
    const copy = await scratch.dir(`wald-fetch${major}-damaged-`);
    const cp = await new Deno.Command("cp", {
      args: ["-a", join(history.storeRoot, "basebackups_005"), copy],
      stderr: "piped",
    }).output();
    assert.equal(cp.code, 0, new TextDecoder().decode(cp.stderr));
    const copyPrefix = `file://${copy}`;
    const volumesDir = join(copy, "basebackups_005", history.backupName, "tar_partitions");
    const volumes = history.sentinel.volumes!;
    assert.ok(volumes.length >= 2, "data volume(s) and the final volume");
    const largest = volumes.reduce((a, b) => b.size > a.size ? b : a);
    const fetchDamaged = async (label: string) => {
      const dataDir = await scratch.dir(`wald-fetch${major}-${label}-`);
      const result = await backupFetch(
        history,
        [dataDir, "LATEST", "--blind-restore"],
        copyPrefix,
      );
      return { dataDir, result };
    };
    const noControl = (dataDir: string, label: string) =>
      assert.ok(
        !exists(join(dataDir, "global", "pg_control")),
        `${label}: global/pg_control is not in place`,
      );

    // (a) A volume deleted from the store.
    const missing = volumes[0].name;
    const aside = join(copy, `aside-${missing}`);
    await Deno.rename(join(volumesDir, missing), aside);
    const a = await fetchDamaged("missing");
    const line = assertUserError(a.result, /missing/, "a missing volume");
    assert.ok(line.includes(missing), `the ERROR line names ${missing}: ${line}`);
    noControl(a.dataDir, "a missing volume");
    await Deno.rename(aside, join(volumesDir, missing));

    // (b) One byte flipped in the middle of the largest volume.
    const path = join(volumesDir, largest.name);
    const original = await Deno.readFile(path);
    assert.equal(original.length, largest.size);
    const corrupt = original.slice();
    corrupt[Math.floor(corrupt.length / 2)] ^= 0xff;
    await Deno.writeFile(path, corrupt);
    const b = await fetchDamaged("corrupt");
    const corruptLine = assertUserError(b.result, /corrupt/, "a corrupt volume");
    assert.ok(corruptLine.includes(largest.name), `names ${largest.name}: ${corruptLine}`);
    noControl(b.dataDir, "a corrupt volume");

    // (c) The largest volume truncated to half its size.
    await Deno.writeFile(path, original.subarray(0, Math.floor(original.length / 2)));
    const c = await fetchDamaged("truncated");
    const truncatedLine = assertUserError(
      c.result,
      /truncated|incomplete|corrupt/,
      "a truncated volume",
    );
    assert.ok(truncatedLine.includes(largest.name), `names ${largest.name}: ${truncatedLine}`);
    noControl(c.dataDir, "a truncated volume");

    // Repaired, the same copy restores, over the failed restore's leftovers with --force.
    await Deno.writeFile(path, original);
    const again = await backupFetch(
      history,
      [b.dataDir, "LATEST", "--blind-restore", "--force"],
      copyPrefix,
    );
    assert.equal(again.code, 0, again.stderr);
    assert.ok(exists(join(b.dataDir, "global", "pg_control")), "restored with --force");
    const refused = await backupFetch(
      history,
      [c.dataDir, "LATEST", "--blind-restore"],
      copyPrefix,
    );
    assertUserError(refused, /not empty/, "a failed restore's leftovers, without --force");
  });

  await t.step("refused data directories: postmaster.pid, non-empty", async () => {
    const live = await scratch.dir(`wald-fetch${major}-live-`);
    await Deno.writeTextFile(join(live, "postmaster.pid"), "4242\n");
    for (const extra of [[], ["--force"]]) {
      const result = await backupFetch(history, [live, "LATEST", "--blind-restore", ...extra]);
      assertUserError(result, /postmaster\.pid/, `postmaster.pid ${extra.join(" ")}`);
      assert.deepEqual([...Deno.readDirSync(live)].map((e) => e.name), ["postmaster.pid"]);
    }

    const occupied = await scratch.dir(`wald-fetch${major}-occupied-`);
    await Deno.writeTextFile(join(occupied, "stray"), "not a data directory\n");
    const result = await backupFetch(history, [occupied, "LATEST", "--blind-restore"]);
    assertUserError(result, /not empty/, "a non-empty directory");
    assert.match(result.stderr, /--force/, "the hint names --force");
    assert.deepEqual([...Deno.readDirSync(occupied)].map((e) => e.name), ["stray"]);
  });
}

for (const major of MAJORS) {
  const name = `backup-fetch on PostgreSQL ${major}: restore, recovery to the end and to a ` +
    `restore point${
      major === EXTRAS_MAJOR ? "; time and LSN targets, damaged backups, refusals" : ""
    }`;
  Deno.test({
    name,
    ignore: await ignoreUnlessPg([major], name),
    sanitizeResources: false,
    sanitizeOps: false,
    async fn(t) {
      const scratch = new Scratch();
      try {
        const history = await primaryHistory(major, scratch);
        const archived = archivedNames(history.storeRoot);

        await t.step("--recover: the whole archive, state B", async () => {
          // The server's own WALE_FILE_PREFIX names an empty store: only the configuration that
          // restore_command carries can find the WAL.
          const decoy = await scratch.dir(`wald-fetch${major}-decoy-`);
          const { cluster, tsLocation, autoConf } = await restoreAndRecover(
            major,
            history,
            scratch,
            "end",
            ["--recover"],
            [],
            { WALE_FILE_PREFIX: `file://${decoy}` },
          );
          assert.doesNotMatch(autoConf, /recovery_target/, "no target for --recover alone");
          assert.equal(await state(cluster), history.atB);
          await checkTablespace(cluster, history, tsLocation, "end");
          await checkServerLog(cluster, "end");
          assert.deepEqual([...Deno.readDirSync(decoy)], [], "the decoy store was not used");
          await cluster.close();
        });

        await t.step("--target-name wald_rp --target-action promote: state A", async () => {
          await recoverToStateA(
            major,
            history,
            scratch,
            "rp",
            ["--target-name", "wald_rp"],
            [/^recovery_target_name = 'wald_rp'$/m, /^recovery_target_action = 'promote'$/m],
            /recovery stopping at restore point "wald_rp"/,
          );
        });

        if (major === EXTRAS_MAJOR) await extrasOn17(history, scratch, t);

        assert.deepEqual(
          archivedNames(history.storeRoot),
          archived,
          "the restored servers archived nothing into the primary's store",
        );
      } finally {
        await scratch.cleanup();
      }
    },
  });
}
