import assert from "node:assert/strict";
import {
  backupName,
  classifyWalFileName,
  DEFAULT_WAL_SEGMENT_SIZE,
  isSegmentName,
  isValidWalSegmentSize,
  LayoutError,
  lsnOfSegNo,
  MAX_WAL_SEGMENT_SIZE,
  MIN_WAL_SEGMENT_SIZE,
  nextSegmentName,
  parseLsn,
  parseSegmentName,
  pgWalfileNameOffset,
  pgWalfileNameOfLsn,
  prevSegNoOfLsn,
  segmentName,
  segmentNameOfLsn,
  segmentOffsetOfLsn,
  segmentsAfter,
  segmentsPerLogId,
  segNoOfLsn,
  WAL_SEGMENT_SIZES,
} from "../../src/layout/mod.ts";

const MiB = 1024 * 1024;
const FOUR_GIB = 0x1_0000_0000n;

/** Every valid size with a label for messages. */
const SIZES = WAL_SEGMENT_SIZES.map((size) => ({ size, label: `${size / MiB} MiB` }));

function hex8(n: bigint | number): string {
  return n.toString(16).toUpperCase().padStart(8, "0");
}

/**
 * An independent spelling of XLogFileName: from the segment's first LSN, the log id is the upper
 * 32 bits and the segment part the lower 32 bits divided by the size.
 */
function nameViaLsnHalves(timeline: number, segNo: bigint, size: number): string {
  const lsn = segNo * BigInt(size);
  return hex8(timeline) + hex8(lsn / FOUR_GIB) + hex8((lsn % FOUR_GIB) / BigInt(size));
}

Deno.test("segment: valid sizes are the powers of two from 1 MiB to 1 GiB", () => {
  assert.equal(DEFAULT_WAL_SEGMENT_SIZE, 16 * MiB);
  assert.deepEqual(WAL_SEGMENT_SIZES, [
    1 * MiB,
    2 * MiB,
    4 * MiB,
    8 * MiB,
    16 * MiB,
    32 * MiB,
    64 * MiB,
    128 * MiB,
    256 * MiB,
    512 * MiB,
    1024 * MiB,
  ]);
  for (const size of WAL_SEGMENT_SIZES) assert.ok(isValidWalSegmentSize(size), String(size));
  for (
    const size of [
      0,
      -16 * MiB,
      MIN_WAL_SEGMENT_SIZE / 2,
      MAX_WAL_SEGMENT_SIZE * 2,
      3 * MiB,
      16 * MiB + 1,
      16 * MiB + 0.5,
      Number.NaN,
      Infinity,
    ]
  ) {
    assert.equal(isValidWalSegmentSize(size), false, String(size));
    assert.throws(() => segmentsPerLogId(size), LayoutError);
    assert.throws(() => segmentName(1, 0n, size), LayoutError);
  }
});

Deno.test("segment: segments per log id for every size", () => {
  const expected = [4096n, 2048n, 1024n, 512n, 256n, 128n, 64n, 32n, 16n, 8n, 4n];
  assert.deepEqual(WAL_SEGMENT_SIZES.map(segmentsPerLogId), expected);
});

Deno.test("segment: known names (spec §1.3 and PostgreSQL's usual values)", () => {
  const size = DEFAULT_WAL_SEGMENT_SIZE;
  assert.equal(segmentName(1, 2n, size), "000000010000000000000002");
  assert.equal(segmentName(1, 255n, size), "0000000100000000000000FF");
  assert.equal(segmentName(1, 256n, size), "000000010000000100000000");
  assert.equal(segmentName(0x1A, 0x16B3n, size), "0000001A00000016000000B3");
  const lsn = parseLsn("0/2000028");
  assert.equal(segmentNameOfLsn(lsn, 1, size), "000000010000000000000002");
  assert.equal(segmentOffsetOfLsn(lsn, size), 40);
  const start = pgWalfileNameOffset(lsn, 1, size);
  assert.deepEqual(start, { segment: "000000010000000000000002", offset: 40 });
  assert.equal(backupName(start.segment, start.offset), "base_000000010000000000000002_00000040");
  assert.equal(segmentNameOfLsn(parseLsn("16/B374D848"), 1, size), "0000000100000016000000B3");
  // The same LSN with other segment sizes.
  assert.equal(segmentNameOfLsn(parseLsn("16/B374D848"), 1, MiB), "000000010000001600000B37");
  assert.equal(segmentNameOfLsn(parseLsn("16/B374D848"), 1, 64 * MiB), "00000001000000160000002C");
  assert.equal(
    segmentNameOfLsn(parseLsn("16/B374D848"), 1, 1024 * MiB),
    "000000010000001600000002",
  );
});

