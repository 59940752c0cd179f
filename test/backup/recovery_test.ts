import assert from "node:assert/strict";
import { join } from "node:path";
import { type BackupEntry, listBackups } from "../../src/backup/catalog.ts";
import {
  AUTO_CONF,
  backupStopLsn,
  chooseBackup,
  parseSettingLine,
  parseSettings,
  quoteConfigValue,
  RECOVERY_COMMENT,
  RECOVERY_SIGNAL,
  type RecoveryRequest,
  recoverySettings,
  type RecoveryTarget,
  recoveryVariableNames,
  restoreCommandFor,
  type Setting,
  writeRecoveryConfig,
} from "../../src/backup/recovery.ts";
import { parseTargetTime } from "../../src/cli/recovery_args.ts";
import type { Sentinel } from "../../src/backup/sentinel.ts";
import { UserError } from "../../src/cli/errors.ts";
import { denoRunArguments } from "../../src/cli/reinvoke.ts";
import type { GlobalOptions } from "../../src/cli/types.ts";
import { EffectiveEnvironment } from "../../src/config/environment.ts";
import { PREFIX_ENV_VARS } from "../../src/config/prefix.ts";
import { requirePrefix, resolveConfig } from "../../src/config/resolve.ts";
import { storagePolicyFromConfig } from "../../src/storage/mod.ts";
import { resolveS3Settings } from "../../src/storage/s3_config.ts";
import { loadEffectiveEnvironment } from "../../src/config/envdir.ts";
import { backupSentinelKey, formatLsn, segmentName } from "../../src/layout/mod.ts";
import { FileStore } from "../../src/storage/file.ts";
import { scratch, segmentBytes, walD } from "../wal/_cli.ts";
import {
  createCluster,
  ignoreUnlessPg,
  type PgMajor,
  pgUser,
  PROJECT_ROOT,
  runAsPgUser,
} from "../_pg/cluster.ts";
import { SAMPLE_EXTENSION, walEFixtureSentinel } from "./_sentinels.ts";
import { withTempDir } from "./_tree.ts";

const FIXTURES = new URL("../fixtures/wal-e-1.1.1/", import.meta.url).pathname;
const MIB16 = 16 * 1024 * 1024;

const GLOBALS: GlobalOptions = { awsInstanceProfile: false, terse: false };

function request(target: RecoveryTarget, extra: Partial<RecoveryRequest> = {}): RecoveryRequest {
  return { target, timeline: null, action: null, inclusive: true, ...extra };
}

function userError(fn: () => unknown): UserError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof UserError, `expected a UserError, got ${error}`);
    return error;
  }
  assert.fail("expected a UserError");
}

/** PostgreSQL's expansion of restore_command: %f, %p, %r and %% (PostgreSQL 16 refuses others). */
function expandPlaceholders(command: string, values: Record<string, string>): string {
  return command.replace(/%(.|$)/gs, (_, c: string) => {
    if (c === "%") return "%";
    if (c in values) return values[c];
    assert.fail(`unexpected placeholder %${c} in ${command}`);
  });
}

