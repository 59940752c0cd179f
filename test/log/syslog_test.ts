import assert from "node:assert/strict";
import type { LogSettings } from "../../src/config/types.ts";
import { createLogger, findSyslogSocket } from "../../src/log/logger.ts";
import { syslogFacilityCode, syslogPriority } from "../../src/log/syslog.ts";
import { logSettings, SPEC_TIME, withSyslogServer } from "./_capture.ts";

function syslogSettings(socket: string, overrides: Partial<LogSettings> = {}): LogSettings {
  return logSettings({ destinations: ["syslog"], syslogSocketOverride: socket, ...overrides });
}

Deno.test("syslog: each record is one datagram <PRI> + formatted text + NUL", async () => {
  await withSyslogServer(async (socketPath, received, tmpDir) => {
    let stderr = "";
    const log = await createLogger({
      settings: syslogSettings(socketPath),
      clock: () => SPEC_TIME,
      pid: 321,
      writeStderr: (text) => stderr += text,
      tmpDir,
    });
    log.info("begin archiving a file", { detail: "d", structured: { seg: "S" } });
    log.getLogger("wal_e.worker.upload").error("boom");
    await log.flush();
    assert.equal(
      await received(),
      "<14>wal_e.main   INFO     MSG: begin archiving a file\n" +
        "        DETAIL: d\n" +
        "        STRUCTURED: time=2018-11-05T20:21:58.171324-00 pid=321 seg=S\0",
    );
    assert.equal(
      await received(),
      "<11>wal_e.worker.upload ERROR    MSG: boom\n" +
        "        STRUCTURED: time=2018-11-05T20:21:58.171324-00 pid=321\0",
    );
    assert.equal(stderr, "", "syslog-only logging writes nothing to stderr");
    const leftovers = [...Deno.readDirSync(tmpDir)].map((e) => e.name).filter((n) =>
      n.startsWith("wal-d-syslog-")
    );
    assert.deepEqual(leftovers, [], "the temporary client socket path is removed");
  });
});

Deno.test("syslog: facility from WALE_SYSLOG_FACILITY, case-insensitive; json format", async () => {
  await withSyslogServer(async (socketPath, received) => {
    const log = await createLogger({
      settings: syslogSettings(socketPath, { syslogFacility: "LOCAL3", format: "json" }),
      clock: () => SPEC_TIME,
      pid: 5,
      writeStderr: () => {},
    });
    log.warning("w");
    await log.flush();
    const datagram = await received();
    assert.equal(
      datagram,
      `<${19 * 8 + 4}>{"time":"2018-11-05T20:21:58.171324Z","level":"WARNING",` +
        `"logger":"wal_e.main","pid":5,"msg":"w"}\0`,
    );
  });
});

Deno.test("syslog: invalid facility prints one line and falls back to user", async () => {
  await withSyslogServer(async (socketPath, received) => {
    let stderr = "";
    const log = await createLogger({
      settings: syslogSettings(socketPath, {
        syslogFacility: "nonsense",
        destinations: ["stderr", "syslog"],
      }),
      clock: () => SPEC_TIME,
      pid: 5,
      writeStderr: (text) => stderr += text,
    });
    log.critical("c");
    log.critical("c2");
    await log.flush();
    assert.match(await received(), /^<10>wal_e\.main {3}CRITICAL MSG: c\n/);
    assert.match(await received(), /^<10>wal_e\.main {3}CRITICAL MSG: c2\n/);
    assert.equal(stderr.split("\n")[0], "invalid syslog facility level specified");
    assert.equal(stderr.match(/invalid syslog facility/g)?.length, 1);
    assert.match(stderr, /CRITICAL MSG: c2\n/, "stderr still gets the records");
  });
});

Deno.test("syslog: a refused socket prints one 'Could not set up syslog' line and continues", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wal-d-syslog-test-" });
  try {
    const socketPath = `${dir}/dead.sock`;
    Deno.listenDatagram({ transport: "unixpacket", path: socketPath }).close(); // file stays
    let stderr = "";
    const log = await createLogger({
      settings: syslogSettings(socketPath, { destinations: ["stderr", "syslog"] }),
      clock: () => SPEC_TIME,
      pid: 5,
      writeStderr: (text) => stderr += text,
    });
    log.info("one");
    log.info("two");
    await log.flush();
    log.info("three");
    await log.flush();
    const lines = stderr.split("\n").filter((line) => line.startsWith("wal-d:"));
    assert.deepEqual(lines, [
      "wal-d: Could not set up syslog, continuing anyway.  Reason: ECONNREFUSED",
    ]);
    assert.equal(stderr.match(/MSG: /g)?.length, 3);
    assert.ok(!stderr.includes("Error"), "no traceback");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("syslog: no socket at all means silent skipping", async () => {
  let stderr = "";
  const log = await createLogger({
    settings: syslogSettings("/nonexistent/wal-d/log.sock", { destinations: ["stderr", "syslog"] }),
    clock: () => SPEC_TIME,
    pid: 5,
    writeStderr: (text) => stderr += text,
  });
  log.info("only stderr");
  await log.flush();
  assert.equal(
    stderr,
    "wal_e.main   INFO     MSG: only stderr\n" +
      "        STRUCTURED: time=2018-11-05T20:21:58.171324-00 pid=5\n",
  );
});

Deno.test("syslog: socket discovery takes the first path that is a socket", async () => {
  await withSyslogServer((socketPath) => {
    const dir = Deno.makeTempDirSync();
    try {
      Deno.writeTextFileSync(`${dir}/file`, "");
      assert.equal(
        findSyslogSocket([`${dir}/missing`, dir, `${dir}/file`, socketPath]),
        socketPath,
      );
      assert.equal(findSyslogSocket([`${dir}/missing`, dir]), null);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
    return Promise.resolve();
  });
});

Deno.test("syslog: facility names and priorities match Python's SysLogHandler", () => {
  assert.equal(syslogFacilityCode("user"), 1);
  assert.equal(syslogFacilityCode("LOCAL0"), 16);
  assert.equal(syslogFacilityCode("local7"), 23);
  assert.equal(syslogFacilityCode("daemon"), 3);
  assert.equal(syslogFacilityCode(""), null);
  assert.equal(syslogFacilityCode("local8"), null);
  assert.equal(syslogPriority(1, "INFO"), 14);
  assert.equal(syslogPriority(1, "DEBUG"), 15);
  assert.equal(syslogPriority(16, "WARNING"), 132);
});