Deno.test("segment: names and parsing agree with the LSN-halves spelling for every size", () => {
  for (const { size, label } of SIZES) {
    const perLogId = segmentsPerLogId(size);
    const limit = FOUR_GIB * perLogId;
    const segNos = [
      0n,
      1n,
      perLogId - 1n,
      perLogId,
      perLogId + 1n,
      2n * perLogId + 3n,
      0x16n * perLogId + perLogId / 2n,
      limit - perLogId,
      limit - 1n,
    ];
    for (const segNo of segNos) {
      for (const timeline of [1, 2, 0x10, 0xFFFF_FFFF]) {
        const name = segmentName(timeline, segNo, size);
        assert.equal(name, nameViaLsnHalves(timeline, segNo, size), `${label} ${segNo}`);
        assert.ok(isSegmentName(name));
        assert.deepEqual(parseSegmentName(name, size), { timeline, segNo }, `${label} ${name}`);
        // The segment's first LSN from its name: log id / segment part times the size.
        const firstLsn = `${name.slice(8, 16)}/${
          (parseInt(name.slice(16), 16) * size).toString(16)
        }`;
        assert.equal(lsnOfSegNo(segNo, size), parseLsn(firstLsn), `${label} ${name}`);
        assert.equal(segmentNameOfLsn(lsnOfSegNo(segNo, size), timeline, size), name);
      }
    }
    assert.throws(() => segmentName(1, limit, size), LayoutError, label);
    assert.throws(() => segmentName(1, -1n, size), LayoutError, label);
    assert.throws(() => lsnOfSegNo(limit, size), LayoutError, label);
  }
});

Deno.test("segment: parse refuses a segment part beyond the size's segments per log id", () => {
  for (const { size, label } of SIZES) {
    const perLogId = segmentsPerLogId(size);
    const last = `00000001` + `00000007` + hex8(perLogId - 1n);
    assert.deepEqual(parseSegmentName(last, size), { timeline: 1, segNo: 8n * perLogId - 1n });
    const beyond = `00000001` + `00000007` + hex8(perLogId);
    assert.throws(() => parseSegmentName(beyond, size), (error: unknown) => {
      assert.ok(error instanceof LayoutError, label);
      assert.match(error.message, new RegExp(`${beyond} for .* segments.*below ${hex8(perLogId)}`));
      return true;
    });
  }
  // 000000FF is a 16 MiB name, not a 64 MiB one.
  assert.equal(parseSegmentName("0000000100000000000000FF", 16 * MiB).segNo, 255n);
  assert.throws(() => parseSegmentName("0000000100000000000000FF", 64 * MiB), LayoutError);
});

Deno.test("segment: parse refuses malformed names", () => {
  const bad = [
    "",
    "00000001000000000000000",
    "0000000100000000000000001",
    "00000001000000000000000a",
    "00000001000000000000000G",
    "00000001.history",
    "000000010000000000000001.partial",
    " 000000010000000000000001",
    "000000010000000000000001\n",
  ];
  for (const name of bad) {
    assert.equal(isSegmentName(name), false, JSON.stringify(name));
    assert.throws(() => parseSegmentName(name, 16 * MiB), LayoutError, JSON.stringify(name));
    assert.throws(() => nextSegmentName(name, 16 * MiB), LayoutError);
  }
  assert.throws(() => segmentName(-1, 0n, 16 * MiB), LayoutError);
  assert.throws(() => segmentName(2 ** 32, 0n, 16 * MiB), LayoutError);
  assert.throws(() => segmentName(1.5, 0n, 16 * MiB), LayoutError);
});

