import assert from "node:assert/strict";
import {
  encodeSentinel,
  parseSentinel,
  type Sentinel,
  SENTINEL_FORMAT,
  SentinelError,
} from "../../src/backup/sentinel.ts";
import { walEFixtureSentinel } from "./_sentinels.ts";

const FIXTURES = new URL("../fixtures/wal-e-1.1.1/", import.meta.url);
const SENTINEL_PATH =
  "basebackups_005/base_000000010000000000000003_00000040_backup_stop_sentinel.json";

function fixtureSentinel(variant: string): Promise<string> {
  return Deno.readTextFile(new URL(`${variant}/${SENTINEL_PATH}`, FIXTURES));
}

/** WAL-E's four fields of the `plain` fixture, as wal-d's types hold them. */
const PLAIN: Sentinel = walEFixtureSentinel("plain");

/** A sentinel with every extension field set. */
const FULL: Sentinel = {
  ...PLAIN,
  walDVersion: "0.1.0",
  format: SENTINEL_FORMAT,
  backupStartLsn: 0x3000028n,
  backupStopLsn: 0x1_0300_0100n,
  timeline: 1,
  stopTimeline: 2,
  walSegmentSize: 16 * 1024 * 1024,
  serverVersionNum: 150020,
  serverVersion: "PostgreSQL 15.20 (Debian 15.20-0+deb12u1) on x86_64-pc-linux-gnu, 64-bit",
  systemIdentifier: "7442385906046398476",
  startTime: new Date("2026-11-21T05:19:50.511Z"),
  finishTime: new Date("2026-11-21T05:19:51.027Z"),
  compression: "lzop",
  encryption: null,
  volumes: [
    {
      name: "part_00000000.tar.lzo",
      size: 6588128,
      sha256: "7c9320e7b2ebdd2bfb5a280cea0960b98596ddf64c3771bac177effc155ece5a",
      expandedSizeBytes: 40253440,
      members: 1019,
    },
    {
      name: "part_00000001.tar.lzo",
      size: 12,
      sha256: "0".repeat(64),
      expandedSizeBytes: 0,
      members: 0,
    },
  ],
};

