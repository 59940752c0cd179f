/**
 * The top-level runner: parse → (help | version | no subcommand) → effective environment →
 * logger → configuration → dispatch, and the mapping of failures to exit codes (spec §11):
 *
 * | exit | when |
 * |---|---|
 * | 0 | success, `version`, `--help` |
 * | 1 | {@link UserError} (logged at ERROR with MSG/DETAIL/HINT); unreadable envdir; a subcommand that is not implemented yet |
 * | 2 | usage errors (one `wal-d: error: …` line); `AWS_INSTANCE_PROFILE` invalid; any unexpected exception (logged at CRITICAL) |
 * | 127 | no subcommand while a prefix is configured (WAL-E's quirk); without a prefix: 2 |
 *
 * Only the parser, this file and the output writer (io/file_stream.ts) are loaded for `version`;
 * the config and log layers and each command are loaded with `await import()` when needed.
 */
import { COMMAND_LOADERS } from "./commands.ts";
import type { ConfiguredCommandName } from "./commands.ts";
import { UsageError, UserError } from "./errors.ts";
import { parseCommandLine } from "./parse.ts";
import type { CommandName, CommandSelection, GlobalOptions, Invocation } from "./types.ts";
import type { EffectiveEnvironment } from "../config/environment.ts";
import { writeAllSync } from "../io/file_stream.ts";
import type { EnvDirOverlay } from "../config/envdir.ts";
import type { Logger } from "../log/logger.ts";
import { WALD_VERSION } from "../version.ts";

/** Exit code when no subcommand is given but a prefix is configured (WAL-E). */
export const NO_SUBCOMMAND_WITH_PREFIX_EXIT_CODE = 127;

/** Exit code of unexpected exceptions. */
export const UNEXPECTED_ERROR_EXIT_CODE = 2;

/** Message of the CRITICAL record logged for unexpected exceptions (WAL-E's text). */
export const UNPROCESSED_EXCEPTION_MESSAGE =
  "An unprocessed exception has avoided all error handling";

/** Subcommands for which WAL-E does not log `starting WAL-E` (spec §10). */
const QUIET_START_COMMANDS: readonly CommandName[] = [
  "wal-push",
  "wal-fetch",
  "wal-prefetch",
  "wal-push-ahead",
];

/** Replaceable effects of the runner, for tests. Defaults use the real process. */
export interface RunnerDependencies {
  /** Subcommand loaders; default {@link COMMAND_LOADERS}. */
  readonly loaders?: typeof COMMAND_LOADERS;
  /** The process environment; default `Deno.env.toObject()`. */
  readonly processEnv?: () => Record<string, string>;
  /** Applies an envdir overlay to the process (so child processes see it); default `Deno.env`. */
  readonly applyEnvOverlay?: (overlay: EnvDirOverlay) => void;
  readonly writeStdout?: (text: string) => void;
  readonly writeStderr?: (text: string) => void;
  /** Log clock in epoch microseconds. */
  readonly clock?: () => number;
  /** Pid printed in log records. */
  readonly pid?: number;
}

const encoder = new TextEncoder();

/** Sets and unsets the envdir's variables in `Deno.env`, like `envdir` does before exec. */
export function applyEnvOverlayToProcess(overlay: EnvDirOverlay): void {
  for (const [name, value] of overlay) {
    if (value === null) Deno.env.delete(name);
    else Deno.env.set(name, value);
  }
}

/** The one stderr line of a {@link UsageError}. */
function usageLine(error: UsageError): string {
  return `wal-d: error: ${error.message.replaceAll("\n", " ")}\n`;
}

/** A pre-logger failure as one stderr line. */
function userErrorLine(error: UserError): string {
  const hint = error.hint === undefined ? "" : ` (${error.hint})`;
  return `wal-d: error: ${error.message}${hint}\n`.replaceAll(/\n(?!$)/g, " ");
}

async function loadEnvironment(
  globals: GlobalOptions,
  deps: RunnerDependencies,
): Promise<EffectiveEnvironment> {
  const { overlayEnvironment, readEnvDir, selectEnvDir } = await import("../config/envdir.ts");
  const processEnv = deps.processEnv?.() ?? Deno.env.toObject();
  const dir = selectEnvDir(globals.envDir, processEnv);
  const overlay: EnvDirOverlay = dir === null ? new Map() : readEnvDir(dir);
  if (overlay.size > 0) {
    try {
      (deps.applyEnvOverlay ?? applyEnvOverlayToProcess)(overlay);
    } catch (error) {
      throw new UserError(`cannot apply env dir "${dir}": ${String(error)}`, { cause: error });
    }
  }
  return overlayEnvironment(processEnv, overlay);
}

