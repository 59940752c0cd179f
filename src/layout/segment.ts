/**
 * WAL segment names and arithmetic for every `wal_segment_size` PostgreSQL allows (a power of two
 * from 1 MiB to 1 GiB), after PostgreSQL's `xlog_internal.h`.
 *
 * A segment name is `TTTTTTTTLLLLLLLLSSSSSSSS`: the timeline, then the segment number split into a
 * "log id" and a segment within it, each as 8 upper-case hex digits. A log id spans 4 GiB of WAL,
 * so it holds `0x100000000 / wal_segment_size` segments: 256 of 16 MiB, 4096 of 1 MiB, 4 of
 * 1 GiB. (WAL-E's `next_larger` assumes 256 for every size; this module does not.)
 *
 * @module
 */

import { LayoutError } from "./errors.ts";
import { assertLsn, type Lsn } from "./lsn.ts";

/** PostgreSQL's default `wal_segment_size`, 16 MiB. */
export const DEFAULT_WAL_SEGMENT_SIZE = 16 * 1024 * 1024;
/** The smallest `wal_segment_size` PostgreSQL accepts, 1 MiB. */
export const MIN_WAL_SEGMENT_SIZE = 1024 * 1024;
/** The largest `wal_segment_size` PostgreSQL accepts, 1 GiB. */
export const MAX_WAL_SEGMENT_SIZE = 1024 * 1024 * 1024;

/** Every valid `wal_segment_size`, smallest first (1 MiB, 2 MiB, ... 1 GiB). */
export const WAL_SEGMENT_SIZES: readonly number[] = Object.freeze(
  Array.from({ length: 11 }, (_, i) => MIN_WAL_SEGMENT_SIZE * 2 ** i),
);

/** A WAL segment file name: 24 upper-case hex digits (timeline, log id, segment). */
export type SegmentName = string;

/** A WAL segment: its timeline and its segment number (PostgreSQL's `XLogSegNo`). */
export interface WalSegment {
  /** Timeline ID, 0 .. 2^32-1. */
  timeline: number;
  /** Segment number: the segment's first LSN divided by the segment size. */
  segNo: bigint;
}

/** What a file in `pg_wal` is, for wal-push (see {@linkcode classifyWalFileName}). */
export type WalFileKind = "segment" | "history" | "backup" | "partial";

const SEGMENT_NAME = /^[0-9A-F]{24}$/;
const HISTORY_NAME = /^[0-9A-F]{8}\.history$/;
const BACKUP_HISTORY_NAME = /^[0-9A-F]{24}\.[0-9A-F]{8}\.backup$/;
const PARTIAL_NAME = /^[0-9A-F]{24}\.partial$/;

const LOG_ID_SPAN = 0x1_0000_0000n;
const MAX_UINT32 = 0xFFFF_FFFF;

/** Whether `size` is a power of two from 1 MiB to 1 GiB (PostgreSQL's `IsValidWalSegSize`). */
export function isValidWalSegmentSize(size: number): boolean {
  return Number.isInteger(size) && size >= MIN_WAL_SEGMENT_SIZE && size <= MAX_WAL_SEGMENT_SIZE &&
    (size & (size - 1)) === 0;
}

/** Throws {@linkcode LayoutError} unless {@linkcode isValidWalSegmentSize}. */
export function assertValidWalSegmentSize(size: number): void {
  if (!isValidWalSegmentSize(size)) {
    throw new LayoutError(
      `invalid WAL segment size ${size}: expected a power of two from 1 MiB to 1 GiB`,
    );
  }
}

/** Segments per 4 GiB log id: `0x100000000 / segmentSize` (`XLogSegmentsPerXLogId`). */
export function segmentsPerLogId(segmentSize: number): bigint {
  assertValidWalSegmentSize(segmentSize);
  return LOG_ID_SPAN / BigInt(segmentSize);
}

/** One past the largest segment number: the number of segments in the 64-bit LSN space. */
function segNoLimit(segmentSize: number): bigint {
  return LOG_ID_SPAN * segmentsPerLogId(segmentSize);
}

function assertSegNo(segNo: bigint, segmentSize: number): void {
  if (typeof segNo !== "bigint" || segNo < 0n || segNo >= segNoLimit(segmentSize)) {
    throw new LayoutError(
      `segment number ${String(segNo)} out of range for ${formatSegmentSize(segmentSize)} segments`,
    );
  }
}

