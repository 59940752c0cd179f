// Tests of the PostgreSQL harness (test/_pg/cluster.ts) on real servers: SQL over the socket,
// archive_command running scripts/wal-d as the server's user, recovery of a cold copy through
// restore_command, two majors at once, and failure reporting.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  ALL_MAJORS,
  availableMajors,
  cloneCluster,
  createCluster,
  ignoreUnlessPg,
  makePgUserTempDir,
  missingReason,
  type PgMajor,
  pgUser,
  recover,
  runAsPgUser,
  waitForFile,
  WAL_D_LAUNCHER,
  withCluster,
} from "./_pg/cluster.ts";

const version = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)))
  .version as string;

Deno.test("harness: every PostgreSQL major is installed, or says why not", () => {
  for (const m of ALL_MAJORS) {
    const reason = missingReason(m);
    assert.equal(availableMajors().includes(m), reason === undefined, `${m}: ${reason}`);
    if (reason) console.warn(`PostgreSQL ${m} unavailable: ${reason}`);
  }
});

// The full cycle on every installed major (about 2-3 s each).
for (const major of ALL_MAJORS) {
  const name = `PostgreSQL ${major}: SQL, archive_command through scripts/wal-d, ` +
    `restore of a cold copy through restore_command`;
  Deno.test({
    name,
    ignore: await ignoreUnlessPg([major], name),
    fn: () => archiveAndRestoreCycle(major),
  });
}

async function archiveAndRestoreCycle(major: PgMajor): Promise<void> {
  const archive = await makePgUserTempDir(`wald-pg${major}-archive-`);
  try {
    const archiveCommand = `${WAL_D_LAUNCHER} version > ${archive}/wal-d-version.txt ` +
      `&& test ! -f ${archive}/%f && cp %p ${archive}/%f`;
    await withCluster({
      major,
      settings: { wal_level: "replica", archive_mode: "on", archive_command: archiveCommand },
    }, async (pg) => {
      const [{ server_version_num }] = await pg.sql<{ server_version_num: string }>(
        "SHOW server_version_num",
      );
      assert.equal(Math.floor(Number(server_version_num) / 10000), major);
      const [{ listen_addresses }] = await pg.sql<{ listen_addresses: string }>(
        "SHOW listen_addresses",
      );
      assert.equal(listen_addresses, "");
      const [{ current_user }] = await pg.sql<{ current_user: string }>("SELECT current_user");
      assert.equal(current_user, "postgres");

      await pg.exec(`
        CREATE TABLE t (id int PRIMARY KEY, payload text NOT NULL);
        INSERT INTO t SELECT i, repeat('x', 100) FROM generate_series(1, 100) i;
      `);
      const rows = await pg.sql<{ id: number }>("SELECT id FROM t WHERE id <= $1 ORDER BY id", [
        3,
      ]);
      assert.deepEqual(rows.map((r) => r.id), [1, 2, 3]);

      // A cold copy now; the rows written below reach it only through the archive.
      await pg.stop();
      const copy = await cloneCluster(pg, { settings: { archive_mode: "off" } });
      try {
        await pg.start();
        await pg.sql("INSERT INTO t SELECT i, 'late' FROM generate_series(101, 250) i");
        const [{ seg }] = await pg.sql<{ seg: string }>(
          "SELECT pg_walfile_name(pg_current_wal_lsn()) AS seg",
        );
        await pg.sql("SELECT pg_switch_wal()");
        await waitForFile(join(archive, seg), { cluster: pg, timeoutMs: 60_000 });
        const [{ size }] = await pg.sql<{ size: string }>(
          "SELECT setting::bigint * 1 AS size FROM pg_settings WHERE name = 'wal_segment_size'",
        );
        assert.equal((await Deno.stat(join(archive, seg))).size, Number(size));
        assert.equal(
          (await Deno.readTextFile(join(archive, "wal-d-version.txt"))).trim(),
          version,
          "archive_command ran scripts/wal-d",
        );
        const user = await pgUser();
        assert.equal((await Deno.stat(join(archive, seg))).uid, user.uid);
        const [{ archived_count }] = await pg.sql<{ archived_count: string }>(
          "SELECT archived_count FROM pg_stat_archiver",
        );
        assert.ok(Number(archived_count) >= 1);
        await pg.stop();

        await recover(copy, { restoreCommand: `cp ${archive}/%f %p`, timeoutMs: 60_000 });
        const [{ n }] = await copy.sql<{ n: string }>("SELECT count(*) AS n FROM t");
        assert.equal(Number(n), 250);
        const log = await copy.logTail(200);
        assert.match(log, new RegExp(`restored log file "${seg}" from archive`));
        // Recovery promoted it: writable, on a new timeline.
        await copy.sql("INSERT INTO t VALUES (251, 'after recovery')");
      } finally {
        await copy.close();
      }
    });
  } finally {
    await Deno.remove(archive, { recursive: true });
  }
}

