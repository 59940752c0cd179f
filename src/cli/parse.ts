/**
 * Hand-written command-line parser (no dependency: start-up time matters).
 *
 * Differences from WAL-E's argparse, all in the direction of accepting more:
 * - global options are accepted before AND after the subcommand;
 * - `delete`'s options may also follow its target (`delete before X --confirm`).
 * Like argparse: `--flag value` and `--flag=value`, `-p 8` and `-p8`, unique prefixes of long
 * options (`--pool` for `--pool-size`), `--` ends option parsing, a value may not start with `-`
 * unless it is a negative number (use `--flag=-x`), and the last occurrence of an option wins.
 *
 * Every problem is a {@link UsageError} with one line of text. Flags that would carry a secret are
 * refused without repeating their value.
 */
import { UsageError } from "./errors.ts";
import type { CommandSpec, OptionSpec } from "./options.ts";
import {
  COMMAND_SPECS,
  commandSynopsis,
  DEFAULT_POOL_SIZES,
  DEFAULT_PREFETCH,
  DELETE_TARGETS,
  GLOBAL_OPTIONS,
  SECRET_FLAGS,
} from "./options.ts";
import type {
  CommandName,
  CommandSelection,
  DeleteArgs,
  DeleteTarget,
  GlobalOptions,
  LogFormat,
  ParsedCommandLine,
} from "./types.ts";
import { COMMAND_NAMES } from "./types.ts";
import { recoveryRequestFrom } from "./recovery_args.ts";

const NEGATIVE_NUMBER = /^-(\d+|\d*\.\d+)$/;

function looksLikeOption(token: string): boolean {
  return token.startsWith("-") && token !== "-" && !NEGATIVE_NUMBER.test(token);
}

function isCommandName(token: string): token is CommandName {
  return (COMMAND_NAMES as readonly string[]).includes(token);
}

const ALL_COMMAND_OPTIONS: readonly OptionSpec[] = Object.values(COMMAND_SPECS)
  .flatMap((spec) => spec.options);

/** The error for a flag that would put a secret into argv (the value is never repeated). */
export function secretFlagError(flag: string, envVar: string): UsageError {
  return new UsageError(
    `${flag} is not accepted: secrets on the command line are visible in process listings and ` +
      `pg_settings; set the ${envVar} environment variable instead (e.g. in an --env-dir)`,
  );
}

/** The secret flag that `name` (a long option name without `=value`) spells or abbreviates. */
function secretFlagNamed(name: string): string | null {
  if (name in SECRET_FLAGS) return name;
  if (name.length < 6) return null;
  const secrets = Object.keys(SECRET_FLAGS).filter((flag) => flag.startsWith(name));
  const known = [...GLOBAL_OPTIONS, ...ALL_COMMAND_OPTIONS].some((o) => o.long.startsWith(name));
  return secrets.length === 1 && !known ? secrets[0] : null;
}

/** Throws for the first secret-carrying flag in `argv` (before `--`). */
function rejectSecretFlags(argv: readonly string[]): void {
  for (const token of argv) {
    if (token === "--") return;
    if (!token.startsWith("--")) continue;
    const name = token.split("=", 1)[0];
    const flag = secretFlagNamed(name);
    if (flag !== null) throw secretFlagError(flag, SECRET_FLAGS[flag]);
  }
}

function optionDisplay(spec: OptionSpec): string {
  return spec.short === undefined ? spec.long : `${spec.short}/${spec.long}`;
}

function resolveLongOption(name: string, candidates: readonly OptionSpec[]): OptionSpec | null {
  const exact = candidates.find((spec) => spec.long === name);
  if (exact !== undefined) return exact;
  if (name.length <= 2) return null;
  const matches = candidates.filter((spec) => spec.long.startsWith(name));
  if (matches.length > 1) {
    const longs = [...new Set(matches.map((spec) => spec.long))];
    if (longs.length > 1) {
      throw new UsageError(`ambiguous option ${name} (could be ${longs.join(", ")})`);
    }
  }
  return matches[0] ?? null;
}

