import assert from "node:assert/strict";
import {
  assertLsn,
  formatLsn,
  INVALID_LSN,
  isLsnText,
  LayoutError,
  MAX_LSN,
  parseLsn,
} from "../../src/layout/mod.ts";

Deno.test("lsn: parses PostgreSQL's X/X form", () => {
  assert.equal(parseLsn("16/B374D848"), 0x16_B374D848n);
  assert.equal(parseLsn("0/2000028"), 0x2000028n);
  assert.equal(parseLsn("0/0"), INVALID_LSN);
  assert.equal(parseLsn("FFFFFFFF/FFFFFFFF"), MAX_LSN);
  assert.equal(parseLsn("00000001/00000000"), 0x1_0000_0000n);
  // pg_lsn input accepts lower case too.
  assert.equal(parseLsn("16/b374d848"), 0x16_B374D848n);
});

Deno.test("lsn: formats like %X/%X (upper case, no padding)", () => {
  assert.equal(formatLsn(0x16_B374D848n), "16/B374D848");
  assert.equal(formatLsn(0x2000028n), "0/2000028");
  assert.equal(formatLsn(0n), "0/0");
  assert.equal(formatLsn(MAX_LSN), "FFFFFFFF/FFFFFFFF");
  assert.equal(formatLsn(0x1_0000_0000n), "1/0");
});

Deno.test("lsn: round trip", () => {
  const values = [0n, 1n, 0xFFFF_FFFFn, 0x1_0000_0000n, 0xA_BC00_0000n, MAX_LSN - 1n, MAX_LSN];
  for (let i = 0n; i < 64n; i++) values.push(1n << i, (1n << i) - 1n);
  for (const lsn of values) {
    assert.equal(parseLsn(formatLsn(lsn)), lsn, formatLsn(lsn));
    assert.equal(parseLsn(formatLsn(lsn).toLowerCase()), lsn);
  }
});

Deno.test("lsn: rejects malformed text with a message naming the input", () => {
  const bad = [
    "",
    "/",
    "0/",
    "/0",
    "0",
    "16B374D848",
    "123456789/0",
    "0/123456789",
    " 0/0",
    "0/0 ",
    "0/0/0",
    "G/0",
    "0x1/0",
    "-1/0",
    "+1/0",
    "1/-0",
    "٣/0",
  ];
  for (const text of bad) {
    assert.equal(isLsnText(text), false, text);
    assert.throws(() => parseLsn(text), (error: unknown) => {
      assert.ok(error instanceof LayoutError, text);
      assert.match(error.message, /invalid LSN/);
      assert.ok(error.message.includes(JSON.stringify(text)), error.message);
      return true;
    });
  }
});

Deno.test("lsn: formatLsn refuses values outside 64 bits", () => {
  assert.throws(() => formatLsn(-1n), RangeError);
  assert.throws(() => formatLsn(MAX_LSN + 1n), RangeError);
  assert.throws(() => assertLsn(1 as unknown as bigint), RangeError);
  assertLsn(MAX_LSN);
});
