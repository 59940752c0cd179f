import assert from "node:assert/strict";
import { join } from "node:path";
import { formatLsn, parseLsn, segmentNameOfLsn } from "../../src/layout/mod.ts";
import {
  type ControlFile,
  ControlFileError,
  type ControlFileErrorCode,
  crc32c,
  parseControlFile,
  PG_CONTROL_FILE_SIZE,
  readControlFile,
  walSegmentSizeOf,
} from "../../src/pg/control.ts";

const FIXTURES = new URL("../fixtures/pg_control/", import.meta.url);

/** What the server reported through pg_control_*() (see the fixtures' README). */
interface SqlView {
  version: string;
  system: {
    pg_control_version: number;
    catalog_version_no: number;
    system_identifier: string;
    pg_control_last_modified: string;
  };
  checkpoint: {
    checkpoint_lsn: string;
    redo_lsn: string;
    redo_wal_file: string;
    timeline_id: number;
    prev_timeline_id: number;
    full_page_writes: boolean;
    next_xid: string;
    next_oid: string;
    checkpoint_time: string;
  };
  init: {
    max_data_alignment: number;
    database_block_size: number;
    blocks_per_segment: number;
    wal_block_size: number;
    bytes_per_wal_segment: number;
    data_page_checksum_version: number;
    default_char_signedness?: boolean;
  };
  recovery: {
    min_recovery_end_lsn: string;
    min_recovery_end_timeline: number;
    backup_start_lsn: string;
    backup_end_lsn: string;
    end_of_backup_record_required: boolean;
  };
}

interface Expected {
  state: string;
  sql: SqlView;
  pg_controldata_15: Record<string, string> | null;
}

const expected: Record<string, Expected> = JSON.parse(
  await Deno.readTextFile(new URL("expected.json", FIXTURES)),
);
const fixtureNames = Object.keys(expected).sort();

async function fixture(name: string): Promise<Uint8Array> {
  return await Deno.readFile(new URL(name, FIXTURES));
}

function expectControlFileError(code: ControlFileErrorCode, pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof ControlFileError, String(error));
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    return true;
  };
}

/** Rewrites the CRC so that a deliberately changed file is otherwise valid. */
function resign(bytes: Uint8Array, crcOffset: number): Uint8Array {
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(
    crcOffset,
    crc32c(bytes.subarray(0, crcOffset)),
    true,
  );
  return bytes;
}

function crcOffsetOf(control: ControlFile): number {
  return control.pgControlVersion >= 1800 ? 292 : 288;
}

Deno.test("pg_control: the fixtures cover majors 13 to 18, several sizes and states", () => {
  const majors = new Set(fixtureNames.map((name) => name.split("-")[0]));
  assert.deepEqual([...majors], ["13", "14", "15", "16", "17", "18"]);
  for (const major of majors) {
    const sizes = new Set(
      fixtureNames.filter((name) => name.startsWith(`${major}-`)).map((n) => n.split("-")[1]),
    );
    assert.ok(sizes.has("16") && sizes.size >= 2, `${major}: ${[...sizes]}`);
  }
  const states = new Set(fixtureNames.map((name) => expected[name].state));
  assert.deepEqual([...states].sort(), ["in production", "shut down", "shut down in recovery"]);
});

