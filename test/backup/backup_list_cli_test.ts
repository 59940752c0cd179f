import assert from "node:assert/strict";
import { join } from "node:path";
import type { BackupEntry } from "../../src/backup/catalog.ts";
import { encodeSentinel, type Sentinel } from "../../src/backup/sentinel.ts";
import {
  BACKUP_LIST_COLUMNS,
  excelTabField,
  formatLastModified,
  renderBackupTable,
} from "../../src/commands/backup_list.ts";
import { backupSentinelKey, extendedVersionKey, volumeKey } from "../../src/layout/keys.ts";
import { walD } from "../wal/_cli.ts";
import { withCleanup } from "./_restore_scratch.ts";
import { SAMPLE_EXTENSION } from "./_sentinels.ts";
import { writeKey } from "./_tree.ts";

const FIXTURES = new URL("../fixtures/wal-e-1.1.1/", import.meta.url).pathname;
const HEADER = "name\tlast_modified\texpanded_size_bytes\twal_segment_backup_start\t" +
  "wal_segment_offset_backup_start\twal_segment_backup_stop\twal_segment_offset_backup_stop\r\n";

const B1 = "base_000000010000000000000002_00000040";
const B2 = "base_000000020000000000000004_00000040";
const INCOMPLETE = "base_000000030000000000000009_00000040";
const FILE_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}000)?$/;

/** Every prefix variable empty (unset for wal-d), so only what a test sets counts. */
const NO_PREFIX = {
  WALE_FILE_PREFIX: "",
  WALE_S3_PREFIX: "",
  WALE_WABS_PREFIX: "",
  WALE_GS_PREFIX: "",
  WALE_SWIFT_PREFIX: "",
};

const WAL_D_SENTINEL: Sentinel = {
  walSegmentBackupStop: "000000010000000000000002",
  walSegmentOffsetBackupStop: "00000312",
  expandedSizeBytes: 4096,
  spec: {
    basePrefix: "/pgdata/",
    tablespaces: [{ name: "16385", loc: "/ts/", link: "pg_tblspc/16385" }],
  },
  ...SAMPLE_EXTENSION,
  encryption: "pgp",
  volumes: [
    {
      name: "part_00000000.tar.lzo",
      size: 10,
      sha256: "a".repeat(64),
      expandedSizeBytes: 3000,
      members: 2,
    },
    {
      name: "part_00000001.tar.lzo",
      size: 5,
      sha256: "b".repeat(64),
      expandedSizeBytes: 1096,
      members: 1,
    },
  ],
};

const WAL_E_SENTINEL: Sentinel = {
  walSegmentBackupStop: "000000020000000000000004",
  walSegmentOffsetBackupStop: "00000256",
  expandedSizeBytes: 39727137,
  spec: { basePrefix: "/var/lib/postgresql/15/main/", tablespaces: [] },
};

