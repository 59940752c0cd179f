import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type BackupEntry,
  compareStartPositions,
  findBackup,
  LATEST,
  latestBackup,
  listBackups,
  readSentinel,
} from "../../src/backup/catalog.ts";
import { encodeSentinel, type Sentinel, SentinelError } from "../../src/backup/sentinel.ts";
import { UserError } from "../../src/cli/errors.ts";
import { EffectiveEnvironment } from "../../src/config/environment.ts";
import { resolveConfig } from "../../src/config/resolve.ts";
import { backupSentinelKey, extendedVersionKey, volumeKey } from "../../src/layout/keys.ts";
import { formatLastModified } from "../../src/commands/backup_list.ts";
import { FileStore } from "../../src/storage/file.ts";
import { openStore } from "../../src/storage/mod.ts";
import type { ListOptions, ListPage, ObjectStore } from "../../src/storage/types.ts";
import { s3rverEnv, s3rverUnavailable, startS3rver } from "../storage/_s3rver.ts";
import { walD } from "../wal/_cli.ts";
import { captureLogger } from "../log/_capture.ts";
import { withCleanup } from "./_restore_scratch.ts";
import { SAMPLE_EXTENSION, walEFixtureSentinel } from "./_sentinels.ts";
import { writeKey } from "./_tree.ts";

const FIXTURES = new URL("../fixtures/wal-e-1.1.1/", import.meta.url).pathname;
const FIXTURE_BACKUP = "base_000000010000000000000003_00000040";

const B1 = "base_000000010000000000000002_00000040";
const B2 = "base_000000010000000000000005_00000040";
const B3 = "base_000000020000000000000004_00000040";
const B4 = "base_000000010000000000000005_00000008";
const B5 = "base_00000001000000000000000A_00000040";
const INCOMPLETE = "base_000000030000000000000009_00000040";
const CORRUPT = "base_000000010000000000000006_00000040";

function sentinelFor(stopSegment: string, extension: boolean): Sentinel {
  const sentinel: Sentinel = {
    walSegmentBackupStop: stopSegment,
    walSegmentOffsetBackupStop: "00000312",
    expandedSizeBytes: 1234,
    spec: { basePrefix: "/pgdata/", tablespaces: [] },
  };
  if (!extension) return sentinel;
  return {
    ...sentinel,
    ...SAMPLE_EXTENSION,
    encryption: null,
    volumes: [{
      name: "part_00000000.tar.lzo",
      size: 3,
      sha256: "a".repeat(64),
      expandedSizeBytes: 1234,
      members: 2,
    }],
  };
}

interface TempStore {
  dir: string;
  store: FileStore;
  cleanup(): Promise<void>;
}

/** A file store in a temporary directory. */
async function tempStore(): Promise<TempStore> {
  const dir = await Deno.makeTempDir({ prefix: "wald-catalog-" });
  return {
    dir,
    store: new FileStore(dir),
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
}

/** A test with a fresh file store, removed afterwards. */
const storeTest = (name: string, body: (t: TempStore) => Promise<void>) =>
  Deno.test(name, () => withCleanup(tempStore, body));

/** A backup as backup-push leaves it: version text, volumes, then (if complete) the sentinel. */
async function writeBackup(
  dir: string,
  name: string,
  sentinel: string | null,
  mtime?: Date,
): Promise<void> {
  await writeKey(dir, extendedVersionKey(name), "PostgreSQL 17.0");
  await writeKey(dir, volumeKey(name, 0), "vol");
  await writeKey(dir, volumeKey(name, 1), "vol");
  if (sentinel !== null) await writeKey(dir, backupSentinelKey(name), sentinel, mtime);
}

/** The test archive: five complete backups, one incomplete, one corrupt, and stray keys. */
async function populate(dir: string): Promise<void> {
  // B1 is the newest upload, B3 the furthest into the WAL.
  const complete: [string, string, boolean, string][] = [
    [B1, "000000010000000000000002", true, "2026-03-01T00:00:00.250Z"],
    [B2, "000000010000000000000005", false, "2026-01-02T00:00:00Z"],
    [B3, "000000020000000000000004", false, "2026-01-03T00:00:00Z"],
    [B4, "000000010000000000000005", false, "2026-01-04T00:00:00Z"],
  ];
  for (const [name, stop, extension, time] of complete) {
    await writeBackup(dir, name, encodeSentinel(sentinelFor(stop, extension)), new Date(time));
  }
  await writeBackup(dir, INCOMPLETE, null);
  // A copy of B1's sentinel with a suffix: WAL-E's start-anchored pattern matches it too.
  await writeKey(dir, `${backupSentinelKey(B1)}.bak`, "{}");
  // B5 exists only as such a suffixed sentinel: WAL-E lists it, so does wal-d.
  await writeBackup(dir, B5, null);
  await writeKey(
    dir,
    `${backupSentinelKey(B5)}.old`,
    encodeSentinel(sentinelFor("00000001000000000000000A", false)),
    new Date("2026-01-05T00:00:00Z"),
  );
  // Stray keys at the sentinel level.
  await writeKey(dir, "basebackups_005/README", "not a backup");
  await writeKey(dir, "basebackups_005/base_1_2_backup_stop_sentinel.json", "{}");
  await writeKey(dir, "basebackups_005/x_base_000000010000000000000002_00000040", "{}");
  await writeKey(dir, "wal_005/000000010000000000000002.lzo", "wal");
}

/** Wraps a store and records every listing call and every key it returned. */
class RecordingStore implements ObjectStore {
  readonly lists: { prefix: string; options: ListOptions }[] = [];
  readonly listed: string[] = [];
  readonly gets: string[] = [];
  constructor(readonly inner: ObjectStore) {}
  get scheme(): string {
    return this.inner.scheme;
  }
  url(key: string): string {
    return this.inner.url(key);
  }
  put: ObjectStore["put"] = (key, body, options) => this.inner.put(key, body, options);
  head: ObjectStore["head"] = (key, options) => this.inner.head(key, options);
  delete: ObjectStore["delete"] = (keys, options) => this.inner.delete(keys, options);
  get: ObjectStore["get"] = (key, options) => {
    this.gets.push(key);
    return this.inner.get(key, options);
  };
  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    this.lists.push({ prefix, options });
    const page = await this.inner.list(prefix, { ...options, pageSize: 2 });
    this.listed.push(...page.objects.map((o) => o.key), ...page.prefixes);
    return page;
  }
}