/** Runs a command line through `/bin/sh -c`, as PostgreSQL does, with a minimal environment. */
async function sh(
  command: string,
  options: { cwd?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: Record<string, string> = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };
  for (const name of ["HOME", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  const out = await new Deno.Command("/bin/sh", {
    args: ["-c", command],
    cwd: options.cwd,
    clearEnv: true,
    env: { ...env, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

// ---------------------------------------------------------------------------------------------
// recoverySettings

Deno.test("recoverySettings: restore_command, the one target, then inclusive, timeline, action", () => {
  assert.deepEqual(recoverySettings(request({ kind: "end" }), "CMD"), [["restore_command", "CMD"]]);
  assert.deepEqual(recoverySettings(request({ kind: "immediate" }), "CMD"), [
    ["restore_command", "CMD"],
    ["recovery_target", "immediate"],
  ]);
  const time = { kind: "time", time: new Date(0), text: "2026-05-01T12:00:00.25Z" } as const;
  assert.deepEqual(
    recoverySettings(
      request(time, { inclusive: false, timeline: 7, action: "promote" }),
      "CMD",
    ),
    [
      ["restore_command", "CMD"],
      ["recovery_target_time", "2026-05-01T12:00:00.25Z"],
      ["recovery_target_inclusive", "off"],
      ["recovery_target_timeline", "7"],
      ["recovery_target_action", "promote"],
    ],
  );
  assert.deepEqual(
    recoverySettings(request({ kind: "lsn", lsn: 0x16_B374_D848n }, { timeline: "latest" }), "C"),
    [["restore_command", "C"], ["recovery_target_lsn", "16/B374D848"], [
      "recovery_target_timeline",
      "latest",
    ]],
  );
  assert.deepEqual(
    recoverySettings(request({ kind: "name", name: "it's 'here'" }, { action: "pause" }), "C"),
    [["restore_command", "C"], ["recovery_target_name", "it's 'here'"], [
      "recovery_target_action",
      "pause",
    ]],
  );
  assert.deepEqual(
    recoverySettings(request({ kind: "xid", xid: "4294967300" }, { timeline: "current" }), "C"),
    [["restore_command", "C"], ["recovery_target_xid", "4294967300"], [
      "recovery_target_timeline",
      "current",
    ]],
  );
  assert.throws(
    () => recoverySettings(request({ kind: "name", name: "x" }, { inclusive: false }), "C"),
    RangeError,
  );
});

// ---------------------------------------------------------------------------------------------
// Configuration file syntax

Deno.test("parseSettingLine: the line forms PostgreSQL's configuration parser reads", () => {
  const cases: [string, Setting | null][] = [
    ["restore_command = 'cp /a/%f %p'", ["restore_command", "cp /a/%f %p"]],
    ["restore_command='x'", ["restore_command", "x"]],
    ["RECOVERY_TARGET_Name 'point'", ["RECOVERY_TARGET_Name", "point"]],
    ["  recovery_target_lsn=0/3000028   # set by hand", ["recovery_target_lsn", "0/3000028"]],
    ["port = 5433", ["port", "5433"]],
    ["shared_buffers=128MB#comment", ["shared_buffers", "128MB"]],
    ["listen_addresses '*'", ["listen_addresses", "*"]],
    ["custom.setting = 'on'", ["custom.setting", "on"]],
    ["recovery_target_name = 'it''s # not a comment' # but this is", [
      "recovery_target_name",
      "it's # not a comment",
    ]],
    [String.raw`restore_command = 'a\\b\'c\n\t\101\x'`, ["restore_command", "a\\b'c\n\tAx"]],
    ["# restore_command = 'commented out'", null],
    ["", null],
    ["   ", null],
    ["\t# indented comment", null],
    ["this is not a setting", null],
    ["restore_command = 'unterminated", null],
  ];
  for (const [line, expected] of cases) assert.deepEqual(parseSettingLine(line), expected, line);
});

Deno.test("quoteConfigValue: quotes and backslashes doubled; line breaks refused; round trip", () => {
  assert.equal(quoteConfigValue("plain"), "'plain'");
  assert.equal(quoteConfigValue("it's"), "'it''s'");
  assert.equal(quoteConfigValue("a\\b"), "'a\\\\b'");
  assert.equal(quoteConfigValue(""), "''");
  for (const bad of ["a\nb", "a\rb", "a\x00b"]) {
    assert.throws(() => quoteConfigValue(bad), RangeError);
  }
  const values = [
    'env A=\'x y\' /bin/wal-d wal-fetch "%f" "%p"',
    "100%% sure\\n is not a newline",
    "tab\there, unicode ünïcødé €, quotes '' and \\' and \"",
    "# not a comment",
    "'",
    "\\",
    "",
  ];
  for (const value of values) {
    assert.deepEqual(parseSettingLine(`x = ${quoteConfigValue(value)}`), ["x", value], value);
  }
});

// ---------------------------------------------------------------------------------------------
// writeRecoveryConfig

/** Runs `fn` in a new temporary directory, removed afterwards. */
const withDir = (fn: (dir: string) => Promise<void>) => withTempDir("wald-recovery-", fn);

const NOW = new Date("2026-11-21T10:00:00.000Z");

Deno.test("writeRecoveryConfig: a new auto.conf and recovery.signal, mode 0600, no temporary files", async () => {
  await withDir(async (dir) => {
    const settings = recoverySettings(
      request({ kind: "name", name: "before 'upgrade'" }, { action: "promote" }),
      `env WALE_S3_PREFIX=s3://b/p wal-d wal-fetch "%f" "%p"`,
    );
    await writeRecoveryConfig(dir, settings, { now: NOW });
    assert.equal(
      await Deno.readTextFile(join(dir, AUTO_CONF)),
      `${RECOVERY_COMMENT} 2026-11-21T10:00:00.000Z\n` +
        `restore_command = 'env WALE_S3_PREFIX=s3://b/p wal-d wal-fetch "%f" "%p"'\n` +
        `recovery_target_name = 'before ''upgrade'''\n` +
        `recovery_target_action = 'promote'\n`,
    );
    for (const name of [AUTO_CONF, RECOVERY_SIGNAL]) {
      const info = await Deno.stat(join(dir, name));
      assert.equal(info.mode! & 0o777, 0o600, name);
    }
    assert.equal((await Deno.stat(join(dir, RECOVERY_SIGNAL))).size, 0);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, [AUTO_CONF, RECOVERY_SIGNAL]);
  });
});

Deno.test("writeRecoveryConfig: keeps other lines, drops every earlier restore_command and recovery_target*", async () => {
  await withDir(async (dir) => {
    const earlier = [
      "# Do not edit this file manually!",
      "# It will be overwritten by the ALTER SYSTEM command.",
      "work_mem = '64MB'",
      `${RECOVERY_COMMENT} 2026-01-01T00:00:00.000Z`,
      "restore_command = 'old command'",
      "RECOVERY_TARGET_NAME='old point'",
      "recovery_target_lsn 0/3000028",
      "  recovery_target_timeline = 2 # pinned",
      "recovery_target_inclusive=off",
      "",
      "# recovery_target_xid = '5' (a comment stays)",
      "shared_preload_libraries = 'pg_stat_statements'",
      "archive_cleanup_command = 'kept'",
    ];
    // No trailing newline, and permissions wider than 0600: both are repaired.
    await Deno.writeTextFile(join(dir, AUTO_CONF), earlier.join("\n"), { mode: 0o644 });
    await Deno.chmod(join(dir, AUTO_CONF), 0o644);
    const settings = recoverySettings(
      request({ kind: "xid", xid: "1234" }, { inclusive: false }),
      "new command",
    );
    await writeRecoveryConfig(dir, settings, { now: NOW });
    const text = await Deno.readTextFile(join(dir, AUTO_CONF));
    assert.equal(
      text,
      [
        "# Do not edit this file manually!",
        "# It will be overwritten by the ALTER SYSTEM command.",
        "work_mem = '64MB'",
        "",
        "# recovery_target_xid = '5' (a comment stays)",
        "shared_preload_libraries = 'pg_stat_statements'",
        "archive_cleanup_command = 'kept'",
        `${RECOVERY_COMMENT} 2026-11-21T10:00:00.000Z`,
        "restore_command = 'new command'",
        "recovery_target_xid = '1234'",
        "recovery_target_inclusive = 'off'",
        "",
      ].join("\n"),
    );
    assert.equal((await Deno.stat(join(dir, AUTO_CONF))).mode! & 0o777, 0o600);
    // Exactly one target setting is left, so PostgreSQL does not refuse to start.
    const targets = parseSettings(text).filter(([name]) =>
      /^recovery_target(_time|_lsn|_name|_xid)?$/i.test(name)
    );
    assert.deepEqual(targets, [["recovery_target_xid", "1234"]]);

    // A second run replaces the first one's settings and comment.
    await writeRecoveryConfig(dir, recoverySettings(request({ kind: "end" }), "third"), {
      now: NOW,
    });
    const again = await Deno.readTextFile(join(dir, AUTO_CONF));
    assert.equal(again.split(RECOVERY_COMMENT).length, 2);
    assert.deepEqual(parseSettings(again).filter(([n]) => /^(restore|recovery)/.test(n)), [[
      "restore_command",
      "third",
    ]]);
  });
});

Deno.test("writeRecoveryConfig: round trip of awkward values; a bad value writes nothing", async () => {
  await withDir(async (dir) => {
    const settings: Setting[] = [
      ["restore_command", `env P='/x/it'\\''s 100%%' "/opt/wal d/wal-d" wal-fetch "%f" "%p"`],
      ["recovery_target_name", "back\\slash 'quote' # hash\ttab ünïcødé"],
      ["recovery_target_timeline", "latest"],
    ];
    await writeRecoveryConfig(dir, settings);
    assert.deepEqual(parseSettings(await Deno.readTextFile(join(dir, AUTO_CONF))), settings);

    await Deno.writeTextFile(join(dir, AUTO_CONF), "work_mem = '1MB'\n");
    await Deno.remove(join(dir, RECOVERY_SIGNAL));
    await assert.rejects(
      writeRecoveryConfig(dir, [["restore_command", "a\nb"]]),
      RangeError,
    );
    await assert.rejects(writeRecoveryConfig(dir, [["Restore-Command", "x"]]), RangeError);
    assert.equal(await Deno.readTextFile(join(dir, AUTO_CONF)), "work_mem = '1MB'\n");
    await assert.rejects(Deno.stat(join(dir, RECOVERY_SIGNAL)), Deno.errors.NotFound);
  });
});

Deno.test("writeRecoveryConfig: recovery settings in postgresql.conf are set back to their defaults", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "postgresql.conf"),
      [
        "restore_command = 'cp /old/%f %p'",
        "recovery_target_name = 'old point'",
        "Recovery_Target_Inclusive = off",
        "# recovery_target_xid = '5'",
        "recovery_target_timeline = 'latest'", // already the default
        "recovery_target_time = '2020-01-01 00:00:00+00'",
        "recovery_target_time = ''", // the last one counts
        "work_mem = '4MB'",
        "",
      ].join("\n"),
    );
    const settings = recoverySettings(request({ kind: "lsn", lsn: 0x3000028n }), "new");
    await writeRecoveryConfig(dir, settings, { now: NOW });
    assert.equal(
      await Deno.readTextFile(join(dir, AUTO_CONF)),
      `${RECOVERY_COMMENT} 2026-11-21T10:00:00.000Z\n` +
        "recovery_target_name = ''\n" +
        "recovery_target_inclusive = 'on'\n" +
        "restore_command = 'new'\n" +
        "recovery_target_lsn = '0/3000028'\n",
    );
    assert.equal(
      (await Deno.readTextFile(join(dir, "postgresql.conf"))).includes("old point"),
      true,
    );
  });
});

