// WAL archiving with real PostgreSQL servers: archive_command = wal-d wal-push, restore of a cold
// copy with restore_command = wal-d wal-fetch (prefetch on), the overwrite refusal between two
// clusters sharing a prefix, and a backlog of ready segments pushed ahead with the ledger.

import assert from "node:assert/strict";
import { join } from "node:path";
import { decompressLzop } from "../../src/codec/lzop.ts";
import { isTemporaryName } from "../../src/io/atomic_file.ts";
import {
  chownToPgUser,
  type Cluster,
  createCluster,
  ignoreUnlessPg,
  makePgUserTempDir,
  type PgMajor,
  runAsPgUser,
  switchWal,
  waitFor,
  waitForArchived,
  WAL_D_LAUNCHER,
  withCluster,
} from "../_pg/cluster.ts";
import { ARCHIVE_SETTINGS, archiveAndRecover } from "./_cycle.ts";

function storeEnv(store: string): Record<string, string> {
  return { WALE_FILE_PREFIX: `file://localhost${store}`, WALE_LOG_DESTINATION: "stderr" };
}

/** Switches to a new segment and waits until the archiver has archived the one it closed. */
async function switchAndWaitArchived(pg: Cluster): Promise<string> {
  const name = await switchWal(pg);
  await waitForArchived(pg, name);
  return name;
}

for (const [major, segmentMiB] of [[13, 16], [17, 1]] as [PgMajor, number][]) {
  const name = `PostgreSQL ${major} (${segmentMiB} MiB segments): archive with wal-push under ` +
    `load, restore a cold copy with wal-fetch and prefetch, same rows`;
  Deno.test({
    name,
    ignore: await ignoreUnlessPg([major], name),
    fn: () => archiveAndRecoverToFiles(major, segmentMiB),
  });
}

async function archiveAndRecoverToFiles(major: PgMajor, segmentMiB: number): Promise<void> {
  const store = await makePgUserTempDir(`wald-pg${major}-store-`);
  try {
    const { log, walDirNames } = await archiveAndRecover({
      major,
      segmentMiB,
      env: storeEnv(store),
      batches: 6,
      async checkArchive(segments) {
        for (const segment of segments) {
          const object = await Deno.readFile(join(store, "wal_005", `${segment}.lzo`));
          assert.equal(decompressLzop(object).length, segmentMiB * 1024 * 1024, segment);
        }
      },
    });
    assert.match(log, /promoted prefetched wal segment/, "prefetch served segments");
    assert.ok(!walDirNames.some(isTemporaryName), walDirNames.join(" "));
  } finally {
    await Deno.remove(store, { recursive: true });
  }
}

const refusalName = "PostgreSQL 17: a second cluster archiving into the same prefix is refused, " +
  "and nothing is overwritten";
Deno.test({
  name: refusalName,
  ignore: await ignoreUnlessPg([17], refusalName),
  async fn() {
    const store = await makePgUserTempDir("wald-pg17-shared-store-");
    const env = storeEnv(store);
    try {
      await withCluster({ major: 17, settings: ARCHIVE_SETTINGS, env }, async (first) => {
        await first.exec("CREATE TABLE t (id int PRIMARY KEY, payload text NOT NULL);");
        const segment = await switchAndWaitArchived(first);
        const object = join(store, "wal_005", `${segment}.lzo`);
        const original = await Deno.readFile(object);
        await withCluster({ major: 17, settings: ARCHIVE_SETTINGS, env }, async (second) => {
          await second.exec("CREATE TABLE other (x int); INSERT INTO other VALUES (1);");
          await second.sql("SELECT pg_switch_wal()");
          await waitFor(async () => {
            const [row] = await second.sql<{ failed: string }>(
              "SELECT failed_count AS failed FROM pg_stat_archiver",
            );
            return Number(row.failed) >= 1;
          }, { what: "the second cluster's archive_command to fail", cluster: second });
          const log = await Deno.readTextFile(second.logFile);
          assert.match(log, /refusing to overwrite an archived WAL file with different content/);
        });
        assert.deepEqual(await Deno.readFile(object), original, "the first copy is untouched");
      });
    } finally {
      await Deno.remove(store, { recursive: true });
    }
  },
});

