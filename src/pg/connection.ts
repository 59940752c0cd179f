/**
 * Connecting to PostgreSQL the way libpq-based tools (psql, WAL-E's psql calls) do: settings from
 * the libpq environment variables, the password file, and one dedicated session through
 * postgres.js.
 *
 * Settings ({@linkcode connectionSettings}):
 *
 * - `PGHOST`: a value starting with `/` is a unix-socket directory, anything else a host name or
 *   address. Unset: the first of `/var/run/postgresql` and `/tmp` holding the socket for the port
 *   (`.s.PGSQL.<port>`), else TCP to `localhost`. One host only (libpq's lists are refused).
 * - `PGPORT` (default 5432), `PGUSER` (default: the OS user, from `USER`, `LOGNAME` or the
 *   password database), `PGDATABASE` (default `postgres`, which WAL-E hard-codes).
 * - `PGPASSWORD`, else the password file (see pgpass.ts). The password is kept in a
 *   {@linkcode Secret} and never appears in a message.
 * - `PGSSLMODE` (`disable`, `allow`, `prefer` (default), `require`, `verify-ca`, `verify-full`;
 *   `allow` behaves as `prefer`), `PGSSLROOTCERT` (default `~/.postgresql/root.crt` when it exists,
 *   else the system's CAs; `system` forces those). SSL is never used on a unix socket.
 * - `PGCONNECT_TIMEOUT` in seconds (libpq's minimum of 2 applies; 0 waits forever). Unset: 30
 *   seconds (libpq waits forever, which a backup run by cron should not).
 * - `PGAPPNAME` (default `wal-d`).
 *
 * The session ({@linkcode connect}): postgres.js with one connection (`max: 1`; a non-exclusive
 * backup must start and stop on the same session), no idle or lifetime limit (a backup session
 * stays idle for hours while files are uploaded), no prepared statements, no type fetching,
 * `statement_timeout = 0` as a startup parameter (WAL-E passes `--statement-timeout=0` to psql),
 * and notices routed to a callback instead of the console.
 *
 * @module
 */

import postgres from "postgres";
import { UserError } from "../cli/errors.ts";
import { Secret } from "../config/secret.ts";
import { dirname, join } from "../io/path.ts";
import { lookupPgpass, pgpassHostFor } from "./pgpass.ts";

/** Something holding environment variables, such as `Config.environment`. */
export interface ConnectionEnvironment {
  get(name: string): string | undefined;
}

/** libpq's `sslmode` values. */
export type SslMode = "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full";

/** The `sslmode` values, in libpq's order. */
export const SSL_MODES: readonly SslMode[] = Object.freeze([
  "disable",
  "allow",
  "prefer",
  "require",
  "verify-ca",
  "verify-full",
]);

/** Socket directories searched when `PGHOST` is unset, in order. */
export const DEFAULT_SOCKET_DIRS: readonly string[] = Object.freeze([
  "/var/run/postgresql",
  "/tmp",
]);

/** Default port. */
export const DEFAULT_PORT = 5432;

/** Database used when `PGDATABASE` is unset (WAL-E hard-codes `postgres`). */
export const DEFAULT_DATABASE = "postgres";

/** Default `application_name`. */
export const DEFAULT_APPLICATION_NAME = "wal-d";

/** Connect timeout used when `PGCONNECT_TIMEOUT` is unset, in seconds. */
export const DEFAULT_CONNECT_TIMEOUT_SECONDS = 30;

/** Where the host came from. */
export type HostSource = "override" | "PGHOST" | "default socket" | "default host";

/** Where the password came from (`null`: none). */
export type PasswordSource = "override" | "PGPASSWORD" | "password file";

/** Resolved connection settings. Safe to print: the password is a {@linkcode Secret}. */
export interface ConnectionSettings {
  /** The socket directory (unix socket) or the host name or address (TCP). */
  readonly host: string;
  /** `<host>/.s.PGSQL.<port>` for a unix socket, `null` for TCP. */
  readonly socketPath: string | null;
  readonly port: number;
  readonly user: string;
  readonly database: string;
  readonly password: Secret | null;
  readonly passwordSource: PasswordSource | null;
  /** The password file consulted or that would be (`PGPASSFILE` or `~/.pgpass`), if any. */
  readonly passwordFile: string | null;
  /** Line of the password file that gave the password. */
  readonly passwordFileLine: number | null;
  /** Requested SSL mode (not used on unix sockets). */
  readonly sslMode: SslMode;
  /** CA file for `verify-ca`/`verify-full`; `null` = the system's CAs. */
  readonly sslRootCert: string | null;
  /** Seconds; 0 = no limit. */
  readonly connectTimeoutSeconds: number;
  readonly applicationName: string;
  readonly hostSource: HostSource;
  /** The socket directories searched when `PGHOST` was unset (empty otherwise). */
  readonly searchedSocketDirs: readonly string[];
  /** Things the caller should log at WARNING (e.g. an ignored password file). No secrets. */
  readonly warnings: readonly string[];
}