Deno.test({
  name: "writeRecoveryConfig: the owner, or the data directory's, gets both files (run as root)",
  ignore: Deno.uid() !== 0,
  fn: async () => {
    await withDir(async (dir) => {
      await writeRecoveryConfig(dir, [["restore_command", "x"]], {
        owner: { uid: 12345, gid: 12346 },
      });
      for (const name of [AUTO_CONF, RECOVERY_SIGNAL]) {
        const info = await Deno.stat(join(dir, name));
        assert.equal(info.uid, 12345, name);
        assert.equal(info.gid, 12346, name);
        assert.equal(info.mode! & 0o777, 0o600, name);
      }
      // Without an owner, root gives them to the owner of the data directory.
      await Deno.chown(dir, 23456, 23457);
      await writeRecoveryConfig(dir, [["restore_command", "y"]]);
      for (const name of [AUTO_CONF, RECOVERY_SIGNAL]) {
        const info = await Deno.stat(join(dir, name));
        assert.deepEqual([info.uid, info.gid], [23456, 23457], name);
      }
    });
  },
});

// ---------------------------------------------------------------------------------------------
// restoreCommandFor

const SELF = ["/opt/wal-d/bin/wal-d"];

Deno.test("restoreCommandFor: environment configuration becomes env assignments, flags stay flags", () => {
  const env = new EffectiveEnvironment({
    WALE_FILE_PREFIX: "file:///var/backups/pg",
    WALE_LOG_DESTINATION: "stderr",
    WALE_S3_ENDPOINT: "http+path://ignored-for-file:9000",
    HOME: "/root",
    PATH: "/usr/bin",
  });
  assert.deepEqual(restoreCommandFor(GLOBALS, env, { self: SELF }), {
    command: `env WALE_FILE_PREFIX=file:///var/backups/pg WALE_LOG_DESTINATION=stderr ` +
      `/opt/wal-d/bin/wal-d wal-fetch "%f" "%p"`,
    warnings: [],
  });
  // A prefix flag wins over the variable, which is then not carried.
  assert.deepEqual(
    restoreCommandFor(
      { ...GLOBALS, filePrefix: "file:///b a/c", terse: true, logFormat: "json" },
      env,
      { self: ["/usr/bin/deno", "run", "--allow-read", "/src/wal d/mod.ts"] },
    ).command,
    `env WALE_LOG_DESTINATION=stderr /usr/bin/deno run --allow-read '/src/wal d/mod.ts' ` +
      `'--file-prefix=file:///b a/c' --terse --log-format=json wal-fetch "%f" "%p"`,
  );
});

