/**
 * How wal-d starts another wal-d process (prefetch and push-ahead children): the same
 * executable, the same permissions and the same global options.
 *
 * @module
 */

import { basename, dirname, fromFileUrl, join } from "../io/path.ts";
import type { GlobalOptions } from "./types.ts";

/** Permission flags wal-d runs with; scripts/wal-d and the compile task use the same set. */
export const RUNTIME_PERMISSION_FLAGS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-sys",
  "--allow-run",
] as const;

/**
 * `deno run` arguments before the script, as scripts/wal-d passes them: quiet, no prompts, the
 * runtime permissions, and the project's deno.json (for its npm imports) when given.
 */
export function denoRunArguments(configPath?: string): string[] {
  return [
    "run",
    "--quiet",
    "--no-prompt",
    ...RUNTIME_PERMISSION_FLAGS,
    "--unstable-net",
    ...(configPath ? ["--config", configPath] : []),
  ];
}

/** The command that runs this wal-d again: the compiled binary, or `deno run ... mod.ts`. */
export function selfCommand(): string[] {
  const executable = Deno.execPath();
  if (!/^deno(\.exe)?$/.test(basename(executable))) return [executable];
  const main = fromFileUrl(Deno.mainModule);
  const config = join(dirname(main), "deno.json");
  let hasConfig = false;
  try {
    hasConfig = Deno.statSync(config).isFile;
  } catch {
    // running a copy without its deno.json
  }
  return [executable, ...denoRunArguments(hasConfig ? config : undefined), main];
}

/** Set by scripts/wal-d to its own path before it starts Deno. */
export const LAUNCHER_ENV_VAR = "WALD_LAUNCHER";

/**
 * The command another user's process (PostgreSQL's `restore_command`) should run: the launcher
 * script when wal-d was started through scripts/wal-d (it finds Deno on that user's PATH, or
 * through npx), else {@linkcode selfCommand} (the compiled binary, or this Deno and mod.ts).
 */
export function commandForOthers(): string[] {
  let launcher: string | undefined;
  try {
    launcher = Deno.env.get(LAUNCHER_ENV_VAR) || undefined;
  } catch {
    launcher = undefined;
  }
  if (launcher !== undefined && launcher.startsWith("/")) {
    try {
      if (Deno.statSync(launcher).isFile) return [launcher];
    } catch {
      // gone: fall back
    }
  }
  return selfCommand();
}

/**
 * Starts `wal-d <global options> <args>` detached: it outlives this process and holds none of its
 * pipes except, when `inheritStderr` is set, stderr (so its log lines reach the same log).
 * Returns false if it could not be started.
 */
export function spawnSelfDetached(
  globals: GlobalOptions,
  args: string[],
  inheritStderr: boolean,
): boolean {
  const command = selfCommand();
  try {
    const child = new Deno.Command(command[0], {
      args: [...command.slice(1), ...globalArguments(globals), ...args],
      stdin: "null",
      stdout: "null",
      stderr: inheritStderr ? "inherit" : "null",
    }).spawn();
    child.unref();
    return true;
  } catch {
    return false;
  }
}

/** The global options as command-line arguments (the environment carries the rest). */
export function globalArguments(globals: GlobalOptions): string[] {
  const args: string[] = [];
  const add = (flag: string, value: string | undefined) => {
    if (value !== undefined) args.push(`${flag}=${value}`);
  };
  add("--aws-access-key-id", globals.awsAccessKeyId);
  if (globals.awsInstanceProfile) args.push("--aws-instance-profile");
  add("--wabs-account-name", globals.wabsAccountName);
  add("--s3-prefix", globals.s3Prefix);
  add("--wabs-prefix", globals.wabsPrefix);
  add("--gs-prefix", globals.gsPrefix);
  add("--file-prefix", globals.filePrefix);
  add("--gpg-key-id", globals.gpgKeyId);
  if (globals.terse) args.push("--terse");
  add("--log-format", globals.logFormat);
  add("--env-dir", globals.envDir);
  return args;
}