/** Values that win over the environment (e.g. from the command line or a test). */
export interface ConnectionOverrides {
  host?: string;
  port?: number;
  user?: string;
  database?: string;
  /** A password; wins over `PGPASSWORD` and the password file. */
  password?: string;
  sslMode?: SslMode;
  connectTimeoutSeconds?: number;
  applicationName?: string;
  /** Socket directories to search when no host is given (default {@linkcode DEFAULT_SOCKET_DIRS}). */
  socketDirs?: readonly string[];
}

/** The unix socket file for a directory and port. */
export function socketPathFor(dir: string, port: number): string {
  return join(dir, `.s.PGSQL.${port}`);
}

function isSocket(path: string): boolean {
  try {
    return Deno.lstatSync(path).isSocket === true;
  } catch {
    return false;
  }
}

function parsePort(text: string, what: string): number {
  const port = /^\d{1,5}$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UserError(`${what}=${text} is not a port number`, {
      hint: `set ${what} to the server's port (1 to 65535; default ${DEFAULT_PORT})`,
    });
  }
  return port;
}

function parseTimeout(text: string): number {
  if (!/^\s*-?\d+\s*$/.test(text)) {
    throw new UserError(`PGCONNECT_TIMEOUT=${text} is not a number of seconds`, {
      hint: "set PGCONNECT_TIMEOUT to whole seconds (0 waits forever)",
    });
  }
  return clampTimeout(Number(text));
}

/** libpq: 0 or less waits forever; 1 is raised to 2. */
function clampTimeout(seconds: number): number {
  if (!(seconds > 0)) return 0;
  return Math.max(2, Math.ceil(seconds));
}

/** The OS user name: `USER`, `LOGNAME`, else the password database entry of the real uid. */
export function osUserName(env: ConnectionEnvironment): string | null {
  const fromEnv = env.get("USER") || env.get("LOGNAME");
  if (fromEnv) return fromEnv;
  let uid: number | null = null;
  try {
    uid = Deno.uid();
  } catch {
    return null;
  }
  if (uid === null) return null;
  try {
    for (const line of Deno.readTextFileSync("/etc/passwd").split("\n")) {
      const fields = line.split(":");
      if (fields.length >= 3 && Number(fields[2]) === uid && fields[2] !== "") return fields[0];
    }
  } catch { /* no passwd file */ }
  return null;
}

/**
 * Resolves libpq-style connection settings from `env` (the process environment merged with an
 * envdir, as `Config.environment`) and `overrides`. Reads the file system (socket discovery, the
 * password file) synchronously. Throws {@linkcode UserError} for unusable values.
 */