const pair: PgMajor[] = (() => {
  const avail = availableMajors();
  return avail.length >= 2 ? [avail[0], avail[avail.length - 1]] : [13, 18];
})();
const pairName = `PostgreSQL ${pair.join(" and ")} run at once, each on its own socket`;
Deno.test({
  name: pairName,
  ignore: await ignoreUnlessPg(pair, pairName),
  async fn() {
    const clusters = await Promise.all(
      pair.map((major) => createCluster({ major, initdbArgs: ["--wal-segsize=1"] })),
    );
    try {
      await Promise.all(clusters.map((c) => c.start()));
      assert.notEqual(clusters[0].socketDir, clusters[1].socketDir);
      for (const c of clusters) {
        assert.ok((await Deno.stat(join(c.socketDir, `.s.PGSQL.${c.port}`))).isSocket);
        const dir = await Deno.stat(c.dataDir);
        assert.equal(dir.uid, (await pgUser()).uid);
        assert.equal(dir.mode! & 0o777, 0o700);
      }
      const answers = await Promise.all(clusters.map(async (c) => {
        const [row] = await c.sql<{ v: string; seg: string }>(
          "SELECT current_setting('server_version_num') AS v, " +
            "current_setting('wal_segment_size') AS seg",
        );
        return row;
      }));
      assert.deepEqual(answers.map((a) => Math.floor(Number(a.v) / 10000)), pair);
      assert.deepEqual(answers.map((a) => a.seg), ["1MB", "1MB"]);
      await clusters[0].stop("immediate");
      assert.equal(await clusters[0].isRunning(), false);
      assert.equal(await clusters[1].isRunning(), true);
    } finally {
      await Promise.all(clusters.map((c) => c.close()));
    }
    for (const c of clusters) {
      await assert.rejects(Deno.stat(c.dataDir), Deno.errors.NotFound);
      await c.close(); // idempotent
    }
  },
});

const major0: PgMajor = availableMajors()[0] ?? 13;
const confName = `PostgreSQL ${major0}: settings are quoted, a bad one fails start() with the log`;
Deno.test({
  name: confName,
  ignore: await ignoreUnlessPg([major0], confName),
  async fn() {
    const pg = await createCluster({
      major: major0,
      settings: { cluster_name: `it's \\ "quoted"`, work_mem: 8192, jit: false },
      env: { WALD_HARNESS_PROBE: "inherited" },
    });
    try {
      await pg.start();
      const [row] = await pg.sql<{ c: string; w: string; j: string }>(
        "SELECT current_setting('cluster_name') AS c, current_setting('work_mem') AS w, " +
          "current_setting('jit') AS j",
      );
      assert.deepEqual(row, { c: `it's \\ "quoted"`, w: "8MB", j: "off" });
      // Programs the server runs (archive_command, COPY ... PROGRAM) get its environment.
      await pg.sql("CREATE TABLE probe (line text)");
      await pg.sql(
        `COPY probe FROM PROGRAM 'id -u; printf "%s\\n%s\\n" "$DENO_DIR" "$WALD_HARNESS_PROBE"'`,
      );
      const lines = (await pg.sql<{ line: string }>("SELECT line FROM probe")).map((r) => r.line);
      const user = await pgUser();
      assert.equal(Number(lines[0]), user.uid);
      if (user.switched) assert.equal(lines[1], join(user.home, ".cache", "deno"));
      assert.equal(lines[2], "inherited");
      await pg.stop();

      await pg.configure({ wald_bogus_setting: 1 });
      await assert.rejects(pg.start(), (e: Error) => {
        assert.match(e.message, /did not start/);
        assert.match(e.message, /wald_bogus_setting/);
        return true;
      });
    } finally {
      await pg.close();
    }
    await assert.rejects(Deno.stat(pg.dataDir), Deno.errors.NotFound);
  },
});

Deno.test({
  name: "runAsPgUser runs as the server's user with the harness environment",
  ignore: await ignoreUnlessPg([major0], "runAsPgUser"),
  async fn() {
    const user = await pgUser();
    const r = await runAsPgUser(["sh", "-c", 'id -u; echo "$DENO_DIR"; echo "$FOO"'], {
      env: { FOO: "bar" },
    });
    assert.equal(r.code, 0, r.stderr);
    const [uid, denoDir, foo] = r.stdout.trim().split("\n");
    assert.equal(Number(uid), user.uid);
    if (user.switched) {
      assert.notEqual(user.uid, 0);
      assert.equal(denoDir, join(user.home, ".cache", "deno"));
    }
    assert.equal(foo, "bar");
  },
});
