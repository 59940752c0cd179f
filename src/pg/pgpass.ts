/**
 * libpq's password file (`~/.pgpass`, or the file `PGPASSFILE` names), read as libpq reads it.
 *
 * - One entry a line: `hostname:port:database:username:password`. Lines starting with `#` are
 *   comments; empty lines are skipped; a trailing `\r` is dropped.
 * - In the first four fields, `*` on its own matches anything; `\:` and `\\` stand for `:` and
 *   `\` (and `\x` for `x` generally). A line with fewer than four unescaped `:` never matches.
 * - The password is the rest of the line up to the next unescaped `:` (later fields are ignored),
 *   with the same escapes removed.
 * - The first matching line wins. The port is compared as text (`5432`, not `05432`).
 * - The host compared is the connection's host name or address; for a unix-socket connection it is
 *   `localhost` when the socket directory is the default one (or no host was given), and the
 *   socket directory itself otherwise, as libpq does.
 * - The file is used only when it is a regular file with no group or world permissions (`0600` or
 *   stricter); otherwise it is ignored and {@linkcode PgpassLookup.ignoredReason} says why, for the
 *   caller to log (libpq prints a warning).
 *
 * @module
 */

import { join } from "../io/path.ts";

/** One usable line of a password file. A `null` field is `*` and matches anything. */
export interface PgpassEntry {
  /** 1-based line number in the file. */
  readonly line: number;
  readonly host: string | null;
  readonly port: string | null;
  readonly database: string | null;
  readonly user: string | null;
  /** The password, escapes removed. Never log it. */
  readonly password: string;
}

/** What a connection is matched on. */
export interface PgpassTarget {
  /**
   * The host string to match: a host name or address, `localhost` for a unix socket in the default
   * directory, or the socket directory (see {@linkcode pgpassHostFor}).
   */
  readonly host: string;
  readonly port: number | string;
  readonly database: string;
  readonly user: string;
}

/** The outcome of {@linkcode lookupPgpass}. */
export interface PgpassLookup {
  /** The password of the first matching entry, or `null`. */
  readonly password: string | null;
  /** The file consulted (whether or not it exists), or `null` when no path could be made. */
  readonly path: string | null;
  /** Line number of the matching entry. */
  readonly line: number | null;
  /**
   * Why the file was not used although it exists (group/world permissions, not a regular file,
   * unreadable); `null` when it was used or does not exist. Safe to log: names the path only.
   */
  readonly ignoredReason: string | null;
}

/** Something with environment variables, such as `Config.environment`. */
export interface PgpassEnvironment {
  get(name: string): string | undefined;
}

/**
 * Splits one field off `text` from `start`: returns the unescaped value, whether it was a lone
 * unescaped `*`, and the index after its terminating `:`, or `null` when no unescaped `:` follows.
 */
function takeField(
  text: string,
  start: number,
): { value: string; wildcard: boolean; next: number } | null {
  if (text[start] === "*" && text[start + 1] === ":") {
    return { value: "*", wildcard: true, next: start + 2 };
  }
  let value = "";
  for (let i = start; i < text.length; i++) {
    let ch = text[i];
    if (ch === "\\") {
      i++;
      if (i >= text.length) return null;
      ch = text[i];
    } else if (ch === ":") {
      return { value, wildcard: false, next: i + 1 };
    }
    value += ch;
  }
  return null;
}

/** The password field: up to the next unescaped `:` or the end, escapes removed. */
function takePassword(text: string, start: number): string {
  let value = "";
  for (let i = start; i < text.length; i++) {
    let ch = text[i];
    if (ch === ":") break;
    if (ch === "\\" && i + 1 < text.length) ch = text[++i];
    value += ch;
  }
  return value;
}

/**
 * Parses the text of a password file into its usable entries, in file order. Comments, empty
 * lines and lines with fewer than five fields are left out.
 */
export function parsePgpass(text: string): PgpassEntry[] {
  const entries: PgpassEntry[] = [];
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].replace(/\r$/, "");
    if (line.length === 0 || line.startsWith("#")) continue;
    const fields: (string | null)[] = [];
    let at = 0;
    for (let f = 0; f < 4; f++) {
      const field = takeField(line, at);
      if (field === null) break;
      fields.push(field.wildcard ? null : field.value);
      at = field.next;
    }
    if (fields.length < 4) continue;
    entries.push({
      line: n + 1,
      host: fields[0],
      port: fields[1],
      database: fields[2],
      user: fields[3],
      password: takePassword(line, at),
    });
  }
  return entries;
}

/** The first entry matching `target`, or `undefined`. */
export function matchPgpass(
  entries: readonly PgpassEntry[],
  target: PgpassTarget,
): PgpassEntry | undefined {
  const port = String(target.port);
  const fits = (field: string | null, value: string) => field === null || field === value;
  return entries.find((e) =>
    fits(e.host, target.host) && fits(e.port, port) && fits(e.database, target.database) &&
    fits(e.user, target.user)
  );
}

/**
 * The host string libpq matches password-file entries against: for a unix-socket connection,
 * `localhost` when `defaultSocketDir` (the socket directory is the default one, or no host was
 * given), else the socket directory; for TCP, the host name or address as given.
 */
export function pgpassHostFor(
  host: string,
  unixSocket: boolean,
  defaultSocketDir: boolean,
): string {
  if (host === "") return "localhost";
  return unixSocket && defaultSocketDir ? "localhost" : host;
}

/** `PGPASSFILE`, else `$HOME/.pgpass`; `null` when neither is set. */
export function pgpassPath(env: PgpassEnvironment): string | null {
  const explicit = env.get("PGPASSFILE");
  if (explicit) return explicit;
  const home = env.get("HOME");
  return home ? join(home, ".pgpass") : null;
}

/**
 * Looks `target` up in the password file of `env` (see {@linkcode pgpassPath}). A missing file is
 * not an error; a file with group or world permissions, or not a regular file, is ignored with a
 * reason. Synchronous: it runs once, before connecting.
 */
export function lookupPgpass(env: PgpassEnvironment, target: PgpassTarget): PgpassLookup {
  const path = pgpassPath(env);
  const none = (ignoredReason: string | null): PgpassLookup => ({
    password: null,
    path,
    line: null,
    ignoredReason,
  });
  if (path === null) return none(null);
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return none(null);
    }
    return none(`password file ${path} cannot be read: ${(error as Error).message}`);
  }
  if (!info.isFile) return none(`password file ${path} is not a plain file`);
  const mode = info.mode ?? 0;
  if ((mode & 0o077) !== 0) {
    return none(
      `password file ${path} has group or world access (mode ${
        (mode & 0o777).toString(8).padStart(4, "0")
      }); permissions should be u=rw (0600) or less`,
    );
  }
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    return none(`password file ${path} cannot be read: ${(error as Error).message}`);
  }
  const entry = matchPgpass(parsePgpass(text), target);
  return entry === undefined
    ? none(null)
    : { password: entry.password, path, line: entry.line, ignoredReason: null };
}
