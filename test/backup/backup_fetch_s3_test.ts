/**
 * backup-fetch from S3 (s3rver on loopback): the genuine WAL-E 1.1.1 `plain` backup, and the same
 * volume under a wal-d sentinel listing its size and SHA-256, each restored through the CLI and
 * compared file by file with a restore of the same backup from the file:// fixture. The SDK's
 * download streams are not byte streams, so this covers the other read path of the restore.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { encodeSentinel } from "../../src/backup/sentinel.ts";
import { EffectiveEnvironment } from "../../src/config/environment.ts";
import { resolveConfig } from "../../src/config/resolve.ts";
import { fromFileUrl } from "../../src/io/path.ts";
import { backupSentinelKey, extendedVersionKey, volumeKey } from "../../src/layout/keys.ts";
import { openStore } from "../../src/storage/mod.ts";
import { s3rverEnv, s3rverUnavailable, startS3rver } from "../storage/_s3rver.ts";
import { walD } from "../wal/_cli.ts";
import { exists, sha } from "./_restore_scratch.ts";
import { SAMPLE_EXTENSION, walEFixtureSentinel } from "./_sentinels.ts";

const FIXTURE = fromFileUrl(new URL("../fixtures/wal-e-1.1.1/plain", import.meta.url));
const WALE_NAME = "base_000000010000000000000003_00000040";
/** A second backup name for the same volume under a wal-d sentinel. */
const WALD_NAME = "base_000000010000000000000003_00000041";

/** Path → size and SHA-256 (or link target, or "dir") of every entry under `root`. */
function tree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (rel: string) => {
    const path = rel === "" ? root : join(root, rel);
    const info = Deno.lstatSync(path);
    if (info.isSymlink) out.set(rel, `-> ${Deno.readLinkSync(path)}`);
    else if (info.isDirectory) {
      out.set(rel, `dir ${(info.mode! & 0o777).toString(8)}`);
      for (const entry of Deno.readDirSync(path)) {
        visit(rel === "" ? entry.name : `${rel}/${entry.name}`);
      }
    } else {
      out.set(
        rel,
        `${info.size} ${(info.mode! & 0o777).toString(8)} ${sha(Deno.readFileSync(path))}`,
      );
    }
  };
  visit("");
  return out;
}

const s3rverMissing = await s3rverUnavailable();
const NAME = "backup-fetch from S3 (s3rver): a WAL-E backup and a wal-d-verified one restore " +
  "exactly as from the file store";
if (s3rverMissing !== null) console.log(`SKIP ${NAME}: ${s3rverMissing}`);

Deno.test({
  name: NAME,
  ignore: s3rverMissing !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = await startS3rver(["wald-restore"]);
    const dir = await Deno.makeTempDir({ prefix: "wald-fetch-s3-" });
    const env = {
      ...s3rverEnv(server.endpoint, "s3://wald-restore/cluster"),
      WALE_FILE_PREFIX: "",
      WALD_PROGRESS_SECONDS: "0",
    };
    try {
      const store = await openStore(
        resolveConfig({ awsInstanceProfile: false, terse: false }, new EffectiveEnvironment(env)),
      );
      // The WAL-E backup as WAL-E stored it.
      const [version, volume] = await Promise.all(
        [extendedVersionKey(WALE_NAME), volumeKey(WALE_NAME, 0), backupSentinelKey(WALE_NAME)]
          .map(async (key) => {
            const bytes = await Deno.readFile(join(FIXTURE, key));
            await store.put(key, bytes);
            return bytes;
          }),
      );
      // The same volume under a wal-d sentinel with its size and SHA-256.
      await store.put(extendedVersionKey(WALD_NAME), version);
      await store.put(volumeKey(WALD_NAME, 0), volume);
      const sentinel = {
        ...walEFixtureSentinel("plain"),
        ...SAMPLE_EXTENSION,
        encryption: null,
        volumes: [{
          name: "part_00000000.tar.lzo",
          size: volume.length,
          sha256: sha(volume),
          expandedSizeBytes: 39727137,
          members: 1019,
        }],
      };
      await store.put(
        backupSentinelKey(WALD_NAME),
        new TextEncoder().encode(encodeSentinel(sentinel)),
      );

      // The reference: the same backup from the file:// fixture.
      const reference = join(dir, "from-file");
      const fromFile = await walD(["backup-fetch", reference, WALE_NAME, "--blind-restore"], {
        env: { ...env, WALE_S3_PREFIX: "", WALE_FILE_PREFIX: `file://localhost${FIXTURE}` },
      });
      assert.equal(fromFile.code, 0, fromFile.stderr);
      const expected = tree(reference);
      assert.ok(expected.size > 1000);

      for (const name of [WALE_NAME, WALD_NAME]) {
        const target = join(dir, name);
        const result = await walD(["backup-fetch", target, name, "--blind-restore"], { env });
        assert.equal(result.code, 0, result.stderr);
        if (name === WALD_NAME) assert.match(result.stderr, /size and SHA-256 verified/);
        assert.deepEqual(tree(target), expected, `${name} from S3`);
      }

      // A wal-d backup whose stored volume no longer matches its sentinel: refused.
      const tampered = volume.slice();
      tampered[tampered.length - 5] ^= 0xff; // inside the lzop end marker's neighbourhood
      await store.put(volumeKey(WALD_NAME, 0), tampered);
      const bad = await walD(["backup-fetch", join(dir, "bad"), WALD_NAME, "--blind-restore"], {
        env,
      });
      assert.equal(bad.code, 1, bad.stderr);
      assert.match(bad.stderr, /ERROR +MSG: .*(corrupt|does not match)/);
      assert.ok(!exists(join(dir, "bad", "global", "pg_control")));
    } finally {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
