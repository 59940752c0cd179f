/**
 * The tar header reader (src/backup/tar_header.ts): ustar (with a prefix), GNU and v7 headers,
 * numeric fields (octal in every terminated form, GNU base-256), checksums, type flags, PAX
 * records and zero blocks. Headers come from wal-d's own encoder (tar.ts) where it can write
 * them, else from test/backup/_tar_build.ts, which writes any raw field.
 */

import assert from "node:assert/strict";
import {
  encodeTarHeader,
  TAR_BLOCK_SIZE,
  type TarEntry,
  tarHeaderLength,
} from "../../src/backup/tar.ts";
import {
  decodeField,
  isZeroBlock,
  parsePaxRecords,
  parseTarHeader,
  TarFormatError,
  type TarHeaderType,
} from "../../src/backup/tar_header.ts";
import { concat, paxData as pax, rawHeader } from "./_tar_build.ts";

const encoder = new TextEncoder();

function entry(over: Partial<TarEntry>): TarEntry {
  return {
    name: "base/1/1259",
    kind: "file",
    size: 8192,
    mode: 0o600,
    uid: 26,
    gid: 26,
    mtime: 1_700_000_123,
    ...over,
  };
}

/** The blocks encodeTarHeader writes for `e`: [PAX data or null, last header block]. */
function encoded(e: TarEntry): { pax: Uint8Array | null; header: Uint8Array } {
  const out = new Uint8Array(tarHeaderLength(e));
  encodeTarHeader(e, out, 0);
  if (out.length === TAR_BLOCK_SIZE) return { pax: null, header: out };
  const paxHeader = parseTarHeader(out.subarray(0, TAR_BLOCK_SIZE));
  assert.equal(paxHeader.type, "pax");
  return {
    pax: out.subarray(TAR_BLOCK_SIZE, TAR_BLOCK_SIZE + paxHeader.size),
    header: out.subarray(out.length - TAR_BLOCK_SIZE),
  };
}

function assertFormatError(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof TarFormatError, `expected a TarFormatError, got ${error}`);
    assert.match(error.message, message);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// parseTarHeader

Deno.test("parseTarHeader: a plain ustar header from encodeTarHeader", () => {
  const { pax, header } = encoded(entry({}));
  assert.equal(pax, null);
  assert.deepEqual(parseTarHeader(header), {
    name: "base/1/1259",
    type: "file",
    typeFlag: "0",
    mode: 0o600,
    size: 8192,
    mtime: 1_700_000_123,
    linkName: "",
    format: "ustar",
  });
});

Deno.test("parseTarHeader: ustar prefix and name are joined with a slash", () => {
  const dir = `pg_tblspc/16385/PG_17_202406281/${"d".repeat(90)}`;
  const name = `${dir}/${"f".repeat(95)}`;
  assert.ok(name.length > 100 && name.length <= 256);
  const { pax, header } = encoded(entry({ name }));
  assert.equal(pax, null, "fits ustar's prefix + name: no PAX header");
  assert.notEqual(header[345], 0, "the prefix field is used");
  const parsed = parseTarHeader(header);
  assert.equal(parsed.name, name);
  assert.equal(parsed.format, "ustar");

  // By hand: a directory's name and prefix.
  const raw = rawHeader({ name: "sub/", prefix: "a/b", type: "5" });
  assert.equal(parseTarHeader(raw).name, "a/b/sub/");
});

Deno.test("parseTarHeader: every kind encodeTarHeader writes reads back", () => {
  const cases: [TarEntry, TarHeaderType, string][] = [
    [entry({ name: "PG_VERSION", size: 3, mode: 0o644 }), "file", ""],
    [entry({ name: "base/", kind: "directory", size: 0, mode: 0o700 }), "directory", ""],
    [
      entry({ name: "pg_wal", kind: "symlink", size: 0, linkTarget: "/wal/x" }),
      "symlink",
      "/wal/x",
    ],
    [
      entry({ name: "b", kind: "hardlink", size: 0, linkTarget: "base/1/1" }),
      "hardlink",
      "base/1/1",
    ],
  ];
  for (const [e, type, link] of cases) {
    const parsed = parseTarHeader(encoded(e).header);
    assert.equal(parsed.type, type, e.name);
    assert.equal(parsed.name, e.name);
    assert.equal(parsed.linkName, link);
    assert.equal(parsed.mode, e.mode);
    assert.equal(parsed.size, e.kind === "file" ? e.size : 0);
  }
});

