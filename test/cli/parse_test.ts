import assert from "node:assert/strict";
import { UsageError } from "../../src/cli/errors.ts";
import { parseCommandLine } from "../../src/cli/parse.ts";
import type { CommandSelection, GlobalOptions, ParsedCommandLine } from "../../src/cli/types.ts";
import type { RecoveryRequest, RecoveryTarget } from "../../src/backup/recovery.ts";

function run(argv: string[]): { selection: CommandSelection | null; globals: GlobalOptions } {
  const parsed: ParsedCommandLine = parseCommandLine(argv);
  assert.equal(parsed.kind, "run");
  if (parsed.kind !== "run") throw new Error("unreachable");
  return { selection: parsed.selection, globals: parsed.globals };
}

function usageError(argv: string[]): string {
  try {
    parseCommandLine(argv);
  } catch (error) {
    assert.ok(error instanceof UsageError, `expected UsageError, got ${error}`);
    assert.equal(error.exitCode, 2);
    assert.ok(!error.message.includes("\n"), "usage errors are one line");
    return error.message;
  }
  assert.fail(`expected a usage error for ${JSON.stringify(argv)}`);
}

const DEFAULT_GLOBALS: GlobalOptions = {
  awsAccessKeyId: undefined,
  awsInstanceProfile: false,
  gsAccessKeyId: undefined,
  wabsAccountName: undefined,
  s3Prefix: undefined,
  wabsPrefix: undefined,
  gsPrefix: undefined,
  filePrefix: undefined,
  gpgKeyId: undefined,
  terse: false,
  envDir: undefined,
  logFormat: undefined,
};

/** The globals of the two "every global option" tests, the first's values. */
const EVERY_GLOBAL: GlobalOptions = {
  awsAccessKeyId: "AKID",
  awsInstanceProfile: false,
  gsAccessKeyId: "GSID",
  wabsAccountName: "acct",
  s3Prefix: "s3://b/p",
  wabsPrefix: "wabs://c/p",
  gsPrefix: "gs://b/p",
  filePrefix: "file:///x",
  gpgKeyId: "KEY",
  terse: true,
  envDir: "/etc/wal-d.d",
  logFormat: "json",
};

Deno.test("parse: version with no options gives default globals", () => {
  assert.deepEqual(run(["version"]), {
    selection: { command: "version", args: {} },
    globals: DEFAULT_GLOBALS,
  });
});

Deno.test("parse: every global option before the subcommand", () => {
  const { globals } = run([
    "-k",
    "AKID",
    "--gs-access-key-id",
    "GSID",
    "-a",
    "acct",
    "--s3-prefix",
    "s3://b/p",
    "--wabs-prefix",
    "wabs://c/p",
    "--gs-prefix",
    "gs://b/p",
    "--file-prefix",
    "file:///x",
    "--gpg-key-id",
    "KEY",
    "--terse",
    "--env-dir",
    "/etc/wal-d.d",
    "--log-format",
    "json",
    "version",
  ]);
  assert.deepEqual(globals, EVERY_GLOBAL);
});

Deno.test("parse: every global option after the subcommand, in --flag=value form", () => {
  const { globals, selection } = run([
    "wal-push",
    "--aws-access-key-id=AKID",
    "--gs-access-key-id=GSID",
    "--wabs-account-name=acct",
    "--s3-prefix=s3://b/p",
    "--wabs-prefix=wabs://c/p",
    "--gs-prefix=gs://b/p",
    "--file-prefix=file:///x?a=b",
    "--gpg-key-id=KEY",
    "--terse",
    "--env-dir=/e",
    "--log-format=text",
    "pg_wal/000000010000000000000001",
  ]);
  assert.deepEqual(selection, {
    command: "wal-push",
    args: { walSegment: "pg_wal/000000010000000000000001", poolSize: 8, markDone: false },
  });
  assert.deepEqual(globals, {
    ...EVERY_GLOBAL,
    filePrefix: "file:///x?a=b",
    envDir: "/e",
    logFormat: "text",
  });
});

Deno.test("parse: --aws-instance-profile, short options glued to their value", () => {
  assert.equal(run(["--aws-instance-profile", "version"]).globals.awsInstanceProfile, true);
  assert.equal(run(["version", "--aws-instance-profile"]).globals.awsInstanceProfile, true);
  assert.equal(run(["-kAKID", "version"]).globals.awsAccessKeyId, "AKID");
  assert.equal(run(["-aacct", "version"]).globals.wabsAccountName, "acct");
});