Deno.test("restoreCommandFor: S3 settings are carried, secrets never, with a warning naming them", () => {
  const secrets = {
    AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG%secret",
    AWS_SESSION_TOKEN: "session-token-value",
    WABS_ACCESS_KEY: "wabs-key-not-used-by-s3",
    PGPASSWORD: "pg-password-value",
  };
  const env = new EffectiveEnvironment({
    WALE_S3_PREFIX: "s3://bucket/path",
    AWS_ACCESS_KEY_ID: "AKIAEXAMPLE",
    AWS_REGION: "eu-west-1",
    WALE_S3_ENDPOINT: "https+path://minio.local:9000",
    WALE_GPG_KEY_ID: "ABCDEF",
    WABS_ACCOUNT_NAME: "not-for-s3",
    ...secrets,
  });
  const { command, warnings } = restoreCommandFor(GLOBALS, env, { self: SELF });
  assert.equal(
    command,
    "env WALE_S3_PREFIX=s3://bucket/path AWS_ACCESS_KEY_ID=AKIAEXAMPLE AWS_REGION=eu-west-1 " +
      "WALE_S3_ENDPOINT=https+path://minio.local:9000 WALE_GPG_KEY_ID=ABCDEF " +
      `/opt/wal-d/bin/wal-d wal-fetch "%f" "%p"`,
  );
  assert.deepEqual(warnings, [
    "restore_command does not carry AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN: secrets are " +
    "never written to files; give the PostgreSQL server those variables, or use --env-dir",
  ]);
  for (const value of Object.values(secrets)) {
    assert.ok(!command.includes(value) && !warnings.join().includes(value), value);
  }
  // -k overrides AWS_ACCESS_KEY_ID (not carried, the flag is); --gpg-key-id the same.
  const flagged = restoreCommandFor(
    { ...GLOBALS, awsAccessKeyId: "AKIAFLAG", gpgKeyId: "FEDCBA" },
    env,
    { self: SELF },
  ).command;
  assert.doesNotMatch(flagged, /AWS_ACCESS_KEY_ID|WALE_GPG_KEY_ID/);
  assert.match(flagged, /--aws-access-key-id=AKIAFLAG --gpg-key-id=FEDCBA wal-fetch/);
  // With instance-profile credentials the secrets are not used: no warning.
  assert.deepEqual(
    restoreCommandFor({ ...GLOBALS, awsInstanceProfile: true }, env, { self: SELF }).warnings,
    [],
  );
  const profileEnv = new EffectiveEnvironment({ ...env.toObject(), AWS_INSTANCE_PROFILE: "true" });
  const profile = restoreCommandFor(GLOBALS, profileEnv, { self: SELF });
  assert.deepEqual(profile.warnings, []);
  assert.match(profile.command, / AWS_INSTANCE_PROFILE=true /);
});

Deno.test("restoreCommandFor: an env dir is passed on (absolute), its variables and secrets not copied", async () => {
  await withDir(async (dir) => {
    const envDir = join(dir, "env d'ir");
    await Deno.mkdir(envDir);
    await Deno.writeTextFile(join(envDir, "WALE_S3_PREFIX"), "s3://bucket/from-envdir\n");
    await Deno.writeTextFile(join(envDir, "AWS_SECRET_ACCESS_KEY"), "envdir-secret-value\n");
    await Deno.writeTextFile(join(envDir, "WALE_S3_ENDPOINT"), "https+path://envdir:9000\n");
    await Deno.writeTextFile(join(envDir, "AWS_REGION"), ""); // an empty file unsets
    const processEnv = {
      AWS_REGION: "us-east-2",
      WALE_S3_ENDPOINT: "https+path://process:9000",
      AWS_ACCESS_KEY_ID: "AKIAPROCESS",
      WALE_RETRIES: "5",
    };
    const env = loadEffectiveEnvironment(envDir, processEnv);
    const envDirWord = `'--env-dir=${envDir.replaceAll("'", "'\\''")}'`;
    const result = restoreCommandFor({ ...GLOBALS, envDir }, env, { self: SELF });
    assert.deepEqual(result, {
      command: "env AWS_ACCESS_KEY_ID=AKIAPROCESS WALE_RETRIES=5 /opt/wal-d/bin/wal-d " +
        `${envDirWord} wal-fetch "%f" "%p"`,
      warnings: [],
    });
    assert.ok(!result.command.includes("envdir-secret-value"));

    // WALD_ENV_DIR works the same way, and a relative path is made absolute (restore_command
    // runs in PGDATA).
    const fromVariable = loadEffectiveEnvironment(undefined, { WALD_ENV_DIR: envDir });
    assert.equal(
      restoreCommandFor(GLOBALS, fromVariable, { self: SELF }).command,
      `/opt/wal-d/bin/wal-d ${envDirWord} wal-fetch "%f" "%p"`,
    );
    const cwdRelative = join(...Deno.cwd().split("/").map(() => ".."), envDir);
    assert.ok(!cwdRelative.startsWith("/"));
    assert.equal(
      restoreCommandFor({ ...GLOBALS, envDir: cwdRelative }, env, { self: SELF }).command,
      "env AWS_ACCESS_KEY_ID=AKIAPROCESS WALE_RETRIES=5 /opt/wal-d/bin/wal-d " +
        `${envDirWord} wal-fetch "%f" "%p"`,
    );

    // A secret in the process environment next to an env dir that lacks it is not carried.
    const partial = loadEffectiveEnvironment(envDir, { WABS_ACCESS_KEY: "x", ...processEnv });
    const wabs = restoreCommandFor({ ...GLOBALS, envDir, wabsPrefix: "wabs://c/p" }, partial, {
      self: SELF,
    });
    assert.equal(wabs.warnings.length, 1);
    assert.match(wabs.warnings[0], /^restore_command does not carry WABS_ACCESS_KEY: /);
  });
});

