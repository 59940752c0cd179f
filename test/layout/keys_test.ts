import assert from "node:assert/strict";
import {
  backupDirectoryKey,
  backupName,
  backupNameOffsetFits,
  backupSentinelKey,
  BASE_BACKUP_REGEXP,
  BASEBACKUP_DIRECTORY,
  COMPLETE_BASE_BACKUP_REGEXP,
  DELETE_HISTORY_REGEXP,
  DELETE_WAL_BACKUP_HISTORY_REGEXP,
  DELETE_WAL_SEGMENT_REGEXP,
  extendedVersionKey,
  formatSegmentOffset,
  isBackupName,
  LayoutError,
  MAX_BACKUP_NAME_OFFSET,
  parseBackupName,
  parseBackupSentinelKey,
  parseLsn,
  parseVolumeKey,
  parseWalKey,
  pgWalfileNameOffset,
  SEGMENT_READY_REGEXP,
  SEGMENT_REGEXP,
  VOLUME_REGEXP,
  volumeFolderKey,
  volumeKey,
  WAL_DIRECTORY,
  walKey,
} from "../../src/layout/mod.ts";

const NAME = "base_000000010000000000000002_00000040";
const MiB = 1024 * 1024;

Deno.test("keys: directories", () => {
  assert.equal(WAL_DIRECTORY, "wal_005/");
  assert.equal(BASEBACKUP_DIRECTORY, "basebackups_005/");
});

Deno.test("keys: WAL keys for every kind of WAL-dir file (spec §1.3)", () => {
  const table: [string, string][] = [
    ["000000010000000000000003", "wal_005/000000010000000000000003.lzo"],
    ["00000002.history", "wal_005/00000002.history.lzo"],
    [
      "000000010000000000000002.00000028.backup",
      "wal_005/000000010000000000000002.00000028.backup.lzo",
    ],
    ["000000010000000000000003.partial", "wal_005/000000010000000000000003.partial.lzo"],
  ];
  for (const [basename, key] of table) {
    assert.equal(walKey(basename), key);
    assert.equal(parseWalKey(key), basename);
  }
  for (const bad of ["", ".", "..", "pg_wal/000000010000000000000003", "/x", "x/"]) {
    assert.throws(() => walKey(bad), LayoutError, JSON.stringify(bad));
  }
  for (
    const key of [
      "wal_005/.lzo",
      "wal_005/x",
      "wal_005/a/b.lzo",
      "/wal_005/000000010000000000000003.lzo",
      "basebackups_005/x.lzo",
      "wal_005/...lzo",
    ]
  ) {
    assert.equal(parseWalKey(key), null, key);
  }
});

Deno.test("keys: backup name from the start LSN (spec §1.3 example)", () => {
  const start = pgWalfileNameOffset(parseLsn("0/2000028"), 1, 16 * MiB);
  assert.equal(backupName(start.segment, start.offset), NAME);
  // Decimal, not hex: 0x28 = 40.
  assert.equal(backupName("000000010000000000000002", 0x28), NAME);
  assert.equal(backupName("000000010000000000000002", 0), "base_000000010000000000000002_00000000");
  assert.equal(
    backupName("0000000A00000016000000B3", 16 * MiB - 1),
    "base_0000000A00000016000000B3_16777215",
  );
  // 64 MiB segments: every offset fits 8 decimal digits.
  assert.equal(
    backupName("000000010000000000000001", 64 * MiB - 1),
    "base_000000010000000000000001_67108863",
  );
  assert.equal(
    backupName("000000010000000000000001", MAX_BACKUP_NAME_OFFSET),
    "base_000000010000000000000001_99999999",
  );
});

Deno.test("keys: offsets past 8 decimal digits (wal_segment_size >= 128 MiB) are refused", () => {
  assert.equal(backupNameOffsetFits(99_999_999), true);
  assert.equal(backupNameOffsetFits(100_000_000), false);
  assert.equal(backupNameOffsetFits(128 * MiB - 1), false);
  assert.equal(backupNameOffsetFits(-1), false);
  assert.equal(backupNameOffsetFits(1.5), false);
  // WAL-E's lpad would truncate 123456789 to 12345678 (and 123456780 too): two backups, one name.
  assert.throws(() => backupName("000000010000000000000001", 123_456_789), (error: unknown) => {
    assert.ok(error instanceof LayoutError);
    assert.match(error.message, /123456789/);
    assert.match(error.message, /8 decimal digits/);
    assert.match(error.message, /128 MiB/);
    return true;
  });
  assert.throws(() => backupName("000000010000000000000001", -1), LayoutError);
  assert.throws(() => backupName("000000010000000000000001", 0.5), LayoutError);
  assert.throws(() => backupName("00000001000000000000001", 40), LayoutError);
  assert.throws(() => backupName("00000001000000000000000a", 40), LayoutError);
});

