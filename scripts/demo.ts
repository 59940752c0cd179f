/**
 * The main job, end to end, on a real PostgreSQL from npm and a local file:// store:
 *
 *   deno task demo [--major 13..18]
 *
 * 1. start a PostgreSQL cluster whose archive_command is `scripts/wal-d wal-push %p`, load rows;
 * 2. take a base backup with `wal-d backup-push` while another connection keeps writing;
 * 3. write more after the backup, create the restore point `demo` in the middle of those writes,
 *    and wait until wal-push has archived everything; note the row counts at the restore point
 *    and at the end, then stop the primary;
 * 4. `wal-d backup-fetch NEWDIR LATEST --recover`: restore the backup, with recovery.signal and a
 *    restore_command running `wal-d wal-fetch` (backup-fetch writes both); start PostgreSQL on it,
 *    which replays the whole archive and is promoted at its end; compare the rows with the
 *    primary's at the end;
 * 5. the same with `--target-name demo --target-action promote`: recovery stops at the restore
 *    point and the server is promoted there; compare the rows with the primary's at that point.
 *
 * The restored servers run with archive_mode = off, so they never archive into the primary's
 * archive. Runs PostgreSQL as an unprivileged user (created if needed when run as root), on unix
 * sockets only, in temporary directories that are removed at the end. Exits 1 when a restored
 * cluster's rows differ from the primary's, or when anything fails.
 */

import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  adoptDataDir,
  availableMajors,
  type Cluster,
  createCluster,
  makePgUserTempDir,
  type PgMajor,
  runAsPgUser,
  switchWal,
  waitForArchived,
  waitForRecoveryEnd,
  WAL_D_LAUNCHER,
} from "../test/_pg/cluster.ts";

const { values } = parseArgs({ args: Deno.args, options: { major: { type: "string" } } });
const majors = availableMajors();
const major = (values.major ? Number(values.major) : majors[majors.length - 1]) as PgMajor;
if (!majors.includes(major)) {
  console.error(
    `demo: PostgreSQL ${values.major ?? ""} is not installed (available: ${
      majors.join(", ") || "none"
    }); run 'deno install' first, or pass --major with one of them`,
  );
  Deno.exit(1);
}

const demoStarted = performance.now();
let stepNumber = 0;
function step(text: string): void {
  console.log(`\n[${++stepNumber}] ${text}`);
}
function detail(text: string): void {
  console.log(`    ${text}`);
}
function secondsSince(started: number): string {
  return `${((performance.now() - started) / 1000).toFixed(1)} s`;
}

/** The table's row count and a hash of its contents. */
interface Rows {
  count: number;
  md5: string;
}
async function rows(pg: Cluster): Promise<Rows> {
  const [r] = await pg.sql<{ n: string; h: string }>(
    "SELECT count(*) AS n, md5(string_agg(id || ':' || note, ',' ORDER BY id)) AS h FROM demo",
  );
  return { count: Number(r.n), md5: r.h };
}
const show = (r: Rows) => `${r.count} rows (md5 of the contents ${r.md5})`;

const store = await makePgUserTempDir("wald-demo-store-");
const restoreHolder = await makePgUserTempDir("wald-demo-restore-");
const env = { WALE_FILE_PREFIX: `file://${store}`, WALE_LOG_DESTINATION: "stderr" };

/** Runs `scripts/wal-d ARGS` as the PostgreSQL user, with the store's settings; returns stdout. */
async function walD(args: string[], pg?: Cluster): Promise<string> {
  detail(`$ wal-d ${args.join(" ")}`);
  const r = await runAsPgUser([WAL_D_LAUNCHER, ...args], { env: { ...env, ...pg?.pgEnv } });
  if (r.code !== 0) {
    throw new Error(`wal-d ${args[0]} exited with ${r.code}:\n${r.stderr.trim()}`);
  }
  return r.stdout.trim();
}