Deno.test("parseTarHeader: GNU magic; the prefix area is not a prefix in GNU headers", () => {
  // GNU tar keeps atime/ctime and sparse data in bytes 345..; they must not become a prefix.
  const header = rawHeader({
    name: "base/1/2600",
    magic: "gnu",
    size: 5,
    prefix: "14676352251\x0014676352251",
  });
  const parsed = parseTarHeader(header);
  assert.equal(parsed.format, "gnu");
  assert.equal(parsed.name, "base/1/2600");
  assert.equal(parsed.size, 5);
});

Deno.test("parseTarHeader: v7 header (no magic): no prefix either", () => {
  const parsed = parseTarHeader(
    rawHeader({ name: "old/file", magic: "v7", type: "\0", size: 10, prefix: "ignored" }),
  );
  assert.equal(parsed.format, "v7");
  assert.equal(parsed.name, "old/file");
  assert.equal(parsed.type, "file");
  assert.equal(parsed.typeFlag, "\\0");
  assert.equal(parsed.size, 10);
});

Deno.test("parseTarHeader: base-256 numbers (GNU), negative and too large ones refused", () => {
  const size = 8 * 1024 * 1024 * 1024 + 5; // does not fit 11 octal digits
  const field = new Uint8Array(12);
  field[0] = 0x80;
  let v = size;
  for (let i = 11; i > 0; i--) {
    field[i] = v % 256;
    v = Math.floor(v / 256);
  }
  assert.equal(parseTarHeader(rawHeader({ magic: "gnu", size: field })).size, size);

  const mtime = new Uint8Array(12);
  mtime[0] = 0x80;
  mtime[11] = 42;
  assert.equal(parseTarHeader(rawHeader({ magic: "gnu", mtime })).mtime, 42);

  const negative = new Uint8Array(12).fill(0xff);
  assertFormatError(
    () => parseTarHeader(rawHeader({ magic: "gnu", size: negative })),
    /negative size/,
  );
  const huge = new Uint8Array(12).fill(0xff);
  huge[0] = 0x80 | 0x01; // 2^88 and more
  assertFormatError(() => parseTarHeader(rawHeader({ magic: "gnu", size: huge })), /too large/);
});

Deno.test("parseTarHeader: octal fields in their terminated forms", () => {
  const forms: [string, number][] = [
    ["00000000012\0", 0o12], // NUL terminated (POSIX)
    ["00000000012 ", 0o12], // space terminated (old tars)
    ["         12 ", 0o12], // leading spaces
    ["12\0\0\0\0\0\0\0\0\0\0", 0o12], // short
    ["\0\0\0\0\0\0\0\0\0\0\0\0", 0], // empty field
    ["777777777777", 0o777777777777], // all 12 digits, no terminator
  ];
  for (const [text, value] of forms) {
    assert.equal(parseTarHeader(rawHeader({ size: text })).size, value, JSON.stringify(text));
  }
  // The checksum field in its other common form: six digits, a space and a NUL ... or NUL only.
  const block = rawHeader({ name: "x" });
  const sum = parseInt(new TextDecoder().decode(block.subarray(148, 154)), 8);
  const spaceNul = rawHeader({
    name: "x",
    checksum: encoder.encode(sum.toString(8).padStart(6, "0") + " \0"),
  });
  assert.equal(parseTarHeader(spaceNul).name, "x");
  // Mode bits beyond 0o7777 (the file type bits some writers add) are masked away.
  assert.equal(parseTarHeader(rawHeader({ mode: 0o100644 })).mode, 0o644);
  assert.equal(parseTarHeader(rawHeader({ mode: 0o4755 })).mode, 0o4755);
});