Deno.test("keys: parseBackupName keeps any 8-char [0-9A-F] offset as a string", () => {
  assert.deepEqual(parseBackupName(NAME), {
    name: NAME,
    segment: "000000010000000000000002",
    offset: "00000040",
    offsetBytes: 40,
  });
  // WAL-E's offline mode wrote hex-looking offsets; readers must accept them (spec §3.3).
  assert.deepEqual(parseBackupName("base_000000010000000000000020_0000002A"), {
    name: "base_000000010000000000000020_0000002A",
    segment: "000000010000000000000020",
    offset: "0000002A",
    offsetBytes: null,
  });
  assert.equal(parseBackupName("base_000000010000000000000020_99999999").offsetBytes, 99_999_999);
  for (
    const bad of [
      "",
      "base_000000010000000000000002",
      "base_000000010000000000000002_0000040",
      "base_000000010000000000000002_000000400",
      "base_000000010000000000000002_0000004a",
      "base_00000001000000000000002_00000040",
      "base_000000010000000000000002_00000040_backup_stop_sentinel.json",
      "base_000000010000000000000002_00000040/",
      "LATEST",
      " base_000000010000000000000002_00000040",
    ]
  ) {
    assert.equal(isBackupName(bad), false, bad);
    assert.throws(() => parseBackupName(bad), (error: unknown) => {
      assert.ok(error instanceof LayoutError, bad);
      assert.match(error.message, /invalid backup name/);
      return true;
    });
  }
  assert.equal(isBackupName(NAME), true);
});

Deno.test("keys: the keys of a backup (spec §1.3)", () => {
  assert.equal(backupDirectoryKey(NAME), `basebackups_005/${NAME}/`);
  assert.equal(extendedVersionKey(NAME), `basebackups_005/${NAME}/extended_version.txt`);
  assert.equal(volumeFolderKey(NAME), `basebackups_005/${NAME}/tar_partitions/`);
  assert.equal(volumeKey(NAME, 0), `basebackups_005/${NAME}/tar_partitions/part_00000000.tar.lzo`);
  assert.equal(volumeKey(NAME, 12), `basebackups_005/${NAME}/tar_partitions/part_00000012.tar.lzo`);
  assert.equal(
    volumeKey(NAME, 123_456_789),
    `basebackups_005/${NAME}/tar_partitions/part_123456789.tar.lzo`,
  );
  assert.equal(
    backupSentinelKey(NAME),
    `basebackups_005/${NAME}_backup_stop_sentinel.json`,
  );
  for (const bad of ["../x", "base_x", `${NAME}/..`, ""]) {
    assert.throws(() => backupDirectoryKey(bad), LayoutError, bad);
    assert.throws(() => extendedVersionKey(bad), LayoutError, bad);
    assert.throws(() => volumeKey(bad, 0), LayoutError, bad);
    assert.throws(() => backupSentinelKey(bad), LayoutError, bad);
  }
  for (const n of [-1, 1.5, Number.NaN, 2 ** 53]) {
    assert.throws(() => volumeKey(NAME, n), LayoutError, String(n));
  }
});

Deno.test("keys: parse volume and sentinel keys", () => {
  for (const n of [0, 1, 12, 99_999_999, 123_456_789]) {
    assert.deepEqual(parseVolumeKey(volumeKey(NAME, n)), { backup: NAME, partition: n });
  }
  // WAL-E's part_(\d+) takes any number of digits.
  assert.deepEqual(
    parseVolumeKey(`basebackups_005/${NAME}/tar_partitions/part_7.tar.lzo`),
    { backup: NAME, partition: 7 },
  );
  for (
    const key of [
      `basebackups_005/${NAME}/tar_partitions/part_.tar.lzo`,
      `basebackups_005/${NAME}/tar_partitions/part_00000001.tar`,
      `basebackups_005/${NAME}/tar_partitions/part_00000001.tar.lzo.tmp`,
      `basebackups_005/${NAME}/tar_partitions/x/part_00000001.tar.lzo`,
      `basebackups_005/${NAME}/extended_version.txt`,
      `/basebackups_005/${NAME}/tar_partitions/part_00000001.tar.lzo`,
      `basebackups_005/base_x/tar_partitions/part_00000001.tar.lzo`,
    ]
  ) {
    assert.equal(parseVolumeKey(key), null, key);
  }
  assert.equal(parseBackupSentinelKey(backupSentinelKey(NAME)), NAME);
  assert.equal(
    parseBackupSentinelKey(
      "basebackups_005/base_000000010000000000000020_0000002A" +
        "_backup_stop_sentinel.json",
    ),
    "base_000000010000000000000020_0000002A",
  );
  for (
    const key of [
      `basebackups_005/${NAME}_backup_stop_sentinel.json.bak`,
      `basebackups_005/${NAME}/${NAME}_backup_stop_sentinel.json`,
      `${NAME}_backup_stop_sentinel.json`,
      `basebackups_005/${NAME}`,
      `basebackups_005/${NAME}/`,
    ]
  ) {
    assert.equal(parseBackupSentinelKey(key), null, key);
  }
});