export function connectionSettings(
  env: ConnectionEnvironment,
  overrides: ConnectionOverrides = {},
): ConnectionSettings {
  const warnings: string[] = [];
  const port = overrides.port !== undefined
    ? parsePort(String(overrides.port), "port")
    : env.get("PGPORT")
    ? parsePort(env.get("PGPORT")!, "PGPORT")
    : DEFAULT_PORT;

  let host: string;
  let hostSource: HostSource;
  let searchedSocketDirs: readonly string[] = [];
  if (overrides.host) {
    host = overrides.host;
    hostSource = "override";
  } else if (env.get("PGHOST")) {
    host = env.get("PGHOST")!;
    hostSource = "PGHOST";
  } else {
    searchedSocketDirs = overrides.socketDirs ?? DEFAULT_SOCKET_DIRS;
    const found = searchedSocketDirs.find((dir) => isSocket(socketPathFor(dir, port)));
    host = found ?? "localhost";
    hostSource = found ? "default socket" : "default host";
  }
  if (host.includes(",")) {
    throw new UserError(`PGHOST lists several hosts (${host}); wal-d connects to one server`, {
      hint: "set PGHOST to the one server to back up (a socket directory or a host name)",
    });
  }
  if (host.length > 1 && host.startsWith("/") && host.endsWith("/")) {
    host = host.replace(/\/+$/, "");
  }
  const unixSocket = host.startsWith("/");
  const socketPath = unixSocket ? socketPathFor(host, port) : null;

  const user = overrides.user || env.get("PGUSER") || osUserName(env);
  if (!user) {
    throw new UserError("cannot tell which PostgreSQL role to connect as", {
      hint: "set PGUSER (or USER) to the role that takes the backups",
    });
  }
  const database = overrides.database || env.get("PGDATABASE") || DEFAULT_DATABASE;

  const sslText = overrides.sslMode ?? (env.get("PGSSLMODE") || "prefer");
  if (!(SSL_MODES as readonly string[]).includes(sslText)) {
    throw new UserError(`PGSSLMODE=${sslText} is not an SSL mode`, {
      hint: `set PGSSLMODE to one of ${SSL_MODES.join(", ")}`,
    });
  }
  const sslMode = sslText as SslMode;
  let sslRootCert: string | null = null;
  if (sslMode === "verify-ca" || sslMode === "verify-full") {
    const given = env.get("PGSSLROOTCERT");
    if (given && given !== "system") sslRootCert = given;
    else if (!given && env.get("HOME")) {
      const fallback = join(env.get("HOME")!, ".postgresql", "root.crt");
      try {
        if (Deno.statSync(fallback).isFile) sslRootCert = fallback;
      } catch { /* system CAs */ }
    }
  }

  const connectTimeoutSeconds = overrides.connectTimeoutSeconds !== undefined
    ? clampTimeout(overrides.connectTimeoutSeconds)
    : env.get("PGCONNECT_TIMEOUT")
    ? parseTimeout(env.get("PGCONNECT_TIMEOUT")!)
    : DEFAULT_CONNECT_TIMEOUT_SECONDS;
  const applicationName = overrides.applicationName ?? (env.get("PGAPPNAME") ||
    DEFAULT_APPLICATION_NAME);

  let password: Secret | null = null;
  let passwordSource: PasswordSource | null = null;
  let passwordFileLine: number | null = null;
  const isDefaultDir = hostSource === "default socket" ||
    (unixSocket && [...DEFAULT_SOCKET_DIRS, "/run/postgresql"].includes(host));
  const lookup = lookupPgpass(env, {
    host: pgpassHostFor(host, unixSocket, isDefaultDir),
    port,
    database,
    user,
  });
  if (overrides.password !== undefined && overrides.password !== "") {
    password = new Secret(overrides.password);
    passwordSource = "override";
  } else if (env.get("PGPASSWORD")) {
    password = new Secret(env.get("PGPASSWORD")!);
    passwordSource = "PGPASSWORD";
  } else {
    if (lookup.ignoredReason) warnings.push(lookup.ignoredReason);
    if (lookup.password !== null) {
      password = new Secret(lookup.password);
      passwordSource = "password file";
      passwordFileLine = lookup.line;
    }
  }

  return {
    host,
    socketPath,
    port,
    user,
    database,
    password,
    passwordSource,
    passwordFile: lookup.path,
    passwordFileLine,
    sslMode,
    sslRootCert,
    connectTimeoutSeconds,
    applicationName,
    hostSource,
    searchedSocketDirs,
    warnings,
  };
}

/** Where the settings point: `socket /dir/.s.PGSQL.5432` or `host:5432`. */
export function describeTarget(settings: ConnectionSettings): string {
  if (settings.socketPath) return `socket ${settings.socketPath}`;
  const host = settings.host.includes(":") ? `[${settings.host}]` : settings.host;
  return `${host}:${settings.port}`;
}

/** A NOTICE, WARNING, INFO... message the server sent on the session. */
export interface ServerNotice {
  /** `NOTICE`, `WARNING`, `INFO`, `LOG`, `DEBUG`. */
  readonly severity: string;
  /** SQLSTATE. */
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
}

/** Options of {@linkcode connect}. */
export interface ConnectOptions {
  /** Receives the server's notices (default: dropped). */
  onNotice?: (notice: ServerNotice) => void;
  /** Called whenever the connection closes, including after `end()`. */
  onClose?: () => void;
}

/** The postgres.js client {@linkcode connect} returns. */
export type PgClient = ReturnType<typeof postgres>;