for (const name of fixtureNames) {
  Deno.test(`pg_control: ${name} parses to what PostgreSQL reported`, async () => {
    const bytes = await fixture(name);
    assert.equal(bytes.length, PG_CONTROL_FILE_SIZE);
    const control = parseControlFile(bytes);
    const { state, sql, pg_controldata_15: pgcd } = expected[name];
    const major = Number(name.split("-")[0]);
    assert.equal(sql.version.split(".")[0], String(major));

    assert.equal(control.crcOk, true);
    assert.equal(control.state, state);
    assert.equal(control.pgControlVersion, sql.system.pg_control_version);
    assert.equal(control.pgControlVersion, major >= 18 ? 1800 : major >= 17 ? 1700 : 1300);
    assert.equal(control.catalogVersionNo, sql.system.catalog_version_no);
    assert.equal(control.systemIdentifier, BigInt(sql.system.system_identifier));

    const cp = sql.checkpoint;
    assert.equal(formatLsn(control.checkpointLsn), cp.checkpoint_lsn);
    assert.equal(formatLsn(control.redoLsn), cp.redo_lsn);
    assert.equal(control.timeline, cp.timeline_id);
    assert.equal(control.prevTimeline, cp.prev_timeline_id);
    assert.equal(control.fullPageWrites, cp.full_page_writes);
    const [epoch, xid] = cp.next_xid.split(":").map(BigInt);
    assert.equal(control.nextFullXid, (epoch << 32n) | xid);
    assert.equal(control.nextOid, Number(cp.next_oid));
    assert.equal(control.checkpointTime.getTime(), Date.parse(cp.checkpoint_time));
    // The checkpoint's own WAL file, as the server named it, agrees with our arithmetic.
    assert.equal(
      segmentNameOfLsn(control.redoLsn, control.timeline, control.walSegmentSize),
      cp.redo_wal_file,
    );

    const init = sql.init;
    assert.equal(control.walSegmentSize, init.bytes_per_wal_segment);
    assert.equal(control.walSegmentSize, Number(name.split("-")[1]) * 1024 * 1024);
    assert.equal(control.blockSize, init.database_block_size);
    assert.equal(control.walBlockSize, init.wal_block_size);
    assert.equal(control.maxAlign, init.max_data_alignment);
    assert.equal(control.relSegSize, init.blocks_per_segment);
    assert.equal(control.dataChecksumVersion, init.data_page_checksum_version);
    assert.equal(control.defaultCharSignedness, init.default_char_signedness ?? null);

    const rec = sql.recovery;
    assert.equal(formatLsn(control.minRecoveryPoint), rec.min_recovery_end_lsn);
    assert.equal(control.minRecoveryPointTimeline, rec.min_recovery_end_timeline);
    assert.equal(formatLsn(control.backupStartPoint), rec.backup_start_lsn);
    assert.equal(formatLsn(control.backupEndPoint), rec.backup_end_lsn);
    assert.equal(control.backupEndRequired, rec.end_of_backup_record_required);

    assert.ok(control.lastModified.getTime() >= control.checkpointTime.getTime());
    if (state === "in production") {
      // Copied while the server ran: the file is the one the server described.
      assert.equal(control.lastModified.getTime(), Date.parse(sql.system.pg_control_last_modified));
    }

    // Debian's pg_controldata 15 reads the 1300 and 1700 layouts (same CRC range) directly.
    assert.equal(pgcd === null, major >= 18, "pg_controldata 15 read only 13..17");
    if (pgcd !== null) {
      assert.equal(control.state, pgcd["Database cluster state"]);
      assert.equal(control.pgControlVersion, Number(pgcd["pg_control version number"]));
      assert.equal(control.systemIdentifier, BigInt(pgcd["Database system identifier"]));
      assert.equal(formatLsn(control.checkpointLsn), pgcd["Latest checkpoint location"]);
      assert.equal(formatLsn(control.redoLsn), pgcd["Latest checkpoint's REDO location"]);
      assert.equal(String(control.timeline), pgcd["Latest checkpoint's TimeLineID"]);
      assert.equal(String(control.prevTimeline), pgcd["Latest checkpoint's PrevTimeLineID"]);
      assert.equal(formatLsn(control.unloggedLsn), pgcd["Fake LSN counter for unlogged rels"]);
      assert.equal(formatLsn(control.minRecoveryPoint), pgcd["Minimum recovery ending location"]);
      assert.equal(control.walLevel, pgcd["wal_level setting"]);
      assert.equal(String(control.maxConnections), pgcd["max_connections setting"]);
      assert.equal(String(control.walSegmentSize), pgcd["Bytes per WAL segment"]);
      assert.equal(String(control.dataChecksumVersion), pgcd["Data page checksum version"]);
    } else {
      assert.equal(control.walLevel, "replica"); // initdb's default
      assert.equal(control.maxConnections, 100);
    }
  });
}

Deno.test("pg_control: corrupting any byte the CRC covers is a clear error", async () => {
  for (
    const name of ["13-16-stopped.pg_control", "17-1-initdb.pg_control", "18-64-initdb.pg_control"]
  ) {
    const original = await fixture(name);
    const crcOffset = crcOffsetOf(parseControlFile(original));
    for (let at = 0; at < crcOffset + 4; at++) {
      const bytes = original.slice();
      bytes[at] ^= 0x10;
      let error: unknown;
      try {
        parseControlFile(bytes);
      } catch (caught) {
        error = caught;
      }
      assert.ok(error instanceof ControlFileError, `${name} byte ${at}: no error`);
      if (at >= 8 && at < 12) {
        // The version number itself: now an unknown version.
        assert.equal(error.code, "unknown-version", `${name} byte ${at}`);
      } else {
        assert.equal(error.code, "crc-mismatch", `${name} byte ${at}`);
        assert.match(
          error.message,
          /CRC-32C mismatch: stored 0x[0-9A-F]{8}, computed 0x[0-9A-F]{8}/,
        );
        assert.match(error.message, new RegExp(`first ${crcOffset} bytes`));
      }
    }
    // Bytes after the struct are not covered (PostgreSQL ignores them).
    const tail = original.slice();
    tail[crcOffset + 4] = 0xFF;
    tail[PG_CONTROL_FILE_SIZE - 1] = 0xFF;
    assert.equal(parseControlFile(tail).crcOk, true);
  }
});

Deno.test("pg_control: verifyCrc false reports a mismatch instead of throwing", async () => {
  const bytes = await fixture("15-16-running.pg_control");
  bytes[40] ^= 0x01; // redo LSN's lowest byte
  const control = parseControlFile(bytes, { verifyCrc: false });
  assert.equal(control.crcOk, false);
  assert.equal(formatLsn(control.redoLsn), formatLsn(parseLsn("0/14F4A78") ^ 1n));
  assert.equal(control.state, "in production");
});