function userErrorMatching(pattern: RegExp): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof UserError, String(error));
    assert.equal(error.exitCode, 1);
    assert.match(error.message, pattern);
    return true;
  };
}

storeTest("listBackups: complete backups only, by start position, one listing level", async (t) => {
  await populate(t.dir);
  const store = new RecordingStore(t.store);
  const entries = await listBackups(store);
  assert.deepEqual(entries.map((e) => e.name), [B1, B4, B2, B5, B3]);
  const b1 = entries[0];
  assert.deepEqual(b1, {
    name: B1,
    lastModified: new Date("2026-03-01T00:00:00.250Z"),
    startSegment: "000000010000000000000002",
    startOffset: "00000040",
    sentinelKey: backupSentinelKey(B1),
  });
  assert.equal(entries[3].sentinelKey, `${backupSentinelKey(B5)}.old`);
  // Paged (page size 2 here), always with the delimiter: no volume key was ever listed.
  assert.ok(store.lists.length > 1);
  for (const call of store.lists) {
    assert.equal(call.prefix, "basebackups_005/");
    assert.equal(call.options.delimiter, "/");
  }
  assert.ok(store.listed.includes(`basebackups_005/${INCOMPLETE}/`));
  assert.equal(store.listed.filter((key) => key.includes("tar_partitions")).length, 0);
  assert.equal(store.gets.length, 0, "no sentinel is read without detail");
});

storeTest("listBackups: an empty or missing basebackups_005/ gives no backups", async (t) => {
  assert.deepEqual(await listBackups(t.store, { detail: true }), []);
  await writeKey(t.dir, "wal_005/000000010000000000000002.lzo", "wal");
  await writeBackup(t.dir, INCOMPLETE, null);
  assert.deepEqual(await listBackups(t.store), []);
});

storeTest(
  "listBackups --detail: sentinels read (file backend too); a corrupt one warns",
  async (t) => {
    await populate(t.dir);
    await writeBackup(t.dir, CORRUPT, '{"wal_segment_backup_stop": 3}');
    const { log, text } = await captureLogger();
    const store = new RecordingStore(t.store);
    const entries = await listBackups(store, { detail: true, log, concurrency: 2 });
    assert.deepEqual(entries.map((e) => e.name), [B1, B4, B2, CORRUPT, B5, B3]);
    assert.deepEqual(entries[0].detail, sentinelFor("000000010000000000000002", true));
    assert.deepEqual(entries[2].detail, sentinelFor("000000010000000000000005", false));
    assert.equal(entries[3].detail, undefined);
    assert.equal(entries[4].detail?.walSegmentBackupStop, "00000001000000000000000A");
    assert.equal(store.gets.length, 6);
    assert.ok(store.gets.includes(backupSentinelKey(B1)), "the exact sentinel, not the .bak");
    const logged = text();
    assert.match(logged, new RegExp(`WARNING +MSG: cannot read the sentinel of backup ${CORRUPT}`));
    assert.match(logged, /DETAIL: corrupt backup sentinel .*wal_segment_backup_stop must be/);
    assert.equal(logged.match(/WARNING/g)?.length, 1);
  },
);