interface Archive {
  dir: string;
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

/** A file:// archive: B1 (wal-d sentinel, uploaded last), B2 (WAL-E sentinel), one incomplete. */
async function archive(populated = true): Promise<Archive> {
  const dir = await Deno.makeTempDir({ prefix: "wald-backup-list-" });
  if (populated) {
    for (const name of [B1, B2, INCOMPLETE]) {
      await writeKey(dir, extendedVersionKey(name), "PostgreSQL 17.0");
      await writeKey(dir, volumeKey(name, 0), "volume");
    }
    await writeKey(
      dir,
      backupSentinelKey(B2),
      encodeSentinel(WAL_E_SENTINEL),
      new Date("2026-01-01T10:00:00.000Z"),
    );
    await writeKey(
      dir,
      backupSentinelKey(B1),
      encodeSentinel(WAL_D_SENTINEL),
      new Date("2026-02-01T12:00:00.123Z"),
    );
  }
  return {
    dir,
    env: { ...NO_PREFIX, WALE_FILE_PREFIX: `file://localhost${dir}` },
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
}

/** A test with a fresh archive (populated unless `populated` is false), removed afterwards. */
const archiveTest = (
  name: string,
  body: (a: Archive) => Promise<void>,
  populated = true,
) => Deno.test(name, () => withCleanup(() => archive(populated), body));

function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((line) => / (ERROR|CRITICAL) /.test(line));
}

Deno.test("formatLastModified: WAL-E's per-backend forms", () => {
  const time = new Date("2017-01-01T12:00:00.123Z");
  const whole = new Date("2014-06-04T20:38:28.000Z");
  assert.equal(formatLastModified(time, "s3"), "2017-01-01T12:00:00.123Z");
  assert.equal(formatLastModified(whole, "s3"), "2014-06-04T20:38:28.000Z");
  assert.equal(formatLastModified(time, "file"), "2017-01-01T12:00:00.123000");
  assert.equal(formatLastModified(whole, "file"), "2014-06-04T20:38:28");
  assert.equal(formatLastModified(time, "wabs"), "2017-01-01 12:00:00.123000+00:00");
  assert.equal(formatLastModified(time, "gs"), "2017-01-01 12:00:00.123000+00:00");
  assert.equal(formatLastModified(whole, "gs"), "2014-06-04 20:38:28+00:00");
  assert.equal(formatLastModified(time, "swift"), "2017-01-01T12:00:00.123000");
  assert.equal(formatLastModified(whole, "swift"), "2014-06-04T20:38:28.000000");
});

Deno.test("renderBackupTable: excel-tab dialect, minimal quoting, \\r\\n", () => {
  assert.equal(BACKUP_LIST_COLUMNS.join("\t") + "\r\n", HEADER);
  assert.equal(renderBackupTable([], "s3"), HEADER);
  assert.equal(excelTabField("plain value"), "plain value");
  assert.equal(excelTabField(""), "");
  assert.equal(excelTabField("a\tb"), '"a\tb"');
  assert.equal(excelTabField('say "x"'), '"say ""x"""');
  assert.equal(excelTabField("a\r\nb"), '"a\r\nb"');
  const entry: BackupEntry = {
    name: B1,
    lastModified: new Date("2014-06-04T20:38:28.000Z"),
    startSegment: "000000010000000000000002",
    startOffset: "00000040",
    sentinelKey: backupSentinelKey(B1),
  };
  assert.equal(
    renderBackupTable([entry], "s3"),
    `${HEADER}${B1}\t2014-06-04T20:38:28.000Z\t\t000000010000000000000002\t00000040\t\t\r\n`,
  );
  assert.equal(
    renderBackupTable([{ ...entry, detail: WAL_E_SENTINEL }], "s3"),
    `${HEADER}${B1}\t2014-06-04T20:38:28.000Z\t39727137\t000000010000000000000002\t00000040\t` +
      "000000020000000000000004\t00000256\r\n",
  );
});

archiveTest(
  "backup-list: WAL-E's table on stdout, complete backups only, no details",
  async (a) => {
    const result = await walD(["backup-list"], { env: a.env });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      result.stdout,
      HEADER +
        `${B1}\t2026-02-01T12:00:00.123000\t\t000000010000000000000002\t00000040\t\t\r\n` +
        `${B2}\t2026-01-01T10:00:00\t\t000000020000000000000004\t00000040\t\t\r\n`,
    );
    assert.match(result.stderr, /MSG: starting WAL-E/);
    assert.deepEqual(errorLines(result.stderr), []);
  },
);

archiveTest(
  "backup-list --detail: size and stop columns from the sentinel (file:// too)",
  async (a) => {
    const result = await walD(["backup-list", "--detail"], { env: a.env });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      result.stdout,
      HEADER +
        `${B1}\t2026-02-01T12:00:00.123000\t4096\t000000010000000000000002\t00000040\t` +
        "000000010000000000000002\t00000312\r\n" +
        `${B2}\t2026-01-01T10:00:00\t39727137\t000000020000000000000004\t00000040\t` +
        "000000020000000000000004\t00000256\r\n",
    );
  },
);

archiveTest(
  "backup-list QUERY: LATEST (by start position) and an exact name give one row",
  async (a) => {
    // B1 was uploaded last; B2 starts further into the WAL (timeline 2).
    const latest = await walD(["backup-list", "LATEST"], { env: a.env });
    assert.equal(latest.code, 0, latest.stderr);
    assert.equal(
      latest.stdout,
      `${HEADER}${B2}\t2026-01-01T10:00:00\t\t000000020000000000000004\t00000040\t\t\r\n`,
    );
    const named = await walD(["backup-list", "--detail", B1], { env: a.env });
    assert.equal(named.code, 0, named.stderr);
    assert.equal(
      named.stdout,
      HEADER +
        `${B1}\t2026-02-01T12:00:00.123000\t4096\t000000010000000000000002\t00000040\t` +
        "000000010000000000000002\t00000312\r\n",
    );
  },
);

archiveTest(
  "backup-list: an empty archive prints the header; LATEST too (exit 0, as WAL-E)",
  async (a) => {
    for (const args of [["backup-list"], ["backup-list", "LATEST"], ["backup-list", "--detail"]]) {
      const result = await walD(args, { env: a.env });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, HEADER);
    }
    const json = await walD(["backup-list", "--json", "LATEST"], { env: a.env });
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), []);
  },
  false,
);