function assertTimeline(timeline: number): void {
  if (!Number.isInteger(timeline) || timeline < 0 || timeline > MAX_UINT32) {
    throw new LayoutError(`invalid timeline ${timeline}: expected an integer 0 .. 4294967295`);
  }
}

function hex8(value: bigint | number): string {
  return value.toString(16).toUpperCase().padStart(8, "0");
}

/** Whether `name` is a WAL segment name: exactly 24 upper-case hex digits. */
export function isSegmentName(name: string): name is SegmentName {
  return SEGMENT_NAME.test(name);
}

/**
 * The file name of segment `segNo` on `timeline` (PostgreSQL's `XLogFileName`). Throws
 * {@linkcode LayoutError} for a bad timeline, segment size or segment number.
 */
export function segmentName(timeline: number, segNo: bigint, segmentSize: number): SegmentName {
  assertTimeline(timeline);
  const perLogId = segmentsPerLogId(segmentSize);
  assertSegNo(segNo, segmentSize);
  return hex8(timeline) + hex8(segNo / perLogId) + hex8(segNo % perLogId);
}

/**
 * Parses a segment name for the given segment size (PostgreSQL's `XLogFromFileName`). Throws
 * {@linkcode LayoutError} when `name` is not 24 upper-case hex digits, or when its segment part
 * is not below the segments per log id of that size (`…000000FF` is a 16 MiB name, not a 64 MiB
 * one).
 */
export function parseSegmentName(name: string, segmentSize: number): WalSegment {
  if (!isSegmentName(name)) {
    throw new LayoutError(
      `invalid WAL segment name ${JSON.stringify(name)}: expected 24 upper-case hex digits`,
    );
  }
  const perLogId = segmentsPerLogId(segmentSize);
  const timeline = Number.parseInt(name.slice(0, 8), 16);
  const logId = BigInt(`0x${name.slice(8, 16)}`);
  const seg = BigInt(`0x${name.slice(16, 24)}`);
  if (seg >= perLogId) {
    throw new LayoutError(
      `invalid WAL segment name ${name} for ${formatSegmentSize(segmentSize)} segments: ` +
        `its segment part ${name.slice(16)} must be below ${hex8(perLogId)}`,
    );
  }
  return { timeline, segNo: logId * perLogId + seg };
}

/**
 * The name of the segment after `name`, on the same timeline. Throws {@linkcode LayoutError} for
 * the last segment of the 64-bit WAL space.
 */
export function nextSegmentName(name: SegmentName, segmentSize: number): SegmentName {
  const [next] = segmentsAfter(name, 1, segmentSize);
  if (next === undefined) {
    throw new LayoutError(`${name} is the last WAL segment: no segment follows it`);
  }
  return next;
}

/**
 * The `count` segment names that follow `name` on the same timeline, in order (wal-fetch's
 * prefetch list), rolling over into the next log id after `segmentsPerLogId(segmentSize)`
 * segments. Stops early, without error, at the end of the 64-bit WAL space.
 */
export function segmentsAfter(
  name: SegmentName,
  count: number,
  segmentSize: number,
): SegmentName[] {
  if (!Number.isInteger(count) || count < 0) {
    throw new LayoutError(`invalid segment count ${count}: expected an integer >= 0`);
  }
  const { timeline, segNo } = parseSegmentName(name, segmentSize);
  const limit = segNoLimit(segmentSize);
  const names: SegmentName[] = [];
  for (let next = segNo + 1n; names.length < count && next < limit; next++) {
    names.push(segmentName(timeline, next, segmentSize));
  }
  return names;
}

/** The number of the segment holding the byte at `lsn` (PostgreSQL's `XLByteToSeg`). */
export function segNoOfLsn(lsn: Lsn, segmentSize: number): bigint {
  assertLsn(lsn);
  assertValidWalSegmentSize(segmentSize);
  return lsn / BigInt(segmentSize);
}

/**
 * The number of the segment holding the byte *before* `lsn` (PostgreSQL's `XLByteToPrevSeg`):
 * the segment in which a record ending exactly at `lsn` lies. Differs from
 * {@linkcode segNoOfLsn} only when `lsn` is on a segment boundary. Throws for LSN 0.
 */