Deno.test("restoreCommandFor: /bin/sh gets every word back exactly, % survives PostgreSQL's expansion", async () => {
  const awkward = `file:///tmp/it's "a" $HOME \`x\` \\ 100% * ü`;
  const env = new EffectiveEnvironment({
    WALE_FILE_PREFIX: awkward,
    GOOGLE_APPLICATION_CREDENTIALS: "relative/creds.json",
    WALD_SYSLOG_SOCKET: "/run/it's%log",
  });
  // The "wal-d" here prints its environment and arguments, one per line.
  const self = [
    "/bin/sh",
    "-c",
    `printf '%s\\n' "$WALE_FILE_PREFIX" "$WALD_SYSLOG_SOCKET" "$@"`,
    "sh",
  ];
  const { command } = restoreCommandFor({ ...GLOBALS, gpgKeyId: "it's %p" }, env, { self });
  assert.doesNotMatch(
    command,
    /GOOGLE_APPLICATION_CREDENTIALS/,
    "only the file backend's variables",
  );
  const expanded = expandPlaceholders(command, { f: "000000010000000000000001", p: "pg_wal/X Y" });
  const out = await sh(expanded);
  assert.equal(out.code, 0, out.stderr);
  assert.deepEqual(out.stdout.split("\n").slice(0, -1), [
    awkward,
    "/run/it's%log",
    "--gpg-key-id=it's %p",
    "wal-fetch",
    "000000010000000000000001",
    "pg_wal/X Y",
  ]);
  // A path variable is made absolute; the gs backend carries it.
  const gs = restoreCommandFor({ ...GLOBALS, gsPrefix: "gs://b/p" }, env, { self: SELF }).command;
  assert.match(
    gs,
    new RegExp(` GOOGLE_APPLICATION_CREDENTIALS=${Deno.cwd()}/relative/creds.json `),
  );
  // A program path with "=" cannot follow `env` assignments; the shell's own form is used.
  const shell = restoreCommandFor(GLOBALS, env, { self: ["/opt/a=b/wal-d"] }).command;
  assert.match(shell, /^WALE_FILE_PREFIX='file:/);
});

Deno.test("restoreCommandFor: no prefix, or a value with a line break, is a user error", () => {
  const none = userError(() =>
    restoreCommandFor(GLOBALS, new EffectiveEnvironment({}), { self: SELF })
  );
  assert.equal(none.message, "no storage prefix defined");
  const newline = userError(() =>
    restoreCommandFor(
      GLOBALS,
      new EffectiveEnvironment({ WALE_FILE_PREFIX: "file:///x", WALE_SYSLOG_FACILITY: "a\nb" }),
      { self: SELF },
    )
  );
  assert.match(newline.message, /^WALE_SYSLOG_FACILITY contains a line break/);
  assert.match(newline.hint ?? "", /--env-dir/);
});

// ---------------------------------------------------------------------------------------------
// chooseBackup

/** A backup entry whose sentinel was read; `tl` is the start (and stop) timeline. */
function waldEntry(
  startSegNo: number,
  stopLsn: bigint,
  finish: string,
  tl = 1,
): BackupEntry {
  const startSegment = segmentName(tl, BigInt(startSegNo), MIB16);
  const name = `base_${startSegment}_00000040`;
  const detail: Sentinel = {
    walSegmentBackupStop: segmentName(tl, stopLsn / BigInt(MIB16), MIB16),
    walSegmentOffsetBackupStop: String(stopLsn % BigInt(MIB16)).padStart(8, "0"),
    ...SAMPLE_EXTENSION,
    backupStartLsn: BigInt(startSegNo) * BigInt(MIB16) + 40n,
    backupStopLsn: stopLsn,
    timeline: tl,
    stopTimeline: tl,
    finishTime: new Date(finish),
  };
  return {
    name,
    lastModified: new Date(new Date(finish).getTime() + 1000),
    startSegment,
    startOffset: "00000040",
    sentinelKey: backupSentinelKey(name),
    detail,
  };
}

/** A backup with WAL-E's sentinel fields only, stored at `stored`. */
function walEEntry(startSegNo: number, stop: [string, string], stored: string): BackupEntry {
  const startSegment = segmentName(1, BigInt(startSegNo), MIB16);
  const name = `base_${startSegment}_00000040`;
  return {
    name,
    lastModified: new Date(stored),
    startSegment,
    startOffset: "00000040",
    sentinelKey: backupSentinelKey(name),
    detail: {
      ...walEFixtureSentinel("plain"),
      walSegmentBackupStop: stop[0],
      walSegmentOffsetBackupStop: stop[1],
    },
  };
}

const time = (iso: string): RecoveryTarget => ({ kind: "time", time: new Date(iso), text: iso });
const lsn = (value: bigint): RecoveryTarget => ({ kind: "lsn", lsn: value });

const A = waldEntry(2, 0x2000138n, "2026-01-01T00:00:05Z");
const B = waldEntry(5, 0x5000200n, "2026-01-02T00:00:05Z");
const C = waldEntry(9, 0x9001000n, "2026-01-03T00:00:05Z");
// Listed in store order, not by time: the choice must not depend on it.
const ENTRIES = [B, C, A];

Deno.test("chooseBackup: a time target takes the latest backup that ends before it", () => {
  const pick = (iso: string) => chooseBackup(ENTRIES, request(time(iso)), "LATEST").name;
  assert.equal(pick("2026-01-02T12:00:00Z"), B.name);
  assert.equal(pick("2026-01-02T00:00:05Z"), B.name, "a backup ending exactly at the target");
  assert.equal(pick("2026-01-02T00:00:04.999Z"), A.name);
  assert.equal(pick("2030-01-01T00:00:00Z"), C.name);
  const error = userError(() => pick("2026-01-01T00:00:04Z"));
  assert.equal(error.message, "no backup ends before time 2026-01-01T00:00:04Z");
  assert.match(error.hint ?? "", new RegExp(`${A.name}, at 2026-01-01T00:00:05.000Z`));
});

Deno.test("chooseBackup: an LSN target takes the latest backup whose stop LSN is at or before it", () => {
  const pick = (value: bigint) => chooseBackup(ENTRIES, request(lsn(value)), "LATEST").name;
  assert.equal(pick(0x5000200n), B.name);
  assert.equal(pick(0x50001FFn), A.name);
  assert.equal(pick(0xFFFF_0000_0000n), C.name);
  const error = userError(() => pick(0x2000137n));
  assert.equal(error.message, "no backup ends before LSN 0/2000137");
  assert.match(error.hint ?? "", new RegExp(`${A.name}, at LSN 0/2000138`));
});

Deno.test("chooseBackup: WAL-E sentinels end at their upload time and their stop segment and offset", () => {
  const old = walEEntry(2, ["000000010000000000000003", "00000256"], "2026-01-01T00:00:00Z");
  const boundary = walEEntry(6, ["000000010000000000000007", "00000000"], "2026-01-02T00:00:00Z");
  assert.equal(backupStopLsn(old), 0x3000100n);
  // Offset 0: pg_walfile_name_offset names the previous segment at a segment boundary.
  assert.equal(backupStopLsn(boundary), 0x8000000n);
  const entries = [boundary, old];
  const pick = (target: RecoveryTarget) => chooseBackup(entries, request(target), "LATEST").name;
  assert.equal(pick(time("2026-01-01T23:59:59Z")), old.name);
  assert.equal(pick(time("2026-01-02T00:00:00Z")), boundary.name);
  assert.equal(pick(lsn(0x7FFFFFFn)), old.name);
  assert.equal(pick(lsn(0x8000000n)), boundary.name);
  userError(() => pick(lsn(0x30000FFn)));
  // A sentinel that records the segment size is read with it (1 MiB segments here).
  const small = walEEntry(2, ["000000010000000000000003", "00000000"], "2026-01-01T00:00:00Z");
  small.detail!.walSegmentSize = 1024 * 1024;
  assert.equal(backupStopLsn(small), 0x400000n);
  // A stop offset that is not decimal tells nothing.
  const hex = walEEntry(2, ["000000010000000000000003", "0000010A"], "2026-01-01T00:00:00Z");
  assert.equal(backupStopLsn(hex), null);
});

Deno.test("chooseBackup: the genuine WAL-E 1.1.1 fixture backup, listed from its store", async () => {
  const entries = await listBackups(new FileStore(join(FIXTURES, "plain")), { detail: true });
  assert.equal(entries.length, 1);
  const [entry] = entries;
  const stored = entry.lastModified.getTime();
  const at = (ms: number) => time(new Date(ms).toISOString());
  assert.equal(chooseBackup(entries, request(lsn(0x3000100n)), "LATEST"), entry);
  assert.equal(chooseBackup(entries, request(at(stored)), "LATEST"), entry);
  assert.equal(chooseBackup(entries, request(at(stored)), entry.name), entry);
  const early = userError(() => chooseBackup(entries, request(lsn(0x30000FFn)), entry.name));
  assert.equal(
    early.message,
    `backup ${entry.name} ends at LSN 0/3000100, after the recovery target LSN 0/30000FF`,
  );
  assert.match(early.hint ?? "", /or LATEST/);
  userError(() => chooseBackup(entries, request(at(stored - 1)), "LATEST"));
});

Deno.test("chooseBackup: a named backup is checked against time and LSN targets", () => {
  assert.equal(chooseBackup(ENTRIES, request(time("2026-01-02T12:00:00Z")), A.name), A);
  const late = userError(() =>
    chooseBackup(ENTRIES, request(time("2026-01-02T12:00:00Z")), C.name)
  );
  assert.equal(
    late.message,
    `backup ${C.name} ends at 2026-01-03T00:00:05.000Z, after the recovery target ` +
      "time 2026-01-02T12:00:00Z",
  );
  assert.match(late.hint ?? "", /Choose a backup that ends before the target/);
  assert.equal(chooseBackup(ENTRIES, request(lsn(0x9001000n)), C.name), C);
  userError(() => chooseBackup(ENTRIES, request(lsn(0x9000FFFn)), C.name));
  // Targets wal-d cannot place: the named backup as is.
  for (const target of [{ kind: "name", name: "x" }, { kind: "xid", xid: "5" }] as const) {
    assert.equal(chooseBackup(ENTRIES, request(target), C.name), C);
  }
});

Deno.test("chooseBackup: name, xid, immediate, end and no request take LATEST", () => {
  const targets: RecoveryTarget[] = [
    { kind: "end" },
    { kind: "immediate" },
    { kind: "name", name: "p" },
    { kind: "xid", xid: "7" },
  ];
  for (const target of targets) {
    assert.equal(chooseBackup(ENTRIES, request(target), "LATEST"), C, target.kind);
  }
  assert.equal(chooseBackup(ENTRIES, null, "LATEST"), C);
  assert.equal(chooseBackup(ENTRIES, null, B.name), B);
});

Deno.test("chooseBackup: a numeric target timeline leaves out backups on later timelines", () => {
  const onTwo = waldEntry(10, 0xA000100n, "2026-01-04T00:00:05Z", 2);
  const entries = [A, onTwo, B];
  const pick = (target: RecoveryTarget, timeline: RecoveryRequest["timeline"], query = "LATEST") =>
    chooseBackup(entries, request(target, { timeline }), query).name;
  assert.equal(pick({ kind: "end" }, null), onTwo.name);
  assert.equal(pick({ kind: "end" }, "latest"), onTwo.name);
  assert.equal(pick({ kind: "end" }, 2), onTwo.name);
  assert.equal(pick({ kind: "end" }, 1), B.name);
  assert.equal(pick(time("2030-01-01T00:00:00Z"), 1), B.name);
  assert.equal(pick(lsn(0xFFFF_0000_0000n), 1), B.name);
  const named = userError(() => pick({ kind: "end" }, 1, onTwo.name));
  assert.equal(
    named.message,
    `backup ${onTwo.name} ends on timeline 2, after the target timeline 1`,
  );
  // A backup that started on timeline 1 and stopped on 2 (a promotion during the backup).
  const promoted = waldEntry(11, 0xB000100n, "2026-01-05T00:00:05Z", 1);
  promoted.detail!.walSegmentBackupStop = segmentName(2, 0xBn, MIB16);
  assert.equal(chooseBackup([A, promoted], request({ kind: "end" }, { timeline: 1 }), "LATEST"), A);
  const none = userError(() =>
    chooseBackup([onTwo], request({ kind: "end" }, { timeline: 1 }), "LATEST")
  );
  assert.equal(none.message, "no backup is on timeline 1 or an earlier one");
});

Deno.test("chooseBackup: unreadable sentinels, unknown names, bad queries, no backups", () => {
  const unread: BackupEntry = { ...C, detail: undefined };
  const entries = [A, B, unread];
  // Never chosen for a time or LSN target (it cannot be restored either) ...
  assert.equal(chooseBackup(entries, request(time("2030-01-01T00:00:00Z")), "LATEST"), B);
  assert.equal(chooseBackup(entries, request(lsn(0xFFFF_0000_0000n)), "LATEST"), B);
  const named = userError(() => chooseBackup(entries, request(lsn(0x1n << 40n)), unread.name));
  assert.equal(named.message, `cannot tell where backup ${unread.name} ends`);
  const allUnread = userError(() =>
    chooseBackup([unread], request(time("2030-01-01T00:00:00Z")), "LATEST")
  );
  assert.match(allUnread.hint ?? "", /No backup's sentinel could be read/);
  // ... but LATEST without a target is the same backup findBackup gives.
  assert.equal(chooseBackup(entries, null, "LATEST"), unread);

  const missing = "base_000000010000000000000099_00000040";
  assert.equal(
    userError(() => chooseBackup(entries, null, missing)).message,
    `no backup named "${missing}" found`,
  );
  assert.equal(
    userError(() => chooseBackup(entries, null, "latest")).message,
    "invalid backup query submitted",
  );
  assert.equal(userError(() => chooseBackup([], null, "LATEST")).message, "no backups found");
  assert.equal(formatLsn(backupStopLsn(A)!), "0/2000138");
});

// ---------------------------------------------------------------------------------------------
// The real thing: the restore_command, as written to postgresql.auto.conf, run by /bin/sh

Deno.test("restore_command from auto.conf fetches through /bin/sh what wal-push archived", async () => {
  const s = await scratch();
  try {
    // A store path that needs quoting, and a % that PostgreSQL's expansion must leave alone.
    const store = join(s.dir, `st o'r%e $HOME "x"`);
    const prefix = `file://localhost${store}`;
    const segment = "000000010000000000000001";
    const data = segmentBytes(7);
    const history = "1\t0/3000000\tno recovery target specified\n";
    await Deno.writeFile(join(s.walDir, segment), data);
    await Deno.writeTextFile(join(s.walDir, "00000002.history"), history);
    for (const name of [segment, "00000002.history"]) {
      const pushed = await walD(["wal-push", `pg_wal/${name}`], {
        env: { WALE_FILE_PREFIX: prefix },
        cwd: s.pgdata,
      });
      assert.equal(pushed.code, 0, pushed.stderr);
      await Deno.remove(join(s.walDir, name));
    }

    const self = [
      Deno.execPath(),
      ...denoRunArguments(join(PROJECT_ROOT, "deno.json")),
      join(PROJECT_ROOT, "mod.ts"),
    ];
    const env = new EffectiveEnvironment({
      WALE_FILE_PREFIX: prefix,
      WALE_LOG_DESTINATION: "stderr",
      AWS_SECRET_ACCESS_KEY: "never-written-secret",
    });
    const { command, warnings } = restoreCommandFor(GLOBALS, env, { self });
    assert.deepEqual(warnings, [], "the file backend uses no secret");
    await writeRecoveryConfig(s.pgdata, recoverySettings(request({ kind: "end" }), command));
    const autoConf = await Deno.readTextFile(join(s.pgdata, AUTO_CONF));
    assert.ok(!autoConf.includes("never-written-secret"));
    const written = parseSettings(autoConf).find(([name]) => name === "restore_command")?.[1];
    assert.equal(written, command);

    const restore = (f: string, p: string) =>
      sh(expandPlaceholders(written!, { f, p, r: "000000010000000000000000" }), { cwd: s.pgdata });
    const fetched = await restore(segment, "pg_wal/RECOVERYXLOG");
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.deepEqual(await Deno.readFile(join(s.walDir, "RECOVERYXLOG")), data);
    const historyFetch = await restore("00000002.history", "pg_wal/RECOVERYHISTORY");
    assert.equal(historyFetch.code, 0, historyFetch.stderr);
    assert.equal(await Deno.readTextFile(join(s.walDir, "RECOVERYHISTORY")), history);
    // A file that is not archived: exit 1, as PostgreSQL expects at the end of the archive.
    const missing = await restore("00000003.history", "pg_wal/RECOVERYHISTORY");
    assert.equal(missing.code, 1, missing.stderr);

    // The same through an env dir (with a quote in its path): passed on, not copied.
    const envDir = join(s.dir, "env d'ir");
    await Deno.mkdir(envDir);
    await Deno.writeTextFile(join(envDir, "WALE_FILE_PREFIX"), `${prefix}\n`);
    const viaDir = restoreCommandFor(
      { ...GLOBALS, envDir },
      loadEffectiveEnvironment(envDir, {}),
      { self },
    );
    assert.ok(!viaDir.command.includes("WALE_FILE_PREFIX"));
    const again = await sh(
      expandPlaceholders(viaDir.command, { f: "00000002.history", p: "pg_wal/FROMENVDIR" }),
      { cwd: s.pgdata },
    );
    assert.equal(again.code, 0, again.stderr);
    assert.equal(await Deno.readTextFile(join(s.walDir, "FROMENVDIR")), history);

    // Let the detached prefetches of the segment fetch finish before the directory goes away.
    const running = join(s.walDir, ".wal-d", "prefetch", "running");
    for (let i = 0; i < 200; i++) {
      const left = await Array.fromAsync(Deno.readDir(running)).catch(() => []);
      if (left.length === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await s.cleanup();
  }
});

// ---------------------------------------------------------------------------------------------
// What PostgreSQL reads

const PG_MAJORS: PgMajor[] = [13, 18];
const PG_TEST = "PostgreSQL reads back every setting exactly, with one target (postgres -C)";

Deno.test({
  name: PG_TEST,
  ignore: await ignoreUnlessPg(PG_MAJORS, PG_TEST),
  async fn() {
    const user = await pgUser();
    const { command } = restoreCommandFor(
      { ...GLOBALS, gpgKeyId: "it's 100%" },
      new EffectiveEnvironment({ WALE_FILE_PREFIX: String.raw`file:///b a\ck/up's %f` }),
      { self: ["/opt/wal d/wal-d"] },
    );
    const requests: RecoveryRequest[] = [
      request(parseTargetTime("2026-05-01 14:00:00.123456 Europe/Berlin"), {
        inclusive: false,
        timeline: "latest",
        action: "promote",
      }),
      request(parseTargetTime("2026-01-01T00:30:00+01:00"), { action: "shutdown" }),
      request({ kind: "lsn", lsn: 0x16_B374_D848n }, { timeline: 4294967295 }),
      request({ kind: "name", name: String.raw`it's a \ "point" # 1` }, { action: "pause" }),
      request({ kind: "xid", xid: "18446744073709551615" }, { timeline: "current" }),
      request({ kind: "immediate" }),
      request({ kind: "end" }),
    ];
    for (const major of PG_MAJORS) {
      const cluster = await createCluster({ major });
      try {
        const postgresConf = join(cluster.dataDir, "postgresql.conf");
        const autoConf = join(cluster.dataDir, AUTO_CONF);
        // Left over from an earlier point-in-time recovery, in both files.
        await Deno.writeTextFile(postgresConf, "recovery_target_name = 'stale'\n", {
          append: true,
        });
        await Deno.writeTextFile(
          autoConf,
          "restore_command = 'old'\nrecovery_target_xid = '5'\nrecovery_target_action=shutdown\n",
          { append: true },
        );
        const show = async (name: string) => {
          const r = await runAsPgUser([
            join(cluster.binDir, "postgres"),
            "-C",
            name,
            "-D",
            cluster.dataDir,
          ]);
          assert.equal(r.code, 0, `PostgreSQL ${major}, ${name}: ${r.stderr}`);
          return r.stdout.replace(/\n$/, "");
        };
        // The premise: PostgreSQL refuses two targets.
        const two = await runAsPgUser([
          join(cluster.binDir, "postgres"),
          "-C",
          "recovery_target_xid",
          "-D",
          cluster.dataDir,
        ]);
        assert.match(two.stderr, /multiple recovery targets specified/);

        for (const req of requests) {
          const settings = recoverySettings(req, command);
          // Written as root for the server's user, as a restore run as root does.
          await writeRecoveryConfig(cluster.dataDir, settings, {
            owner: { uid: user.uid, gid: user.gid },
          });
          const expected = new Map<string, string>([
            ["restore_command", command],
            ["recovery_target", ""],
            ["recovery_target_time", ""],
            ["recovery_target_lsn", ""],
            ["recovery_target_name", ""],
            ["recovery_target_xid", ""],
            ["recovery_target_inclusive", "on"],
            ["recovery_target_timeline", "latest"],
            ["recovery_target_action", "pause"],
            ...settings,
          ]);
          for (const [name, value] of expected) {
            assert.equal(await show(name), value, `PostgreSQL ${major}, ${req.target.kind}`);
          }
        }
      } finally {
        await cluster.close();
      }
    }
  },
});

/** An environment that records every variable name read from it. */
class RecordingEnvironment extends EffectiveEnvironment {
  readonly read = new Set<string>();
  override get(name: string): string | undefined {
    this.read.add(name);
    return super.get(name);
  }
  override getNonEmpty(name: string): string | null {
    this.read.add(name);
    return super.getNonEmpty(name);
  }
}

Deno.test("restoreCommandFor knows every variable the configuration reads (carried or secret)", () => {
  const env = new RecordingEnvironment({
    WALE_S3_PREFIX: "s3://bucket/path",
    AWS_REGION: "eu-west-1",
    AWS_ACCESS_KEY_ID: "AKIAEXAMPLE",
    AWS_SECRET_ACCESS_KEY: "example-secret",
  });
  const config = resolveConfig({ awsInstanceProfile: false, terse: false }, env);
  resolveS3Settings(config, requirePrefix(config));
  storagePolicyFromConfig(config);
  const { carried, secrets } = recoveryVariableNames();
  const accounted = new Set<string>([
    ...carried,
    ...secrets,
    ...PREFIX_ENV_VARS,
    "PGPASSWORD", // backup-push's libpq password, not storage configuration
    "TMPDIR", // the server's own temporary directory applies to its wal-fetch
  ]);
  const unknown = [...env.read].filter((name) => !accounted.has(name)).sort();
  assert.deepEqual(unknown, [], "read by the configuration but neither carried nor secret");
  assert.ok(env.read.has("AWS_REGION") && env.read.has("WALE_S3_ENDPOINT"), "the reads were seen");
});