/** Write load until `stop()`: small insert/update transactions; returns how many committed. */
function startLoad(pg: Cluster): { stop(): Promise<number> } {
  let running = true;
  let batches = 0;
  const loop = (async () => {
    while (running) {
      const from = 1_000_000 + batches * 200;
      await pg.exec(`
        INSERT INTO demo SELECT i, 'during the backup ' || i FROM generate_series(${from}, ${
        from + 199
      }) i;
        UPDATE demo SET note = note || ' (touched)' WHERE id % 101 = ${batches % 101};
      `);
      batches++;
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return batches;
    },
  };
}

/**
 * backup-fetch of the latest backup into a new directory with `fetchArgs`, then PostgreSQL on it
 * until recovery ends; returns its rows (the server is closed).
 */
async function restore(label: string, fetchArgs: string[]): Promise<Rows> {
  const dataDir = join(restoreHolder, label);
  const started = performance.now();
  await walD(["backup-fetch", dataDir, "LATEST", "--recover", ...fetchArgs]);
  detail(`restored in ${secondsSince(started)}; postgresql.auto.conf as backup-fetch wrote it:`);
  const auto = await Deno.readTextFile(join(dataDir, "postgresql.auto.conf"));
  for (const line of auto.split("\n")) {
    if (line.trim() !== "" && !line.startsWith("#")) detail(`  ${line}`);
  }
  // The harness's settings (a socket of its own) plus archive_mode = off: the restored server
  // must not archive into the primary's archive. recovery.signal and restore_command are
  // backup-fetch's.
  const cluster = await adoptDataDir(major, dataDir, {
    settings: { archive_mode: "off" },
    env,
    removeDataDir: true,
  });
  try {
    const recoveryStarted = performance.now();
    await cluster.start();
    await waitForRecoveryEnd(cluster, 300_000);
    const log = await Deno.readTextFile(cluster.logFile);
    const fetched = log.match(/MSG: complete wal restore/g)?.length ?? 0;
    const prefetched = log.match(/MSG: promoted prefetched wal segment/g)?.length ?? 0;
    const stop = log.match(/LOG: {2}((?:recovery stopping|redo done) [^\n]*)/)?.[1];
    detail(
      `PostgreSQL started on it; recovery ended in ${secondsSince(recoveryStarted)} ` +
        `(wal-fetch restored ${fetched + prefetched} WAL files from the archive, ` +
        `${prefetched} of them already downloaded by its prefetch)`,
    );
    if (stop) detail(`server log: ${stop}`);
    return await rows(cluster);
  } finally {
    await cluster.close();
  }
}

let primary: Cluster | undefined;
const results: { what: string; expected: Rows; actual: Rows }[] = [];
let failed = false;
try {
  step(`Start PostgreSQL ${major} with archive_command = 'wal-d wal-push %p', and load rows`);
  primary = await createCluster({
    major,
    settings: {
      wal_level: "replica",
      archive_mode: "on",
      archive_command: `${WAL_D_LAUNCHER} wal-push %p`,
    },
    env,
  });
  await primary.start();
  detail(`data directory ${primary.dataDir}`);
  detail(`archive (WALE_FILE_PREFIX) ${env.WALE_FILE_PREFIX}`);
  await primary.exec(`
    CREATE TABLE demo (id int PRIMARY KEY, note text NOT NULL);
    INSERT INTO demo SELECT i, 'before the backup ' || i FROM generate_series(1, 200000) i;
  `);
  detail(`loaded ${show(await rows(primary))}`);

  step("Take a base backup with wal-d backup-push while another connection keeps writing");
  const load = startLoad(primary);
  let backupName: string;
  const backupStarted = performance.now();
  try {
    backupName = await walD(["backup-push", "--fast-checkpoint", primary.dataDir], primary);
  } finally {
    const batches = await load.stop();
    detail(`${batches} write transactions committed while the backup ran`);
  }
  detail(`backup ${backupName} taken in ${secondsSince(backupStarted)}`);
  for (const line of (await walD(["backup-list", "--detail"])).split(/\r?\n/)) detail(`  ${line}`);

  step("Write more after the backup, with the restore point 'demo' in the middle");
  await primary.exec(`
    INSERT INTO demo SELECT i, 'after the backup ' || i FROM generate_series(2000000, 2050000) i;
    UPDATE demo SET note = note || ' (updated)' WHERE id % 13 = 1;
  `);
  await primary.exec("SELECT pg_create_restore_point('demo')");
  const atRestorePoint = await rows(primary);
  detail(`at the restore point 'demo': ${show(atRestorePoint)}`);
  await primary.exec(`
    INSERT INTO demo SELECT i, 'after the restore point ' || i
      FROM generate_series(3000000, 3030000) i;
    DELETE FROM demo WHERE id % 17 = 2;
  `);
  const atEnd = await rows(primary);
  detail(`at the end:                 ${show(atEnd)}`);
  const last = await switchWal(primary);
  await waitForArchived(primary, last, 120_000);
  const archived = [...Deno.readDirSync(join(store, "wal_005"))].map((e) => e.name).sort();
  let compressed = 0;
  for (const name of archived) compressed += Deno.statSync(join(store, "wal_005", name)).size;
  detail(
    `wal-push has archived everything up to ${last}: wal_005/ holds ${archived.length} ` +
      `objects, ${(compressed / 1e6).toFixed(1)} MB (${archived[0]} .. ${archived.at(-1)})`,
  );
  await primary.stop();
  detail("primary stopped");

  step("Restore the backup and replay the whole archive (--recover: to its end, then promote)");
  results.push({
    what: "end of the archive",
    expected: atEnd,
    actual: await restore("to-the-end", []),
  });
  detail(`restored cluster has ${show(results.at(-1)!.actual)}`);

  step("Restore the backup again, up to the restore point 'demo' (--target-name demo)");
  results.push({
    what: "restore point 'demo'",
    expected: atRestorePoint,
    actual: await restore("to-demo", ["--target-name", "demo", "--target-action", "promote"]),
  });
  detail(`restored cluster has ${show(results.at(-1)!.actual)}`);
} catch (error) {
  failed = true;
  console.error(`\ndemo failed: ${error instanceof Error ? error.message : error}`);
} finally {
  await primary?.close();
  await Deno.remove(store, { recursive: true }).catch(() => {});
  await Deno.remove(restoreHolder, { recursive: true }).catch(() => {});
}

if (results.length > 0) {
  console.log("\nSummary (rows of the demo table):");
  for (const { what, expected, actual } of results) {
    const same = actual.count === expected.count && actual.md5 === expected.md5;
    if (!same) failed = true;
    console.log(
      `  restored to the ${what.padEnd(21)} ${String(actual.count).padStart(7)} rows, ` +
        `primary had ${String(expected.count).padStart(7)}: ` +
        (same ? "same rows and contents" : "DIFFERENT"),
    );
  }
}
console.log(
  failed
    ? `\nFAILED after ${secondsSince(demoStarted)}.`
    : `\nOK: both restores match the primary (${secondsSince(demoStarted)}).`,
);
Deno.exit(failed ? 1 : 0);