Deno.test("parse: the last occurrence of an option wins", () => {
  assert.equal(
    run(["--s3-prefix", "s3://a", "version", "--s3-prefix=s3://b"]).globals.s3Prefix,
    "s3://b",
  );
});

Deno.test("parse: unique prefixes of long options are accepted (argparse allow_abbrev)", () => {
  assert.deepEqual(run(["wal-push", "--pool", "3", "x"]).selection, {
    command: "wal-push",
    args: { walSegment: "x", poolSize: 3, markDone: false },
  });
  assert.equal(run(["--ters", "version"]).globals.terse, true);
  assert.match(usageError(["--aws", "x", "version"]), /^ambiguous option --aws \(could be /);
});

Deno.test("parse: backup-push options and defaults", () => {
  assert.deepEqual(run(["backup-push", "/data"]).selection, {
    command: "backup-push",
    args: {
      pgClusterDirectory: "/data",
      poolSize: 4,
      clusterReadRateLimit: null,
      whileOffline: false,
      fastCheckpoint: false,
    },
  });
  assert.deepEqual(
    run([
      "backup-push",
      "-p",
      "2",
      "--cluster-read-rate-limit",
      "1048576",
      "--while-offline",
      "--fast-checkpoint",
      "/d",
    ]).selection,
    {
      command: "backup-push",
      args: {
        pgClusterDirectory: "/d",
        poolSize: 2,
        clusterReadRateLimit: 1048576,
        whileOffline: true,
        fastCheckpoint: true,
      },
    },
  );
  const selection = run(["backup-push", "--pool-size=6", "/d"]).selection;
  assert.equal(selection?.command === "backup-push" && selection.args.poolSize, 6);
});

Deno.test("parse: backup-fetch options and defaults", () => {
  assert.deepEqual(run(["backup-fetch", "/data", "LATEST"]).selection, {
    command: "backup-fetch",
    args: {
      pgClusterDirectory: "/data",
      backupName: "LATEST",
      poolSize: 4,
      blindRestore: false,
      restoreSpec: null,
      force: false,
      recovery: null,
    },
  });
  assert.deepEqual(
    run(["backup-fetch", "--blind-restore", "--restore-spec", "SOURCE", "-p9", "/d", "base_x"])
      .selection,
    {
      command: "backup-fetch",
      args: {
        pgClusterDirectory: "/d",
        backupName: "base_x",
        poolSize: 9,
        blindRestore: true,
        restoreSpec: "SOURCE",
        force: false,
        recovery: null,
      },
    },
  );
});

function recoveryOf(...options: string[]): RecoveryRequest | null {
  const selection = run(["backup-fetch", ...options, "/d", "LATEST"]).selection;
  assert.equal(selection?.command, "backup-fetch");
  if (selection?.command !== "backup-fetch") throw new Error("unreachable");
  return selection.args.recovery;
}

function targetOf(...options: string[]): RecoveryTarget {
  const request = recoveryOf(...options);
  assert.ok(request !== null);
  return request.target;
}

Deno.test("parse: backup-fetch --force and --recover", () => {
  const selection = run(["backup-fetch", "--force", "--recover", "/d", "LATEST"]).selection;
  assert.deepEqual(selection, {
    command: "backup-fetch",
    args: {
      pgClusterDirectory: "/d",
      backupName: "LATEST",
      poolSize: 4,
      blindRestore: false,
      restoreSpec: null,
      force: true,
      recovery: { target: { kind: "end" }, timeline: null, action: null, inclusive: true },
    },
  });
  assert.equal(recoveryOf(), null);
});

Deno.test("parse: backup-fetch targets, timeline, action and --target-exclusive", () => {
  assert.deepEqual(recoveryOf("--target-lsn", "16/b374d848", "--target-exclusive"), {
    target: { kind: "lsn", lsn: 0x16_B374_D848n },
    timeline: null,
    action: null,
    inclusive: false,
  });
  assert.deepEqual(
    recoveryOf(
      "--target-name",
      "before upgrade",
      "--target-timeline",
      "3",
      "--target-action=promote",
    ),
    {
      target: { kind: "name", name: "before upgrade" },
      timeline: 3,
      action: "promote",
      inclusive: true,
    },
  );
  assert.deepEqual(recoveryOf("--target-immediate", "--target-action", "shutdown"), {
    target: { kind: "immediate" },
    timeline: null,
    action: "shutdown",
    inclusive: true,
  });
  // Leading zeros are dropped: PostgreSQL reads the xid with strtoul(.., 0), 010 being octal.
  assert.deepEqual(targetOf("--target-xid", "000123456"), { kind: "xid", xid: "123456" });
  assert.deepEqual(targetOf("--target-xid", "18446744073709551615"), {
    kind: "xid",
    xid: "18446744073709551615",
  });
  assert.equal(recoveryOf("--target-timeline", "latest")?.timeline, "latest");
  assert.equal(recoveryOf("--target-timeline", "current")?.timeline, "current");
  assert.equal(recoveryOf("--target-timeline", "4294967295")?.timeline, 4294967295);
  // Any --target-* option implies --recover, even one that names no target.
  assert.deepEqual(recoveryOf("--target-timeline", "2"), {
    target: { kind: "end" },
    timeline: 2,
    action: null,
    inclusive: true,
  });
  // The same target twice: the last one wins, as for every option.
  assert.deepEqual(targetOf("--target-name", "a", "--target-name", "b"), {
    kind: "name",
    name: "b",
  });
  // 63 bytes (21 three-byte characters) is the longest restore point name.
  assert.deepEqual(targetOf("--target-name", "€".repeat(21)), {
    kind: "name",
    name: "€".repeat(21),
  });
});

Deno.test("parse: --target-time needs a zone and is normalised to UTC", () => {
  // Each row: the values given, their normalised text, and the instant (to the millisecond).
  const cases: [string[], string, string][] = [
    [
      [
        "2026-05-01T12:00:00Z",
        "2026-05-01 12:00z",
        "2026-05-01 14:00:00+02:00",
        "2026-05-01 14:00:00 +0200",
      ],
      "2026-05-01T12:00:00+00:00",
      "2026-05-01T12:00:00.000Z",
    ],
    [["2026-01-15T08:30:00-05"], "2026-01-15T13:30:00+00:00", "2026-01-15T13:30:00.000Z"],
    [["2026-01-01T05:45:00+05:45"], "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00.000Z"],
    [["2026-01-01T00:30:00+01:00"], "2025-12-31T23:30:00+00:00", "2025-12-31T23:30:00.000Z"],
    [
      ["2026-05-01 12:00:00.123456 UTC"],
      "2026-05-01T12:00:00.123456+00:00",
      "2026-05-01T12:00:00.123Z",
    ],
    [["2026-05-01 12:00:00.5 gmt"], "2026-05-01T12:00:00.5+00:00", "2026-05-01T12:00:00.500Z"],
    // Named zones: summer and winter time.
    [
      [
        "2026-07-01 14:00:00 Europe/Berlin",
        "2026-07-01 08:00:00 America/New_York",
        "2026-07-01 12:00:00 Etc/UTC",
      ],
      "2026-07-01T12:00:00+00:00",
      "2026-07-01T12:00:00.000Z",
    ],
    [
      ["2026-01-01 14:00:00 Europe/Berlin"],
      "2026-01-01T13:00:00+00:00",
      "2026-01-01T13:00:00.000Z",
    ],
  ];
  for (const [givens, text, iso] of cases) {
    for (const given of givens) {
      const target = targetOf("--target-time", given);
      assert.equal(target.kind, "time", given);
      if (target.kind !== "time") continue;
      assert.equal(target.text, text, given);
      assert.equal(target.time.toISOString(), iso, given);
    }
  }
});

Deno.test("parse: bad --target-time values are usage errors naming the fix", () => {
  const error = (value: string) =>
    usageError(["backup-fetch", "--target-time", value, "/d", "LATEST"]);
  assert.match(error("2026-05-01 12:00:00"), /has no time zone: .*TimeZone setting; add one/);
  assert.match(error("2026-05-01T12:00"), /has no time zone/);
  assert.match(error("now"), /must be a date and time with a time zone, like .*got "now"/);
  assert.match(error("May 1 2026 12:00 UTC"), /must be a date and time/);
  assert.match(error("2026-05-01"), /must be a date and time/);
  assert.match(error("2026-02-30T00:00:00Z"), /is not a valid date and time/);
  assert.match(error("2026-05-01T24:00:00Z"), /is not a valid date and time/);
  assert.match(error("2026-05-01T12:60:00Z"), /is not a valid date and time/);
  assert.match(error("2026-05-01T12:00:00+16:00"), /offset \+16:00, out of range/);
  assert.match(error("2026-05-01T12:00:00+01:60"), /out of range/);
  assert.match(error("2026-05-01T12:00:00.1234567Z"), /more than 6 digits/);
  // Abbreviations mean different things to PostgreSQL and to the IANA database.
  assert.match(
    error("2026-05-01 12:00:00 CET"),
    /"CET" is not a time zone wal-d reads .*Area\/Location/,
  );
  assert.match(
    error("2026-05-01 12:00:00 Mars/Olympus_Mons"),
    /unknown time zone "Mars\/Olympus_Mons"/,
  );
  // Local times a daylight-saving change skips or repeats.
  assert.match(error("2026-03-29 02:30:00 Europe/Berlin"), /does not exist in Europe\/Berlin/);
  assert.match(error("2026-10-25 02:30:00 Europe/Berlin"), /is ambiguous in Europe\/Berlin/);
});

Deno.test("parse: bad recovery option values and combinations are usage errors", () => {
  const error = (...options: string[]) => usageError(["backup-fetch", ...options, "/d", "LATEST"]);
  assert.equal(
    error("--target-time", "2026-05-01T12:00:00Z", "--target-lsn", "0/1"),
    "--target-time and --target-lsn cannot be combined: PostgreSQL recovers to one target; " +
      "choose one",
  );
  assert.match(
    error("--target-immediate", "--target-xid", "5"),
    /^--target-xid and --target-immediate cannot be combined/,
  );
  assert.match(error("--target-lsn", "16"), /--target-lsn must be an LSN: .*got "16"/);
  assert.match(error("--target-lsn", "0/123456789"), /--target-lsn must be an LSN/);
  assert.match(error("--target-lsn", "g/1"), /--target-lsn must be an LSN/);
  for (const xid of ["0", "-1", "12a", "0x10", "18446744073709551616", ""]) {
    assert.match(error(`--target-xid=${xid}`), /--target-xid must be a transaction ID in decimal/);
  }
  for (const timeline of ["0", "4294967296", "newest", "-1", "1.5"]) {
    assert.match(
      error(`--target-timeline=${timeline}`),
      /--target-timeline must be latest, current or a timeline ID/,
    );
  }
  assert.match(
    error("--target-action", "resume", "--target-immediate"),
    /--target-action must be pause, promote or shutdown, got "resume"/,
  );
  assert.match(error("--target-action", "promote"), /--target-action needs a recovery target/);
  assert.match(
    error("--recover", "--target-action", "pause"),
    /--target-action needs a recovery target/,
  );
  assert.equal(error("--target-name="), "--target-name must not be empty");
  assert.match(
    error("--target-name", "€".repeat(22)),
    /--target-name is 66 bytes long; .* at most 63 bytes/,
  );
  assert.match(error("--target-name", "a\nb"), /must not contain line breaks/);
  for (const target of [[], ["--target-name", "x"], ["--target-immediate"], ["--recover"]]) {
    assert.match(
      error(...target, "--target-exclusive"),
      /--target-exclusive needs --target-time, --target-lsn or --target-xid/,
    );
  }
  // "--target" alone is a prefix of several options.
  assert.match(error("--target", "x"), /ambiguous option --target/);
});

Deno.test("parse: backup-list with and without QUERY", () => {
  assert.deepEqual(run(["backup-list"]).selection, {
    command: "backup-list",
    args: { query: null, detail: false, json: false },
  });
  assert.deepEqual(run(["backup-list", "--detail", "LATEST"]).selection, {
    command: "backup-list",
    args: { query: "LATEST", detail: true, json: false },
  });
  assert.deepEqual(run(["backup-list", "--json"]).selection, {
    command: "backup-list",
    args: { query: null, detail: false, json: true },
  });
});

Deno.test("parse: -p is the pool size of wal-push but the prefetch count of wal-fetch", () => {
  assert.deepEqual(run(["wal-push", "-p", "16", "seg"]).selection, {
    command: "wal-push",
    args: { walSegment: "seg", poolSize: 16, markDone: false },
  });
  assert.deepEqual(run(["wal-push", "--mark-done", "seg"]).selection, {
    command: "wal-push",
    args: { walSegment: "seg", poolSize: 8, markDone: true },
  });
  assert.deepEqual(run(["wal-fetch", "-p", "0", "seg", "dest"]).selection, {
    command: "wal-fetch",
    args: { walSegment: "seg", walDestination: "dest", prefetch: 0 },
  });
  assert.deepEqual(run(["wal-fetch", "--prefetch=3", "seg", "dest"]).selection, {
    command: "wal-fetch",
    args: { walSegment: "seg", walDestination: "dest", prefetch: 3 },
  });
  assert.deepEqual(run(["wal-fetch", "seg", "dest"]).selection, {
    command: "wal-fetch",
    args: { walSegment: "seg", walDestination: "dest", prefetch: 8 },
  });
  assert.match(
    usageError(["wal-fetch", "--pool-size", "3", "s", "d"]),
    /unknown option --pool-size for wal-fetch/,
  );
  assert.match(
    usageError(["wal-push", "--prefetch", "3", "s"]),
    /unknown option --prefetch for wal-push/,
  );
});

Deno.test("parse: wal-prefetch", () => {
  assert.deepEqual(run(["wal-prefetch", "/pg/pg_wal", "000000010000000000000002"]).selection, {
    command: "wal-prefetch",
    args: { baseDirectory: "/pg/pg_wal", segment: "000000010000000000000002" },
  });
});

Deno.test("parse: delete targets, --dry-run/-n and --confirm", () => {
  assert.deepEqual(run(["delete", "everything"]).selection, {
    command: "delete",
    args: { dryRun: false, confirm: false, performDeletion: false, target: { kind: "everything" } },
  });
  assert.deepEqual(run(["delete", "--confirm", "retain", "5"]).selection, {
    command: "delete",
    args: {
      dryRun: false,
      confirm: true,
      performDeletion: true,
      target: { kind: "retain", numToRetain: 5 },
    },
  });
  assert.deepEqual(run(["delete", "-n", "--confirm", "before", "base_X"]).selection, {
    command: "delete",
    args: {
      dryRun: true,
      confirm: true,
      performDeletion: false,
      target: { kind: "before", beforeSegmentExclusive: "base_X" },
    },
  });
  assert.deepEqual(run(["delete", "old-versions", "--dry-run"]).selection, {
    command: "delete",
    args: {
      dryRun: true,
      confirm: false,
      performDeletion: false,
      target: { kind: "old-versions" },
    },
  });
});

Deno.test("parse: integers are validated", () => {
  assert.equal(
    usageError(["wal-push", "-p", "0", "s"]),
    '-p/--pool-size must be an integer >= 1, got "0"',
  );
  assert.equal(
    usageError(["backup-push", "--pool-size=abc", "/d"]),
    '-p/--pool-size must be an integer >= 1, got "abc"',
  );
  assert.equal(
    usageError(["wal-fetch", "-p", "-1", "s", "d"]),
    '-p/--prefetch must be an integer >= 0, got "-1"',
  );
  assert.equal(
    usageError(["backup-push", "--cluster-read-rate-limit", "0", "/d"]),
    '--cluster-read-rate-limit must be an integer >= 1, got "0"',
  );
  assert.equal(
    usageError(["backup-fetch", "-p", "1.5", "/d", "LATEST"]),
    '-p/--pool-size must be an integer >= 1, got "1.5"',
  );
  assert.equal(
    usageError(["delete", "retain", "-2"]),
    'NUM_TO_RETAIN must be an integer >= 0, got "-2"',
  );
  assert.equal(
    usageError(["delete", "retain", "two"]),
    'NUM_TO_RETAIN must be an integer >= 0, got "two"',
  );
  assert.equal(
    (run(["delete", "retain", "+3"]).selection!.args as { target: { numToRetain: number } }).target
      .numToRetain,
    3,
  );
});

Deno.test("parse: positional errors name the problem and the usage", () => {
  assert.equal(
    usageError(["wal-fetch", "seg"]),
    "wal-fetch needs WAL_SEGMENT and WAL_DESTINATION (usage: wal-d wal-fetch WAL_SEGMENT WAL_DESTINATION)",
  );
  assert.equal(
    usageError(["wal-push", "a", "b"]),
    'wal-push takes only WAL_SEGMENT; unexpected extra argument "b" (usage: wal-d wal-push WAL_SEGMENT)',
  );
  assert.equal(
    usageError(["version", "x"]),
    'version takes no arguments; unexpected extra argument "x" (usage: wal-d version)',
  );
  assert.match(usageError(["backup-list", "a", "b"]), /unexpected extra argument "b"/);
  assert.match(
    usageError(["backup-fetch", "/d"]),
    /^backup-fetch needs PG_CLUSTER_DIRECTORY and BACKUP_NAME/,
  );
  assert.match(
    usageError(["delete"]),
    /^delete needs one of before, retain, old-versions, everything/,
  );
  assert.match(usageError(["delete", "before"]), /^delete before needs BEFORE_SEGMENT_EXCLUSIVE/);
  assert.match(usageError(["delete", "everything", "now"]), /unexpected extra argument "now"/);
  assert.match(usageError(["delete", "all"]), /^unknown delete subcommand "all"/);
});

Deno.test("parse: unknown subcommands and options", () => {
  assert.match(
    usageError(["wal-pull", "x"]),
    /^unknown subcommand "wal-pull" \(choose from version, /,
  );
  assert.equal(usageError(["--bogus", "version"]), "unknown option --bogus (see wal-d --help)");
  assert.equal(
    usageError(["wal-push", "--bogus=1", "x"]),
    "unknown option --bogus for wal-push (see wal-d wal-push --help)",
  );
  assert.match(usageError(["-x", "version"]), /^unknown option -x/);
  assert.match(usageError(["--pool-size", "4", "wal-push", "x"]), /put it after the subcommand/);
});

Deno.test("parse: value handling", () => {
  assert.match(usageError(["--s3-prefix"]), /^--s3-prefix needs a value/);
  assert.match(usageError(["--s3-prefix", "--terse", "version"]), /^--s3-prefix needs a value/);
  assert.equal(run(["--gpg-key-id=-odd", "version"]).globals.gpgKeyId, "-odd");
  assert.equal(usageError(["--terse=yes", "version"]), "--terse takes no value");
  assert.equal(
    usageError(["--log-format", "xml", "version"]),
    '--log-format must be text or json, got "xml"',
  );
  assert.deepEqual(run(["wal-push", "--", "-weird-name"]).selection, {
    command: "wal-push",
    args: { walSegment: "-weird-name", poolSize: 8, markDone: false },
  });
});

Deno.test("parse: -k and --aws-instance-profile are mutually exclusive", () => {
  assert.match(usageError(["-k", "A", "--aws-instance-profile", "version"]), /cannot be combined/);
  assert.match(
    usageError(["version", "--aws-instance-profile", "--aws-access-key-id=A"]),
    /cannot be combined/,
  );
});

Deno.test("parse: secret flags are refused and their value is never echoed", () => {
  const cases: [string, string][] = [
    ["--aws-secret-access-key", "AWS_SECRET_ACCESS_KEY"],
    ["--aws-security-token", "AWS_SECURITY_TOKEN"],
    ["--aws-session-token", "AWS_SESSION_TOKEN"],
    ["--wabs-access-key", "WABS_ACCESS_KEY"],
    ["--wabs-sas-token", "WABS_SAS_TOKEN"],
    ["--swift-password", "SWIFT_PASSWORD"],
  ];
  for (const [flag, variable] of cases) {
    for (
      const argv of [
        [flag, "s3cr3t-VALUE", "version"],
        [`${flag}=s3cr3t-VALUE`, "version"],
        ["wal-push", "seg", `${flag}=s3cr3t-VALUE`],
        ["wal-push", flag, "s3cr3t-VALUE", "seg"],
      ]
    ) {
      const message = usageError(argv);
      assert.ok(message.startsWith(`${flag} is not accepted`), message);
      assert.ok(message.includes(`set the ${variable} environment variable`), message);
      assert.ok(!message.includes("s3cr3t"), `secret echoed: ${message}`);
    }
  }
  // An unambiguous abbreviation of a secret flag is refused the same way.
  assert.match(usageError(["--swift-pass=s3cr3t", "version"]), /^--swift-password is not accepted/);
  // An unknown option never echoes its inline value either.
  assert.ok(!usageError(["--aws-se=s3cr3t", "version"]).includes("s3cr3t"));
});

Deno.test("parse: -h/--help anywhere gives help for the subcommand seen so far", () => {
  assert.deepEqual(parseCommandLine(["--help"]), { kind: "help", command: null });
  assert.deepEqual(parseCommandLine(["-h", "wal-push"]), { kind: "help", command: null });
  assert.deepEqual(parseCommandLine(["wal-push", "-h"]), { kind: "help", command: "wal-push" });
  assert.deepEqual(parseCommandLine(["delete", "--help"]), { kind: "help", command: "delete" });
});

Deno.test("parse: no subcommand is not a parse error", () => {
  assert.deepEqual(run([]), { selection: null, globals: DEFAULT_GLOBALS });
  assert.equal(run(["--s3-prefix", "s3://b"]).selection, null);
});
