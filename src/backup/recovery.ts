/**
 * Point-in-time recovery for backup-fetch: the recovery request (`--recover`, `--target-*`),
 * the settings it becomes in `postgresql.auto.conf` plus `recovery.signal` (PostgreSQL 12 and
 * later have no recovery.conf), the `restore_command` that runs this same wal-d with the same
 * configuration, and the choice of the backup a target needs.
 *
 * How the pieces fit, for backup-fetch:
 *
 * ```ts
 * const entries = await listBackups(store, { detail: true, log });
 * const backup = chooseBackup(entries, request, inv.args.backupName);
 * // ... restore `backup` into PGDATA ...
 * const { command, warnings } = restoreCommandFor(inv.globals, inv.config.environment);
 * for (const warning of warnings) log.warning(warning);
 * await writeRecoveryConfig(pgdata, recoverySettings(request, command));
 * ```
 *
 * @module
 */

import { UserError } from "../cli/errors.ts";
import { commandForOthers, globalArguments } from "../cli/reinvoke.ts";
import type { GlobalOptions } from "../cli/types.ts";
import type { EffectiveEnvironment } from "../config/environment.ts";
import { type EnvDirOverlay, readEnvDir } from "../config/envdir.ts";
import { selectPrefixUrl, splitUrl } from "../config/prefix.ts";
import { NO_PREFIX_HINT, parseInstanceProfileEnv } from "../config/resolve.ts";
import { writeFileAtomic } from "../io/atomic_file.ts";
import { lstatOrNull } from "../io/fs.ts";
import { isAbsolute, join, resolve } from "../io/path.ts";
import {
  BASE_BACKUP_REGEXP,
  DEFAULT_WAL_SEGMENT_SIZE,
  formatLsn,
  type Lsn,
  parseSegmentName,
} from "../layout/mod.ts";
import {
  type BackupEntry,
  invalidQuery,
  LATEST,
  latestBackup,
  noBackupNamed,
  noBackupsFound,
} from "./catalog.ts";

/** What the server does once the target is reached (`recovery_target_action`). */
export type RecoveryTargetAction = "pause" | "promote" | "shutdown";

/** `recovery_target_timeline`: `latest`, `current` or a timeline ID. */
export type RecoveryTimeline = "latest" | "current" | number;

/** Where recovery stops. */
export type RecoveryTarget =
  /** No target: replay the whole archive. */
  | { kind: "end" }
  /** `recovery_target = 'immediate'`: stop as soon as the backup is consistent. */
  | { kind: "immediate" }
  /**
   * `recovery_target_time`: `time` for choosing the backup, `text` for the setting (ISO 8601 in
   * UTC with a numeric offset, `2026-05-01T12:00:00+00:00`; see `parseTargetTime`).
   */
  | { kind: "time"; time: Date; text: string }
  /** `recovery_target_lsn`. */
  | { kind: "lsn"; lsn: Lsn }
  /** `recovery_target_name`: a restore point made with `pg_create_restore_point`. */
  | { kind: "name"; name: string }
  /** `recovery_target_xid`, in decimal (up to 64 bits: epoch-qualified xids). */
  | { kind: "xid"; xid: string };

/** What `backup-fetch --recover/--target-*` asks for. */
export interface RecoveryRequest {
  target: RecoveryTarget;
  /** `--target-timeline`; `null` leaves PostgreSQL's default (`latest`). */
  timeline: RecoveryTimeline | null;
  /** `--target-action`; `null` leaves PostgreSQL's default (`pause`). */
  action: RecoveryTargetAction | null;
  /** `false` with `--target-exclusive`: stop just before the target. */
  inclusive: boolean;
}

/** A `postgresql.auto.conf` setting: name and (unquoted) value. */
export type Setting = [name: string, value: string];

// ---------------------------------------------------------------------------------------------
// Settings

