/**
 * WAL-E-compatible logger (spec §10). One {@link LogCore} owns the destinations (stderr and/or
 * syslog); {@link Logger}s are named views on it, so `log.getLogger("wal_e.worker.upload")` gives
 * a logger whose lines start with that name, like Python's `logging.getLogger`.
 */
import type { LogSettings } from "../config/types.ts";
import type { LogRecord, StructuredFields } from "./format.ts";
import { formatJsonRecord, formatTextRecord } from "./format.ts";
import type { LogLevelName } from "./levels.ts";
import { levelPasses } from "./levels.ts";
import type { Redactor } from "./redact.ts";
import { createRedactor } from "./redact.ts";
import type { SyslogSink } from "./syslog.ts";

/** Syslog sockets probed in order when `WALD_SYSLOG_SOCKET` is not set (spec §10). */
export const DEFAULT_SYSLOG_SOCKETS = ["/dev/log", "/var/run/log", "/var/run/syslog"] as const;

/** WAL-E's main logger name. */
export const MAIN_LOGGER_NAME = "wal_e.main";

/** Optional parts of a record. */
export interface LogFields {
  /** `DETAIL: …` line. */
  readonly detail?: string;
  /** `HINT: …` line. */
  readonly hint?: string;
  /** `k=v` pairs after `time` and `pid` on the `STRUCTURED:` line. */
  readonly structured?: StructuredFields;
}

/** A named logger. */
export interface Logger {
  /** The name printed first on every line, e.g. `wal_e.main`. */
  readonly name: string;
  /** A logger with another name writing to the same destinations. */
  getLogger(name: string): Logger;
  /** Whether records at `level` are written at all. */
  isEnabledFor(level: LogLevelName): boolean;
  log(level: LogLevelName, msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warning(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  critical(msg: string, fields?: LogFields): void;
  /** Waits until queued syslog datagrams are sent (bounded). Call before exiting. */
  flush(): Promise<void>;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Level, format, destinations, syslog facility and socket override. */
  readonly settings: LogSettings;
  /** Name of the returned logger; default {@link MAIN_LOGGER_NAME}. */
  readonly name?: string;
  /** Secret values to replace with `<redacted>` in every line. */
  readonly redact?: readonly string[];
  /** Current time in microseconds since the epoch (injectable for tests). */
  readonly clock?: () => number;
  /** Process id to print (injectable for tests). */
  readonly pid?: number;
  /** Writes text to stderr (the runner's writer, which tests replace). */
  readonly writeStderr: (text: string) => void;
  /** Syslog sockets to probe; default `settings.syslogSocketOverride` or the system paths. */
  readonly syslogSockets?: readonly string[];
  /** Directory for the temporary syslog client socket (`TMPDIR`). */
  readonly tmpDir?: string | null;
}

/** Current time in epoch microseconds. */
export function systemClockMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

/** First path that exists and is a socket; `null` when none is. */
export function findSyslogSocket(candidates: readonly string[]): string | null {
  for (const path of candidates) {
    try {
      if (Deno.statSync(path).isSocket) return path;
    } catch {
      // Missing or not permitted: try the next one.
    }
  }
  return null;
}

/** Shared state of all loggers created from one {@link createLogger} call. */
class LogCore {
  constructor(
    readonly threshold: LogLevelName,
    readonly render: (record: LogRecord) => string,
    readonly redact: Redactor,
    readonly clock: () => number,
    readonly pid: number,
    readonly writeStderr: ((text: string) => void) | null,
    readonly syslog: SyslogSink | null,
  ) {}

  emit(loggerName: string, level: LogLevelName, msg: string, fields: LogFields): void {
    if (!levelPasses(level, this.threshold)) return;
    const redact = this.redact;
    let structured: Record<string, string | number> | undefined;
    if (fields.structured !== undefined) {
      structured = {};
      for (const [key, value] of Object.entries(fields.structured)) {
        structured[redact(key)] = typeof value === "string" ? redact(value) : value;
      }
    }
    const record: LogRecord = {
      loggerName,
      level,
      msg: redact(msg),
      detail: fields.detail === undefined ? undefined : redact(fields.detail),
      hint: fields.hint === undefined ? undefined : redact(fields.hint),
      structured,
      epochMicros: this.clock(),
      pid: this.pid,
    };
    const text = redact(this.render(record));
    if (this.writeStderr !== null) {
      try {
        this.writeStderr(`${text}\n`);
      } catch {
        // A closed stderr must not turn logging into a crash.
      }
    }
    this.syslog?.send(level, text);
  }

  async flush(): Promise<void> {
    await this.syslog?.flush();
  }
}

class NamedLogger implements Logger {
  constructor(readonly name: string, private readonly core: LogCore) {}

  getLogger(name: string): Logger {
    return new NamedLogger(name, this.core);
  }

  isEnabledFor(level: LogLevelName): boolean {
    return levelPasses(level, this.core.threshold);
  }

  log(level: LogLevelName, msg: string, fields: LogFields = {}): void {
    this.core.emit(this.name, level, msg, fields);
  }

  debug(msg: string, fields?: LogFields): void {
    this.log("DEBUG", msg, fields);
  }

  info(msg: string, fields?: LogFields): void {
    this.log("INFO", msg, fields);
  }

  warning(msg: string, fields?: LogFields): void {
    this.log("WARNING", msg, fields);
  }

  error(msg: string, fields?: LogFields): void {
    this.log("ERROR", msg, fields);
  }

  critical(msg: string, fields?: LogFields): void {
    this.log("CRITICAL", msg, fields);
  }

  flush(): Promise<void> {
    return this.core.flush();
  }
}

/**
 * Creates the logger. Syslog is used only when requested and a socket exists; its module is
 * loaded only then, and a missing socket is skipped silently.
 */
export async function createLogger(options: LoggerOptions): Promise<Logger> {
  const { settings } = options;
  const { writeStderr } = options;
  let syslog: SyslogSink | null = null;
  if (settings.destinations.includes("syslog")) {
    const candidates = options.syslogSockets ??
      (settings.syslogSocketOverride === null
        ? DEFAULT_SYSLOG_SOCKETS
        : [settings.syslogSocketOverride]);
    const socketPath = findSyslogSocket(candidates);
    if (socketPath !== null) {
      const { createSyslogSink } = await import("./syslog.ts");
      syslog = createSyslogSink({
        socketPath,
        facilityName: settings.syslogFacility,
        tmpDir: options.tmpDir,
        writeStderr,
      });
    }
  }
  const core = new LogCore(
    settings.level,
    settings.format === "json" ? formatJsonRecord : formatTextRecord,
    createRedactor(options.redact ?? []),
    options.clock ?? systemClockMicros,
    options.pid ?? Deno.pid,
    settings.destinations.includes("stderr") ? writeStderr : null,
    syslog,
  );
  return new NamedLogger(options.name ?? MAIN_LOGGER_NAME, core);
}
