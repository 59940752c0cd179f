/**
 * The main job, end to end, on a real PostgreSQL from npm and a local file:// store:
 *
 *   deno task demo [--major 13..18]
 *
 * 1. start a PostgreSQL cluster whose archive_command is `scripts/wal-d wal-push %p`;
 * 2. load rows and take a cold copy of the cluster (the starting point of the restore);
 * 3. write more, switch WAL segments, and wait until wal-push has archived them;
 * 4. restore the copy with restore_command = `scripts/wal-d wal-fetch %f %p` (prefetch on),
 *    from an empty pg_wal, so every segment comes from the archive;
 * 5. check that the restored cluster has exactly the original's rows.
 *
 * Runs PostgreSQL as an unprivileged user (created if needed when run as root), on unix sockets
 * only, in temporary directories that are removed at the end.
 */

import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  availableMajors,
  cloneCluster,
  type Cluster,
  createCluster,
  makePgUserTempDir,
  type PgMajor,
  recover,
  switchWal,
  waitForArchived,
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

let stepNumber = 0;
function step(text: string): void {
  console.log(`\n[${++stepNumber}] ${text}`);
}
function detail(text: string): void {
  console.log(`    ${text}`);
}

async function rows(pg: Cluster): Promise<string> {
  const [r] = await pg.sql<{ n: string; h: string }>(
    "SELECT count(*) AS n, md5(string_agg(id || ':' || note, ',' ORDER BY id)) AS h FROM demo",
  );
  return `${r.n} rows, md5 ${r.h}`;
}

const store = await makePgUserTempDir("wald-demo-store-");
const env = { WALE_FILE_PREFIX: `file://${store}`, WALE_LOG_DESTINATION: "stderr" };
let primary: Cluster | undefined;
let restored: Cluster | undefined;
let ok = false;
try {
  step(`Start PostgreSQL ${major} with archive_command = 'wal-d wal-push %p'`);
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

  step("Load rows, then take a cold copy of the cluster: the restore's starting point");
  await primary.exec(`
    CREATE TABLE demo (id int PRIMARY KEY, note text NOT NULL);
    INSERT INTO demo SELECT i, 'before the copy ' || i FROM generate_series(1, 10000) i;
  `);
  await primary.stop();
  restored = await cloneCluster(primary, { settings: { archive_mode: "off" }, env });
  await primary.start();
  detail(`copy at ${restored.dataDir}: ${await rows(primary)}`);

  step("Write more and switch WAL segments; wal-push archives each one");
  let last = "";
  for (let batch = 1; batch <= 4; batch++) {
    await primary.exec(`
      INSERT INTO demo SELECT i, 'batch ${batch} ' || i
        FROM generate_series(${batch * 100000}, ${batch * 100000 + 20000}) i;
      UPDATE demo SET note = note || ' (updated)' WHERE id % 13 = ${batch};
    `);
    last = await switchWal(primary);
  }
  await waitForArchived(primary, last, 120_000);
  const expected = await rows(primary);
  detail(`primary now has ${expected}`);
  const archived = [...Deno.readDirSync(join(store, "wal_005"))].map((e) => e.name).sort();
  let compressed = 0;
  for (const name of archived) compressed += Deno.statSync(join(store, "wal_005", name)).size;
  detail(`archive holds ${archived.length} objects, ${(compressed / 1e6).toFixed(1)} MB:`);
  for (const name of archived) detail(`  wal_005/${name}`);
  await primary.stop();

  step("Restore the copy with restore_command = 'wal-d wal-fetch %f %p', from an empty pg_wal");
  const walDir = join(restored.dataDir, "pg_wal");
  for (const entry of Deno.readDirSync(walDir)) {
    if (entry.isFile) Deno.removeSync(join(walDir, entry.name));
  }
  const started = performance.now();
  await recover(restored, {
    restoreCommand: `${WAL_D_LAUNCHER} wal-fetch %f %p`,
    timeoutMs: 180_000,
  });
  const log = await Deno.readTextFile(restored.logFile);
  const fetched = log.match(/MSG: complete wal restore/g)?.length ?? 0;
  const promoted = log.match(/MSG: promoted prefetched wal segment/g)?.length ?? 0;
  detail(
    `recovery finished in ${((performance.now() - started) / 1000).toFixed(1)} s: ` +
      `${fetched} segments downloaded by wal-fetch, ${promoted} served from prefetch`,
  );

  step("Compare the rows");
  const actual = await rows(restored);
  detail(`restored: ${actual}`);
  detail(`expected: ${expected}`);
  ok = actual === expected;
  console.log(ok ? "\nOK: the restored cluster matches." : "\nFAILED: the rows differ.");
} catch (error) {
  console.error(`\ndemo failed: ${error instanceof Error ? error.message : error}`);
} finally {
  await restored?.close();
  await primary?.close();
  await Deno.remove(store, { recursive: true }).catch(() => {});
}
Deno.exit(ok ? 0 : 1);
