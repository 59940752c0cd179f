/** In-process tests of the runner with injected command modules, environment and clock. */
import assert from "node:assert/strict";
import type { CommandLoader, ConfiguredCommandName } from "../../src/cli/commands.ts";
import { UsageError, UserError } from "../../src/cli/errors.ts";
import { applyEnvOverlayToProcess, main, type RunnerDependencies } from "../../src/cli/main.ts";
import type { Invocation } from "../../src/cli/types.ts";
import type { EnvDirOverlay } from "../../src/config/envdir.ts";
import type { Logger } from "../../src/log/logger.ts";
import { SPEC_TIME } from "../log/_capture.ts";

const STRUCTURED = "        STRUCTURED: time=2018-11-05T20:21:58.171324-00 pid=99\n";

type Loaders = { [K in ConfiguredCommandName]?: CommandLoader<K> };

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function runMain(
  argv: string[],
  env: Record<string, string>,
  loaders: Loaders = {},
  extra: Partial<RunnerDependencies> = {},
): Promise<RunResult> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, {
    loaders,
    processEnv: () => ({ WALE_LOG_DESTINATION: "stderr", ...env }),
    applyEnvOverlay: () => {},
    writeStdout: (text) => stdout += text,
    writeStderr: (text) => stderr += text,
    clock: () => SPEC_TIME,
    pid: 99,
    ...extra,
  });
  return { code, stdout, stderr };
}

function fakeCommand<K extends ConfiguredCommandName>(
  run: (inv: Invocation<K>, log: Logger) => Promise<number>,
): CommandLoader<K> {
  return () => Promise.resolve({ run });
}

Deno.test("runner: a command module gets the typed invocation, config, prefix and logger", async () => {
  let seen: Invocation<"wal-push"> | undefined;
  let loggerName = "";
  const result = await runMain(
    ["wal-push", "-p", "3", "pg_wal/000000010000000000000001", "--gpg-key-id=K"],
    { WALE_S3_PREFIX: "s3://bucket/path", AWS_REGION: "eu-west-1" },
    {
      "wal-push": fakeCommand<"wal-push">((inv, log) => {
        seen = inv;
        loggerName = log.name;
        log.getLogger("wal_e.worker.upload").info("begin archiving a file", {
          structured: { action: "push-wal", state: "begin" },
        });
        return Promise.resolve(0);
      }),
    },
  );
  assert.equal(result.code, 0);
  assert.equal(result.stdout, "");
  assert.equal(
    result.stderr,
    "wal_e.worker.upload INFO     MSG: begin archiving a file\n" +
      "        STRUCTURED: time=2018-11-05T20:21:58.171324-00 pid=99 action=push-wal state=begin\n",
    "wal-push logs no 'starting WAL-E'",
  );
  assert.ok(seen);
  assert.equal(seen.command, "wal-push");
  assert.deepEqual(seen.args, {
    walSegment: "pg_wal/000000010000000000000001",
    poolSize: 3,
    markDone: false,
  });
  assert.deepEqual(seen.prefix, {
    scheme: "s3",
    url: "s3://bucket/path",
    storeName: "bucket",
    pathPrefix: "path/",
  });
  assert.equal(seen.config.gpgKeyId, "K");
  assert.equal(seen.config.s3.region, "eu-west-1");
  assert.equal(seen.globals.gpgKeyId, "K");
  assert.equal(loggerName, "wal_e.main");
});

Deno.test("runner: 'starting WAL-E' for backup-list and delete, and the command's exit code", async () => {
  const list = await runMain(["backup-list"], { WALE_FILE_PREFIX: "file:///b" }, {
    "backup-list": fakeCommand<"backup-list">(() => Promise.resolve(0)),
  });
  assert.equal(list.code, 0);
  assert.equal(
    list.stderr,
    "wal_e.main   INFO     MSG: starting WAL-E\n" +
      '        DETAIL: The subcommand is "backup-list".\n' + STRUCTURED,
  );
  const del = await runMain(["delete", "retain", "2"], { WALE_FILE_PREFIX: "file:///b" }, {
    "delete": fakeCommand<"delete">(() => Promise.resolve(5)),
  });
  assert.equal(del.code, 5);
  assert.match(del.stderr, /DETAIL: The subcommand is "delete retain"\.\n/);
  const terse = await runMain(["--terse", "backup-list"], { WALE_FILE_PREFIX: "file:///b" }, {
    "backup-list": fakeCommand<"backup-list">(() => Promise.resolve(0)),
  });
  assert.equal(terse.stderr, "", "--terse hides INFO");
});