Deno.test("segment: next rolls over the log id at the size's boundary, not at 256", () => {
  for (const { size, label } of SIZES) {
    const perLogId = segmentsPerLogId(size);
    const lastOfLog = `00000003` + `0000000A` + hex8(perLogId - 1n);
    assert.equal(nextSegmentName(lastOfLog, size), "00000003" + "0000000B" + "00000000", label);
    const mid = `00000003` + `0000000A` + hex8(perLogId / 2n);
    assert.equal(nextSegmentName(mid, size), "00000003" + "0000000A" + hex8(perLogId / 2n + 1n));
  }
  // WAL-E's next_larger would give ...00000040 for 64 MiB segments, a name PostgreSQL never uses.
  assert.equal(
    nextSegmentName("00000001000000000000003F", 64 * MiB),
    "000000010000000100000000",
  );
  assert.equal(
    nextSegmentName("000000010000000000000003", 1024 * MiB),
    "000000010000000100000000",
  );
  assert.equal(
    nextSegmentName("0000000100000000000000FF", 1 * MiB),
    "000000010000000000000100",
  );
});

Deno.test("segment: the prefetch list for every size", () => {
  for (const { size, label } of SIZES) {
    const perLogId = segmentsPerLogId(size);
    const start = `00000002` + `000000FF` + hex8(perLogId - 3n);
    const list = segmentsAfter(start, 8, size);
    // Walk (log, seg) pairs by hand.
    const expected: string[] = [];
    let log = 0xFFn;
    let seg = perLogId - 3n;
    for (let i = 0; i < 8; i++) {
      seg++;
      if (seg === perLogId) {
        seg = 0n;
        log++;
      }
      expected.push(`00000002${hex8(log)}${hex8(seg)}`);
    }
    assert.deepEqual(list, expected, label);
    assert.equal(new Set(list).size, 8);
    assert.deepEqual(segmentsAfter(start, 0, size), []);
    assert.deepEqual(segmentsAfter(start, 1, size), [nextSegmentName(start, size)]);
  }
  // 1 GiB: 4 segments per log id, so 10 names span three log ids.
  assert.deepEqual(segmentsAfter("000000010000000000000002", 10, 1024 * MiB), [
    "000000010000000000000003",
    "000000010000000100000000",
    "000000010000000100000001",
    "000000010000000100000002",
    "000000010000000100000003",
    "000000010000000200000000",
    "000000010000000200000001",
    "000000010000000200000002",
    "000000010000000200000003",
    "000000010000000300000000",
  ]);
  assert.throws(() => segmentsAfter("000000010000000000000002", -1, 16 * MiB), LayoutError);
  assert.throws(() => segmentsAfter("000000010000000000000002", 1.5, 16 * MiB), LayoutError);
});

Deno.test("segment: the end of the 64-bit WAL space", () => {
  const last = "00000001FFFFFFFF000000FF";
  assert.deepEqual(segmentsAfter("00000001FFFFFFFF000000FD", 8, 16 * MiB), [
    "00000001FFFFFFFF000000FE",
    last,
  ]);
  assert.deepEqual(segmentsAfter(last, 8, 16 * MiB), []);
  assert.throws(() => nextSegmentName(last, 16 * MiB), /last WAL segment/);
  assert.equal(segmentNameOfLsn(parseLsn("FFFFFFFF/FFFFFFFF"), 1, 16 * MiB), last);
});