function unknownOptionError(
  name: string,
  command: CommandName | null,
  resolveIn: (specs: readonly OptionSpec[]) => OptionSpec | null,
): UsageError {
  if (command === null) {
    const owners = Object.values(COMMAND_SPECS).filter((spec) => resolveIn(spec.options) !== null);
    if (owners.length > 0) {
      const example = owners[0].name;
      return new UsageError(
        `${name} is an option of ${owners.map((o) => o.name).join(", ")}; ` +
          `put it after the subcommand (e.g. wal-d ${example} ${name} ...)`,
      );
    }
    return new UsageError(`unknown option ${name} (see wal-d --help)`);
  }
  return new UsageError(`unknown option ${name} for ${command} (see wal-d ${command} --help)`);
}

/** Raw result of the token scan. */
interface ScanResult {
  command: CommandName | null;
  positionals: string[];
  /** Option values by long name; `true` for flags. */
  values: Map<string, string | true>;
  /** How each option was spelled, for messages. */
  spelled: Map<string, string>;
  help: boolean;
}

function scan(argv: readonly string[]): ScanResult {
  const result: ScanResult = {
    command: null,
    positionals: [],
    values: new Map(),
    spelled: new Map(),
    help: false,
  };
  const tokens = [...argv];
  let optionsEnded = false;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if (!optionsEnded && token === "--") {
      optionsEnded = true;
      continue;
    }
    if (optionsEnded || !looksLikeOption(token)) {
      if (result.command !== null) {
        result.positionals.push(token);
      } else if (isCommandName(token)) {
        result.command = token;
      } else {
        throw new UsageError(
          `unknown subcommand "${token}" (choose from ${COMMAND_NAMES.join(", ")})`,
        );
      }
      continue;
    }

    const candidates: readonly OptionSpec[] = result.command === null
      ? GLOBAL_OPTIONS
      : [...GLOBAL_OPTIONS, ...COMMAND_SPECS[result.command].options];
    let spec: OptionSpec | null;
    let name: string;
    let inlineValue: string | undefined;
    if (token.startsWith("--")) {
      const equals = token.indexOf("=");
      name = equals === -1 ? token : token.slice(0, equals);
      inlineValue = equals === -1 ? undefined : token.slice(equals + 1);
      spec = resolveLongOption(name, candidates);
      if (spec === null) {
        throw unknownOptionError(name, result.command, (specs) => resolveLongOption(name, specs));
      }
    } else {
      name = token.slice(0, 2);
      const rest = token.slice(2);
      spec = candidates.find((candidate) => candidate.short === name) ?? null;
      if (spec === null) {
        throw unknownOptionError(
          name,
          result.command,
          (specs) => specs.find((candidate) => candidate.short === name) ?? null,
        );
      }
      if (rest !== "") {
        if (spec.takesValue) inlineValue = rest;
        else tokens.splice(i + 1, 0, `-${rest}`); // combined flags: -nh
      }
    }

    if (spec.long === "--help") {
      result.help = true;
      return result;
    }
    let value: string | true = true;
    if (spec.takesValue) {
      if (inlineValue === undefined) {
        const next = tokens[i + 1];
        if (next === undefined || looksLikeOption(next) || next === "--") {
          throw new UsageError(
            `${optionDisplay(spec)} needs a value (e.g. ${spec.long} ${spec.metavar ?? "VALUE"}; ` +
              `use ${spec.long}=VALUE for a value starting with "-")`,
          );
        }
        value = next;
        i++;
      } else {
        value = inlineValue;
      }
    } else if (inlineValue !== undefined) {
      throw new UsageError(`${spec.long} takes no value`);
    }
    result.values.set(spec.long, value);
    result.spelled.set(spec.long, optionDisplay(spec));
  }
  return result;
}

function stringOption(values: Map<string, string | true>, long: string): string | undefined {
  const value = values.get(long);
  return typeof value === "string" ? value : undefined;
}

function flagOption(values: Map<string, string | true>, long: string): boolean {
  return values.get(long) === true;
}

/** Parses a decimal integer like Python's `int()` (sign and surrounding blanks allowed). */
export function parseIntegerArgument(
  what: string,
  value: string,
  minimum: number,
): number {
  const trimmed = value.trim();
  const parsed = /^[+-]?[0-9]+$/.test(trimmed) ? Number.parseInt(trimmed, 10) : Number.NaN;
  if (!Number.isSafeInteger(parsed) || parsed < minimum) {
    throw new UsageError(`${what} must be an integer >= ${minimum}, got "${value}"`);
  }
  return parsed;
}