Deno.test("runner: UserError → ERROR with MSG/DETAIL/HINT, exit 1", async () => {
  const result = await runMain(["wal-fetch", "S", "D"], { WALE_FILE_PREFIX: "file:///b" }, {
    "wal-fetch": fakeCommand<"wal-fetch">(() => {
      throw new UserError("could not find file", { detail: "the detail", hint: "the hint" });
    }),
  });
  assert.equal(result.code, 1);
  assert.equal(
    result.stderr,
    "wal_e.main   ERROR    MSG: could not find file\n" +
      "        DETAIL: the detail\n" +
      "        HINT: the hint\n" + STRUCTURED,
  );
  const critical = await runMain(["wal-fetch", "S", "D"], { WALE_FILE_PREFIX: "file:///b" }, {
    "wal-fetch": fakeCommand<"wal-fetch">(() => {
      throw new UserError("rename failed", { critical: true });
    }),
  });
  assert.equal(critical.code, 1);
  assert.match(critical.stderr, /^wal_e\.main {3}CRITICAL MSG: rename failed\n/);
});

Deno.test("runner: unexpected errors → CRITICAL with the stack in DETAIL, exit 2", async () => {
  const result = await runMain(["wal-prefetch", "/b", "S"], { WALE_FILE_PREFIX: "file:///b" }, {
    "wal-prefetch": fakeCommand<"wal-prefetch">(() => {
      throw new TypeError("cannot read properties of undefined");
    }),
  });
  assert.equal(result.code, 2);
  assert.match(
    result.stderr,
    /^wal_e\.main {3}CRITICAL MSG: An unprocessed exception has avoided all error handling\n {8}DETAIL: TypeError: cannot read properties of undefined\n {12}at /,
  );
  assert.ok(result.stderr.endsWith(STRUCTURED));
  const usage = await runMain(["wal-prefetch", "/b", "S"], { WALE_FILE_PREFIX: "file:///b" }, {
    "wal-prefetch": fakeCommand<"wal-prefetch">(() => {
      throw new UsageError("bad usage inside a command");
    }),
  });
  assert.deepEqual(usage, {
    code: 2,
    stdout: "",
    stderr: "wal-d: error: bad usage inside a command\n",
  });
});

Deno.test("runner: subcommands without a module fail honestly with exit 1", async () => {
  const result = await runMain(["backup-push", "/data"], { WALE_S3_PREFIX: "s3://b/p" });
  assert.equal(result.code, 1);
  assert.equal(
    result.stderr,
    "wal_e.main   ERROR    MSG: wal-d: backup-push is not implemented yet in this version\n" +
      "        HINT: This build of wal-d implements: version.\n" + STRUCTURED,
  );
});

Deno.test("runner: no prefix, bad scheme, bad AWS_INSTANCE_PROFILE", async () => {
  const noPrefix = await runMain(["backup-list"], {});
  assert.equal(noPrefix.code, 1);
  assert.match(
    noPrefix.stderr,
    /^wal_e\.main {3}ERROR {4}MSG: no storage prefix defined\n {8}HINT: /,
  );
  const badScheme = await runMain(["backup-list"], { WALE_S3_PREFIX: "http://x" });
  assert.equal(badScheme.code, 1);
  assert.match(badScheme.stderr, /MSG: unsupported storage prefix URL scheme in "http:\/\/x"/);
  const badProfile = await runMain(["backup-list"], {
    WALE_S3_PREFIX: "s3://b",
    AWS_INSTANCE_PROFILE: "maybe",
  });
  assert.equal(badProfile.code, 2);
  assert.match(
    badProfile.stderr,
    /^wal-d: error: AWS_INSTANCE_PROFILE must be 1 or true .*"maybe"\n$/,
  );
});