storeTest(
  "listBackups --detail: a sentinel deleted after the listing warns and stays empty",
  async (t) => {
    await writeBackup(t.dir, B1, encodeSentinel(sentinelFor("000000010000000000000002", false)));
    const { log, text } = await captureLogger();
    const vanishing = new RecordingStore(t.store);
    vanishing.get = () => Promise.resolve(null);
    const entries = await listBackups(vanishing, { detail: true, log });
    assert.equal(entries.length, 1);
    assert.equal(entries[0].detail, undefined);
    assert.match(text(), new RegExp(`WARNING +MSG: the sentinel of backup ${B1} is gone`));
  },
);

storeTest("findBackup: LATEST is the greatest start position, not the newest upload", async (t) => {
  await populate(t.dir);
  const latest = await findBackup(t.store, LATEST);
  assert.equal(latest.name, B3); // timeline 2; B1 was uploaded last
  assert.equal(latest.detail, undefined);
  const store = new RecordingStore(t.store);
  const detailed = await findBackup(store, LATEST, { detail: true });
  assert.equal(detailed.detail?.walSegmentBackupStop, "000000020000000000000004");
  assert.deepEqual(store.gets, [backupSentinelKey(B3)], "only the chosen sentinel is read");
});

storeTest("findBackup: an exact name, with one listing of its sentinel key", async (t) => {
  await populate(t.dir);
  const store = new RecordingStore(t.store);
  const found = await findBackup(store, B2, { detail: true });
  assert.equal(found.name, B2);
  assert.equal(found.lastModified.toISOString(), "2026-01-02T00:00:00.000Z");
  assert.deepEqual(found.detail, sentinelFor("000000010000000000000005", false));
  assert.deepEqual(store.lists.map((c) => c.prefix), [backupSentinelKey(B2)]);
  // B1 has a suffixed copy of its sentinel too: the exact key wins.
  assert.equal((await findBackup(t.store, B1)).sentinelKey, backupSentinelKey(B1));
  // B5 has only a suffixed sentinel, which WAL-E counts.
  assert.equal((await findBackup(t.store, B5)).sentinelKey, `${backupSentinelKey(B5)}.old`);
});

storeTest(
  "findBackup: unknown names, invalid queries and an empty archive are user errors",
  async (t) => {
    await assert.rejects(findBackup(t.store, LATEST), userErrorMatching(/^no backups found$/));
    await populate(t.dir);
    await assert.rejects(
      findBackup(t.store, INCOMPLETE),
      userErrorMatching(new RegExp(`^no backup named "${INCOMPLETE}" found$`)),
    );
    // Matches WAL-E's start-anchored BASE_BACKUP_REGEXP, but is no backup's name.
    await assert.rejects(
      findBackup(t.store, `${B1}_backup_stop_sentinel.json`),
      userErrorMatching(/^no backup named/),
    );
    for (const query of ["latest", "foo", "", "base_1", B5.toLowerCase()]) {
      await assert.rejects(findBackup(t.store, query), (error: unknown) => {
        assert.ok(error instanceof UserError);
        assert.equal(error.message, "invalid backup query submitted");
        assert.equal(error.detail, `The submitted query operator was "${query}."`);
        assert.match(error.hint ?? "", /LATEST/);
        return true;
      });
    }
  },
);

Deno.test("latestBackup and compareStartPositions: timeline, segment, offset, then upload time", () => {
  const entry = (name: string, lastModified: string): BackupEntry => {
    const [, segment, offset] = name.split("_");
    return {
      name,
      lastModified: new Date(lastModified),
      startSegment: segment,
      startOffset: offset,
      sentinelKey: backupSentinelKey(name),
    };
  };
  assert.equal(latestBackup([]), null);
  const a = entry(B1, "2026-01-01T00:00:00Z");
  const aLater = entry(B1, "2026-01-02T00:00:00Z");
  const b = entry(B2, "2020-01-01T00:00:00Z");
  assert.equal(latestBackup([aLater, b, a]), b);
  assert.equal(latestBackup([a, aLater]), aLater);
  assert.equal(latestBackup([aLater, a]), aLater);
  // Offsets compare as numbers when decimal, else as text.
  assert.ok(compareStartPositions(entry(B4, "2026-01-01"), entry(B2, "2026-01-01")) < 0);
  const hex = entry("base_000000010000000000000005_0000004A", "2026-01-01");
  assert.ok(compareStartPositions(hex, entry(B2, "2026-01-01")) > 0);
  assert.equal(compareStartPositions(a, aLater), 0);
});