/**
 * The settings that make PostgreSQL recover as `request` asks, in this order: `restore_command`;
 * the one target setting (`recovery_target`, `_time`, `_lsn`, `_name` or `_xid`; none for
 * `end`); `recovery_target_inclusive = off` when exclusive; `recovery_target_timeline` and
 * `recovery_target_action` when given. Throws a `RangeError` for an exclusive request whose
 * target is not a time, an LSN or an xid (the parser never makes one).
 */
export function recoverySettings(request: RecoveryRequest, restoreCommand: string): Setting[] {
  const settings: Setting[] = [["restore_command", restoreCommand]];
  const { target } = request;
  switch (target.kind) {
    case "end":
      break;
    case "immediate":
      settings.push(["recovery_target", "immediate"]);
      break;
    case "time":
      settings.push(["recovery_target_time", target.text]);
      break;
    case "lsn":
      settings.push(["recovery_target_lsn", formatLsn(target.lsn)]);
      break;
    case "name":
      settings.push(["recovery_target_name", target.name]);
      break;
    case "xid":
      settings.push(["recovery_target_xid", target.xid]);
      break;
  }
  if (!request.inclusive) {
    if (target.kind !== "time" && target.kind !== "lsn" && target.kind !== "xid") {
      throw new RangeError(`an exclusive recovery target must be a time, an LSN or an xid`);
    }
    settings.push(["recovery_target_inclusive", "off"]);
  }
  if (request.timeline !== null) {
    settings.push(["recovery_target_timeline", String(request.timeline)]);
  }
  if (request.action !== null) settings.push(["recovery_target_action", request.action]);
  return settings;
}

/** The target in words, for log lines and messages (`time 2026-05-01T12:00:00Z`). */
export function describeTarget(target: RecoveryTarget): string {
  switch (target.kind) {
    case "end":
      return "the end of the archive";
    case "immediate":
      return "the end of the backup (immediate)";
    case "time":
      return `time ${target.text}`;
    case "lsn":
      return `LSN ${formatLsn(target.lsn)}`;
    case "name":
      return `restore point "${target.name}"`;
    case "xid":
      return `transaction ${target.xid}`;
  }
}

// ---------------------------------------------------------------------------------------------
// restore_command

/** Options of {@linkcode restoreCommandFor}. */
export interface RestoreCommandOptions {
  /** The command that runs wal-d; default {@linkcode commandForOthers}(). */
  self?: readonly string[];
  /**
   * The variables the env dir defines (or unsets); default: read from the env dir in use, if any.
   */
  envDirOverlay?: EnvDirOverlay;
}

/** A restore_command and what it cannot carry. */
export interface RestoreCommand {
  /** The setting's value: shell words, `%` doubled except in `%f` and `%p`. */
  command: string;
  /** One line per problem (secrets it does not carry); never contains a secret's value. */
  warnings: string[];
}

/** A variable wal-d reads; `path` ones are made absolute (restore_command runs in PGDATA). */
interface CarriedVariable {
  name: string;
  path?: boolean;
  /** The global option that overrides the variable (then it is not carried). */
  overriddenBy?: keyof GlobalOptions;
}

/** Variables every backend reads. */
const COMMON_VARIABLES: readonly CarriedVariable[] = [
  { name: "WALE_GPG_KEY_ID", overriddenBy: "gpgKeyId" },
  { name: "WALE_RETRIES" },
  { name: "WALD_RETRY_BUDGET_SECONDS" },
  { name: "WALE_LOG_DESTINATION" },
  { name: "WALE_SYSLOG_FACILITY" },
  { name: "WALD_SYSLOG_SOCKET", path: true },
];