Deno.test("parseTarHeader: a non-octal numeric field is a TarFormatError naming it", () => {
  assertFormatError(() => parseTarHeader(rawHeader({ mode: "0000x44\0" })), /mode .*not an octal/);
  assertFormatError(() => parseTarHeader(rawHeader({ size: "0000000009\0" })), /size .*octal/);
  assertFormatError(() => parseTarHeader(rawHeader({ size: "-0000000001\0" })), /size .*octal/);
  assertFormatError(() => parseTarHeader(rawHeader({ mtime: "1e10\0" })), /mtime .*octal/);
  assertFormatError(
    () => parseTarHeader(rawHeader({ checksum: encoder.encode("12a45\0 ") })),
    /checksum .*octal/,
  );
});

Deno.test("parseTarHeader: a wrong checksum is a TarFormatError", () => {
  assertFormatError(() => parseTarHeader(rawHeader({ checksum: "bad" })), /checksum mismatch/);
  // One flipped bit anywhere in a valid header.
  const { header } = encoded(entry({}));
  for (const at of [0, 100, 124, 156, 257, 345, 511]) {
    const copy = header.slice();
    copy[at] ^= 0x01;
    assertFormatError(() => parseTarHeader(copy), /checksum mismatch/);
  }
  // An all-spaces checksum field reads as 0, which no real header sums to.
  assertFormatError(
    () => parseTarHeader(rawHeader({ checksum: encoder.encode("        ") })),
    /checksum mismatch/,
  );
  // Random bytes are not a header.
  const junk = new Uint8Array(TAR_BLOCK_SIZE).map((_, i) => (i * 37 + 11) & 0xff);
  assert.throws(() => parseTarHeader(junk), TarFormatError);
});

Deno.test("parseTarHeader: the signed checksum (old Sun tars) is accepted too", () => {
  const name = "données/é"; // bytes over 127: signed and unsigned sums differ
  const signed = rawHeader({ name, checksum: "signed" });
  const unsigned = rawHeader({ name });
  assert.notDeepEqual(signed.subarray(148, 156), unsigned.subarray(148, 156));
  assert.equal(parseTarHeader(signed).name, name);
  assert.equal(parseTarHeader(unsigned).name, name);
});

Deno.test("parseTarHeader: every type flag maps to its kind", () => {
  const expected: [string, TarHeaderType][] = [
    ["0", "file"],
    ["\0", "file"],
    ["7", "file"],
    ["1", "hardlink"],
    ["2", "symlink"],
    ["3", "character-device"],
    ["4", "block-device"],
    ["5", "directory"],
    ["6", "fifo"],
    ["x", "pax"],
    ["g", "pax-global"],
    ["L", "gnu-long-name"],
    ["K", "gnu-long-link"],
    ["S", "gnu-sparse"],
    ["V", "gnu-volume-label"],
    ["A", "other"],
    ["D", "other"], // GNU dumpdir
    ["M", "other"], // GNU multi-volume continuation
    ["N", "other"], // GNU old long name
    ["X", "other"], // Solaris extended header
    ["8", "other"],
    ["Z", "other"],
  ];
  for (const [flag, type] of expected) {
    const parsed = parseTarHeader(rawHeader({ type: flag }));
    assert.equal(parsed.type, type, `type flag ${JSON.stringify(flag)}`);
    assert.equal(parsed.typeFlag, flag === "\0" ? "\\0" : flag);
  }
});

Deno.test("parseTarHeader: names and link names must be UTF-8; NUL ends them", () => {
  const raw = rawHeader({ name: "données/\u00e9t\u00e9", linkName: "cible/\u2603" });
  const parsed = parseTarHeader(raw);
  assert.equal(parsed.name, "données/\u00e9t\u00e9");
  assert.equal(parsed.linkName, "cible/\u2603");
  // A name of exactly 100 bytes has no NUL.
  assert.equal(parseTarHeader(rawHeader({ name: "n".repeat(100) })).name, "n".repeat(100));
  assert.equal(parseTarHeader(rawHeader({ name: "a\0/../../etc/x" })).name, "a");
  assertFormatError(
    () => parseTarHeader(rawHeader({ name: new Uint8Array([0x61, 0xff, 0x62]) })),
    /name is not valid UTF-8/,
  );
  assertFormatError(
    () => parseTarHeader(rawHeader({ linkName: new Uint8Array([0xc3, 0x28]) })),
    /link name is not valid UTF-8/,
  );
  assertFormatError(
    () => parseTarHeader(rawHeader({ name: "x", prefix: new Uint8Array([0xe2, 0x82]) })),
    /prefix is not valid UTF-8/,
  );
});

