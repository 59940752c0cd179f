/**
 * The command-line grammar as data: global options, per-subcommand options and positionals
 * (spec §9), shared by the parser and the help text.
 */
import type { CommandName } from "./types.ts";

/** One option. `key` is the long name without dashes. */
export interface OptionSpec {
  /** `--pool-size`. */
  readonly long: string;
  /** `-p`, when there is a short form. */
  readonly short?: string;
  /** Whether the option takes a value (`--flag value` or `--flag=value`). */
  readonly takesValue: boolean;
  /** Placeholder of the value in help texts. */
  readonly metavar?: string;
  readonly help: string;
}

/** Options accepted before and after the subcommand. */
export const GLOBAL_OPTIONS: readonly OptionSpec[] = [
  {
    long: "--aws-access-key-id",
    short: "-k",
    takesValue: true,
    metavar: "ID",
    help: "S3 access key id (overrides AWS_ACCESS_KEY_ID; the secret comes from " +
      "AWS_SECRET_ACCESS_KEY)",
  },
  {
    long: "--aws-instance-profile",
    takesValue: false,
    help: "get S3 credentials from the EC2 instance metadata (or set AWS_INSTANCE_PROFILE=true)",
  },
  {
    long: "--gs-access-key-id",
    takesValue: true,
    metavar: "ID",
    help: "accepted for WAL-E compatibility, unused",
  },
  {
    long: "--wabs-account-name",
    short: "-a",
    takesValue: true,
    metavar: "NAME",
    help: "Azure storage account name (overrides WABS_ACCOUNT_NAME)",
  },
  {
    long: "--s3-prefix",
    takesValue: true,
    metavar: "URL",
    help: "storage prefix, e.g. s3://bucket/path (or WALE_S3_PREFIX)",
  },
  {
    long: "--wabs-prefix",
    takesValue: true,
    metavar: "URL",
    help: "storage prefix, e.g. wabs://container/path (or WALE_WABS_PREFIX)",
  },
  {
    long: "--gs-prefix",
    takesValue: true,
    metavar: "URL",
    help: "storage prefix, e.g. gs://bucket/path (or WALE_GS_PREFIX)",
  },
  {
    long: "--file-prefix",
    takesValue: true,
    metavar: "URL",
    help: "storage prefix, e.g. file:///var/backups/pg (or WALE_FILE_PREFIX)",
  },
  {
    long: "--gpg-key-id",
    takesValue: true,
    metavar: "KEY_ID",
    help: "encrypt uploads for this GPG key (overrides WALE_GPG_KEY_ID)",
  },
  { long: "--terse", takesValue: false, help: "log only warnings and errors" },
  {
    long: "--env-dir",
    takesValue: true,
    metavar: "DIR",
    help: "read variables from a daemontools-style envdir (or WALD_ENV_DIR)",
  },
  {
    long: "--log-format",
    takesValue: true,
    metavar: "text|json",
    help: "log line format (default text, WAL-E's format)",
  },
  { long: "--help", short: "-h", takesValue: false, help: "show help and exit" },
];

/** Flags that would carry a secret; refused in favour of the named environment variable. */
export const SECRET_FLAGS: Readonly<Record<string, string>> = {
  "--aws-secret-access-key": "AWS_SECRET_ACCESS_KEY",
  "--aws-security-token": "AWS_SECURITY_TOKEN",
  "--aws-session-token": "AWS_SESSION_TOKEN",
  "--wabs-access-key": "WABS_ACCESS_KEY",
  "--wabs-sas-token": "WABS_SAS_TOKEN",
  "--swift-password": "SWIFT_PASSWORD",
};

/** A positional argument. */
export interface PositionalSpec {
  readonly name: string;
  readonly optional?: boolean;
}

/** Grammar of one subcommand. */
export interface CommandSpec {
  readonly name: CommandName;
  readonly summary: string;
  readonly options: readonly OptionSpec[];
  readonly positionals: readonly PositionalSpec[];
}

const poolSize = (defaultSize: number): OptionSpec => ({
  long: "--pool-size",
  short: "-p",
  takesValue: true,
  metavar: "N",
  help: `number of parallel transfers (default ${defaultSize})`,
});

/** Default `--pool-size` of each subcommand that has one. */
export const DEFAULT_POOL_SIZES = { "backup-push": 4, "backup-fetch": 4, "wal-push": 8 } as const;
/** Default `--prefetch` of wal-fetch. */
export const DEFAULT_PREFETCH = 8;

/** The `delete` targets. */
export const DELETE_TARGETS = ["before", "retain", "old-versions", "everything"] as const;

