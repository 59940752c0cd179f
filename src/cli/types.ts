/**
 * Typed result of command-line parsing, and the {@link Invocation} every command module receives.
 */
import type { RecoveryRequest } from "../backup/recovery.ts";
import type { Config, StoragePrefix } from "../config/types.ts";

/** Every subcommand wal-d knows (spec §9). */
export const COMMAND_NAMES = [
  "version",
  "backup-push",
  "backup-fetch",
  "backup-list",
  "wal-push",
  "wal-fetch",
  "wal-prefetch",
  "wal-push-ahead",
  "delete",
] as const;

/** Name of a subcommand. */
export type CommandName = typeof COMMAND_NAMES[number];

/** Output format of the logger (`--log-format`). */
export type LogFormat = "text" | "json";

/** Global options; accepted before and after the subcommand. Absent values are `undefined`. */
export interface GlobalOptions {
  /** `-k/--aws-access-key-id`. */
  awsAccessKeyId?: string;
  /** `--aws-instance-profile`. */
  awsInstanceProfile: boolean;
  /** `--gs-access-key-id`: accepted for WAL-E compatibility, unused. */
  gsAccessKeyId?: string;
  /** `-a/--wabs-account-name`. */
  wabsAccountName?: string;
  /** `--s3-prefix`. */
  s3Prefix?: string;
  /** `--wabs-prefix`. */
  wabsPrefix?: string;
  /** `--gs-prefix`. */
  gsPrefix?: string;
  /** `--file-prefix`. */
  filePrefix?: string;
  /** `--gpg-key-id`. */
  gpgKeyId?: string;
  /** `--terse`: log level WARNING instead of INFO. */
  terse: boolean;
  /** `--env-dir DIR` (wal-d): daemontools-style envdir overlaid on the process environment. */
  envDir?: string;
  /** `--log-format text|json` (wal-d). */
  logFormat?: LogFormat;
}

/** `version` takes nothing. */
export type VersionArgs = Record<never, never>;

/** `backup-push PG_CLUSTER_DIRECTORY`. */
export interface BackupPushArgs {
  pgClusterDirectory: string;
  /** `--pool-size/-p`, default 4, ≥ 1. */
  poolSize: number;
  /** `--cluster-read-rate-limit BYTES_PER_SECOND`, ≥ 1; `null` = unlimited. */
  clusterReadRateLimit: number | null;
  /** `--while-offline`. */
  whileOffline: boolean;
  /** `--fast-checkpoint` (extension): request an immediate checkpoint at the start. */
  fastCheckpoint: boolean;
}

/** `backup-fetch PG_CLUSTER_DIRECTORY BACKUP_NAME`. */
export interface BackupFetchArgs {
  pgClusterDirectory: string;
  /** A backup name (`base_…`) or `LATEST`; validated by the command. */
  backupName: string;
  /** `--pool-size/-p`, default 4, ≥ 1. */
  poolSize: number;
  /** `--blind-restore`. */
  blindRestore: boolean;
  /** `--restore-spec PATH|SOURCE`; `null` when absent. */
  restoreSpec: string | null;
  /** `--force`: restore into a non-empty directory. */
  force: boolean;
  /**
   * Recovery settings to write (`--recover` and the `--target-*` options, each of which implies
   * `--recover`); `null` when none of them is given.
   */
  recovery: RecoveryRequest | null;
}

/** `backup-list [QUERY]`. */
export interface BackupListArgs {
  /** An exact backup name or `LATEST`; `null` lists everything. */
  query: string | null;
  /** `--detail`. */
  detail: boolean;
  /** `--json` (extension): a JSON array of backups instead of WAL-E's tab-separated table. */
  json: boolean;
}

/** `wal-push WAL_SEGMENT`. */
export interface WalPushArgs {
  /** Path of the WAL file (PostgreSQL's `%p`). */
  walSegment: string;
  /** `--pool-size/-p`, default 8 (WAL-E: 32), ≥ 1. */
  poolSize: number;
  /** `--mark-done`: rename `.ready` to `.done` for segments pushed ahead, as WAL-E does. */
  markDone: boolean;
}

/** `wal-fetch WAL_SEGMENT WAL_DESTINATION`. */
export interface WalFetchArgs {
  /** WAL file name (PostgreSQL's `%f`). */
  walSegment: string;
  /** Destination path (PostgreSQL's `%p`). */
  walDestination: string;
  /** `--prefetch/-p`, default 8, ≥ 0 (0 disables prefetching). */
  prefetch: number;
}

/** `wal-prefetch BASE_DIRECTORY SEGMENT` (internal, spawned by wal-fetch). */
export interface WalPrefetchArgs {
  baseDirectory: string;
  segment: string;
}

/** `wal-push-ahead WAL_DIRECTORY` (internal: started detached by wal-push). */
export interface WalPushAheadArgs {
  walDirectory: string;
  /** Uploads in flight at once (`--pool-size`, from the wal-push that started it). */
  poolSize: number;
  /** `--mark-done`, as given to wal-push. */
  markDone: boolean;
  /** `--exclude NAME`: the segment the starting wal-push archives itself. */
  exclude: string | null;
  /** `--lock-held`: the starting wal-push took the pusher lock on this process's behalf. */
  lockHeld: boolean;
}

/** What `delete` deletes. */
export type DeleteTarget =
  | { kind: "before"; beforeSegmentExclusive: string }
  | { kind: "retain"; numToRetain: number }
  | { kind: "old-versions" }
  | { kind: "everything" };

/** `delete [--dry-run/-n] [--confirm] before X | retain N | old-versions | everything`. */
export interface DeleteArgs {
  /** `--dry-run/-n` as given. */
  dryRun: boolean;
  /** `--confirm` as given. */
  confirm: boolean;
  /** True only with `--confirm` and without `--dry-run` (spec §8: dry run is the default). */
  performDeletion: boolean;
  target: DeleteTarget;
}

/** Argument type of each subcommand. */
export interface ArgsByCommand {
  "version": VersionArgs;
  "backup-push": BackupPushArgs;
  "backup-fetch": BackupFetchArgs;
  "backup-list": BackupListArgs;
  "wal-push": WalPushArgs;
  "wal-fetch": WalFetchArgs;
  "wal-prefetch": WalPrefetchArgs;
  "wal-push-ahead": WalPushAheadArgs;
  "delete": DeleteArgs;
}

/** A subcommand with its parsed arguments (a union discriminated by `command`). */
export type CommandSelection<K extends CommandName = CommandName> = K extends CommandName
  ? { command: K; args: ArgsByCommand[K] }
  : never;

/** What the parser returns. */
export type ParsedCommandLine =
  /** `-h/--help`: print the help of `command` (or the general help) to stdout, exit 0. */
  | { kind: "help"; command: CommandName | null }
  /** A subcommand to run; `selection` is `null` when no subcommand was given. */
  | { kind: "run"; selection: CommandSelection | null; globals: GlobalOptions };

/**
 * Everything a command module gets: the subcommand, its arguments, the resolved configuration
 * and the storage prefix (the runner has already checked that one is configured).
 */
export type Invocation<K extends CommandName = CommandName> = K extends CommandName ? {
    command: K;
    args: ArgsByCommand[K];
    globals: GlobalOptions;
    config: Config;
    prefix: StoragePrefix;
  }
  : never;