Deno.test("decodeField: NUL terminated, whole field without a NUL, TarFormatError naming it", () => {
  assert.equal(decodeField(encoder.encode("abc\0def"), "f"), "abc");
  assert.equal(decodeField(encoder.encode("abc"), "f"), "abc");
  assert.equal(decodeField(new Uint8Array(5), "f"), "");
  assertFormatError(() => decodeField(new Uint8Array([0x80]), "the thing"), /the thing/);
});

// ---------------------------------------------------------------------------------------------
// parsePaxRecords

Deno.test("parsePaxRecords: path, linkpath, size, mtime; other keys ignored", () => {
  const long = `base/16384/${"x".repeat(300)}`;
  assert.deepEqual(
    parsePaxRecords(pax(
      ["path", long],
      ["linkpath", "/mnt/ts/été"],
      ["size", "8589934597"],
      ["mtime", "1700000000"],
      ["atime", "1700000001.5"],
      ["uid", "99999999"],
      ["uname", "postgres"],
      ["SCHILY.xattr.user.x", "y"],
      ["comment", "a=b=c"],
    )),
    { path: long, linkpath: "/mnt/ts/été", size: 8589934597, mtime: 1700000000 },
  );
  assert.deepEqual(parsePaxRecords(new Uint8Array(0)), {});
});

Deno.test("parsePaxRecords: what encodeTarHeader writes reads back", () => {
  const name = `données/${"é".repeat(60)}/${"n".repeat(200)}`;
  const target = `/mnt/${"t".repeat(120)}`;
  const { pax: data, header } = encoded(
    entry({ name, kind: "symlink", size: 0, linkTarget: target, mtime: 1e10 + 0.25 }),
  );
  assert.ok(data !== null);
  const records = parsePaxRecords(data);
  assert.equal(records.path, name);
  assert.equal(records.linkpath, target);
  assert.equal(records.mtime, 1e10);
  assert.equal(parseTarHeader(header).type, "symlink");
});

Deno.test("parsePaxRecords: a fractional mtime is truncated to whole seconds", () => {
  assert.equal(parsePaxRecords(pax(["mtime", "1700000000.999999"])).mtime, 1700000000);
  assert.equal(parsePaxRecords(pax(["mtime", "1700000000.5"])).mtime, 1700000000);
  assert.equal(parsePaxRecords(pax(["mtime", "0"])).mtime, 0);
});

Deno.test("parsePaxRecords: a pre-1970 mtime (negative, as encodeTarHeader and Python write it)", () => {
  // encodeTarHeader puts an mtime before 1970 in a PAX record (tar.ts: "an mtime before 1970");
  // backup-push copies a file's lstat mtime, which can be negative. The reader must read what
  // wal-d's own writer wrote, or such a backup cannot be restored.
  const { pax: data } = encoded(entry({ mtime: -86400.5 }));
  assert.ok(data !== null, "encodeTarHeader writes a PAX mtime for a pre-1970 time");
  assert.equal(new TextDecoder().decode(data), "18 mtime=-86400.5\n");
  assert.equal(parsePaxRecords(data).mtime, -86401);
  assert.equal(parsePaxRecords(pax(["mtime", "-1"])).mtime, -1);
});

Deno.test("parsePaxRecords: GNU tar's nanosecond mtime is truncated, not rounded up", () => {
  // GNU tar writes 9 fractional digits; as a double, 1700000000.999999999 is 1700000001.
  assert.equal(parsePaxRecords(pax(["mtime", "1700000000.999999999"])).mtime, 1700000000);
});

Deno.test("parsePaxRecords: later records override earlier ones; values may hold '=' and newlines", () => {
  const records = parsePaxRecords(pax(["path", "a"], ["path", "b=c\nd"], ["size", "1"]));
  assert.deepEqual(records, { path: "b=c\nd", size: 1 });
});