function sslOption(settings: ConnectionSettings): boolean | string | Record<string, unknown> {
  if (settings.socketPath) return false;
  switch (settings.sslMode) {
    case "disable":
      return false;
    case "allow":
    case "prefer":
      return "prefer";
    case "require":
      return "require";
    case "verify-ca":
    case "verify-full": {
      const tls: Record<string, unknown> = { rejectUnauthorized: true };
      if (settings.sslRootCert) {
        try {
          tls.ca = Deno.readTextFileSync(settings.sslRootCert);
        } catch (error) {
          throw new UserError(
            `cannot read the SSL root certificate ${settings.sslRootCert}: ${
              (error as Error).message
            }`,
            { hint: "set PGSSLROOTCERT to a readable CA file (or `system`)" },
          );
        }
      }
      if (settings.sslMode === "verify-ca") tls.checkServerIdentity = () => undefined;
      return tls;
    }
  }
}

/** The postgres.js options for `settings`. */
function clientOptions(
  settings: ConnectionSettings,
  options: ConnectOptions,
): postgres.Options<Record<string, postgres.PostgresType>> {
  const password = settings.password;
  return {
    host: settings.socketPath ? undefined : settings.host,
    port: settings.port,
    path: settings.socketPath ?? undefined,
    user: settings.user,
    database: settings.database,
    // A function, so that postgres.js never falls back to its own reading of PGPASSWORD.
    password: () => password?.reveal() ?? "",
    ssl: sslOption(settings) as postgres.Options<Record<string, postgres.PostgresType>>["ssl"],
    max: 1,
    idle_timeout: 0,
    max_lifetime: 0,
    connect_timeout: settings.connectTimeoutSeconds,
    prepare: false,
    fetch_types: false,
    debug: false,
    onnotice: (notice) => {
      options.onNotice?.({
        severity: notice.severity ?? "NOTICE",
        code: notice.code ?? "",
        message: notice.message ?? "",
        ...(notice.detail ? { detail: notice.detail } : {}),
        ...(notice.hint ? { hint: notice.hint } : {}),
      });
    },
    onclose: () => options.onClose?.(),
    connection: {
      application_name: settings.applicationName,
      // A string: postgres.js drops falsy startup parameters, and 0 is what we need to send.
      statement_timeout: "0" as unknown as number,
    },
  };
}

/** `text` on one line: line breaks and the spaces around them become one space. */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

interface ErrorFields {
  code?: unknown;
  severity?: unknown;
  message?: unknown;
  detail?: unknown;
  hint?: unknown;
}

/** Whether `error` is an error the server sent (postgres.js `PostgresError`). */
export function isServerError(error: unknown): error is postgres.PostgresError {
  return error instanceof Error && error.name === "PostgresError" &&
    typeof (error as ErrorFields).code === "string";
}

function whereHint(settings: ConnectionSettings): string {
  return settings.hostSource === "default host" || settings.hostSource === "default socket"
    ? "start the server, or set PGHOST (its socket directory or host) and PGPORT to where it listens"
    : "start the server, or fix PGHOST and PGPORT (the server's socket directory or host, and port)";
}

function passwordHint(settings: ConnectionSettings): string {
  const file = settings.passwordFile ?? "~/.pgpass";
  switch (settings.passwordSource) {
    case null:
      return `the server wants a password and none was given: set PGPASSWORD, or add a line ` +
        `${settings.socketPath ? "localhost" : settings.host}:${settings.port}:` +
        `${settings.database}:${settings.user}:<password> to ${file} (mode 0600)`;
    case "PGPASSWORD":
      return "PGPASSWORD holds the wrong password for this role: correct it (or unset it to use " +
        `${file})`;
    case "password file":
      return `the password on line ${settings.passwordFileLine} of ${file} is wrong for this ` +
        "role: correct that line (or set PGPASSWORD)";
    case "override":
      return "the password given is wrong for this role";
  }
}

/**
 * The {@linkcode UserError} for a failure to connect with `settings`: one line naming the problem
 * and where, with a hint. Never includes the password.
 */