function integerOption<T extends number | null>(
  scanResult: ScanResult,
  long: string,
  minimum: number,
  fallback: T,
): number | T {
  const value = stringOption(scanResult.values, long);
  if (value === undefined) return fallback;
  return parseIntegerArgument(scanResult.spelled.get(long) ?? long, value, minimum);
}

function globalsFrom(values: Map<string, string | true>): GlobalOptions {
  if (values.has("--aws-access-key-id") && values.has("--aws-instance-profile")) {
    throw new UsageError(
      "--aws-instance-profile cannot be combined with -k/--aws-access-key-id (choose one)",
    );
  }
  const logFormat = stringOption(values, "--log-format");
  if (logFormat !== undefined && logFormat !== "text" && logFormat !== "json") {
    throw new UsageError(`--log-format must be text or json, got "${logFormat}"`);
  }
  return {
    awsAccessKeyId: stringOption(values, "--aws-access-key-id"),
    awsInstanceProfile: flagOption(values, "--aws-instance-profile"),
    gsAccessKeyId: stringOption(values, "--gs-access-key-id"),
    wabsAccountName: stringOption(values, "--wabs-account-name"),
    s3Prefix: stringOption(values, "--s3-prefix"),
    wabsPrefix: stringOption(values, "--wabs-prefix"),
    gsPrefix: stringOption(values, "--gs-prefix"),
    filePrefix: stringOption(values, "--file-prefix"),
    gpgKeyId: stringOption(values, "--gpg-key-id"),
    terse: flagOption(values, "--terse"),
    envDir: stringOption(values, "--env-dir"),
    logFormat: logFormat as LogFormat | undefined,
  };
}

/** Checks the positional count against the spec; returns them. */
function expectPositionals(spec: CommandSpec, positionals: readonly string[]): string[] {
  const required = spec.positionals.filter((p) => !p.optional);
  const synopsis = commandSynopsis(spec.name);
  if (positionals.length < required.length) {
    const names = required.map((p) => p.name);
    const list = names.length <= 2
      ? names.join(" and ")
      : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
    throw new UsageError(`${spec.name} needs ${list} (usage: ${synopsis})`);
  }
  if (positionals.length > spec.positionals.length) {
    const extra = positionals[spec.positionals.length];
    const what = spec.positionals.length === 0
      ? "takes no arguments"
      : `takes only ${spec.positionals.map((p) => p.name).join(" ")}`;
    throw new UsageError(
      `${spec.name} ${what}; unexpected extra argument "${extra}" (usage: ${synopsis})`,
    );
  }
  return [...positionals];
}

const DELETE_SYNOPSIS = "wal-d delete [--dry-run] [--confirm] before BEFORE_SEGMENT_EXCLUSIVE | " +
  "retain NUM_TO_RETAIN | old-versions | everything";

function deleteTargetFrom(positionals: readonly string[]): DeleteTarget {
  const [kind, ...rest] = positionals;
  if (kind === undefined) {
    throw new UsageError(
      `delete needs one of ${DELETE_TARGETS.join(", ")} (usage: ${DELETE_SYNOPSIS})`,
    );
  }
  const expect = (names: string[]) => {
    const synopsis = ["wal-d delete", kind, ...names].join(" ");
    if (rest.length < names.length) {
      throw new UsageError(`delete ${kind} needs ${names.join(" and ")} (usage: ${synopsis})`);
    }
    if (rest.length > names.length) {
      throw new UsageError(
        `delete ${kind} got an unexpected extra argument "${rest[names.length]}" ` +
          `(usage: ${synopsis})`,
      );
    }
  };
  switch (kind) {
    case "before":
      expect(["BEFORE_SEGMENT_EXCLUSIVE"]);
      return { kind, beforeSegmentExclusive: rest[0] };
    case "retain":
      expect(["NUM_TO_RETAIN"]);
      return { kind, numToRetain: parseIntegerArgument("NUM_TO_RETAIN", rest[0], 0) };
    case "old-versions":
    case "everything":
      expect([]);
      return { kind };
    default:
      throw new UsageError(
        `unknown delete subcommand "${kind}" (choose from ${DELETE_TARGETS.join(", ")})`,
      );
  }
}