const SWIFT_VARIABLES = [
  "SWIFT_AUTHURL",
  "SWIFT_USER",
  "SWIFT_TENANT",
  "SWIFT_REGION",
  "SWIFT_ENDPOINT_TYPE",
  "SWIFT_AUTH_VERSION",
  "SWIFT_DOMAIN_ID",
  "SWIFT_DOMAIN_NAME",
  "SWIFT_TENANT_ID",
  "SWIFT_USER_ID",
  "SWIFT_USER_DOMAIN_ID",
  "SWIFT_USER_DOMAIN_NAME",
  "SWIFT_PROJECT_ID",
  "SWIFT_PROJECT_NAME",
  "SWIFT_PROJECT_DOMAIN_ID",
  "SWIFT_PROJECT_DOMAIN_NAME",
];

/** The non-secret variables of each backend (src/config/resolve.ts, src/storage/s3_config.ts). */
const BACKEND_VARIABLES: Readonly<Record<string, readonly CarriedVariable[]>> = {
  s3: [
    { name: "AWS_ACCESS_KEY_ID", overriddenBy: "awsAccessKeyId" },
    { name: "AWS_INSTANCE_PROFILE" },
    { name: "AWS_REGION" },
    { name: "WALE_S3_ENDPOINT" },
    { name: "WALE_S3_STORAGE_CLASS" },
    { name: "WALE_S3_SSE" },
    { name: "WALE_S3_SSE_KMS_ID" },
  ],
  wabs: [{ name: "WABS_ACCOUNT_NAME", overriddenBy: "wabsAccountName" }],
  gs: [{ name: "GOOGLE_APPLICATION_CREDENTIALS", path: true }],
  swift: SWIFT_VARIABLES.map((name) => ({ name })),
  file: [],
};

/** The secret variables each backend uses (SECRET_ENV_VARS; PGPASSWORD is backup-push's). */
const BACKEND_SECRETS: Readonly<Record<string, readonly string[]>> = {
  s3: ["AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"],
  wabs: ["WABS_ACCESS_KEY", "WABS_SAS_TOKEN"],
  swift: ["SWIFT_PASSWORD"],
};

/**
 * Every variable a restore_command may carry (any backend), and every secret it never carries:
 * together with the prefix variables, what the configuration reads (a test pins this to what
 * src/config and src/storage really read, so a new variable cannot be forgotten here).
 */
export function recoveryVariableNames(): { carried: string[]; secrets: string[] } {
  const carried = [...Object.values(BACKEND_VARIABLES).flat(), ...COMMON_VARIABLES];
  return {
    carried: carried.map((variable) => variable.name),
    secrets: Object.values(BACKEND_SECRETS).flat(),
  };
}