export function connectionError(error: unknown, settings: ConnectionSettings): UserError {
  const target = describeTarget(settings);
  const as = `as role "${settings.user}" to database "${settings.database}"`;
  if (error instanceof UserError) return error;
  const fields = (error ?? {}) as ErrorFields;
  const code = typeof fields.code === "string" ? fields.code : "";
  const serverMessage = oneLine(String(fields.message ?? error));
  const opts = (hint: string) => ({ hint, cause: error });

  if (isServerError(error)) {
    switch (code) {
      case "28P01":
        return new UserError(
          `password authentication failed for role "${settings.user}" at ${target}`,
          opts(passwordHint(settings)),
        );
      case "3D000":
        return new UserError(
          `database "${settings.database}" does not exist on the server at ${target}`,
          opts(`set PGDATABASE to an existing database (default ${DEFAULT_DATABASE})`),
        );
      case "28000":
        if (/^role ".*" does not exist$/.test(serverMessage)) {
          return new UserError(
            `role "${settings.user}" does not exist on the server at ${target}`,
            opts("set PGUSER to an existing role that may take backups (e.g. postgres)"),
          );
        }
        return new UserError(
          `the server at ${target} refused the connection ${as}: ${serverMessage}`,
          opts(
            "allow this connection in pg_hba.conf, or set PGHOST/PGUSER to one that is allowed",
          ),
        );
      case "57P03":
        return new UserError(
          `the server at ${target} does not accept connections yet: ${serverMessage}`,
          opts("wait until it has started (or finished recovery to a consistent state)"),
        );
      case "53300":
        return new UserError(
          `the server at ${target} has no free connection slot: ${serverMessage}`,
          opts("close idle sessions, or raise max_connections"),
        );
      default:
        return new UserError(
          `cannot connect ${as} at ${target}: ${serverMessage}`,
          opts(
            typeof fields.hint === "string"
              ? oneLine(fields.hint)
              : "check PGHOST, PGPORT, PGUSER and PGDATABASE",
          ),
        );
    }
  }

  const timeout = settings.connectTimeoutSeconds;
  switch (code) {
    case "ENOENT":
    case "ECONNREFUSED":
      if (settings.socketPath) {
        const dir = dirname(settings.socketPath);
        let dirExists = false;
        try {
          dirExists = Deno.statSync(dir).isDirectory;
        } catch { /* missing */ }
        return dirExists
          ? new UserError(
            `no PostgreSQL server is listening on ${target}`,
            opts(whereHint(settings)),
          )
          : new UserError(
            `the socket directory ${dir} does not exist (${target})`,
            opts("set PGHOST to the server's unix_socket_directories (or a host name)"),
          );
      }
      return new UserError(
        `no PostgreSQL server is listening on ${target}` +
          (settings.hostSource === "default host"
            ? ` (nor on a socket .s.PGSQL.${settings.port} in ${
              settings.searchedSocketDirs.join(" or ")
            })`
            : ""),
        opts(whereHint(settings)),
      );
    case "EACCES":
    case "EPERM":
      return new UserError(
        `permission denied connecting to ${target}`,
        opts("run wal-d as a user that may use the server's socket (e.g. the postgres user)"),
      );
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_NONAME":
      return new UserError(
        `cannot resolve the host name "${settings.host}" (PGHOST)`,
        opts("set PGHOST to a resolvable host name, an address, or a socket directory"),
      );
    case "CONNECT_TIMEOUT":
      return new UserError(
        `timed out after ${timeout} s connecting to ${target}`,
        opts("check that the server is up and reachable, or raise PGCONNECT_TIMEOUT"),
      );
    case "ETIMEDOUT":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return new UserError(
        `cannot reach ${target}: ${serverMessage}`,
        opts("check that the server is up and reachable, and PGHOST/PGPORT"),
      );
  }
  if (
    !settings.socketPath && settings.sslMode !== "disable" &&
    /TLS|SSL|certificate|secure/i.test(serverMessage)
  ) {
    return new UserError(
      `SSL connection to ${target} failed (PGSSLMODE=${settings.sslMode}): ${serverMessage}`,
      opts("check the server's ssl settings and certificates, or PGSSLMODE/PGSSLROOTCERT"),
    );
  }
  return new UserError(
    `cannot connect ${as} at ${target}: ${serverMessage}`,
    opts("check PGHOST, PGPORT, PGUSER and PGDATABASE"),
  );
}

/**
 * Opens one session with `settings` and checks it with a round trip; returns the postgres.js
 * client (one connection: every query runs on the same server session while it stays up).
 * Connection failures become a {@linkcode UserError} (see {@linkcode connectionError}). End the
 * client with `end()`.
 */
export async function connect(
  settings: ConnectionSettings,
  options: ConnectOptions = {},
): Promise<PgClient> {
  let sql: PgClient;
  try {
    sql = postgres(clientOptions(settings, options));
  } catch (error) {
    throw connectionError(error, settings);
  }
  try {
    await sql`SELECT 1`;
  } catch (error) {
    await sql.end({ timeout: 0 }).catch(() => {});
    throw connectionError(error, settings);
  }
  return sql;
}
