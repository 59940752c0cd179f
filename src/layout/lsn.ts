/**
 * PostgreSQL log sequence numbers (LSN, `XLogRecPtr`): 64-bit byte positions in the WAL stream,
 * written as two hexadecimal 32-bit halves, `16/B374D848`.
 *
 * @module
 */

import { LayoutError } from "./errors.ts";

/** A WAL position: an unsigned 64-bit integer (PostgreSQL's `XLogRecPtr`). */
export type Lsn = bigint;

/** The invalid LSN, `0/0` (PostgreSQL's `InvalidXLogRecPtr`). */
export const INVALID_LSN: Lsn = 0n;

/** The largest LSN, `FFFFFFFF/FFFFFFFF`. */
export const MAX_LSN: Lsn = 0xFFFF_FFFF_FFFF_FFFFn;

const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/**
 * Parses `HI/LO` (each half 1 to 8 hex digits, either case, as PostgreSQL's `pg_lsn` input
 * accepts). Throws {@linkcode LayoutError} on anything else, including surrounding spaces.
 */
export function parseLsn(text: string): Lsn {
  const match = LSN_TEXT.exec(text);
  if (match === null) {
    throw new LayoutError(
      `invalid LSN ${JSON.stringify(text)}: expected two hexadecimal numbers of 1 to 8 digits ` +
        `separated by "/", like 16/B374D848`,
    );
  }
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** Whether {@linkcode parseLsn} accepts `text`. */
export function isLsnText(text: string): boolean {
  return LSN_TEXT.test(text);
}

/** Throws a `RangeError` unless `lsn` is within 0 .. 2^64-1. */
export function assertLsn(lsn: Lsn): void {
  if (typeof lsn !== "bigint" || lsn < 0n || lsn > MAX_LSN) {
    throw new RangeError(`LSN out of range (0 .. 2^64-1): ${String(lsn)}`);
  }
}

/**
 * Formats an LSN like PostgreSQL's `%X/%X`: upper-case hex halves without zero padding
 * (`16/B374D848`, `0/2000028`, `0/0`).
 */
export function formatLsn(lsn: Lsn): string {
  assertLsn(lsn);
  const hi = lsn >> 32n;
  const lo = lsn & 0xFFFF_FFFFn;
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}