const SHELL_SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** `word` as one `/bin/sh` word: as is when it has no special character, else single-quoted. */
export function shellQuote(word: string): string {
  if (SHELL_SAFE.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * The `restore_command` that runs this wal-d (`self`) with this configuration:
 * `[env NAME=value ...] <self> <global options> wal-fetch "%f" "%p"`, for `/bin/sh -c` (how
 * PostgreSQL runs it) with every `%` of the configuration written `%%` (PostgreSQL expands `%f`,
 * `%p`, `%r` and `%%`).
 *
 * - The global options (`globalArguments`) are repeated; an env dir, from `--env-dir` or
 *   `WALD_ENV_DIR`, is passed as `--env-dir=<absolute path>`, and the variables it defines (or
 *   unsets) are left to it.
 * - Every other variable wal-d reads for the configured backend (the prefix variable that
 *   supplied the prefix, `AWS_REGION`, `WALE_S3_ENDPOINT`, `WABS_ACCOUNT_NAME`, `SWIFT_*`,
 *   `WALE_GPG_KEY_ID`, `WALE_LOG_DESTINATION`, `WALE_RETRIES`, ...) that is set and non-empty is
 *   written as an `env` assignment, paths made absolute (PostgreSQL runs the command in PGDATA).
 *   A variable the matching global option overrides is left out.
 * - Secrets are never written. When the configuration uses one from the process environment
 *   (not from the env dir), a warning names it (never its value): the server needs it in its
 *   own environment, or an env dir.
 *
 * Throws {@linkcode UserError} when no storage prefix is configured, or when a carried value
 * holds a line break or NUL (a configuration file value cannot).
 */
export function restoreCommandFor(
  globals: GlobalOptions,
  env: EffectiveEnvironment,
  options: RestoreCommandOptions = {},
): RestoreCommand {
  const envDir = globals.envDir || env.getNonEmpty("WALD_ENV_DIR") || null;
  const overlay: EnvDirOverlay = options.envDirOverlay ??
    (envDir === null ? new Map() : readEnvDir(envDir));
  const fromEnvDir = (name: string) => overlay.has(name);

  const selected = selectPrefixUrl(globals, (name) => env.get(name));
  if (selected === null) throw new UserError("no storage prefix defined", { hint: NO_PREFIX_HINT });
  const scheme = splitUrl(selected.url).scheme;

  const assignments: string[] = [];
  const carry = (name: string, value: string) => {
    checkOneLine(name, value);
    assignments.push(`${name}=${shellQuote(value)}`);
  };
  if (!selected.source.startsWith("--") && !fromEnvDir(selected.source)) {
    carry(selected.source, selected.url);
  }
  for (const variable of [...(BACKEND_VARIABLES[scheme] ?? []), ...COMMON_VARIABLES]) {
    const value = env.getNonEmpty(variable.name);
    if (value === null || fromEnvDir(variable.name)) continue;
    if (variable.overriddenBy !== undefined && globals[variable.overriddenBy]) continue;
    carry(variable.name, variable.path && !isAbsolute(value) ? resolve(value) : value);
  }

  const instanceProfile = globals.awsInstanceProfile ||
    parseInstanceProfileEnv(env.get("AWS_INSTANCE_PROFILE"));
  const missing = scheme === "s3" && instanceProfile
    ? []
    : (BACKEND_SECRETS[scheme] ?? []).filter((name) =>
      env.getNonEmpty(name) !== null && !fromEnvDir(name)
    );
  const warnings = missing.length === 0 ? [] : [
    `restore_command does not carry ${missing.join(", ")}: secrets are never written to files; ` +
    `give the PostgreSQL server ${missing.length === 1 ? "that variable" : "those variables"}, ` +
    `or use --env-dir`,
  ];

  const self = options.self ?? commandForOthers();
  const globalArgs = globalArguments({
    ...globals,
    envDir: envDir === null ? undefined : resolve(envDir),
  });
  for (const arg of [...self, ...globalArgs]) checkOneLine("a command-line argument", arg);
  // `env` would take a program path holding "=" for one more assignment; the shell's own
  // `NAME=value command` form has no such limit (and needs no env program).
  const prefix = assignments.length === 0 ? [] : self[0].includes("=") ? [] : ["env"];
  const words = [...prefix, ...assignments, ...[...self, ...globalArgs].map(shellQuote)];
  const command = `${words.join(" ").replaceAll("%", "%%")} wal-fetch "%f" "%p"`;
  return { command, warnings };
}

function checkOneLine(what: string, value: string): void {
  // deno-lint-ignore no-control-regex
  if (/[\n\r\x00]/.test(value)) {
    throw new UserError(`${what} contains a line break or NUL; restore_command cannot carry it`, {
      hint: "Remove the line break from the value, or give wal-d its configuration in an " +
        "--env-dir, which restore_command passes on instead of copying.",
    });
  }
}

// ---------------------------------------------------------------------------------------------
// postgresql.auto.conf

/** The file the settings go to, in PGDATA. */
export const AUTO_CONF = "postgresql.auto.conf";
/** The file that makes PostgreSQL start in targeted recovery, in PGDATA. */
export const RECOVERY_SIGNAL = "recovery.signal";
/** The start of the comment line above the settings wal-d writes. */
export const RECOVERY_COMMENT = "# recovery settings written by wal-d backup-fetch";

/**
 * The value that gives each recovery setting its default, written over a value
 * `postgresql.conf` sets (see {@linkcode writeRecoveryConfig}).
 */
export const RECOVERY_DEFAULTS: Readonly<Record<string, string>> = {
  restore_command: "",
  recovery_target: "",
  recovery_target_time: "",
  recovery_target_lsn: "",
  recovery_target_name: "",
  recovery_target_xid: "",
  recovery_target_inclusive: "on",
  recovery_target_timeline: "latest",
  recovery_target_action: "pause",
};

/** Whether wal-d owns the setting `name`: `restore_command` and every `recovery_target*`. */
export function isManagedSetting(name: string): boolean {
  const lower = name.toLowerCase();
  return lower === "restore_command" || lower.startsWith("recovery_target");
}

const SETTING_LINE = new RegExp(
  "^\\s*(?<name>[A-Za-z_][A-Za-z0-9_$]*(?:\\.[A-Za-z_][A-Za-z0-9_$]*)?)\\s*=?\\s*" +
    "(?<value>'(?:[^'\\\\\\n]|\\\\.|'')*'|[^\\s#'=]+)\\s*(?:#.*)?$",
);

/**
 * One line of a PostgreSQL configuration file as PostgreSQL's parser (guc-file.l) reads it:
 * `name = 'value'`, `name='value'`, `name value`, `name = value`, an optional trailing comment;
 * `null` for blank and comment lines and for anything else. Names are returned as written (they
 * are case-insensitive); quoted values are unescaped (`''` and `\'` are a quote, `\\` a
 * backslash, `\n` `\t` `\r` `\b` `\f` and octal `\ooo` the characters they name, `\x` is `x`).
 */
export function parseSettingLine(line: string): Setting | null {
  const groups = SETTING_LINE.exec(line)?.groups;
  if (groups === undefined) return null;
  const raw = groups.value;
  return [groups.name, raw.startsWith("'") ? unquoteConfigValue(raw) : raw];
}

/** The settings of a configuration file's text, in order (later ones win in PostgreSQL). */
export function parseSettings(text: string): Setting[] {
  return text.split(/\r?\n/).map(parseSettingLine).filter((s): s is Setting => s !== null);
}

const ESCAPES: Readonly<Record<string, string>> = {
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

/** PostgreSQL's `DeescapeQuotedString`: a quoted configuration value's text. */
function unquoteConfigValue(quoted: string): string {
  const body = quoted.slice(1, -1);
  let out = "";
  for (let i = 0; i < body.length; i++) {
    const char = body[i];
    if (char === "\\" && i + 1 < body.length) {
      const next = body[++i];
      const octal = /^[0-7]{1,3}/.exec(body.slice(i))?.[0];
      if (octal !== undefined) {
        out += String.fromCharCode(Number.parseInt(octal, 8));
        i += octal.length - 1;
      } else out += ESCAPES[next] ?? next;
    } else if (char === "'" && body[i + 1] === "'") {
      out += "'";
      i++;
    } else out += char;
  }
  return out;
}

/**
 * `value` as a quoted configuration file value, as ALTER SYSTEM writes it: single quotes and
 * backslashes doubled. Throws a `RangeError` for a line break or NUL, which no configuration
 * value can hold (ALTER SYSTEM refuses them too).
 */
export function quoteConfigValue(value: string): string {
  // deno-lint-ignore no-control-regex
  if (/[\n\r\x00]/.test(value)) {
    throw new RangeError("a configuration value cannot contain a line break or NUL");
  }
  return `'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

/** Options of {@linkcode writeRecoveryConfig}. */
export interface RecoveryConfigOptions {
  /**
   * Give both files to this user and group (a restore run as root for the postgres user).
   * Default: when running as root, the owner of `pgdata` (PostgreSQL requires its data directory
   * to belong to the server's user, and cannot read a root-owned 0600 file); otherwise none.
   */
  owner?: { uid: number; gid: number };
  /** The time in the comment line; default now. */
  now?: Date;
}

/**
 * Writes the recovery settings into `PGDATA/postgresql.auto.conf` and creates
 * `PGDATA/recovery.signal`.
 *
 * The existing auto.conf (if any) is kept line for line, except assignments of the settings wal-d
 * manages ({@linkcode isManagedSetting}: a restored auto.conf from an earlier point-in-time
 * recovery must not leave a second target, which PostgreSQL refuses) and of any other setting
 * being written, and the comment lines of an earlier run. Then come the comment line
 * `# recovery settings written by wal-d backup-fetch <ISO time>` and one `name = 'value'` line
 * per setting. When `PGDATA/postgresql.conf` itself sets one of the recovery settings (a
 * configuration kept from an earlier point-in-time recovery) and `settings` does not, a line
 * setting it back to its default ({@linkcode RECOVERY_DEFAULTS}; `''` for the targets) comes
 * first: auto.conf is read last, so the request alone decides, and a target left in
 * postgresql.conf cannot make two. (First, because PostgreSQL's check for a second target runs
 * even when a target setting is assigned `''`; files that postgresql.conf includes are not read.)
 *
 * Both files are written to a temporary name, mode 0600 (and owner) set, fsynced, renamed into
 * place, the directory fsynced: auto.conf first, recovery.signal (empty) last, so a crash never
 * leaves the signal without the settings.
 *
 * Throws a `RangeError` for a setting name that is not a plain lower-case identifier or a value
 * with a line break; file errors propagate.
 */
export async function writeRecoveryConfig(
  pgdata: string,
  settings: readonly Setting[],
  options: RecoveryConfigOptions = {},
): Promise<void> {
  const names = new Set<string>();
  const lines: string[] = [];
  for (const [name, value] of settings) {
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new RangeError(`invalid setting name "${name}"`);
    names.add(name);
    lines.push(`${name} = ${quoteConfigValue(value)}`);
  }
  const overridden = new Map<string, string>();
  const resets: string[] = [];
  for (const [name, value] of parseSettings(await readIfExists(join(pgdata, "postgresql.conf")))) {
    const key = name.toLowerCase();
    if (key in RECOVERY_DEFAULTS && !names.has(key)) overridden.set(key, value);
  }
  for (const [key, value] of overridden) {
    if (value === RECOVERY_DEFAULTS[key]) continue;
    names.add(key);
    resets.push(`${key} = ${quoteConfigValue(RECOVERY_DEFAULTS[key])}`);
  }
  const path = join(pgdata, AUTO_CONF);
  const existingInfo = lstatOrNull(path);
  if (existingInfo !== null && !existingInfo.isFile) {
    // Read through a link, it would copy a file from outside the data directory into it.
    throw new UserError(
      `${path} is not a regular file; wal-d does not write recovery settings through it`,
      {
        hint:
          "Remove it (PostgreSQL recreates postgresql.auto.conf), then run backup-fetch again, " +
          "or write the recovery settings yourself.",
      },
    );
  }
  const existing = await readIfExists(path);
  const kept = existing.split("\n");
  if (kept.at(-1) === "") kept.pop();
  const text = [
    ...kept.filter((line) => {
      if (line.startsWith(RECOVERY_COMMENT)) return false;
      const setting = parseSettingLine(line);
      if (setting === null) return true;
      const name = setting[0].toLowerCase();
      return !isManagedSetting(name) && !names.has(name);
    }),
    `${RECOVERY_COMMENT} ${(options.now ?? new Date()).toISOString()}`,
    ...resets,
    ...lines,
  ].join("\n") + "\n";
  let owner = options.owner;
  if (owner === undefined && Deno.uid() === 0) {
    const info = await Deno.stat(pgdata);
    if (info.uid !== null && info.gid !== null) owner = { uid: info.uid, gid: info.gid };
  }
  // auto.conf first, recovery.signal last: a crash never leaves the signal without the settings.
  await writeFileAtomic(path, new TextEncoder().encode(text), { mode: 0o600, owner });
  await writeFileAtomic(join(pgdata, RECOVERY_SIGNAL), new Uint8Array(0), { mode: 0o600, owner });
}

/** The file's text, or `""` when it does not exist. */
async function readIfExists(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "";
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Choosing the backup

/** The timeline the backup ends on (its stop segment's; the name's when the sentinel is unread). */
export function backupTimeline(entry: BackupEntry): number {
  const segment = entry.detail?.walSegmentBackupStop ?? entry.startSegment;
  return Math.max(
    Number.parseInt(entry.startSegment.slice(0, 8), 16),
    Number.parseInt(segment.slice(0, 8), 16),
  );
}

/**
 * Where the backup's WAL ends: the sentinel's `backup_stop_lsn` (wal-d), else WAL-E's stop
 * segment and decimal offset, read with the sentinel's `wal_segment_size` or 16 MiB. An offset
 * of 0 means the segment boundary after the named segment (PostgreSQL's `pg_walfile_name_offset`
 * names the previous segment there). `null` without a readable sentinel, or for an offset that
 * is not decimal or not within the segment.
 */
export function backupStopLsn(entry: BackupEntry): Lsn | null {
  const sentinel = entry.detail;
  if (sentinel === undefined) return null;
  if (sentinel.backupStopLsn !== undefined) return sentinel.backupStopLsn;
  const size = sentinel.walSegmentSize ?? DEFAULT_WAL_SEGMENT_SIZE;
  if (!/^[0-9]{8}$/.test(sentinel.walSegmentOffsetBackupStop)) return null;
  const offset = BigInt(sentinel.walSegmentOffsetBackupStop);
  if (offset >= BigInt(size)) return null;
  let segNo: bigint;
  try {
    segNo = parseSegmentName(sentinel.walSegmentBackupStop, size).segNo;
  } catch {
    return null;
  }
  return offset === 0n ? (segNo + 1n) * BigInt(size) : segNo * BigInt(size) + offset;
}

/**
 * When the backup ended, at the latest: the sentinel's `finish_time` (wal-d), else the time the
 * sentinel object was stored (WAL-E uploads it after the backup stopped). `null` without a
 * readable sentinel (such a backup cannot be restored).
 */
export function backupEndTime(entry: BackupEntry): Date | null {
  if (entry.detail === undefined) return null;
  return entry.detail.finishTime ?? entry.lastModified;
}

/** Where a backup ends, measured the way `target` is, as text; `null` when unknown. */
function endFor(entry: BackupEntry, target: RecoveryTarget): { at: bigint; text: string } | null {
  if (target.kind === "time") {
    const time = backupEndTime(entry);
    return time === null ? null : { at: BigInt(time.getTime()), text: time.toISOString() };
  }
  if (target.kind === "lsn") {
    const lsn = backupStopLsn(entry);
    return lsn === null ? null : { at: lsn, text: `LSN ${formatLsn(lsn)}` };
  }
  return null;
}

function targetPosition(target: RecoveryTarget & { kind: "time" | "lsn" }): bigint {
  return target.kind === "time" ? BigInt(target.time.getTime()) : target.lsn;
}

/**
 * Whether {@linkcode chooseBackup} needs every backup's sentinel for `request`: only a time or
 * LSN target, or a numeric timeline, is measured against where backups end.
 */
export function needsEveryBackup(request: RecoveryRequest | null): request is RecoveryRequest {
  return request !== null &&
    (request.target.kind === "time" || request.target.kind === "lsn" ||
      typeof request.timeline === "number");
}

/**
 * The backup to restore for `request` (`null`: a plain restore), given the listed backups with
 * their sentinels loaded (`listBackups(store, { detail: true })`) and the query (`LATEST` or an
 * exact backup name).
 *
 * - `LATEST` with a `time` target: the backup with the greatest start position (as `LATEST`
 *   means) among those that end at or before the target time ({@linkcode backupEndTime}); with
 *   an `lsn` target, among those whose stop LSN is at or before it ({@linkcode backupStopLsn}).
 *   Backups whose sentinel could not be read are never chosen for these. With any other target
 *   (`end`, `immediate`, `name`, `xid`: wal-d cannot tell where they lie), the `LATEST` backup.
 * - A numeric target timeline `T` excludes backups that end on a timeline above `T`.
 * - A backup name: that backup, checked against the timeline and the time or LSN target.
 *
 * Throws {@linkcode UserError}: WAL-E's `invalid backup query submitted`; `no backups found`;
 * `no backup named "…" found`; `no backup ends before <target>` (the hint names the backup that
 * ends first); a named backup that ends after the target, or on a later timeline.
 */
export function chooseBackup(
  entries: readonly BackupEntry[],
  request: RecoveryRequest | null,
  query: string,
): BackupEntry {
  if (query !== LATEST && !BASE_BACKUP_REGEXP.test(query)) throw invalidQuery(query);
  if (entries.length === 0) throw noBackupsFound("in the store");
  const target = request?.target ?? { kind: "end" };
  const timeline = typeof request?.timeline === "number" ? request.timeline : null;
  const positional = target.kind === "time" || target.kind === "lsn" ? target : null;

  if (query !== LATEST) {
    const entry = entries.find((e) => e.name === query);
    if (entry === undefined) throw noBackupNamed(query);
    if (timeline !== null && backupTimeline(entry) > timeline) {
      throw new UserError(
        `backup ${entry.name} ends on timeline ${backupTimeline(entry)}, after the target ` +
          `timeline ${timeline}`,
        { hint: "Choose a backup taken on that timeline or an earlier one, or LATEST." },
      );
    }
    if (positional !== null) {
      const end = endFor(entry, positional);
      if (end === null) {
        throw new UserError(`cannot tell where backup ${entry.name} ends`, {
          detail: "Its sentinel could not be read (see the warning above).",
          hint: "Choose another backup, or LATEST.",
        });
      }
      if (end.at > targetPosition(positional)) {
        throw new UserError(
          `backup ${entry.name} ends at ${end.text}, after the recovery target ` +
            describeTarget(positional),
          {
            hint: "Choose a backup that ends before the target (wal-d backup-list --detail), " +
              "or LATEST to let wal-d choose one.",
          },
        );
      }
    }
    return entry;
  }

  const onTimeline = timeline === null
    ? entries
    : entries.filter((entry) => backupTimeline(entry) <= timeline);
  if (onTimeline.length === 0) {
    throw new UserError(`no backup is on timeline ${timeline} or an earlier one`, {
      detail: `Every backup ends on a later timeline than --target-timeline ${timeline}.`,
      hint: "Give a later --target-timeline, or latest.",
    });
  }
  if (positional === null) return latestBackup(onTimeline)!;
  const position = targetPosition(positional);
  const ends = onTimeline.flatMap((entry) => {
    const end = endFor(entry, positional);
    return end === null ? [] : [{ entry, end }];
  });
  const chosen = latestBackup(ends.filter(({ end }) => end.at <= position).map((e) => e.entry));
  if (chosen !== null) return chosen;
  const first = ends.reduce<(typeof ends)[number] | null>(
    (best, e) => best === null || e.end.at < best.end.at ? e : best,
    null,
  );
  throw new UserError(`no backup ends before ${describeTarget(positional)}`, {
    hint: first === null
      ? "No backup's sentinel could be read (see the warnings above); take a new backup."
      : `The first backup to end is ${first.entry.name}, at ${first.end.text}; give a later ` +
        `target, or take backups more often.`,
  });
}
