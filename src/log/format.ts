/**
 * Rendering of log records: WAL-E's text format (spec §10) and wal-d's JSON lines.
 *
 * Text: `%(name)-12s %(levelname)-8s %(message)s` where the message is
 * `MSG: …`, optional `DETAIL: …`, optional `HINT: …` and always
 * `STRUCTURED: time=<UTC %Y-%m-%dT%H:%M:%S.%f>-00 pid=<pid>[ k=v…]`, joined by newlines, and every
 * newline of the whole record is followed by 8 spaces.
 */
import type { LogLevelName } from "./levels.ts";

/** Value of a structured field; rendered with `String()`, unquoted. */
export type StructuredValue = string | number;

/** Structured `k=v` fields of a record. */
export type StructuredFields = Readonly<Record<string, StructuredValue>>;

/** One log record, ready to render. */
export interface LogRecord {
  readonly loggerName: string;
  readonly level: LogLevelName;
  readonly msg: string;
  /** Rendered as `DETAIL: …` when not `undefined` (an empty string still renders). */
  readonly detail?: string;
  /** Rendered as `HINT: …` when not `undefined`. */
  readonly hint?: string;
  readonly structured?: StructuredFields;
  /** Time of the record in microseconds since the Unix epoch. */
  readonly epochMicros: number;
  readonly pid: number;
}

const pad = (value: number, width: number) => String(value).padStart(width, "0");

/** UTC `%Y-%m-%dT%H:%M:%S.%f` of an epoch-microseconds time. */
export function formatUtcMicros(epochMicros: number): string {
  const wholeMicros = Math.floor(epochMicros);
  const millis = Math.floor(wholeMicros / 1000);
  const date = new Date(millis);
  const micros = ((wholeMicros % 1_000_000) + 1_000_000) % 1_000_000;
  return `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1, 2)}-` +
    `${pad(date.getUTCDate(), 2)}T${pad(date.getUTCHours(), 2)}:${pad(date.getUTCMinutes(), 2)}:` +
    `${pad(date.getUTCSeconds(), 2)}.${pad(micros, 6)}`;
}

/** Compares strings by Unicode code point, like Python's `sorted`. */
export function compareCodePoints(a: string, b: string): number {
  const left = [...a];
  const right = [...b];
  const length = Math.min(left.length, right.length);
  for (let i = 0; i < length; i++) {
    const difference = left[i].codePointAt(0)! - right[i].codePointAt(0)!;
    if (difference !== 0) return difference;
  }
  return left.length - right.length;
}

/** `time=… pid=…` followed by the sorted `k=v` strings (WAL-E `_fmt_structured`). */
export function formatStructured(
  epochMicros: number,
  pid: number,
  fields: StructuredFields = {},
): string {
  const rest = Object.entries(fields).map(([key, value]) => `${key}=${String(value)}`);
  rest.sort(compareCodePoints);
  return [`time=${formatUtcMicros(epochMicros)}-00`, `pid=${pid}`, ...rest].join(" ");
}

/** The MSG/DETAIL/HINT/STRUCTURED message body (WAL-E `fmt_logline`). */
export function formatMessageBody(record: LogRecord): string {
  const lines = [`MSG: ${record.msg}`];
  if (record.detail !== undefined) lines.push(`DETAIL: ${record.detail}`);
  if (record.hint !== undefined) lines.push(`HINT: ${record.hint}`);
  lines.push(`STRUCTURED: ${formatStructured(record.epochMicros, record.pid, record.structured)}`);
  return lines.join("\n");
}

/** The whole text record, without a trailing newline (WAL-E `IndentFormatter`). */
export function formatTextRecord(record: LogRecord): string {
  const line = `${record.loggerName.padEnd(12)} ${record.level.padEnd(8)} ` +
    formatMessageBody(record);
  return line.replaceAll("\n", "\n        ");
}

/** Keys of a JSON record that structured fields must not overwrite. */
export const JSON_RESERVED_KEYS = [
  "time",
  "level",
  "logger",
  "pid",
  "msg",
  "detail",
  "hint",
] as const;

/**
 * One JSON object (one line): `time` (RFC 3339, µs, `Z`), `level`, `logger`, `pid`, `msg`, then
 * `detail` and `hint` when present, then the structured fields sorted by key. A structured key
 * that collides with a reserved one is written as `structured_<key>`.
 */
export function formatJsonRecord(record: LogRecord): string {
  const object: Record<string, StructuredValue> = {
    time: `${formatUtcMicros(record.epochMicros)}Z`,
    level: record.level,
    logger: record.loggerName,
    pid: record.pid,
    msg: record.msg,
  };
  if (record.detail !== undefined) object.detail = record.detail;
  if (record.hint !== undefined) object.hint = record.hint;
  const keys = Object.keys(record.structured ?? {}).sort(compareCodePoints);
  for (const key of keys) {
    const name = (JSON_RESERVED_KEYS as readonly string[]).includes(key)
      ? `structured_${key}`
      : key;
    object[name] = record.structured![key];
  }
  return JSON.stringify(object);
}