export function prevSegNoOfLsn(lsn: Lsn, segmentSize: number): bigint {
  assertLsn(lsn);
  assertValidWalSegmentSize(segmentSize);
  if (lsn === 0n) throw new LayoutError("LSN 0/0 has no previous segment");
  return (lsn - 1n) / BigInt(segmentSize);
}

/** The byte offset of `lsn` within its segment (PostgreSQL's `XLogSegmentOffset`). */
export function segmentOffsetOfLsn(lsn: Lsn, segmentSize: number): number {
  assertLsn(lsn);
  assertValidWalSegmentSize(segmentSize);
  return Number(lsn % BigInt(segmentSize));
}

/** The first LSN of segment `segNo`. */
export function lsnOfSegNo(segNo: bigint, segmentSize: number): Lsn {
  assertSegNo(segNo, segmentSize);
  return segNo * BigInt(segmentSize);
}

/**
 * The name of the segment that holds the byte at `lsn` (`XLByteToSeg` + `XLogFileName`): at an
 * exact segment boundary this is the segment that *starts* there. This is the file a reader of
 * WAL from `lsn` onwards needs first, and what `pg_control_checkpoint()` reports as
 * `redo_wal_file`. For the name PostgreSQL's `pg_walfile_name()` returns, see
 * {@linkcode pgWalfileNameOfLsn}.
 */
export function segmentNameOfLsn(lsn: Lsn, timeline: number, segmentSize: number): SegmentName {
  return segmentName(timeline, segNoOfLsn(lsn, segmentSize), segmentSize);
}

/**
 * The name PostgreSQL's `pg_walfile_name(lsn)` returns (`XLByteToPrevSeg` + `XLogFileName`): the
 * same as {@linkcode segmentNameOfLsn} except at an exact segment boundary, where it is the
 * *previous* segment (the one a record ending at `lsn` was written to). Throws for LSN 0.
 */
export function pgWalfileNameOfLsn(lsn: Lsn, timeline: number, segmentSize: number): SegmentName {
  return segmentName(timeline, prevSegNoOfLsn(lsn, segmentSize), segmentSize);
}

/** A segment name and a byte offset, as `pg_walfile_name_offset()` returns them. */
export interface WalfileNameOffset {
  /** The segment file name. */
  segment: SegmentName;
  /** Byte offset of the LSN within its own segment (0 at a boundary). */
  offset: number;
}

/**
 * What PostgreSQL's `pg_walfile_name_offset(lsn)` returns, which WAL-E turns into backup names
 * (spec §3.3): the name of {@linkcode pgWalfileNameOfLsn} and the offset of
 * {@linkcode segmentOffsetOfLsn}. At an exact segment boundary that is the *previous* segment with
 * offset 0 (a PostgreSQL quirk kept for compatibility; a record never starts at a boundary, since
 * each segment begins with a page header, so backup start positions are never affected).
 */
export function pgWalfileNameOffset(
  lsn: Lsn,
  timeline: number,
  segmentSize: number,
): WalfileNameOffset {
  return {
    segment: pgWalfileNameOfLsn(lsn, timeline, segmentSize),
    offset: segmentOffsetOfLsn(lsn, segmentSize),
  };
}

/**
 * What kind of WAL-directory file `basename` is, or `null` when wal-push should not archive it:
 * `"segment"` (`000000010000000000000003`), `"history"` (`00000002.history`), `"backup"`
 * (`000000010000000000000002.00000028.backup`) or `"partial"`
 * (`000000010000000000000003.partial`). Hex digits must be upper case, as PostgreSQL writes them.
 */
export function classifyWalFileName(basename: string): WalFileKind | null {
  if (SEGMENT_NAME.test(basename)) return "segment";
  if (HISTORY_NAME.test(basename)) return "history";
  if (BACKUP_HISTORY_NAME.test(basename)) return "backup";
  if (PARTIAL_NAME.test(basename)) return "partial";
  return null;
}

/** `16 MiB`, `1 GiB`: a segment size for messages. */
export function formatSegmentSize(size: number): string {
  if (size >= 1024 ** 3 && size % 1024 ** 3 === 0) return `${size / 1024 ** 3} GiB`;
  if (size >= 1024 ** 2 && size % 1024 ** 2 === 0) return `${size / 1024 ** 2} MiB`;
  return `${size} bytes`;
}