function expectSentinelError(text: string, field: string | null, pattern: RegExp): void {
  assert.throws(() => parseSentinel(text, "base_X"), (error: unknown) => {
    assert.ok(error instanceof SentinelError, String(error));
    assert.equal(error.field, field);
    assert.equal(error.sentinel, "base_X");
    assert.match(error.message, /^corrupt backup sentinel "base_X": /);
    assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("encodeSentinel: WAL-E's fields give WAL-E 1.1.1's exact sentinel text (plain fixture)", async () => {
  const text = await fixtureSentinel("plain");
  assert.equal(encodeSentinel(PLAIN), text);
});

Deno.test("parseSentinel: genuine WAL-E 1.1.1 sentinels (plain, gnutar) parse, extension absent", async () => {
  for (const variant of ["plain", "gnutar"]) {
    const text = await fixtureSentinel(variant);
    const sentinel = parseSentinel(text, variant);
    for (
      const key of [
        "walDVersion",
        "format",
        "backupStartLsn",
        "timeline",
        "systemIdentifier",
        "encryption",
        "volumes",
      ] as const
    ) {
      assert.equal(sentinel[key], undefined, key);
    }
    assert.deepEqual(sentinel, walEFixtureSentinel(variant));
    // And back, byte for byte.
    assert.equal(encodeSentinel(sentinel), text);
  }
});

Deno.test("encodeSentinel/parseSentinel: every extension field round-trips", () => {
  const text = encodeSentinel(FULL);
  assert.deepEqual(parseSentinel(text, "full"), FULL);
  assert.equal(encodeSentinel(parseSentinel(text, "full")), text);
  // WAL-E's fields first, in WAL-E's order, then the extension in its documented order.
  const keys = [...text.matchAll(/(?:\{|, )"([a-z_0-9]+)": /g)].map((m) => m[1]);
  assert.deepEqual(keys.filter((k) => !/^(base_prefix|tablespaces|16422|loc|link)$/.test(k)), [
    "wal_segment_backup_stop",
    "wal_segment_offset_backup_stop",
    "expanded_size_bytes",
    "spec",
    "wal_d_version",
    "format",
    "backup_start_lsn",
    "backup_stop_lsn",
    "timeline",
    "stop_timeline",
    "wal_segment_size",
    "server_version_num",
    "server_version",
    "system_identifier",
    "start_time",
    "finish_time",
    "compression",
    "encryption",
    "volumes",
    "name",
    "size",
    "sha256",
    "expanded_size_bytes",
    "members",
    "name",
    "size",
    "sha256",
    "expanded_size_bytes",
    "members",
  ]);
  const json = JSON.parse(text);
  assert.equal(json.backup_start_lsn, "0/3000028");
  assert.equal(json.backup_stop_lsn, "1/3000100");
  assert.equal(json.system_identifier, "7442385906046398476");
  assert.equal(json.start_time, "2026-11-21T05:19:50.511Z");
  assert.equal(json.encryption, null);
  assert.equal(json.format, 1);
  assert.match(text, /"encryption": null, "volumes": \[\{"name": "part_00000000\.tar\.lzo", /);
  assert.equal(
    parseSentinel(encodeSentinel({ ...FULL, encryption: "pgp" }), "x").encryption,
    "pgp",
  );
});

Deno.test("encodeSentinel: Python json.dumps escaping (ensure_ascii) and key order", () => {
  const sentinel: Sentinel = {
    walSegmentBackupStop: "000000010000000000000003",
    walSegmentOffsetBackupStop: "00000256",
    expandedSizeBytes: 0,
    spec: {
      basePrefix: 'é日本😀\x7f\x01\t\n"\\/ ~',
      // Integer-like names: a JS object would reorder them; the list's order is kept.
      tablespaces: [
        { name: "16422", loc: "/b/", link: "pg_tblspc/16422" },
        { name: "16385", loc: "/a/", link: "pg_tblspc/16385" },
      ],
    },
  };
  const text = encodeSentinel(sentinel);
  // What Python 3.11 prints for json.dumps of the same dict.
  assert.equal(
    text,
    '{"wal_segment_backup_stop": "000000010000000000000003", ' +
      '"wal_segment_offset_backup_stop": "00000256", "expanded_size_bytes": 0, ' +
      '"spec": {"base_prefix": "\\u00e9\\u65e5\\u672c\\ud83d\\ude00\\u007f\\u0001\\t\\n\\"\\\\/ ~", ' +
      '"tablespaces": ["16422", "16385"], ' +
      '"16422": {"loc": "/b/", "link": "pg_tblspc/16422"}, ' +
      '"16385": {"loc": "/a/", "link": "pg_tblspc/16385"}}}',
  );
  assert.deepEqual(parseSentinel(text, "x"), sentinel);
  // No tablespaces: an empty list.
  assert.match(
    encodeSentinel({ ...sentinel, spec: { basePrefix: "/d/", tablespaces: [] } }),
    /"spec": \{"base_prefix": "\/d\/", "tablespaces": \[\]\}\}$/,
  );
});

Deno.test("parseSentinel: tolerant of older WAL-E sentinels and unknown keys", () => {
  // WAL-E before 0.8 wrote no spec; other tools add their own keys.
  const sentinel = parseSentinel(
    '{"wal_segment_backup_stop": "0000000100000000000000A0", ' +
      '"wal_segment_offset_backup_stop": "00000312", "expanded_size_bytes": 22437519, ' +
      '"some_other_tool": {"x": [1, 2]}}',
    "old",
  );
  assert.deepEqual(sentinel, {
    walSegmentBackupStop: "0000000100000000000000A0",
    walSegmentOffsetBackupStop: "00000312",
    expandedSizeBytes: 22437519,
  });
  const minimal = parseSentinel(
    '{"wal_segment_backup_stop": "000000010000000000000003", ' +
      '"wal_segment_offset_backup_stop": "00000256"}',
    "minimal",
  );
  assert.equal(minimal.expandedSizeBytes, undefined);
  assert.equal(minimal.spec, undefined);
});

Deno.test("parseSentinel: a corrupt sentinel is an error naming the key", () => {
  const base = JSON.parse(encodeSentinel(FULL));
  const variant = (patch: Record<string, unknown>) => JSON.stringify({ ...base, ...patch });
  expectSentinelError("{not json", null, /is not JSON/);
  expectSentinelError("[1, 2]", null, /is not a JSON object/);
  expectSentinelError("", null, /is not JSON/);
  const { wal_segment_backup_stop: _, ...noStop } = base;
  expectSentinelError(JSON.stringify(noStop), "wal_segment_backup_stop", /is missing/);
  expectSentinelError(
    variant({ wal_segment_backup_stop: "00000001000000000000000g" }),
    "wal_segment_backup_stop",
    /must be a WAL segment name, got "00000001000000000000000g"/,
  );
  expectSentinelError(
    variant({ wal_segment_offset_backup_stop: 256 }),
    "wal_segment_offset_backup_stop",
    /got 256/,
  );
  expectSentinelError(
    variant({ expanded_size_bytes: "12" }),
    "expanded_size_bytes",
    /must be an integer >= 0, got "12"/,
  );
  expectSentinelError(variant({ expanded_size_bytes: -1 }), "expanded_size_bytes", /got -1/);
  expectSentinelError(variant({ expanded_size_bytes: 1.5 }), "expanded_size_bytes", /got 1.5/);
  expectSentinelError(variant({ spec: [] }), "spec", /must be an object/);
  expectSentinelError(
    variant({ spec: { base_prefix: "/d/", tablespaces: ["16422"] } }),
    "spec.16422",
    /is missing/,
  );
  expectSentinelError(
    variant({ spec: { base_prefix: "/d/", tablespaces: ["1"], "1": { loc: 5, link: "x" } } }),
    "spec.1.loc",
    /must be a string/,
  );
  expectSentinelError(
    variant({ spec: { base_prefix: "/d/", tablespaces: ["../etc"], "../etc": {} } }),
    "spec.tablespaces[0]",
    /distinct directory name/,
  );
  expectSentinelError(variant({ spec: { tablespaces: [] } }), "spec.base_prefix", /is missing/);
  expectSentinelError(variant({ format: 2 }), "format", /is 2, newer than .*upgrade wal-d/);
  expectSentinelError(variant({ format: "1" }), "format", /must be the number 1/);
  expectSentinelError(variant({ backup_start_lsn: "0/XYZ" }), "backup_start_lsn", /LSN text/);
  expectSentinelError(variant({ backup_stop_lsn: 50331920 }), "backup_stop_lsn", /LSN text/);
  expectSentinelError(variant({ timeline: 0 }), "timeline", /timeline ID/);
  expectSentinelError(variant({ stop_timeline: 2 ** 32 }), "stop_timeline", /timeline ID/);
  expectSentinelError(variant({ wal_segment_size: 3000000 }), "wal_segment_size", /power of two/);
  expectSentinelError(variant({ server_version_num: "150020" }), "server_version_num", /positive/);
  expectSentinelError(variant({ server_version: "" }), "server_version", /non-empty string/);
  expectSentinelError(
    variant({ system_identifier: 7442385906046398000 }),
    "system_identifier",
    /string of decimal digits/,
  );
  expectSentinelError(
    variant({ system_identifier: "18446744073709551616" }),
    "system_identifier",
    /unsigned 64-bit/,
  );
  expectSentinelError(variant({ start_time: "yesterday" }), "start_time", /ISO 8601 UTC/);
  expectSentinelError(
    variant({ finish_time: "2026-11-21T05:19:51+02:00" }),
    "finish_time",
    /ISO 8601 UTC/,
  );
  expectSentinelError(variant({ compression: "zstd" }), "compression", /must be "lzop"/);
  expectSentinelError(variant({ encryption: "aes" }), "encryption", /null or "pgp"/);
  expectSentinelError(variant({ volumes: {} }), "volumes", /must be a list/);
  expectSentinelError(variant({ volumes: [1] }), "volumes[0]", /must be an object/);
  const volume = base.volumes[0];
  expectSentinelError(
    variant({ volumes: [{ ...volume, sha256: "ABC" }] }),
    "volumes[0].sha256",
    /64 lower-case hex digits, got "ABC"/,
  );
  expectSentinelError(
    variant({ volumes: [volume, { ...volume }] }),
    "volumes[1].name",
    /distinct volume name/,
  );
  expectSentinelError(
    variant({ volumes: [{ ...volume, name: "../part_0.tar.lzo" }] }),
    "volumes[0].name",
    /volume name/,
  );
  const { members: _m, ...noMembers } = volume;
  expectSentinelError(variant({ volumes: [noMembers] }), "volumes[0].members", /is missing/);
});

Deno.test("encodeSentinel: refuses what a reader would refuse", () => {
  const refuses = (sentinel: Sentinel, pattern: RegExp) =>
    assert.throws(() => encodeSentinel(sentinel), (error: unknown) => {
      assert.ok(error instanceof SentinelError, String(error));
      assert.match(error.message, pattern);
      return true;
    });
  // WAL-E's stop offset is decimal; wal-d writes nothing else.
  refuses({ ...PLAIN, walSegmentOffsetBackupStop: "000000AB" }, /8 decimal digits/);
  refuses({ ...PLAIN, walSegmentOffsetBackupStop: "256" }, /8 decimal digits/);
  refuses({ ...PLAIN, backupStartLsn: -1n }, /backup_start_lsn is not an LSN/);
  refuses({ ...PLAIN, startTime: new Date(Number.NaN) }, /start_time is not a valid date/);
  refuses({ ...PLAIN, expandedSizeBytes: 2 ** 60 }, /value JSON cannot hold/);
  refuses({ ...PLAIN, walSegmentBackupStop: "3" }, /wal_segment_backup_stop must be a WAL/);
  refuses({ ...FULL, systemIdentifier: "-1" }, /system_identifier/);
  refuses({ ...FULL, volumes: [{ ...FULL.volumes![0], size: -5 }] }, /volumes\[0\]\.size/);
});
