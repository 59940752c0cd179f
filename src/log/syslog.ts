/**
 * Syslog output like Python's `SysLogHandler` as WAL-E configures it (spec §10): each record is one
 * datagram `<PRI>` + the formatted text + NUL, no ident, sent to a unix datagram socket.
 *
 * Loaded with `await import()` only when a syslog socket exists. Needs Deno's `--unstable-net`
 * (`Deno.listenDatagram` with transport `unixpacket`): Deno cannot send from an unbound unix
 * datagram socket, so we bind one at a temporary path and unlink that path right away (the socket
 * stays usable for sending).
 *
 * Failures never print tracebacks: the first connect-type failure (refused, permission, missing
 * socket, API unavailable) prints `wal-d: Could not set up syslog, continuing anyway.  Reason: X`
 * once and turns syslog off; any other send error drops that one record silently.
 */
import type { LogLevelName } from "./levels.ts";
import { SYSLOG_SEVERITIES } from "./levels.ts";
import { errorMessage } from "../io/error_message.ts";

/** Python `SysLogHandler.facility_names` (3.11). */
export const SYSLOG_FACILITIES: Readonly<Record<string, number>> = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  ntp: 12,
  security: 13,
  console: 14,
  "solaris-cron": 15,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
};

/** Printed once when `WALE_SYSLOG_FACILITY` is not a facility name. */
export const INVALID_FACILITY_MESSAGE = "invalid syslog facility level specified";

/** Facility code of a name (case-insensitive), or `null` when the name is unknown. */
export function syslogFacilityCode(name: string): number | null {
  const code = SYSLOG_FACILITIES[name.toLowerCase()];
  return code === undefined ? null : code;
}

/** `<PRI>` value: facility * 8 + severity. */
export function syslogPriority(facility: number, level: LogLevelName): number {
  return facility * 8 + SYSLOG_SEVERITIES[level];
}

/** Options of {@link createSyslogSink}. */
export interface SyslogSinkOptions {
  /** The syslog daemon's socket, e.g. `/dev/log`. */
  readonly socketPath: string;
  /** `WALE_SYSLOG_FACILITY` as given. */
  readonly facilityName: string;
  /** Directory for the temporary client socket (`TMPDIR`); `/tmp` is the fallback. */
  readonly tmpDir?: string | null;
  /** Writes a line (with its newline) to stderr. */
  readonly writeStderr: (text: string) => void;
  /** Longest time `flush()` waits for pending datagrams, in ms. */
  readonly flushTimeoutMs?: number;
}

/** A live syslog destination. */
export interface SyslogSink {
  /** Queues one record (already rendered and redacted). */
  send(level: LogLevelName, text: string): void;
  /** Waits (bounded) until queued records are sent. */
  flush(): Promise<void>;
  /** Flushes, then releases the socket. */
  close(): Promise<void>;
}

const CONNECT_FAILURES: ReadonlyArray<[new (...args: never[]) => Error, string]> = [
  [Deno.errors.ConnectionRefused, "ECONNREFUSED"],
  [Deno.errors.PermissionDenied, "EACCES"],
  [Deno.errors.NotFound, "ENOENT"],
  [Deno.errors.NotCapable, "NotCapable (missing --allow-read/--allow-write permission)"],
];

/** The errno-style name of a connect-type failure, or `null` for other errors. */
export function connectFailureReason(error: unknown): string | null {
  for (const [kind, errno] of CONNECT_FAILURES) {
    if (error instanceof kind) {
      const code = (error as { code?: unknown }).code;
      return typeof code === "string" && code !== "" ? code : errno;
    }
  }
  return null;
}

type DatagramApi = {
  listenDatagram?: (options: { transport: "unixpacket"; path: string }) => Deno.DatagramConn;
};

function bindClientSocket(tmpDir: string | null | undefined): Deno.DatagramConn {
  const listenDatagram = (Deno as unknown as DatagramApi).listenDatagram;
  if (typeof listenDatagram !== "function") {
    throw new Error("Deno.listenDatagram unavailable (run deno with --unstable-net)");
  }
  const name = `wal-d-syslog-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}.sock`;
  const directories = [...new Set([tmpDir ?? "/tmp", "/tmp"])];
  let lastError: unknown;
  for (const directory of directories) {
    const path = `${directory.replace(/\/+$/, "")}/${name}`;
    try {
      const conn = listenDatagram({ transport: "unixpacket", path });
      try {
        Deno.removeSync(path);
      } catch {
        // Left behind only if removal fails; harmless.
      }
      return conn;
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

function reasonOf(error: unknown): string {
  return connectFailureReason(error) ?? (errorMessage(error));
}

/**
 * Sets up the syslog destination. Returns `null` (after printing the "Could not set up syslog"
 * line) when the client socket cannot be created.
 */
export function createSyslogSink(options: SyslogSinkOptions): SyslogSink | null {
  let facility = syslogFacilityCode(options.facilityName);
  if (facility === null) {
    options.writeStderr(`${INVALID_FACILITY_MESSAGE}\n`);
    facility = SYSLOG_FACILITIES.user;
  }
  const reportSetupFailure = (reason: string) =>
    options.writeStderr(`wal-d: Could not set up syslog, continuing anyway.  Reason: ${reason}\n`);

  let conn: Deno.DatagramConn;
  try {
    conn = bindClientSocket(options.tmpDir);
  } catch (error) {
    reportSetupFailure(reasonOf(error));
    return null;
  }

  const address: Deno.UnixAddr = { transport: "unixpacket", path: options.socketPath };
  const encoder = new TextEncoder();
  const facilityCode = facility;
  let disabled = false;
  let closed = false;
  let queue: Promise<void> = Promise.resolve();

  const sendOne = async (bytes: Uint8Array) => {
    if (disabled) return;
    try {
      await conn.send(bytes, address);
    } catch (error) {
      const reason = connectFailureReason(error);
      if (reason !== null && !disabled) {
        disabled = true;
        reportSetupFailure(reason);
      }
      // Other errors (message too long, …): this record is dropped silently.
    }
  };

  const flush = async () => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, options.flushTimeoutMs ?? 5000);
    });
    await Promise.race([queue, timeout]);
    clearTimeout(timer);
  };

  return {
    send(level, text) {
      if (disabled || closed) return;
      const bytes = encoder.encode(`<${syslogPriority(facilityCode, level)}>${text}\0`);
      queue = queue.then(() => sendOne(bytes));
    },
    flush,
    async close() {
      if (closed) return;
      await flush();
      closed = true;
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    },
  };
}
