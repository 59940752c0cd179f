// WAL archiving to S3 with a real PostgreSQL: archive_command = wal-d wal-push into s3rver on
// loopback, then a cold copy restored with restore_command = wal-d wal-fetch (prefetch on).

import assert from "node:assert/strict";
import { decompressLzop } from "../../src/codec/lzop.ts";
import { EffectiveEnvironment } from "../../src/config/environment.ts";
import { resolveConfig } from "../../src/config/resolve.ts";
import { openStore } from "../../src/storage/mod.ts";
import { ignoreUnlessPg } from "../_pg/cluster.ts";
import { archiveAndRecover } from "./_cycle.ts";
import { s3rverEnv, s3rverUnavailable, startS3rver } from "../storage/_s3rver.ts";
import { readAll } from "../codec/_data.ts";

const NAME = "PostgreSQL 17 (1 MiB segments): archive to S3 (s3rver) with wal-push, restore a " +
  "cold copy with wal-fetch from S3, same rows";

const s3rverMissing = await s3rverUnavailable();
if (s3rverMissing !== null) console.log(`SKIP ${NAME}: ${s3rverMissing}`);

Deno.test({
  name: NAME,
  ignore: s3rverMissing !== null || await ignoreUnlessPg([17], NAME),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = await startS3rver(["wald-pg"]);
    const env = {
      ...s3rverEnv(server.endpoint, "s3://wald-pg/cluster17"),
      WALE_LOG_DESTINATION: "stderr",
    };
    try {
      const { log } = await archiveAndRecover({
        major: 17,
        segmentMiB: 1,
        env,
        batches: 4,
        async checkArchive(segments) {
          const store = await openStore(
            resolveConfig(
              { awsInstanceProfile: false, terse: false },
              new EffectiveEnvironment(env),
            ),
          );
          const last = segments[segments.length - 1];
          const object = await store.get(`wal_005/${last}.lzo`);
          assert.ok(object !== null, `${last} is in the bucket`);
          assert.equal(decompressLzop(await readAll(object)).length, 1024 * 1024);
        },
      });
      assert.match(log, /action=wal-fetch .*key=s3:\/\/wald-pg\/cluster17\/wal_005\//);
    } finally {
      await server.stop();
    }
  },
});