Deno.test("pg_control: truncated data", async () => {
  for (const name of ["16-16-initdb.pg_control", "18-16-initdb.pg_control"]) {
    const bytes = await fixture(name);
    const structSize = crcOffsetOf(parseControlFile(bytes)) + 4;
    assert.equal(parseControlFile(bytes.subarray(0, structSize)).crcOk, true);
    for (const length of [structSize - 1, structSize - 4, 100]) {
      assert.throws(
        () => parseControlFile(bytes.subarray(0, length)),
        expectControlFileError(
          "truncated",
          new RegExp(`truncated: ${length} bytes.*${structSize}`),
        ),
      );
    }
    for (const length of [0, 8, 15]) {
      assert.throws(
        () => parseControlFile(bytes.subarray(0, length)),
        expectControlFileError("truncated", /too short to hold its version number/),
      );
    }
  }
});

Deno.test("pg_control: unknown versions and byte order", async () => {
  const original = await fixture("16-16-initdb.pg_control");
  for (const version of [1201, 1100, 1902, 1900, 0]) {
    const bytes = original.slice();
    new DataView(bytes.buffer).setUint32(8, version, true);
    assert.throws(
      () => parseControlFile(resign(bytes, 288)),
      expectControlFileError(
        "unknown-version",
        new RegExp(`unknown pg_control_version ${version}: .*1300 .*13 to 16.*1700.*1800`),
      ),
    );
  }
  const swapped = original.slice();
  new DataView(swapped.buffer).setUint32(8, 1300, false);
  assert.throws(
    () => parseControlFile(swapped),
    expectControlFileError("wrong-byte-order", /byte-swapped \(1300\).*other byte order/),
  );
});

Deno.test("pg_control: another floating-point format is refused", async () => {
  const bytes = (await fixture("17-16-initdb.pg_control")).slice();
  new DataView(bytes.buffer).setFloat64(208, 1234567.0, false);
  assert.throws(
    () => parseControlFile(resign(bytes, 288)),
    expectControlFileError("incompatible", /floating-point format/),
  );
});

Deno.test("pg_control: every DBState code and an unknown one", async () => {
  const original = await fixture("14-16-initdb.pg_control");
  const names = [
    "starting up",
    "shut down",
    "shut down in recovery",
    "shutting down",
    "in crash recovery",
    "in archive recovery",
    "in production",
    "unrecognized status code",
  ];
  names.forEach((state, code) => {
    const bytes = original.slice();
    new DataView(bytes.buffer).setUint32(16, code, true);
    const control = parseControlFile(resign(bytes, 288));
    assert.equal(control.state, state);
    assert.equal(control.stateCode, code);
  });
});

Deno.test("pg_control: crc32c is CRC-32C (Castagnoli)", () => {
  assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xE3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  assert.equal(crc32c(new Uint8Array(32)), 0x8A9136AA);
});

Deno.test("pg_control: readControlFile and walSegmentSizeOf on a directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wald-pg-control-" });
  try {
    const pgdata = join(dir, "data");
    await Deno.mkdir(join(pgdata, "global"), { recursive: true });
    await Deno.mkdir(join(pgdata, "pg_wal"));
    const controlPath = join(pgdata, "global", "pg_control");
    await Deno.writeFile(controlPath, await fixture("14-64-initdb.pg_control"));

    const control = await readControlFile(pgdata);
    assert.equal(control.walSegmentSize, 64 * 1024 * 1024);
    assert.equal(await walSegmentSizeOf(pgdata), 64 * 1024 * 1024);

    // pg_wal's parent is a data dir; a lone pg_wal's parent is not.
    const lone = join(dir, "elsewhere", "pg_wal");
    await Deno.mkdir(lone, { recursive: true });
    assert.equal(await walSegmentSizeOf(join(lone, "..")), null);
    assert.equal(await walSegmentSizeOf(join(dir, "missing")), null);
    await assert.rejects(
      () => readControlFile(join(dir, "missing")),
      expectControlFileError("unreadable", /cannot read .*missing\/global\/pg_control/),
    );

    const corrupt = await fixture("14-64-initdb.pg_control");
    corrupt[228] ^= 0xFF;
    await Deno.writeFile(controlPath, corrupt);
    await assert.rejects(
      () => readControlFile(pgdata, { attempts: 2 }),
      expectControlFileError("crc-mismatch", /global\/pg_control: pg_control CRC-32C mismatch/),
    );
    assert.equal(await walSegmentSizeOf(pgdata), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pg_control: readControlFile retries a torn read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wald-pg-control-" });
  try {
    await Deno.mkdir(join(dir, "global"));
    const path = join(dir, "global", "pg_control");
    const good = await fixture("18-16-running.pg_control");
    const torn = good.slice();
    torn[40] ^= 0xFF;
    await Deno.writeFile(path, torn);
    // The "server" finishes its write while the first reads fail their CRC check.
    const reading = readControlFile(dir, { attempts: 50 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await Deno.writeFile(path, good);
    const control = await reading;
    assert.equal(formatLsn(control.redoLsn), "0/174B250");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
