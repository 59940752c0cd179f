// WAL archiving to S3 with a real PostgreSQL: archive_command = wal-d wal-push into s3rver on
// loopback, then a cold copy restored with restore_command = wal-d wal-fetch (prefetch on).

import assert from "node:assert/strict";
import { join } from "node:path";
import { decompressLzop } from "../../src/codec/lzop.ts";
import { EffectiveEnvironment } from "../../src/config/environment.ts";
import { resolveConfig } from "../../src/config/resolve.ts";
import { openStore } from "../../src/storage/mod.ts";
import {
  cloneCluster,
  type Cluster,
  ignoreUnlessPg,
  recover,
  waitFor,
  WAL_D_LAUNCHER,
  withCluster,
} from "../_pg/cluster.ts";
import { S3RVER_KEY, s3rverUnavailable, startS3rver } from "../storage/_s3rver.ts";

const NAME = "PostgreSQL 17 (1 MiB segments): archive to S3 (s3rver) with wal-push, restore a " +
  "cold copy with wal-fetch from S3, same rows";

const s3rverMissing = await s3rverUnavailable();
if (s3rverMissing !== null) console.log(`SKIP ${NAME}: ${s3rverMissing}`);

async function snapshot(pg: Cluster): Promise<string> {
  const [row] = await pg.sql<{ n: string; h: string }>(
    "SELECT count(*) AS n, md5(string_agg(id || ':' || payload, ',' ORDER BY id)) AS h FROM t",
  );
  return `${row.n}|${row.h}`;
}

Deno.test({
  name: NAME,
  ignore: s3rverMissing !== null || await ignoreUnlessPg([17], NAME),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = await startS3rver(["wald-pg"]);
    const env = {
      WALE_S3_PREFIX: "s3://wald-pg/cluster17",
      WALE_S3_ENDPOINT: server.endpoint,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: S3RVER_KEY,
      AWS_SECRET_ACCESS_KEY: S3RVER_KEY,
      AWS_EC2_METADATA_DISABLED: "true",
      WALE_LOG_DESTINATION: "stderr",
    };
    try {
      await withCluster({
        major: 17,
        initdbArgs: ["--wal-segsize=1"],
        settings: {
          wal_level: "replica",
          archive_mode: "on",
          archive_command: `${WAL_D_LAUNCHER} wal-push %p`,
        },
        env,
      }, async (pg) => {
        await pg.exec(`
          CREATE TABLE t (id int PRIMARY KEY, payload text NOT NULL);
          INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 2000) i;
        `);
        await pg.stop();
        const copy = await cloneCluster(pg, { settings: { archive_mode: "off" }, env });
        try {
          await pg.start();
          let last = "";
          for (let batch = 0; batch < 4; batch++) {
            await pg.exec(`
              INSERT INTO t SELECT i, repeat(md5(i::text), 8)
                FROM generate_series(${3000 + batch * 3000}, ${5000 + batch * 3000}) i;
              UPDATE t SET payload = payload || '-u${batch}' WHERE id % 7 = ${batch};
            `);
            [{ name: last }] = await pg.sql<{ name: string }>(
              "SELECT pg_walfile_name(pg_switch_wal()) AS name",
            );
          }
          await waitFor(async () => {
            const [row] = await pg.sql<{ last: string | null }>(
              "SELECT last_archived_wal AS last FROM pg_stat_archiver",
            );
            return row.last !== null && row.last >= last;
          }, { what: `segment ${last} archived to S3`, cluster: pg, timeoutMs: 60_000 });
          const expected = await snapshot(pg);
          const [stats] = await pg.sql<{ failed: string }>(
            "SELECT failed_count AS failed FROM pg_stat_archiver",
          );
          assert.equal(Number(stats.failed), 0, await pg.logTail());
          await pg.stop();

          const store = await openStore(
            resolveConfig(
              { awsInstanceProfile: false, terse: false },
              new EffectiveEnvironment(env),
            ),
          );
          const object = await store.get(`wal_005/${last}.lzo`);
          assert.ok(object !== null, `${last} is in the bucket`);
          const bytes = new Uint8Array(await new Response(object).arrayBuffer());
          assert.equal(decompressLzop(bytes).length, 1024 * 1024);

          const walDir = join(copy.dataDir, "pg_wal");
          for (const entry of Deno.readDirSync(walDir)) {
            if (entry.isFile) await Deno.remove(join(walDir, entry.name));
          }
          await recover(copy, {
            restoreCommand: `${WAL_D_LAUNCHER} wal-fetch %f %p`,
            timeoutMs: 120_000,
          });
          assert.equal(await snapshot(copy), expected);
          const log = await Deno.readTextFile((copy as Cluster).logFile);
          assert.match(log, /action=wal-fetch .*key=s3:\/\/wald-pg\/cluster17\/wal_005\//);
          assert.doesNotMatch(log, / ERROR +MSG:/);
        } finally {
          await copy.close();
        }
      });
    } finally {
      await server.stop();
    }
  },
});
