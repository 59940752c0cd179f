/** Help texts (`-h/--help`); loaded only when help is asked for. */
import type { OptionSpec } from "./options.ts";
import { COMMAND_SPECS, commandSynopsis, GLOBAL_OPTIONS } from "./options.ts";
import type { CommandName } from "./types.ts";
import { COMMAND_NAMES } from "./types.ts";
import { WALD_VERSION } from "../version.ts";

function optionLines(options: readonly OptionSpec[]): string[] {
  const rows = options.map((option) => {
    const names = option.short === undefined ? option.long : `${option.short}, ${option.long}`;
    const left = option.takesValue ? `${names} ${option.metavar ?? "VALUE"}` : names;
    return [left, option.help] as const;
  });
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, help]) => `  ${left.padEnd(width)}  ${help}`);
}

/** General help: subcommands, global options, secrets. */
export function generalHelp(): string {
  const width = Math.max(...COMMAND_NAMES.map((name) => name.length));
  return [
    "usage: wal-d [GLOBAL OPTIONS] SUBCOMMAND [OPTIONS] [ARGUMENTS]",
    "",
    `wal-d ${WALD_VERSION}: PostgreSQL WAL archiving and base backups, compatible with WAL-E.`,
    "",
    "Subcommands:",
    ...COMMAND_NAMES.map((name) => `  ${name.padEnd(width)}  ${COMMAND_SPECS[name].summary}`),
    "",
    "Global options (accepted before or after the subcommand):",
    ...optionLines(GLOBAL_OPTIONS),
    "",
    "Secrets are read from the environment only: AWS_SECRET_ACCESS_KEY, AWS_SECURITY_TOKEN,",
    "AWS_SESSION_TOKEN, WABS_ACCESS_KEY, WABS_SAS_TOKEN, SWIFT_PASSWORD.",
    "See 'wal-d SUBCOMMAND --help' for the options of a subcommand.",
    "",
  ].join("\n");
}

/** Help of one subcommand. */
export function commandHelp(command: CommandName): string {
  const spec = COMMAND_SPECS[command];
  const synopsis = commandSynopsis(command).replace(
    `wal-d ${command}`,
    spec.options.length > 0 ? `wal-d ${command} [OPTIONS]` : `wal-d ${command}`,
  );
  const lines = [`usage: ${synopsis}`, "", spec.summary, ""];
  if (spec.options.length > 0) lines.push("Options:", ...optionLines(spec.options), "");
  lines.push("Global options are accepted too; see 'wal-d --help'.", "");
  return lines.join("\n");
}

/** The help text for `command`, or the general help when `command` is `null`. */
export function renderHelp(command: CommandName | null): string {
  return command === null ? generalHelp() : commandHelp(command);
}