async function noSubcommand(
  globals: GlobalOptions,
  deps: RunnerDependencies,
  writeStderr: (text: string) => void,
): Promise<number> {
  const env = await loadEnvironment(globals, deps);
  const { selectPrefixUrl } = await import("../config/prefix.ts");
  const hasPrefix = selectPrefixUrl(globals, (name) => env.get(name)) !== null;
  writeStderr(
    "wal-d: error: no subcommand given " +
      "(usage: wal-d [GLOBAL OPTIONS] SUBCOMMAND [ARGUMENTS]; see wal-d --help)\n",
  );
  return hasPrefix ? NO_SUBCOMMAND_WITH_PREFIX_EXIT_CODE : 2;
}

function notImplemented(command: CommandName, loaders: typeof COMMAND_LOADERS): UserError {
  const implemented = ["version", ...Object.keys(loaders)].join(", ");
  return new UserError(`wal-d: ${command} is not implemented yet in this version`, {
    hint: `This build of wal-d implements: ${implemented}.`,
  });
}

async function runConfiguredCommand(
  selection: Exclude<CommandSelection, { command: "version" }>,
  globals: GlobalOptions,
  env: EffectiveEnvironment,
  log: Logger,
  loaders: typeof COMMAND_LOADERS,
): Promise<number> {
  const { resolveConfig, requirePrefix } = await import("../config/resolve.ts");
  const config = resolveConfig(globals, env);
  const prefix = requirePrefix(config);
  const command: ConfiguredCommandName = selection.command;
  const loader = loaders[command] as
    | (() => Promise<{ run(inv: Invocation, log: Logger): Promise<number> }>)
    | undefined;
  if (loader === undefined) throw notImplemented(command, loaders);
  if (!QUIET_START_COMMANDS.includes(command)) {
    const subcommand = selection.command === "delete"
      ? `delete ${selection.args.target.kind}`
      : command;
    log.info("starting WAL-E", { detail: `The subcommand is "${subcommand}".` });
  }
  const module = await loader();
  const invocation = { ...selection, globals, config, prefix } as Invocation;
  return await module.run(invocation, log);
}

function logFailure(log: Logger, error: unknown, writeStderr: (text: string) => void): number {
  if (error instanceof UsageError) {
    writeStderr(usageLine(error));
    return error.exitCode;
  }
  if (error instanceof UserError) {
    log.log(error.critical ? "CRITICAL" : "ERROR", error.message, {
      detail: error.detail,
      hint: error.hint,
    });
    return error.exitCode;
  }
  const detail = error instanceof Error ? (error.stack ?? String(error)) : String(error);
  log.critical(UNPROCESSED_EXCEPTION_MESSAGE, { detail });
  return UNEXPECTED_ERROR_EXIT_CODE;
}

/** Runs wal-d with `argv` (without the program name) and returns the exit code. */
export async function main(
  argv: readonly string[],
  deps: RunnerDependencies = {},
): Promise<number> {
  const writeStdout = deps.writeStdout ??
    ((text) => writeAllSync(Deno.stdout, encoder.encode(text)));
  const writeStderr = deps.writeStderr ??
    ((text) => writeAllSync(Deno.stderr, encoder.encode(text)));

  let env: EffectiveEnvironment;
  let globals: GlobalOptions;
  let selection: Exclude<CommandSelection, { command: "version" }>;
  try {
    const parsed = parseCommandLine(argv);
    if (parsed.kind === "help") {
      const { renderHelp } = await import("./usage.ts");
      writeStdout(renderHelp(parsed.command));
      return 0;
    }
    if (parsed.selection?.command === "version") {
      writeStdout(`${WALD_VERSION}\n`);
      return 0;
    }
    globals = parsed.globals;
    if (parsed.selection === null) return await noSubcommand(globals, deps, writeStderr);
    selection = parsed.selection;
    env = await loadEnvironment(globals, deps);
  } catch (error) {
    if (error instanceof UsageError) {
      writeStderr(usageLine(error));
      return error.exitCode;
    }
    if (error instanceof UserError) {
      writeStderr(userErrorLine(error));
      return error.exitCode;
    }
    // No logger yet: report the way WAL-E's CRITICAL record would, on stderr.
    const detail = error instanceof Error ? (error.stack ?? String(error)) : String(error);
    writeStderr(`wal-d: ${UNPROCESSED_EXCEPTION_MESSAGE}\n${detail}\n`);
    return UNEXPECTED_ERROR_EXIT_CODE;
  }

  const { createLogger } = await import("../log/logger.ts");
  const { resolveLogSettings } = await import("../config/resolve.ts");
  const log = await createLogger({
    settings: resolveLogSettings(globals, env),
    redact: env.secretValuesForRedaction(),
    tmpDir: env.getNonEmpty("TMPDIR"),
    clock: deps.clock,
    pid: deps.pid,
    writeStderr,
  });
  let exitCode: number;
  try {
    exitCode = await runConfiguredCommand(
      selection,
      globals,
      env,
      log,
      deps.loaders ?? COMMAND_LOADERS,
    );
  } catch (error) {
    exitCode = logFailure(log, error, writeStderr);
  }
  await log.flush();
  return exitCode;
}