function selectionFrom(scanResult: ScanResult, command: CommandName): CommandSelection {
  const spec = COMMAND_SPECS[command];
  const { values } = scanResult;
  switch (command) {
    case "version":
      expectPositionals(spec, scanResult.positionals);
      return { command, args: {} };
    case "backup-push": {
      const [pgClusterDirectory] = expectPositionals(spec, scanResult.positionals);
      return {
        command,
        args: {
          pgClusterDirectory,
          poolSize: integerOption(scanResult, "--pool-size", 1, DEFAULT_POOL_SIZES[command]),
          clusterReadRateLimit: integerOption(scanResult, "--cluster-read-rate-limit", 1, null),
          whileOffline: flagOption(values, "--while-offline"),
          fastCheckpoint: flagOption(values, "--fast-checkpoint"),
        },
      };
    }
    case "backup-fetch": {
      const [pgClusterDirectory, backupName] = expectPositionals(spec, scanResult.positionals);
      return {
        command,
        args: {
          pgClusterDirectory,
          backupName,
          poolSize: integerOption(scanResult, "--pool-size", 1, DEFAULT_POOL_SIZES[command]),
          blindRestore: flagOption(values, "--blind-restore"),
          restoreSpec: stringOption(values, "--restore-spec") ?? null,
          force: flagOption(values, "--force"),
          recovery: recoveryRequestFrom(values),
        },
      };
    }
    case "backup-list": {
      const [query] = expectPositionals(spec, scanResult.positionals);
      return {
        command,
        args: {
          query: query ?? null,
          detail: flagOption(values, "--detail"),
          json: flagOption(values, "--json"),
        },
      };
    }
    case "wal-push": {
      const [walSegment] = expectPositionals(spec, scanResult.positionals);
      return {
        command,
        args: {
          walSegment,
          poolSize: integerOption(scanResult, "--pool-size", 1, DEFAULT_POOL_SIZES[command]),
          markDone: flagOption(values, "--mark-done"),
        },
      };
    }
    case "wal-fetch": {
      const [walSegment, walDestination] = expectPositionals(spec, scanResult.positionals);
      return {
        command,
        args: {
          walSegment,
          walDestination,
          prefetch: integerOption(scanResult, "--prefetch", 0, DEFAULT_PREFETCH),
        },
      };
    }
    case "wal-push-ahead": {
      const [walDirectory] = expectPositionals(spec, scanResult.positionals);
      return {
        command,
        args: {
          walDirectory,
          poolSize: integerOption(scanResult, "--pool-size", 1, DEFAULT_POOL_SIZES["wal-push"]),
          markDone: flagOption(values, "--mark-done"),
          exclude: stringOption(values, "--exclude") ?? null,
          lockHeld: flagOption(values, "--lock-held"),
        },
      };
    }
    case "wal-prefetch": {
      const [baseDirectory, segment] = expectPositionals(spec, scanResult.positionals);
      return { command, args: { baseDirectory, segment } };
    }
    case "delete": {
      const dryRun = flagOption(values, "--dry-run");
      const confirm = flagOption(values, "--confirm");
      const args: DeleteArgs = {
        dryRun,
        confirm,
        performDeletion: confirm && !dryRun,
        target: deleteTargetFrom(scanResult.positionals),
      };
      return { command, args };
    }
  }
}

/**
 * Parses `argv` (without the program name). Throws {@link UsageError} for every problem.
 * No subcommand is not an error here: the runner decides (exit 127 or 2, spec §11).
 */
export function parseCommandLine(argv: readonly string[]): ParsedCommandLine {
  rejectSecretFlags(argv);
  const scanResult = scan(argv);
  if (scanResult.help) return { kind: "help", command: scanResult.command };
  const globals = globalsFrom(scanResult.values);
  const selection = scanResult.command === null
    ? null
    : selectionFrom(scanResult, scanResult.command);
  return { kind: "run", selection, globals };
}