storeTest("readSentinel: missing is null, oversized or non-UTF-8 is corrupt", async (t) => {
  assert.equal(await readSentinel(t.store, backupSentinelKey(B1)), null);
  await Deno.mkdir(join(t.dir, "basebackups_005"), { recursive: true });
  await Deno.writeFile(join(t.dir, backupSentinelKey(B1)), new Uint8Array([0x7b, 0xff, 0x7d]));
  await assert.rejects(readSentinel(t.store, backupSentinelKey(B1)), (error: unknown) => {
    assert.ok(error instanceof SentinelError);
    assert.match(error.message, /is not UTF-8 text/);
    return true;
  });
  await Deno.writeFile(join(t.dir, backupSentinelKey(B2)), new Uint8Array(5 * 1024 * 1024));
  await assert.rejects(readSentinel(t.store, backupSentinelKey(B2)), /is larger than/);
});

Deno.test("listBackups: genuine WAL-E 1.1.1 archives (plain, gnutar) as file:// prefixes", async () => {
  for (const variant of ["plain", "gnutar"]) {
    const store = new FileStore(join(FIXTURES, variant));
    const entries = await listBackups(store, { detail: true });
    assert.equal(entries.length, 1);
    const [entry] = entries;
    assert.equal(entry.name, FIXTURE_BACKUP);
    assert.equal(entry.startSegment, "000000010000000000000003");
    assert.equal(entry.startOffset, "00000040");
    assert.equal(entry.sentinelKey, backupSentinelKey(FIXTURE_BACKUP));
    assert.deepEqual(entry.detail, walEFixtureSentinel(variant));
    assert.equal((await findBackup(store, LATEST)).name, FIXTURE_BACKUP);
    assert.equal((await findBackup(store, FIXTURE_BACKUP)).name, FIXTURE_BACKUP);
    // WAL-E's file backend printed the UTC mtime with microseconds and no zone.
    assert.match(
      formatLastModified(entry.lastModified, store.scheme),
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}000)?$/,
    );
  }
});

// ---------------------------------------------------------------------------------------------
// Against s3rver

const unavailable = await s3rverUnavailable();
if (unavailable !== null) console.log(`SKIP s3rver catalog test: ${unavailable}`);

Deno.test({
  name: "catalog against s3rver: listing, S3 last_modified format, --detail through the CLI",
  ignore: unavailable !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = await startS3rver(["wald-test"]);
    try {
      const env = {
        ...s3rverEnv(server.endpoint, "s3://wald-test/catalog"),
        WALE_RETRIES: "2",
      };
      const config = resolveConfig(
        { awsInstanceProfile: false, terse: false },
        new EffectiveEnvironment(env),
      );
      const store = await openStore(config);
      const put = (key: string, text: string) =>
        store.put(key, new TextEncoder().encode(text), { contentType: "application/json" });
      for (const name of [B1, B3, INCOMPLETE]) {
        await put(extendedVersionKey(name), "PostgreSQL 17.0");
        await put(volumeKey(name, 0), "vol");
      }
      await put(
        backupSentinelKey(B3),
        encodeSentinel(sentinelFor("000000020000000000000004", false)),
      );
      await put(
        backupSentinelKey(B1),
        encodeSentinel(sentinelFor("000000010000000000000002", true)),
      );

      const entries = await listBackups(store, { detail: true });
      assert.deepEqual(entries.map((e) => e.name), [B1, B3]);
      assert.deepEqual(entries[0].detail, sentinelFor("000000010000000000000002", true));
      const printed = formatLastModified(entries[0].lastModified, "s3");
      assert.match(printed, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal((await findBackup(store, LATEST)).name, B3);

      const result = await walD(["backup-list", "--detail"], { env });
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stdout.split("\r\n");
      assert.equal(lines.length, 4);
      assert.equal(lines[3], "");
      assert.match(lines[0], /^name\tlast_modified\texpanded_size_bytes\t/);
      const row = lines[1].split("\t");
      assert.deepEqual(row, [
        B1,
        printed,
        "1234",
        "000000010000000000000002",
        "00000040",
        "000000010000000000000002",
        "00000312",
      ]);
      assert.match(lines[2].split("\t")[1], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    } finally {
      await server.stop();
    }
  },
});