Deno.test("segment: LSN to segment at and around every boundary, both semantics", () => {
  for (const { size, label } of SIZES) {
    const big = BigInt(size);
    const perLogId = segmentsPerLogId(size);
    for (const n of [1n, 2n, perLogId - 1n, perLogId, perLogId + 1n, 7n * perLogId]) {
      const boundary = n * big;
      const at = `${label} boundary of segment ${n}`;
      // The byte before the boundary: both semantics agree on segment n-1.
      assert.equal(segNoOfLsn(boundary - 1n, size), n - 1n, at);
      assert.equal(prevSegNoOfLsn(boundary - 1n, size), n - 1n, at);
      assert.equal(segmentOffsetOfLsn(boundary - 1n, size), size - 1, at);
      // Exactly at the boundary: the containing segment is n, pg_walfile_name says n-1.
      assert.equal(segNoOfLsn(boundary, size), n, at);
      assert.equal(prevSegNoOfLsn(boundary, size), n - 1n, at);
      assert.equal(segmentOffsetOfLsn(boundary, size), 0, at);
      assert.equal(segmentNameOfLsn(boundary, 1, size), segmentName(1, n, size), at);
      assert.equal(pgWalfileNameOfLsn(boundary, 1, size), segmentName(1, n - 1n, size), at);
      assert.deepEqual(pgWalfileNameOffset(boundary, 1, size), {
        segment: segmentName(1, n - 1n, size),
        offset: 0,
      }, at);
      // Just after: both say n.
      assert.equal(segNoOfLsn(boundary + 1n, size), n, at);
      assert.equal(prevSegNoOfLsn(boundary + 1n, size), n, at);
      assert.equal(segmentOffsetOfLsn(boundary + 1n, size), 1, at);
      assert.deepEqual(pgWalfileNameOffset(boundary + 40n, 1, size), {
        segment: segmentName(1, n, size),
        offset: 40,
      }, at);
    }
    assert.equal(segNoOfLsn(0n, size), 0n);
    assert.throws(() => prevSegNoOfLsn(0n, size), LayoutError);
    assert.throws(() => pgWalfileNameOffset(0n, 1, size), LayoutError);
  }
  assert.throws(() => segNoOfLsn(-1n, 16 * MiB), RangeError);
  assert.throws(() => segNoOfLsn(1n << 64n, 16 * MiB), RangeError);
});

interface WalfileOracle {
  by_segment_size: Record<string, [string, string, string, number][]>;
}

Deno.test("segment: pg_walfile_name(_offset) as a real server computed them", async () => {
  const url = new URL("../fixtures/layout/pg_walfile_name_offset.json", import.meta.url);
  const oracle: WalfileOracle = JSON.parse(await Deno.readTextFile(url));
  const sizes = Object.keys(oracle.by_segment_size).map(Number);
  assert.deepEqual(sizes, [1 * MiB, 16 * MiB, 64 * MiB, 1024 * MiB]);
  let rows = 0;
  for (const size of sizes) {
    for (const [text, walfileName, fileName, fileOffset] of oracle.by_segment_size[size]) {
      const lsn = parseLsn(text);
      const at = `${text} with ${size} bytes`;
      assert.equal(pgWalfileNameOfLsn(lsn, 1, size), walfileName, at);
      assert.deepEqual(pgWalfileNameOffset(lsn, 1, size), {
        segment: fileName,
        offset: fileOffset,
      }, at);
      const containing = segmentNameOfLsn(lsn, 1, size);
      if (fileOffset === 0) assert.equal(containing, nextSegmentName(fileName, size), at);
      else assert.equal(containing, fileName, at);
      rows++;
    }
  }
  assert.ok(rows >= 100, `${rows} rows`);
});

Deno.test("segment: what wal-push may archive", () => {
  const table: [string, ReturnType<typeof classifyWalFileName>][] = [
    ["000000010000000000000003", "segment"],
    ["0000000A00000016000000B3", "segment"],
    ["00000002.history", "history"],
    ["0000000A.history", "history"],
    ["000000010000000000000002.00000028.backup", "backup"],
    ["000000010000000000000003.partial", "partial"],
    ["00000001000000000000000a", null],
    ["0000000100000000000000003", null],
    ["0000000a.history", null],
    ["2.history", null],
    ["00000002.history.tmp", null],
    ["000000010000000000000002.28.backup", null],
    ["000000010000000000000002.00000028.backup.done", null],
    ["000000010000000000000003.partial.ready", null],
    ["000000010000000000000003.ready", null],
    ["RECOVERYXLOG", null],
    ["RECOVERYHISTORY", null],
    ["archive_status", null],
    [".wal-e", null],
    ["", null],
    ["pg_wal/000000010000000000000003", null],
  ];
  for (const [name, kind] of table) assert.equal(classifyWalFileName(name), kind, name);
});