archiveTest("backup-list --json: every field, stable names, null when unknown", async (a) => {
  const plain = await walD(["backup-list", "--json"], { env: a.env });
  assert.equal(plain.code, 0, plain.stderr);
  const rows = JSON.parse(plain.stdout);
  assert.equal(rows.length, 2);
  assert.equal(rows[0].name, B1);
  assert.equal(rows[0].last_modified, "2026-02-01T12:00:00.123Z");
  assert.equal(rows[0].detail, false);
  assert.equal(rows[0].expanded_size_bytes, null);
  assert.equal(rows[0].backup_start_lsn, null);

  const detailed = await walD(["backup-list", "--json", "--detail"], { env: a.env });
  assert.equal(detailed.code, 0, detailed.stderr);
  const [b1, b2] = JSON.parse(detailed.stdout);
  assert.deepEqual(Object.keys(b1), Object.keys(rows[0]), "the same keys with or without detail");
  assert.deepEqual(b1, {
    name: B1,
    last_modified: "2026-02-01T12:00:00.123Z",
    wal_segment_backup_start: "000000010000000000000002",
    wal_segment_offset_backup_start: "00000040",
    sentinel_key: backupSentinelKey(B1),
    detail: true,
    expanded_size_bytes: 4096,
    wal_segment_backup_stop: "000000010000000000000002",
    wal_segment_offset_backup_stop: "00000312",
    spec: {
      base_prefix: "/pgdata/",
      tablespaces: [{ name: "16385", loc: "/ts/", link: "pg_tblspc/16385" }],
    },
    wal_d_version: "0.1.0",
    format: 1,
    backup_start_lsn: "0/2000028",
    backup_stop_lsn: "0/2000138",
    timeline: 1,
    stop_timeline: 1,
    wal_segment_size: 16777216,
    server_version_num: 170000,
    server_version: "PostgreSQL 17.0",
    system_identifier: "7442385906046398476",
    start_time: "2026-01-01T00:00:00.000Z",
    finish_time: "2026-01-01T00:00:05.000Z",
    compression: "lzop",
    encryption: "pgp",
    volumes: { count: 2, size: 15, expanded_size_bytes: 4096 },
  });
  // A WAL-E sentinel: its own fields, the extension null.
  assert.equal(b2.name, B2);
  assert.equal(b2.detail, true);
  assert.equal(b2.expanded_size_bytes, 39727137);
  assert.equal(b2.wal_segment_offset_backup_stop, "00000256");
  assert.deepEqual(b2.spec, { base_prefix: "/var/lib/postgresql/15/main/", tablespaces: [] });
  assert.equal(b2.wal_d_version, null);
  assert.equal(b2.volumes, null);
  assert.equal(b2.encryption, null);

  const latest = await walD(["backup-list", "--json", "LATEST"], { env: a.env });
  assert.deepEqual(JSON.parse(latest.stdout).map((r: { name: string }) => r.name), [B2]);
});

archiveTest(
  "backup-list: an unknown name, an invalid query, no prefix: exit 1, one ERROR",
  async (a) => {
    const unknown = await walD(["backup-list", INCOMPLETE], { env: a.env });
    assert.equal(unknown.code, 1, unknown.stderr);
    assert.equal(unknown.stdout, "");
    assert.deepEqual(errorLines(unknown.stderr).length, 1);
    assert.match(unknown.stderr, new RegExp(`ERROR +MSG: no backup named "${INCOMPLETE}" found`));
    assert.match(unknown.stderr, /HINT: Run "wal-d backup-list"/);

    const invalid = await walD(["backup-list", "newest"], { env: a.env });
    assert.equal(invalid.code, 1, invalid.stderr);
    assert.equal(invalid.stdout, "");
    assert.deepEqual(errorLines(invalid.stderr).length, 1);
    assert.match(invalid.stderr, /ERROR +MSG: invalid backup query submitted\n/);
    assert.match(invalid.stderr, /DETAIL: The submitted query operator was "newest\."/);

    const noPrefix = await walD(["backup-list"], { env: NO_PREFIX });
    assert.equal(noPrefix.code, 1, noPrefix.stderr);
    assert.equal(noPrefix.stdout, "");
    assert.deepEqual(errorLines(noPrefix.stderr).length, 1);
    assert.match(noPrefix.stderr, /ERROR +MSG: no storage prefix defined/);
  },
);

Deno.test("backup-list: genuine WAL-E 1.1.1 archives (plain, gnutar), with and without --detail", async () => {
  for (const variant of ["plain", "gnutar"]) {
    const env = { ...NO_PREFIX, WALE_FILE_PREFIX: `file://localhost${join(FIXTURES, variant)}` };
    const result = await walD(["backup-list"], { env });
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.split("\r\n");
    assert.equal(lines.length, 3);
    assert.equal(`${lines[0]}\r\n`, HEADER);
    const row = lines[1].split("\t");
    // What WAL-E printed (backup_list_output of the shared fixture set), its mtime aside.
    assert.deepEqual(
      [row[0], row[2], row[3], row[4], row[5], row[6]],
      [
        "base_000000010000000000000003_00000040",
        "",
        "000000010000000000000003",
        "00000040",
        "",
        "",
      ],
    );
    assert.match(row[1], FILE_TIME);
    const detail = await walD(["backup-list", "--detail", "LATEST"], { env });
    assert.equal(detail.code, 0, detail.stderr);
    assert.deepEqual(detail.stdout.split("\r\n")[1].split("\t").slice(2), [
      "39727137",
      "000000010000000000000003",
      "00000040",
      "000000010000000000000003",
      "00000256",
    ]);
  }
});
