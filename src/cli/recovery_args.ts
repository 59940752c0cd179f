/**
 * Parse-time validation of backup-fetch's point-in-time-recovery options (`--recover`,
 * `--target-*`): each value is checked the way PostgreSQL will check the setting it becomes, so a
 * mistake is a one-line {@link UsageError} (exit 2) before anything is downloaded, not a server
 * that refuses to start after the restore.
 *
 * Kept apart from src/backup/recovery.ts, which holds the types: this module is loaded with the
 * parser on every wal-d start, so it imports nothing heavier than the LSN parser.
 *
 * @module
 */

import { UsageError } from "./errors.ts";
import { isLsnText, parseLsn } from "../layout/lsn.ts";
import type {
  RecoveryRequest,
  RecoveryTarget,
  RecoveryTargetAction,
  RecoveryTimeline,
} from "../backup/recovery.ts";

/** The options that each choose a recovery target; at most one may be given. */
export const TARGET_OPTIONS = [
  "--target-time",
  "--target-lsn",
  "--target-name",
  "--target-xid",
  "--target-immediate",
] as const;

/** Every option that asks for recovery settings (each implies `--recover`). */
export const RECOVERY_OPTIONS = [
  "--recover",
  ...TARGET_OPTIONS,
  "--target-timeline",
  "--target-action",
  "--target-exclusive",
] as const;

/** The values of `recovery_target_action`. */
export const TARGET_ACTIONS: readonly RecoveryTargetAction[] = ["pause", "promote", "shutdown"];

/** A restore point name is at most NAMEDATALEN - 1 bytes (PostgreSQL's `MAXFNAMELEN` - 1). */
export const MAX_TARGET_NAME_BYTES = 63;

const MAX_UINT32 = 0xFFFF_FFFF;
const MAX_UINT64 = 0xFFFF_FFFF_FFFF_FFFFn;

/** An example shown in the messages about `--target-time`. */
const TIME_EXAMPLE = "2026-05-01T12:00:00Z or '2026-05-01 14:00:00+02:00'";

/** `--target-lsn`: `X/Y`, two hexadecimal numbers of 1 to 8 digits. */
export function parseTargetLsn(text: string): RecoveryTarget & { kind: "lsn" } {
  if (!isLsnText(text)) {
    throw new UsageError(
      `--target-lsn must be an LSN: two hexadecimal numbers of 1 to 8 digits separated by "/" ` +
        `(e.g. 16/B374D848), got "${text}"`,
    );
  }
  return { kind: "lsn", lsn: parseLsn(text) };
}

/**
 * `--target-xid`: a transaction ID in decimal, 1 .. 2^64-1 (PostgreSQL also takes the 64-bit
 * epoch-qualified form, `epoch << 32 | xid`). Leading zeros are dropped from the text written to
 * the setting, because PostgreSQL reads the value with `strtoul(..., 0)`, where a leading `0` would
 * mean octal.
 */
export function parseTargetXid(text: string): RecoveryTarget & { kind: "xid" } {
  const value = /^[0-9]{1,20}$/.test(text) ? BigInt(text) : -1n;
  if (value < 1n || value > MAX_UINT64) {
    throw new UsageError(
      `--target-xid must be a transaction ID in decimal (1 to 18446744073709551615), got "${text}"`,
    );
  }
  return { kind: "xid", xid: value.toString() };
}

/** `--target-name`: a restore point name, non-empty, at most 63 bytes, one line. */
export function parseTargetName(text: string): RecoveryTarget & { kind: "name" } {
  const bytes = new TextEncoder().encode(text).length;
  if (bytes === 0) throw new UsageError("--target-name must not be empty");
  if (bytes > MAX_TARGET_NAME_BYTES) {
    throw new UsageError(
      `--target-name is ${bytes} bytes long; restore point names have at most ` +
        `${MAX_TARGET_NAME_BYTES} bytes`,
    );
  }
  // deno-lint-ignore no-control-regex
  if (/[\x00\n\r]/.test(text)) {
    throw new UsageError("--target-name must not contain line breaks or NUL characters");
  }
  return { kind: "name", name: text };
}

/** `--target-timeline`: `latest`, `current`, or a timeline ID in decimal (1 .. 2^32-1). */
export function parseTargetTimeline(text: string): RecoveryTimeline {
  if (text === "latest" || text === "current") return text;
  const value = /^[0-9]{1,10}$/.test(text) ? Number(text) : 0;
  if (value < 1 || value > MAX_UINT32) {
    throw new UsageError(
      `--target-timeline must be latest, current or a timeline ID (1 to ${MAX_UINT32}), ` +
        `got "${text}"`,
    );
  }
  return value;
}

