/** The exit-code / stdout / stderr contract, checked on real processes (mod.ts and scripts/wal-d). */
import assert from "node:assert/strict";
import { RUNTIME_PERMISSION_FLAGS } from "../../src/cli/reinvoke.ts";
import { withSyslogServer } from "../log/_capture.ts";
import { walDArgs } from "../wal/_cli.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const LAUNCHER = `${ROOT}scripts/wal-d`;

interface ProcessResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A minimal environment: enough for Deno to find its cache, nothing WAL-E related. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1", WALE_LOG_DESTINATION: "stderr" };
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

async function runProcess(
  command: string,
  args: string[],
  env: Record<string, string>,
): Promise<ProcessResult> {
  const output = await new Deno.Command(command, {
    args,
    env: { ...baseEnv(), ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** `deno run` of mod.ts with the launcher's permissions. */
function walD(args: string[], env: Record<string, string> = {}): Promise<ProcessResult> {
  return runProcess(Deno.execPath(), walDArgs(args), env);
}

function assertOneErrorLine(result: ProcessResult, code: number, pattern: RegExp): void {
  assert.equal(result.code, code, result.stderr);
  assert.equal(result.stdout, "");
  const lines = result.stderr.split("\n");
  assert.equal(lines.length, 2, `one line expected, got: ${result.stderr}`);
  assert.equal(lines[1], "");
  assert.match(lines[0], /^wal-d: error: /);
  assert.match(lines[0], pattern);
}

Deno.test("process: version prints the version to stdout and exits 0", async () => {
  assert.deepEqual(await walD(["version"]), { code: 0, stdout: "0.1.0\n", stderr: "" });
  assert.deepEqual(await walD(["--terse", "version", "--s3-prefix=bogus://x"]), {
    code: 0,
    stdout: "0.1.0\n",
    stderr: "",
  });
});

Deno.test("process: --help goes to stdout with exit 0", async () => {
  const result = await walD(["--help"]);
  assert.equal(result.code, 0);
  assert.equal(result.stderr, "");
  assert.match(result.stdout, /^usage: wal-d \[GLOBAL OPTIONS\] SUBCOMMAND/);
  for (const flag of ["--aws-access-key-id", "--file-prefix", "--env-dir", "--log-format"]) {
    assert.ok(result.stdout.includes(flag), flag);
  }
});

Deno.test("process: usage errors are one stderr line with exit 2", async () => {
  assertOneErrorLine(await walD(["wal-pull"]), 2, /unknown subcommand "wal-pull"/);
  assertOneErrorLine(await walD(["--bogus", "version"]), 2, /unknown option --bogus/);
  assertOneErrorLine(
    await walD(["wal-fetch", "000000010000000000000001"]),
    2,
    /^wal-d: error: wal-fetch needs WAL_SEGMENT and WAL_DESTINATION \(usage: wal-d wal-fetch WAL_SEGMENT WAL_DESTINATION\)$/,
  );
  assertOneErrorLine(await walD(["wal-push", "a", "b"]), 2, /unexpected extra argument "b"/);
  assertOneErrorLine(await walD(["wal-push", "-p", "0", "a"]), 2, /must be an integer >= 1/);
  assertOneErrorLine(
    await walD(["-k", "A", "--aws-instance-profile", "version"]),
    2,
    /cannot be combined/,
  );
});

Deno.test("process: secret flags are refused with exit 2 and never echoed", async () => {
  for (
    const args of [
      ["--aws-secret-access-key", "VerySecretValue123", "wal-push", "x"],
      ["wal-push", "x", "--swift-password=VerySecretValue123"],
      ["--wabs-sas-token=VerySecretValue123"],
    ]
  ) {
    const result = await walD(args, { WALE_S3_PREFIX: "s3://b" });
    assertOneErrorLine(result, 2, /is not accepted: .* environment variable instead/);
    assert.ok(!result.stderr.includes("VerySecretValue123"));
  }
});

Deno.test("process: no subcommand exits 127 with a prefix, else 2", async () => {
  assertOneErrorLine(await walD([], { WALE_S3_PREFIX: "s3://b/p" }), 127, /no subcommand given/);
  assertOneErrorLine(await walD(["--file-prefix", "file:///x"]), 127, /no subcommand given/);
  assertOneErrorLine(await walD([]), 2, /no subcommand given/);
});

Deno.test("process: not-implemented subcommands and missing prefixes exit 1", async () => {
  const notImplemented = await walD(["delete", "everything"], {
    WALE_FILE_PREFIX: "file:///tmp/wal-d-test",
  });
  assert.equal(notImplemented.code, 1);
  assert.match(
    notImplemented.stderr,
    /^wal_e\.main {3}ERROR {4}MSG: wal-d: delete is not implemented yet in this version\n/,
  );
  const noPrefix = await walD(["backup-list"]);
  assert.equal(noPrefix.code, 1);
  assert.match(noPrefix.stderr, /MSG: no storage prefix defined\n/);
});

Deno.test("process: envdir errors are one line with exit 1; the envdir supplies the prefix", async () => {
  assertOneErrorLine(
    await walD(["--env-dir", "/nonexistent/wal-d-envdir", "backup-list"]),
    1,
    /cannot read env dir "\/nonexistent\/wal-d-envdir"/,
  );
  const dir = await Deno.makeTempDir({ prefix: "wal-d-process-envdir-" });
  try {
    await Deno.writeTextFile(`${dir}/WALE_S3_PREFIX`, "s3://from-envdir\n");
    assertOneErrorLine(await walD([], { WALD_ENV_DIR: dir }), 127, /no subcommand given/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("process: --log-format json on a real process", async () => {
  const result = await walD(["--log-format", "json", "backup-list"]);
  assert.equal(result.code, 1);
  const record = JSON.parse(result.stderr.trim());
  assert.equal(record.level, "ERROR");
  assert.equal(record.logger, "wal_e.main");
  assert.equal(record.msg, "no storage prefix defined");
  assert.equal(typeof record.pid, "number");
  assert.match(record.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
});

Deno.test("process: scripts/wal-d runs version", async () => {
  assert.deepEqual(await runProcess(LAUNCHER, ["version"], {}), {
    code: 0,
    stdout: "0.1.0\n",
    stderr: "",
  });
});

Deno.test("process: scripts/wal-d has what syslog needs, and secrets stay out of it", async () => {
  await withSyslogServer(async (socketPath, received, dir) => {
    // An invalid query: one INFO line ("starting WAL-E"), then one ERROR with DETAIL and HINT.
    const result = await runProcess(LAUNCHER, ["backup-list", "nonsense"], {
      WALE_LOG_DESTINATION: "stderr,syslog",
      WALD_SYSLOG_SOCKET: socketPath,
      WALE_SYSLOG_FACILITY: "local1",
      WALE_FILE_PREFIX: "file:///tmp/wal-d-test",
      AWS_SECRET_ACCESS_KEY: "wal-d-test-secret",
      TMPDIR: dir,
    });
    assert.equal(result.code, 1, result.stderr);
    const lines = result.stderr.split("\n");
    assert.match(lines[0], /^wal_e\.main {3}INFO {5}MSG: starting WAL-E$/);
    assert.match(lines[3], /^wal_e\.main {3}ERROR {4}MSG: invalid backup query submitted$/);
    assert.match(lines[5], /^ {8}HINT: Give a backup name/);
    // local1 (17) * 8 + INFO (6) = 142; + ERROR (3) = 139. Each record is one datagram.
    assert.equal(await received(), `<142>${lines.slice(0, 3).join("\n")}\0`);
    assert.equal(await received(), `<139>${lines.slice(3, 7).join("\n")}\0`);
    assert.ok(!result.stderr.includes("syslog"), result.stderr);
    const leftovers = [...Deno.readDirSync(dir)].map((entry) => entry.name);
    assert.deepEqual(leftovers, ["log.sock"], "the client socket path was removed");
  });
});

Deno.test("process: scripts/wal-d falls back to npx deno@2.9.6 when deno is not on PATH", async () => {
  const bin = await Deno.makeTempDir({ prefix: "wal-d-launcher-path-" });
  try {
    await Deno.symlink("/usr/bin/readlink", `${bin}/readlink`);
    await Deno.writeTextFile(`${bin}/npx`, '#!/bin/sh\nprintf "%s\\n" "npx" "$@"\n');
    await Deno.chmod(`${bin}/npx`, 0o755);
    const result = await runProcess("/bin/bash", [LAUNCHER, "wal-push", "%p"], { PATH: bin });
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    // The arguments wal-d restarts itself with (src/cli/reinvoke.ts), after npx's.
    assert.deepEqual(result.stdout.trimEnd().split("\n"), [
      "npx",
      "-y",
      "deno@2.9.6",
      ...walDArgs(["wal-push", "%p"]),
    ]);
  } finally {
    await Deno.remove(bin, { recursive: true });
  }
});

Deno.test("process: the compile task uses the launcher's permissions", async () => {
  const launcher = await Deno.readTextFile(LAUNCHER);
  const tasks = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks;
  const permissions = (text: string) =>
    [...new Set([...text.matchAll(/--(allow-[a-z]+|unstable-net|no-prompt)\b/g)].map((m) => m[0]))]
      .sort();
  assert.deepEqual(permissions(tasks.compile), permissions(launcher));
  // wal-fetch starts its prefetch processes with the same permissions.
  assert.deepEqual(
    [...RUNTIME_PERMISSION_FLAGS].sort(),
    permissions(launcher).filter((flag) => flag.startsWith("--allow-")),
  );
});