/** Grammar of every subcommand. */
export const COMMAND_SPECS: Readonly<Record<CommandName, CommandSpec>> = {
  "version": {
    name: "version",
    summary: "print the wal-d version and exit",
    options: [],
    positionals: [],
  },
  "backup-push": {
    name: "backup-push",
    summary: "push a base backup of a PostgreSQL cluster",
    options: [
      poolSize(DEFAULT_POOL_SIZES["backup-push"]),
      {
        long: "--cluster-read-rate-limit",
        takesValue: true,
        metavar: "BYTES_PER_SECOND",
        help: "limit the rate of reading the cluster directory",
      },
      { long: "--while-offline", takesValue: false, help: "back up a stopped cluster" },
      {
        long: "--fast-checkpoint",
        takesValue: false,
        help: "start with an immediate checkpoint instead of a spread one",
      },
    ],
    positionals: [{ name: "PG_CLUSTER_DIRECTORY" }],
  },
  "backup-fetch": {
    name: "backup-fetch",
    summary: "restore a base backup (a name or LATEST) into a directory",
    options: [
      poolSize(DEFAULT_POOL_SIZES["backup-fetch"]),
      {
        long: "--blind-restore",
        takesValue: false,
        help: "do not check that tablespace symlinks exist",
      },
      {
        long: "--restore-spec",
        takesValue: true,
        metavar: "PATH|SOURCE",
        help: "tablespace restore specification (a JSON file, or SOURCE)",
      },
      { long: "--force", takesValue: false, help: "restore into a non-empty directory" },
      {
        long: "--recover",
        takesValue: false,
        help: "write recovery.signal and restore_command (implied by --target-*)",
      },
      {
        long: "--target-time",
        takesValue: true,
        metavar: "TIMESTAMP",
        help: "recover to this time, with a time zone (2026-05-01T12:00:00Z)",
      },
      {
        long: "--target-lsn",
        takesValue: true,
        metavar: "LSN",
        help: "recover to this WAL position (e.g. 16/B374D848)",
      },
      {
        long: "--target-name",
        takesValue: true,
        metavar: "NAME",
        help: "recover to this restore point",
      },
      {
        long: "--target-xid",
        takesValue: true,
        metavar: "XID",
        help: "recover to the commit of this transaction ID",
      },
      {
        long: "--target-immediate",
        takesValue: false,
        help: "stop as soon as the restored backup is consistent",
      },
      {
        long: "--target-timeline",
        takesValue: true,
        metavar: "latest|current|N",
        help: "timeline to follow (default latest)",
      },
      {
        long: "--target-action",
        takesValue: true,
        metavar: "pause|promote|shutdown",
        help: "what to do at the target (default pause)",
      },
      {
        long: "--target-exclusive",
        takesValue: false,
        help: "stop just before the time, LSN or xid target",
      },
    ],
    positionals: [{ name: "PG_CLUSTER_DIRECTORY" }, { name: "BACKUP_NAME" }],
  },
  "backup-list": {
    name: "backup-list",
    summary: "list base backups (all, one by name, or LATEST) as tab-separated values",
    options: [
      { long: "--detail", takesValue: false, help: "read each backup's details" },
      { long: "--json", takesValue: false, help: "print a JSON array instead of WAL-E's table" },
    ],
    positionals: [{ name: "QUERY", optional: true }],
  },
  "wal-push": {
    name: "wal-push",
    summary: "archive a WAL file (archive_command = 'wal-d wal-push %p')",
    options: [
      poolSize(DEFAULT_POOL_SIZES["wal-push"]),
      {
        long: "--mark-done",
        takesValue: false,
        help: "rename archive_status/*.ready to .done for segments pushed ahead (WAL-E's " +
          "behaviour; off by default because it hides segments from a second archiver)",
      },
    ],
    positionals: [{ name: "WAL_SEGMENT" }],
  },
  "wal-fetch": {
    name: "wal-fetch",
    summary: "restore a WAL file (restore_command = 'wal-d wal-fetch %f %p')",
    options: [{
      long: "--prefetch",
      short: "-p",
      takesValue: true,
      metavar: "N",
      help: `number of segments to prefetch, 0 disables (default ${DEFAULT_PREFETCH})`,
    }],
    positionals: [{ name: "WAL_SEGMENT" }, { name: "WAL_DESTINATION" }],
  },
  "wal-prefetch": {
    name: "wal-prefetch",
    summary: "internal: download one segment into the prefetch directory",
    options: [],
    positionals: [{ name: "BASE_DIRECTORY" }, { name: "SEGMENT" }],
  },
  "wal-push-ahead": {
    name: "wal-push-ahead",
    summary: "internal: push the ready WAL files of a WAL directory in the background",
    options: [
      poolSize(DEFAULT_POOL_SIZES["wal-push"]),
      { long: "--mark-done", takesValue: false, help: "as wal-push --mark-done" },
      {
        long: "--exclude",
        takesValue: true,
        metavar: "NAME",
        help: "a WAL file that the starting wal-push archives itself",
      },
      {
        long: "--lock-held",
        takesValue: false,
        help: "the starting wal-push holds the pusher lock for this process",
      },
    ],
    positionals: [{ name: "WAL_DIRECTORY" }],
  },
  "delete": {
    name: "delete",
    summary: "delete old backups and WAL (a dry run unless --confirm is given)",
    options: [
      {
        long: "--dry-run",
        short: "-n",
        takesValue: false,
        help: "only show what would be deleted (wins over --confirm)",
      },
      { long: "--confirm", takesValue: false, help: "really delete" },
    ],
    positionals: [{
      name: "before BEFORE_SEGMENT_EXCLUSIVE | retain NUM_TO_RETAIN | " +
        "old-versions | everything",
    }],
  },
};

/** `wal-d <command> <positionals>`, as shown in error messages. */
export function commandSynopsis(command: CommandName): string {
  const names = COMMAND_SPECS[command].positionals.map((p) => p.optional ? `[${p.name}]` : p.name);
  return ["wal-d", command, ...names].join(" ");
}