const backlogName = "PostgreSQL 13: a backlog of ready segments is pushed ahead in parallel and " +
  "PostgreSQL's later calls are answered from the ledger";
Deno.test({
  name: backlogName,
  ignore: await ignoreUnlessPg([13], backlogName),
  async fn() {
    const store = await makePgUserTempDir("wald-pg13-backlog-store-");
    const env = storeEnv(store);
    try {
      // Archiving fails at first, so finished segments pile up as .ready.
      const pg = await createCluster({
        major: 13,
        initdbArgs: ["--wal-segsize=1"],
        settings: { ...ARCHIVE_SETTINGS, archive_command: "/bin/false" },
        env,
      });
      try {
        await pg.start();
        await pg.exec("CREATE TABLE t (id int PRIMARY KEY, payload text NOT NULL);");
        const switched: string[] = [];
        for (let i = 0; i < 6; i++) {
          await pg.sql(
            `INSERT INTO t SELECT i, md5(i::text) FROM generate_series(${i * 1000}, ${
              i * 1000 + 999
            }) i`,
          );
          switched.push(await switchWal(pg));
        }
        await pg.configure({ archive_command: `${WAL_D_LAUNCHER} wal-push --pool-size 4 %p` });
        await pg.reload();
        await waitForArchived(pg, switched[switched.length - 1]);
        for (const segment of switched) {
          await Deno.stat(join(store, "wal_005", `${segment}.lzo`));
        }
        const log = await Deno.readTextFile(pg.logFile);
        assert.match(log, /already archived by an earlier wal-push/);
        // A call that comes between push-ahead's upload and its ledger entry finds no entry and
        // compares the stored copy instead ("already archived with the same content"): slower,
        // equally right, and under load it happens. Nothing may be refused or fail.
        assert.doesNotMatch(log, /refusing to overwrite|ERROR|CRITICAL/);
        // Entries are dropped once PostgreSQL has marked their files done: after one more
        // segment, nothing is left.
        await pg.sql("INSERT INTO t VALUES (-1, 'x')");
        await switchAndWaitArchived(pg);
        const ledger = join(pg.dataDir, "pg_wal", ".wal-d", "pushed");
        await waitFor(() => [...Deno.readDirSync(ledger)].length === 0, {
          what: "the ledger to empty",
          cluster: pg,
        });
      } finally {
        await pg.close();
      }
    } finally {
      await Deno.remove(store, { recursive: true });
    }
  },
});

const unreadableName = "wal-push: a WAL file its user cannot read gives one clear line and exit 1";
Deno.test({
  name: unreadableName,
  ignore: await ignoreUnlessPg([17], unreadableName),
  async fn() {
    // Root reads everything, so run wal-push as the unprivileged PostgreSQL user.
    const dir = await makePgUserTempDir("wald-unreadable-");
    try {
      const walDir = join(dir, "pg_wal");
      await Deno.mkdir(walDir);
      await chownToPgUser(walDir);
      const segment = join(walDir, "000000010000000000000001");
      await Deno.writeFile(segment, new Uint8Array(1024), { mode: 0o000 });
      if (Deno.uid() === 0) await Deno.chown(segment, 0, 0);
      const result = await runAsPgUser([WAL_D_LAUNCHER, "wal-push", segment], {
        env: storeEnv(join(dir, "store")),
      });
      assert.equal(result.code, 1, result.stderr);
      const errors = result.stderr.split("\n").filter((line) => / ERROR /.test(line));
      assert.equal(errors.length, 1, result.stderr);
      assert.match(result.stderr, /MSG: could not read file for wal-push/);
      assert.match(result.stderr, /HINT: Run wal-push as the operating system user/);
      await assert.rejects(Deno.stat(join(dir, "store", "wal_005")), Deno.errors.NotFound);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
