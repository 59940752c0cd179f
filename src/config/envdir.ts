/**
 * daemontools `envdir` semantics, applied in-process (`--env-dir DIR` or `WALD_ENV_DIR`).
 *
 * Exactly like daemontools' envdir.c:
 * - every directory entry is one variable, the file name being the variable name;
 * - names starting with `.` are skipped (envdir.c: `if (d->d_name[0] != '.')`), and so are names
 *   containing `=` (they cannot be environment variable names);
 * - the value is the file's first line (up to the first `\n`), with trailing spaces and tabs
 *   removed and every NUL byte turned into a newline;
 * - an EMPTY file (0 bytes) UNSETS the variable; a file holding just `\n` sets it to "".
 *
 * Errors: envdir exits 111 when the directory or an entry cannot be read. wal-d reports one line
 * (`wal-d: error: cannot read env dir …`) and exits 1 instead, like any other configuration error
 * (spec §11: 1 = user error). A dangling symlink in the directory is skipped.
 */
import { UserError } from "../cli/errors.ts";
import { EffectiveEnvironment } from "./environment.ts";
import { errorMessage } from "../io/error_message.ts";

/** Variables read from an envdir: a string sets the variable, `null` unsets it. */
export type EnvDirOverlay = ReadonlyMap<string, string | null>;

const NEWLINE = 0x0a;
const SPACE = 0x20;
const TAB = 0x09;
const NUL = 0x00;

/** The value an envdir file defines, or `null` when the file is empty (= unset). */
export function envDirValueFromBytes(bytes: Uint8Array): string | null {
  if (bytes.length === 0) return null;
  let end = bytes.indexOf(NEWLINE);
  if (end === -1) end = bytes.length;
  while (end > 0 && (bytes[end - 1] === SPACE || bytes[end - 1] === TAB)) end--;
  const line = bytes.slice(0, end);
  for (let i = 0; i < line.length; i++) if (line[i] === NUL) line[i] = NEWLINE;
  return new TextDecoder().decode(line);
}

/** Reads an envdir. Throws a {@link UserError} when the directory or an entry is unreadable. */
export function readEnvDir(dir: string): EnvDirOverlay {
  const overlay = new Map<string, string | null>();
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch (error) {
    throw new UserError(`cannot read env dir "${dir}": ${errorMessage(error)}`, {
      hint: "Point --env-dir or WALD_ENV_DIR at a readable directory with one file per variable.",
      cause: error,
    });
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const name = entry.name;
    if (name.startsWith(".") || name.includes("=")) continue;
    const path = `${dir.replace(/\/+$/, "")}/${name}`;
    let bytes: Uint8Array;
    try {
      bytes = Deno.readFileSync(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) continue;
      throw new UserError(`cannot read env dir entry "${path}": ${errorMessage(error)}`, {
        hint: "Every entry of an env dir must be a readable file named after its variable.",
        cause: error,
      });
    }
    overlay.set(name, envDirValueFromBytes(bytes));
  }
  return overlay;
}

/** `base` with the envdir `overlay` applied (set or unset). */
export function overlayEnvironment(
  base: Readonly<Record<string, string>>,
  overlay: EnvDirOverlay,
): EffectiveEnvironment {
  const vars = new Map(Object.entries(base));
  for (const [name, value] of overlay) {
    if (value === null) vars.delete(name);
    else vars.set(name, value);
  }
  return new EffectiveEnvironment(vars);
}

/** Where to find the envdir: `--env-dir` wins over `WALD_ENV_DIR`; empty values count as unset. */
export function selectEnvDir(
  envDirFlag: string | undefined,
  processEnv: Readonly<Record<string, string>>,
): string | null {
  if (envDirFlag !== undefined && envDirFlag !== "") return envDirFlag;
  const fromEnv = processEnv["WALD_ENV_DIR"];
  return fromEnv === undefined || fromEnv === "" ? null : fromEnv;
}

/** The process environment overlaid with the selected envdir, if any. */
export function loadEffectiveEnvironment(
  envDirFlag: string | undefined,
  processEnv: Readonly<Record<string, string>>,
): EffectiveEnvironment {
  const dir = selectEnvDir(envDirFlag, processEnv);
  return overlayEnvironment(processEnv, dir === null ? new Map() : readEnvDir(dir));
}