Deno.test("keys: WAL-E's regexes match like Python's re.match (start-anchored only)", () => {
  const segment = SEGMENT_REGEXP.exec("000000010000000A000000FFtrailing");
  assert.deepEqual({ ...segment?.groups }, {
    filename: "000000010000000A000000FF",
    tli: "00000001",
    log: "0000000A",
    seg: "000000FF",
  });
  assert.equal(SEGMENT_REGEXP.test("x000000010000000A000000FF"), false);
  assert.equal(SEGMENT_REGEXP.test("000000010000000a000000FF"), false);

  assert.ok(SEGMENT_READY_REGEXP.test("000000010000000000000003.ready"));
  assert.ok(SEGMENT_READY_REGEXP.test("000000010000000000000003.ready.tmp"));
  assert.equal(SEGMENT_READY_REGEXP.test("000000010000000000000003.done"), false);
  assert.equal(SEGMENT_READY_REGEXP.test("00000002.history.ready"), false);
  assert.equal(SEGMENT_READY_REGEXP.test("000000010000000000000003.partial.ready"), false);
  assert.equal(SEGMENT_READY_REGEXP.test("000000010000000000000003Xready"), false);

  const base = BASE_BACKUP_REGEXP.exec(`${NAME}_backup_stop_sentinel.json`);
  assert.equal(base?.groups?.filename, "000000010000000000000002");
  assert.equal(base?.groups?.offset, "00000040");
  assert.equal(BASE_BACKUP_REGEXP.test("base_000000010000000000000002_0000004"), false);

  const sentinel = `${NAME}_backup_stop_sentinel.json`;
  assert.equal(COMPLETE_BASE_BACKUP_REGEXP.exec(sentinel)?.groups?.offset, "00000040");
  assert.ok(COMPLETE_BASE_BACKUP_REGEXP.test(`${sentinel}.bak`)); // as re.match would
  assert.equal(COMPLETE_BASE_BACKUP_REGEXP.test(`${NAME}_backup_stop_sentinelXjson`), false);
  assert.equal(COMPLETE_BASE_BACKUP_REGEXP.test(`${NAME}/extended_version.txt`), false);

  assert.equal(VOLUME_REGEXP.exec("part_00000012.tar.lzo")?.[1], "00000012");
  assert.equal(VOLUME_REGEXP.exec("part_7.tar.lzo")?.[1], "7");
  assert.equal(VOLUME_REGEXP.test("part_x.tar.lzo"), false);
  assert.equal(VOLUME_REGEXP.test("tar_partitions/part_1.tar.lzo"), false);

  assert.ok(DELETE_WAL_SEGMENT_REGEXP.test("000000010000000000000003.lzo"));
  assert.equal(DELETE_WAL_SEGMENT_REGEXP.test("000000010000000000000003.partial.lzo"), false);
  assert.ok(DELETE_WAL_BACKUP_HISTORY_REGEXP.test("000000010000000000000002.00000028.backup.lzo"));
  // WAL-E's unescaped dots: any character stands before "backup" and "lzo".
  assert.ok(DELETE_WAL_BACKUP_HISTORY_REGEXP.test("000000010000000000000002.00000028XbackupYlzo"));
  assert.equal(
    DELETE_WAL_BACKUP_HISTORY_REGEXP.test("000000010000000000000002X00000028.backup.lzo"),
    false,
  );
  assert.ok(DELETE_HISTORY_REGEXP.test("00000002.history.lzo"));
  assert.equal(DELETE_HISTORY_REGEXP.test("0000000a.history.lzo"), false);
});

Deno.test("keys: formatSegmentOffset is WAL-E's 8 decimal digits, or a clear error", () => {
  assert.equal(formatSegmentOffset(256), "00000256");
  assert.equal(formatSegmentOffset(MAX_BACKUP_NAME_OFFSET), "99999999");
  assert.throws(
    () => formatSegmentOffset(MAX_BACKUP_NAME_OFFSET + 1, "stop offset"),
    /stop offset/,
  );
  assert.throws(() => formatSegmentOffset(-1), LayoutError);
});