Deno.test("runner: version and help need no environment at all", async () => {
  const version = await runMain(["version"], {}, {}, {
    processEnv: () => {
      throw new Error("version must not read the environment");
    },
  });
  assert.deepEqual(version, { code: 0, stdout: "0.1.0\n", stderr: "" });
  const help = await runMain(["wal-fetch", "--help"], {});
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^usage: wal-d wal-fetch \[OPTIONS\] WAL_SEGMENT WAL_DESTINATION\n/);
  assert.match(help.stdout, /-p, --prefetch N/);
  assert.equal(help.stderr, "");
});

Deno.test("runner: no subcommand → 127 with a prefix, 2 without", async () => {
  const line = "wal-d: error: no subcommand given " +
    "(usage: wal-d [GLOBAL OPTIONS] SUBCOMMAND [ARGUMENTS]; see wal-d --help)\n";
  assert.deepEqual(await runMain([], {}), { code: 2, stdout: "", stderr: line });
  assert.deepEqual(await runMain(["--s3-prefix", "s3://b"], {}), {
    code: 127,
    stdout: "",
    stderr: line,
  });
  assert.deepEqual(await runMain([], { WALE_GS_PREFIX: "gs://b" }), {
    code: 127,
    stdout: "",
    stderr: line,
  });
});

Deno.test("runner: the envdir feeds the config and is applied to the process", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "wal-d-runner-envdir-" });
  try {
    Deno.writeTextFileSync(`${dir}/WALE_S3_PREFIX`, "s3://from-envdir/p\n");
    Deno.writeTextFileSync(`${dir}/AWS_SECRET_ACCESS_KEY`, "envdir-secret-value\n");
    Deno.writeTextFileSync(`${dir}/WALE_GPG_KEY_ID`, "");
    let applied: EnvDirOverlay | undefined;
    let seen: Invocation<"backup-list"> | undefined;
    const result = await runMain(
      ["backup-list", "--env-dir", dir],
      { WALE_GPG_KEY_ID: "unset-by-envdir", WALD_ENV_DIR: "/nonexistent" },
      {
        "backup-list": fakeCommand<"backup-list">((inv, log) => {
          seen = inv;
          log.error(`leaking ${inv.config.secrets.awsSecretAccessKey?.reveal()} by mistake`);
          return Promise.resolve(0);
        }),
      },
      { applyEnvOverlay: (overlay) => applied = overlay },
    );
    assert.equal(result.code, 0);
    assert.equal(seen?.prefix.storeName, "from-envdir");
    assert.equal(seen?.config.gpgKeyId, null);
    assert.deepEqual(
      applied,
      new Map([
        ["AWS_SECRET_ACCESS_KEY", "envdir-secret-value"],
        ["WALE_GPG_KEY_ID", null],
        ["WALE_S3_PREFIX", "s3://from-envdir/p"],
      ]),
    );
    assert.ok(!result.stderr.includes("envdir-secret-value"), result.stderr);
    assert.match(result.stderr, /MSG: leaking <redacted> by mistake\n/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("runner: an unreadable envdir is one line and exit 1", async () => {
  const result = await runMain(["backup-list"], { WALD_ENV_DIR: "/nonexistent/wal-d-env" });
  assert.equal(result.code, 1);
  assert.equal(result.stdout, "");
  assert.match(result.stderr, /^wal-d: error: cannot read env dir "\/nonexistent\/wal-d-env": /);
  assert.equal(result.stderr.split("\n").length, 2, "exactly one line");
});

Deno.test("runner: applyEnvOverlayToProcess sets and unsets Deno.env", () => {
  const name = `WALD_TEST_OVERLAY_${crypto.randomUUID().slice(0, 8)}`;
  Deno.env.set(`${name}_GONE`, "x");
  try {
    applyEnvOverlayToProcess(new Map([[name, "set"], [`${name}_GONE`, null]]));
    assert.equal(Deno.env.get(name), "set");
    assert.equal(Deno.env.get(`${name}_GONE`), undefined);
  } finally {
    Deno.env.delete(name);
    Deno.env.delete(`${name}_GONE`);
  }
});

Deno.test("runner: an unexpected error before the logger exists still exits 2", async () => {
  const result = await runMain(["backup-list"], {}, {}, {
    processEnv: () => {
      throw new RangeError("environment exploded");
    },
  });
  assert.equal(result.code, 2);
  assert.match(
    result.stderr,
    /^wal-d: An unprocessed exception has avoided all error handling\nRangeError: environment exploded\n/,
  );
});