Deno.test("parsePaxRecords: NUL padding after the records is accepted", () => {
  const data = concat(pax(["path", "p"]), new Uint8Array(20));
  assert.deepEqual(parsePaxRecords(data), { path: "p" });
});

Deno.test("parsePaxRecords: GNU.sparse.* records mark the member sparse", () => {
  for (
    const key of ["GNU.sparse.major", "GNU.sparse.minor", "GNU.sparse.name", "GNU.sparse.size"]
  ) {
    assert.equal(parsePaxRecords(pax([key, "1"])).sparse, true, key);
  }
  assert.equal(parsePaxRecords(pax(["GNU.sparse", "1"])).sparse, undefined);
  assert.equal(parsePaxRecords(pax(["path", "x"])).sparse, undefined);
});

Deno.test("parsePaxRecords: malformed lengths and records are TarFormatErrors", () => {
  const bad: [string, Uint8Array, RegExp][] = [
    ["no space", encoder.encode("12path=abcde\n"), /no length/],
    ["length not a number", encoder.encode("1x path=ab\n"), /record length/],
    ["empty length", encoder.encode(" path=abcdef\n"), /record length/],
    ["length zero", encoder.encode("0 path=abcd\n"), /record length/],
    ["length shorter than its own digits", encoder.encode("2 path=abcd\n"), /record length/],
    ["length past the data", encoder.encode("99 path=abcd\n"), /record length/],
    ["length one too long", encoder.encode("13 path=abc\n"), /record length/],
    ["length one too short", encoder.encode("11 path=abc\n"), /no newline/],
    ["no newline", encoder.encode("12 path=abcX"), /no newline/],
    ["no '='", encoder.encode("12 pathXabc\n"), /no '='/],
    ["negative length", encoder.encode("-12 path=abc\n"), /record length/],
    ["fractional length", encoder.encode("12.5 path=ab\n"), /record length/],
    // The length counts bytes: é is two.
    ["length in characters", encoder.encode("12 path=abé\n"), /record length|no newline/],
    ["size not a number", pax(["size", "12abc"]), /PAX size/],
    ["size negative", pax(["size", "-1"]), /PAX size/],
    ["size fractional", pax(["size", "1.5"]), /PAX size/],
    ["size too large", pax(["size", "99999999999999999999"]), /PAX size/],
    ["size empty", pax(["size", "x"]), /PAX size/],
    ["mtime not a number", pax(["mtime", "yesterday"]), /PAX mtime/],
    [
      "invalid UTF-8 value",
      concat(encoder.encode("9 path="), new Uint8Array([0xff, 0x0a])),
      /UTF-8/,
    ],
  ];
  for (const [what, data, message] of bad) {
    assert.throws(() => parsePaxRecords(data), (error: unknown) => {
      assert.ok(
        error instanceof TarFormatError,
        `${what}: expected a TarFormatError, got ${error}`,
      );
      assert.match(error.message, message, what);
      return true;
    });
  }
  // A good record followed by a broken one.
  assert.throws(
    () => parsePaxRecords(concat(pax(["path", "ok"]), encoder.encode("5 x\n"))),
    TarFormatError,
  );
});

// ---------------------------------------------------------------------------------------------
// isZeroBlock

Deno.test("isZeroBlock: only an all-zero 512-byte block", () => {
  assert.equal(isZeroBlock(new Uint8Array(TAR_BLOCK_SIZE)), true);
  for (const at of [0, 1, 148, 256, 511]) {
    const block = new Uint8Array(TAR_BLOCK_SIZE);
    block[at] = 1;
    assert.equal(isZeroBlock(block), false, `byte ${at}`);
  }
  // Only the first 512 bytes count (the extractor passes subarrays of larger views).
  const longer = new Uint8Array(TAR_BLOCK_SIZE + 10);
  longer[TAR_BLOCK_SIZE + 3] = 7;
  assert.equal(isZeroBlock(longer), true);
  assert.equal(isZeroBlock(rawHeader({ name: "" })), false);
});