/** `--target-action`: pause, promote or shutdown. */
export function parseTargetAction(text: string): RecoveryTargetAction {
  const action = TARGET_ACTIONS.find((a) => a === text);
  if (action === undefined) {
    throw new UsageError(
      `--target-action must be ${TARGET_ACTIONS.join(", ").replace(/, (?=[^,]*$)/, " or ")}, ` +
        `got "${text}"`,
    );
  }
  return action;
}

const DATE_TIME = new RegExp(
  "^(?<year>\\d{4})-(?<month>\\d{2})-(?<day>\\d{2})[T ]" +
    "(?<hour>\\d{2}):(?<minute>\\d{2})(?::(?<second>\\d{2})(?:\\.(?<fraction>\\d+))?)?" +
    " ?(?<zone>.*)$",
);
const NUMERIC_ZONE = /^(?<sign>[+-])(?<hh>\d{1,2})(?::?(?<mm>\d{2})(?::?(?<ss>\d{2}))?)?$/;
const UTC_NAMES = ["Z", "UTC", "GMT"];
const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)+$/;

/**
 * `--target-time`: an ISO 8601 date and time with an explicit time zone. Accepted: `YYYY-MM-DD`,
 * `T` or a space, `HH:MM[:SS[.ffffff]]`, then (optionally after one space) `Z`, `UTC`, `GMT`, a
 * numeric offset `±HH`, `±HHMM`, `±HH:MM` or `±HH:MM:SS` (below 16 hours), or a time zone name
 * of the form Area/Location (`Europe/Berlin`). Every accepted text is one PostgreSQL's
 * timestamptz input accepts too.
 *
 * A time without a zone is refused: PostgreSQL would read it in the server's `TimeZone` setting,
 * which wal-d cannot know when it chooses the backup. Abbreviations (`CET`, `PST`) are refused,
 * because PostgreSQL's abbreviation table and the IANA zones of the same names disagree. A local
 * time that a named zone skips or repeats (a daylight-saving change) is refused as ambiguous.
 *
 * Returns the instant (milliseconds; microseconds are truncated) and the text for the setting:
 * the same instant in UTC, `YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00`, keeping every fraction digit
 * given. Not `Z`: PostgreSQL 13 to 18 refuse `recovery_target_time` values with a zone
 * abbreviation such as `Z` when they read the configuration at start-up (the abbreviation table
 * is not loaded yet: "invalid value for parameter"), while numeric offsets are always accepted.
 */
export function parseTargetTime(text: string): RecoveryTarget & { kind: "time" } {
  const match = DATE_TIME.exec(text)?.groups;
  if (match === undefined) {
    throw new UsageError(
      `--target-time must be a date and time with a time zone, like ${TIME_EXAMPLE}; ` +
        `got "${text}"`,
    );
  }
  const field = (name: string) => Number(match[name] ?? "0");
  const [year, month, day] = [field("year"), field("month"), field("day")];
  const [hour, minute, second] = [field("hour"), field("minute"), field("second")];
  const wall = new Date(0);
  wall.setUTCFullYear(year, month - 1, day);
  wall.setUTCHours(hour, minute, second, 0);
  if (
    wall.getUTCFullYear() !== year || wall.getUTCMonth() !== month - 1 ||
    wall.getUTCDate() !== day || wall.getUTCHours() !== hour || wall.getUTCMinutes() !== minute ||
    wall.getUTCSeconds() !== second
  ) {
    throw new UsageError(`--target-time "${text}" is not a valid date and time`);
  }
  const zone = match.zone;
  if (zone === "") {
    throw new UsageError(
      `--target-time "${text}" has no time zone: PostgreSQL would read it in the server's ` +
        `TimeZone setting; add one, like ${TIME_EXAMPLE}`,
    );
  }
  const fraction = match.fraction ?? "";
  if (fraction.length > 6) {
    throw new UsageError(
      `--target-time "${text}" has more than 6 digits after the second; PostgreSQL keeps ` +
        `microseconds`,
    );
  }
  const instant = wall.getTime() - zoneOffsetMs(zone, wall.getTime(), text);
  const utc = new Date(instant).toISOString().slice(0, 19);
  return {
    kind: "time",
    time: new Date(instant + Number(fraction.padEnd(3, "0").slice(0, 3))),
    text: `${utc}${fraction === "" ? "" : `.${fraction}`}+00:00`,
  };
}

