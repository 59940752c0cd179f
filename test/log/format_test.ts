import assert from "node:assert/strict";
import {
  compareCodePoints,
  formatJsonRecord,
  formatStructured,
  formatTextRecord,
  formatUtcMicros,
  type LogRecord,
} from "../../src/log/format.ts";
import { SPEC_TIME } from "./_capture.ts";

Deno.test("format: UTC time with microseconds", () => {
  assert.equal(formatUtcMicros(SPEC_TIME), "2018-11-05T20:21:58.171324");
  assert.equal(formatUtcMicros(0), "1970-01-01T00:00:00.000000");
  assert.equal(
    formatUtcMicros(Date.UTC(2024, 1, 29, 23, 59, 59) * 1000 + 7),
    "2024-02-29T23:59:59.000007",
  );
});

Deno.test("format: the spec §10 example, byte for byte", () => {
  const record: LogRecord = {
    loggerName: "wal_e.worker.upload",
    level: "INFO",
    msg: "begin archiving a file",
    detail: 'Uploading "pg_wal/00000001000000000000000F" to ' +
      '"gs://b/wals/wal_005/00000001000000000000000F.lzo".',
    structured: {
      action: "push-wal",
      key: "gs://b/wals/wal_005/00000001000000000000000F.lzo",
      prefix: "wals/",
      seg: "00000001000000000000000F",
      state: "begin",
    },
    epochMicros: SPEC_TIME,
    pid: 2513,
  };
  assert.equal(
    formatTextRecord(record),
    "wal_e.worker.upload INFO     MSG: begin archiving a file\n" +
      '        DETAIL: Uploading "pg_wal/00000001000000000000000F" to ' +
      '"gs://b/wals/wal_005/00000001000000000000000F.lzo".\n' +
      "        STRUCTURED: time=2018-11-05T20:21:58.171324-00 pid=2513 action=push-wal " +
      "key=gs://b/wals/wal_005/00000001000000000000000F.lzo prefix=wals/ " +
      "seg=00000001000000000000000F state=begin",
  );
});

Deno.test("format: name padded to 12, level to 8; HINT line; newlines inside fields indented", () => {
  assert.equal(
    formatTextRecord({
      loggerName: "wal_e.main",
      level: "ERROR",
      msg: "two\nlines",
      detail: "",
      hint: "do this",
      epochMicros: SPEC_TIME,
      pid: 1,
    }),
    "wal_e.main   ERROR    MSG: two\n" +
      "        lines\n" +
      "        DETAIL: \n" +
      "        HINT: do this\n" +
      "        STRUCTURED: time=2018-11-05T20:21:58.171324-00 pid=1",
  );
  assert.equal(
    formatTextRecord({
      loggerName: "x",
      level: "CRITICAL",
      msg: "m",
      epochMicros: SPEC_TIME,
      pid: 9,
    }),
    "x            CRITICAL MSG: m\n        STRUCTURED: time=2018-11-05T20:21:58.171324-00 pid=9",
  );
});

Deno.test("format: structured k=v strings are sorted as whole strings, unquoted", () => {
  assert.equal(
    formatStructured(SPEC_TIME, 5, { b: "2", a_b: "x y", a: 1, "Z": "upper" }),
    "time=2018-11-05T20:21:58.171324-00 pid=5 Z=upper a=1 a_b=x y b=2",
  );
  assert.ok(compareCodePoints("\u{1F600}", "\uFFFF") > 0, "astral sorts after BMP by code point");
});

Deno.test("format: JSON record", () => {
  const line = formatJsonRecord({
    loggerName: "wal_e.main",
    level: "WARNING",
    msg: "m",
    hint: "h",
    structured: { seg: "0001", pid: "collides", action: "push-wal" },
    epochMicros: SPEC_TIME,
    pid: 42,
  });
  assert.ok(!line.includes("\n"));
  assert.equal(
    line,
    '{"time":"2018-11-05T20:21:58.171324Z","level":"WARNING","logger":"wal_e.main","pid":42,' +
      '"msg":"m","hint":"h","action":"push-wal","structured_pid":"collides","seg":"0001"}',
  );
});
