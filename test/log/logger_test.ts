import assert from "node:assert/strict";
import type { LogSettings } from "../../src/config/types.ts";
import { createLogger } from "../../src/log/logger.ts";
import { logSettings, SPEC_TIME } from "./_capture.ts";

async function capture(
  overrides: Partial<LogSettings>,
  body: (log: Awaited<ReturnType<typeof createLogger>>) => void,
  redact: string[] = [],
): Promise<string> {
  let output = "";
  const log = await createLogger({
    settings: logSettings(overrides),
    clock: () => SPEC_TIME,
    pid: 77,
    writeStderr: (text) => output += text,
    redact,
  });
  body(log);
  await log.flush();
  return output;
}

Deno.test("logger: writes WAL-E lines to stderr, one newline per record", async () => {
  const output = await capture({}, (log) => {
    log.info("starting WAL-E", { detail: 'The subcommand is "backup-list".' });
    log.getLogger("wal_e.worker.upload").warning("w", { structured: { seg: "S" } });
  });
  assert.equal(
    output,
    "wal_e.main   INFO     MSG: starting WAL-E\n" +
      '        DETAIL: The subcommand is "backup-list".\n' +
      "        STRUCTURED: time=2018-11-05T20:21:58.171324-00 pid=77\n" +
      "wal_e.worker.upload WARNING  MSG: w\n" +
      "        STRUCTURED: time=2018-11-05T20:21:58.171324-00 pid=77 seg=S\n",
  );
});

Deno.test("logger: INFO root level hides DEBUG; --terse (WARNING) hides INFO too", async () => {
  const emitAll = (log: Awaited<ReturnType<typeof createLogger>>) => {
    log.debug("d");
    log.info("i");
    log.warning("w");
    log.error("e");
    log.critical("c");
  };
  const levels = (text: string) => [...text.matchAll(/^\S+\s+(\S+)\s+MSG/gm)].map((m) => m[1]);
  assert.deepEqual(levels(await capture({}, emitAll)), ["INFO", "WARNING", "ERROR", "CRITICAL"]);
  assert.deepEqual(levels(await capture({ level: "WARNING" }, emitAll)), [
    "WARNING",
    "ERROR",
    "CRITICAL",
  ]);
  const log = await createLogger({
    settings: logSettings({ level: "WARNING" }),
    writeStderr: () => {},
  });
  assert.equal(log.isEnabledFor("INFO"), false);
  assert.equal(log.isEnabledFor("ERROR"), true);
});

Deno.test("logger: json format gives one JSON object per line", async () => {
  const output = await capture({ format: "json" }, (log) => {
    log.error("failed\nbadly", { detail: "d", structured: { state: "begin", n: 3 } });
    log.info("second");
  });
  const lines = output.split("\n");
  assert.equal(lines.length, 3);
  assert.equal(lines[2], "");
  assert.deepEqual(JSON.parse(lines[0]), {
    time: "2018-11-05T20:21:58.171324Z",
    level: "ERROR",
    logger: "wal_e.main",
    pid: 77,
    msg: "failed\nbadly",
    detail: "d",
    n: 3,
    state: "begin",
  });
  assert.equal(JSON.parse(lines[1]).msg, "second");
});

Deno.test("logger: no stderr output when stderr is not a destination", async () => {
  assert.equal(await capture({ destinations: [] }, (log) => log.error("x")), "");
});

Deno.test("logger: secrets are redacted from every field and format", async () => {
  const secret = "AKIAsecretValue/+=";
  const quoted = 'pa"ss\\word';
  for (const format of ["text", "json"] as const) {
    const output = await capture({ format }, (log) => {
      log.error(`msg ${secret}`, {
        detail: `detail ${secret}`,
        hint: `hint ${quoted}`,
        structured: { key: `s3://x/${secret}`, [`k${secret}`]: "v" },
      });
    }, [secret, quoted, "abc"]);
    assert.ok(!output.includes(secret), output);
    assert.ok(!output.includes("secretValue"), output);
    assert.ok(!output.includes("ss\\word") && !output.includes("ss\\\\word"), output);
    assert.equal(output.match(/<redacted>/g)?.length, 5, output);
  }
  // Values shorter than 4 characters are not redacted (they would mangle ordinary text).
  const short = await capture({}, (log) => log.info("abc"), ["abc"]);
  assert.match(short, /MSG: abc\n/);
});