/** How far `zone` is ahead of UTC at the local time `wallMs` (a UTC reading of the wall clock). */
function zoneOffsetMs(zone: string, wallMs: number, text: string): number {
  if (UTC_NAMES.includes(zone.toUpperCase())) return 0;
  const numeric = NUMERIC_ZONE.exec(zone)?.groups;
  if (numeric !== undefined) {
    const [hh, mm, ss] = [numeric.hh, numeric.mm, numeric.ss].map((v) => Number(v ?? "0"));
    if (hh > 15 || mm > 59 || ss > 59) {
      throw new UsageError(
        `--target-time "${text}" has the time zone offset ${zone}, out of range ` +
          `(-15:59:59 to +15:59:59)`,
      );
    }
    return (numeric.sign === "-" ? -1 : 1) * ((hh * 60 + mm) * 60 + ss) * 1000;
  }
  if (!ZONE_NAME.test(zone)) {
    throw new UsageError(
      `--target-time "${text}": "${zone}" is not a time zone wal-d reads the same way as ` +
        `PostgreSQL; use Z, UTC, a numeric offset (+02:00) or an Area/Location name ` +
        `(Europe/Berlin)`,
    );
  }
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      era: "short",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
  } catch {
    throw new UsageError(`--target-time "${text}": unknown time zone "${zone}"`);
  }
  const offsetAt = (instant: number): number => {
    const parts = Object.fromEntries(
      format.formatToParts(new Date(instant)).map((part) => [part.type, part.value]),
    );
    const local = new Date(0);
    const year = Number(parts.year);
    local.setUTCFullYear(parts.era === "BC" ? 1 - year : year, Number(parts.month) - 1, 1);
    local.setUTCDate(Number(parts.day));
    local.setUTCHours(Number(parts.hour), Number(parts.minute), Number(parts.second), 0);
    return local.getTime() - Math.floor(instant / 1000) * 1000;
  };
  const day = 24 * 3600 * 1000;
  const candidates = new Set([offsetAt(wallMs - day), offsetAt(wallMs), offsetAt(wallMs + day)]);
  const fits = [...candidates].filter((offset) => offsetAt(wallMs - offset) === offset);
  if (fits.length !== 1) {
    throw new UsageError(
      `--target-time "${text}" ${fits.length === 0 ? "does not exist" : "is ambiguous"} in ` +
        `${zone} (a daylight-saving change); give a numeric offset instead, like +02:00`,
    );
  }
  return fits[0];
}

/** The raw values of the recovery options, by long option name (`true` for flags). */
export type RecoveryOptionValues = ReadonlyMap<string, string | true>;

/**
 * The recovery request the options ask for, or `null` when none of {@link RECOVERY_OPTIONS} is
 * given. Throws {@link UsageError} for a bad value, for two different targets, for
 * `--target-exclusive` with a target other than a time, an LSN or an xid, and for
 * `--target-action` without a target (PostgreSQL ignores the action then).
 */
export function recoveryRequestFrom(values: RecoveryOptionValues): RecoveryRequest | null {
  if (!RECOVERY_OPTIONS.some((option) => values.has(option))) return null;
  const given = TARGET_OPTIONS.filter((option) => values.has(option));
  if (given.length > 1) {
    throw new UsageError(
      `${given[0]} and ${given[1]} cannot be combined: PostgreSQL recovers to one target; ` +
        `choose one`,
    );
  }
  const text = (option: string): string => {
    const value = values.get(option);
    return typeof value === "string" ? value : "";
  };
  let target: RecoveryTarget;
  switch (given[0]) {
    case undefined:
      target = { kind: "end" };
      break;
    case "--target-immediate":
      target = { kind: "immediate" };
      break;
    case "--target-time":
      target = parseTargetTime(text("--target-time"));
      break;
    case "--target-lsn":
      target = parseTargetLsn(text("--target-lsn"));
      break;
    case "--target-name":
      target = parseTargetName(text("--target-name"));
      break;
    case "--target-xid":
      target = parseTargetXid(text("--target-xid"));
      break;
  }
  const inclusive = !values.has("--target-exclusive");
  if (!inclusive && target.kind !== "time" && target.kind !== "lsn" && target.kind !== "xid") {
    throw new UsageError(
      "--target-exclusive needs --target-time, --target-lsn or --target-xid " +
        "(it stops just before that target)",
    );
  }
  const action = values.has("--target-action") ? parseTargetAction(text("--target-action")) : null;
  if (action !== null && target.kind === "end") {
    throw new UsageError(
      "--target-action needs a recovery target (--target-time, --target-lsn, --target-name, " +
        "--target-xid or --target-immediate); without one, recovery runs to the end of the " +
        "archive and the server is promoted",
    );
  }
  const timeline = values.has("--target-timeline")
    ? parseTargetTimeline(text("--target-timeline"))
    : null;
  return { target, timeline, action, inclusive };
}
