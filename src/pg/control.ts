/**
 * Reads PostgreSQL's control file, `global/pg_control`, for PostgreSQL 13 to 18.
 *
 * The file is PG_CONTROL_FILE_SIZE (8192) bytes; the first `sizeof(ControlFileData)` hold the C
 * struct of `src/include/catalog/pg_control.h`, in the server's byte order and alignment, ending in
 * a CRC-32C of everything before it. Three layouts cover 13 to 18 (little-endian, 8-byte
 * alignment, as on x86-64 and arm64):
 *
 * - 1300 (PostgreSQL 13 to 16): the base layout; the CRC is at offset 288.
 * - 1700 (PostgreSQL 17): adds `CheckPoint.wal_level` (int) at offset 60, in what was padding;
 *   the CRC stays at 288.
 * - 1800 (PostgreSQL 18): adds `default_char_signedness` (bool) at 256, moving the nonce to 257;
 *   the CRC is at 292.
 *
 * Offsets shared by all three: system_identifier 0, pg_control_version 8, catalog_version_no 12,
 * state 16, time 24, checkPoint 32, checkPointCopy 40 (redo 40, ThisTimeLineID 48,
 * PrevTimeLineID 52, fullPageWrites 56, nextXid 64, nextOid 72, time 104), unloggedLSN 128,
 * minRecoveryPoint 136, minRecoveryPointTLI 144, backupStartPoint 152, backupEndPoint 160,
 * backupEndRequired 168, wal_level 172, wal_log_hints 176, MaxConnections 180, … maxAlign 204,
 * floatFormat 208, blcksz 216, relseg_size 220, xlog_blcksz 224, xlog_seg_size 228,
 * nameDataLen 232, indexMaxKeys 236, toast_max_chunk_size 240, loblksize 244, float8ByVal 248,
 * data_checksum_version 252.
 *
 * @module
 */

import { join } from "../io/path.ts";
import type { Lsn } from "../layout/lsn.ts";
import { isValidWalSegmentSize } from "../layout/segment.ts";
import { errorMessage } from "../io/error_message.ts";

/** Size of the `global/pg_control` file (PG_CONTROL_FILE_SIZE). */
export const PG_CONTROL_FILE_SIZE = 8192;

/** The `pg_control_version` values this module reads, and the majors that write them. */
export const SUPPORTED_PG_CONTROL_VERSIONS: Readonly<Record<number, string>> = Object.freeze({
  1300: "PostgreSQL 13 to 16",
  1700: "PostgreSQL 17",
  1800: "PostgreSQL 18",
});

/** `DBState` values in the order of their numbers, spelled as `pg_controldata` prints them. */
const DB_STATES = [
  "starting up",
  "shut down",
  "shut down in recovery",
  "shutting down",
  "in crash recovery",
  "in archive recovery",
  "in production",
] as const;

/** The cluster state (`DBState`), spelled as `pg_controldata` prints it. */
export type DbState = typeof DB_STATES[number] | "unrecognized status code";

/** `wal_level` values in the order of their numbers. */
const WAL_LEVELS = ["minimal", "replica", "logical"] as const;

/** `wal_level` as `pg_controldata` prints it. */
export type WalLevel = typeof WAL_LEVELS[number] | "unrecognized wal_level";

/** The contents of a control file. LSNs are `bigint`s; see `formatLsn`. */
export interface ControlFile {
  /** Format of the file: 1300 (PostgreSQL 13–16), 1700 (17) or 1800 (18). */
  pgControlVersion: number;
  /** Catalog version (`catversion.h`), e.g. 202209061 for PostgreSQL 15. */
  catalogVersionNo: number;
  /** The cluster's unique system identifier. */
  systemIdentifier: bigint;
  /** Cluster state. */
  state: DbState;
  /** The raw `DBState` number behind {@linkcode ControlFile.state}. */
  stateCode: number;
  /** When the file was last written. */
  lastModified: Date;
  /** Location of the latest checkpoint record. */
  checkpointLsn: Lsn;
  /** REDO location of the latest checkpoint: where replay from it starts. */
  redoLsn: Lsn;
  /** The latest checkpoint's timeline. */
  timeline: number;
  /** The latest checkpoint's previous timeline (equal to `timeline` unless it began a new one). */
  prevTimeline: number;
  /** The latest checkpoint's `full_page_writes`. */
  fullPageWrites: boolean;
  /** The latest checkpoint's next transaction ID, with its epoch in the upper 32 bits. */
  nextFullXid: bigint;
  /** The latest checkpoint's next OID. */
  nextOid: number;
  /** When the latest checkpoint was taken. */
  checkpointTime: Date;
  /** Fake LSN counter for unlogged relations. */
  unloggedLsn: Lsn;
  /** Minimum recovery ending location (0/0 when not in archive recovery). */
  minRecoveryPoint: Lsn;
  /** Timeline of {@linkcode ControlFile.minRecoveryPoint}. */
  minRecoveryPointTimeline: number;
  /** Backup start location, while recovering from an online backup (else 0/0). */
  backupStartPoint: Lsn;
  /** Backup end location, while recovering from a standby's backup (else 0/0). */
  backupEndPoint: Lsn;
  /** Whether an end-of-backup record must be replayed before the cluster is consistent. */
  backupEndRequired: boolean;
  /** The `wal_level` setting stored with the cluster. */
  walLevel: WalLevel;
  /** `max_connections` setting. */
  maxConnections: number;
  /** Maximum data alignment. */
  maxAlign: number;
  /** Database block size (`BLCKSZ`), normally 8192. */
  blockSize: number;
  /** Blocks per segment of a large relation. */
  relSegSize: number;
  /** WAL block size (`XLOG_BLCKSZ`), normally 8192. */
  walBlockSize: number;
  /** Bytes per WAL segment (`wal_segment_size`), 16 MiB unless initdb chose otherwise. */
  walSegmentSize: number;
  /** Data page checksum version: 0 when data checksums are off. */
  dataChecksumVersion: number;
  /** PostgreSQL 18+: whether `char` was signed where the cluster was initialised; else `null`. */
  defaultCharSignedness: boolean | null;
  /** Whether the stored CRC-32C matched (always true unless `verifyCrc: false` was given). */
  crcOk: boolean;
}

/** Options of {@linkcode parseControlFile}. */
export interface ParseControlFileOptions {
  /**
   * Check the stored CRC-32C and throw on a mismatch (the default). With `false`, a mismatch is
   * reported as `crcOk: false` instead, as `pg_controldata` warns and prints anyway.
   */
  verifyCrc?: boolean;
}

/** Why a control file could not be read. */
export type ControlFileErrorCode =
  | "truncated"
  | "unknown-version"
  | "wrong-byte-order"
  | "crc-mismatch"
  | "incompatible"
  | "unreadable";

/** A control file that cannot be used; `code` says why, the message says it to a person. */
export class ControlFileError extends Error {
  readonly code: ControlFileErrorCode;

  constructor(code: ControlFileErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ControlFileError";
    this.code = code;
  }
}

interface Layout {
  /** Offset of the CRC (= bytes it covers). */
  crcOffset: number;
  /** Offset of `default_char_signedness`, which only 18 has. */
  defaultCharSignednessOffset: number | null;
}

const LAYOUTS: Readonly<Record<number, Layout>> = {
  1300: { crcOffset: 288, defaultCharSignednessOffset: null },
  1700: { crcOffset: 288, defaultCharSignednessOffset: null },
  1800: { crcOffset: 292, defaultCharSignednessOffset: 256 },
};

const FLOAT_FORMAT_VALUE = 1234567.0;

/**
 * Parses the bytes of a `pg_control` file. Throws {@linkcode ControlFileError} when the data is
 * shorter than the struct of its version, when the version is not one of
 * {@linkcode SUPPORTED_PG_CONTROL_VERSIONS} (naming a byte-order mismatch when that is the cause),
 * when the CRC-32C does not match (unless `verifyCrc: false`), or when the file was written by a
 * machine with another floating-point format.
 */
export function parseControlFile(
  bytes: Uint8Array,
  options: ParseControlFileOptions = {},
): ControlFile {
  if (bytes.length < 16) {
    throw new ControlFileError(
      "truncated",
      `pg_control is truncated: ${bytes.length} bytes, too short to hold its version number`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  const layout = LAYOUTS[version];
  if (layout === undefined) {
    const swapped = view.getUint32(8, false);
    if (LAYOUTS[swapped] !== undefined || (version % 65536 === 0 && version / 65536 !== 0)) {
      throw new ControlFileError(
        "wrong-byte-order",
        `pg_control has pg_control_version ${version}, which looks byte-swapped (${swapped}): ` +
          `the file was written by a machine of the other byte order`,
      );
    }
    throw new ControlFileError(
      "unknown-version",
      `pg_control has unknown pg_control_version ${version}: wal-d reads ` +
        Object.entries(SUPPORTED_PG_CONTROL_VERSIONS).map(([v, pg]) => `${v} (${pg})`).join(
          ", ",
        ),
    );
  }
  const structSize = layout.crcOffset + 4;
  if (bytes.length < structSize) {
    throw new ControlFileError(
      "truncated",
      `pg_control is truncated: ${bytes.length} bytes, but pg_control_version ${version} ` +
        `needs at least ${structSize} (the file is normally ${PG_CONTROL_FILE_SIZE})`,
    );
  }
  const storedCrc = view.getUint32(layout.crcOffset, true);
  const computedCrc = crc32c(bytes.subarray(0, layout.crcOffset));
  const crcOk = storedCrc === computedCrc;
  if (!crcOk && options.verifyCrc !== false) {
    throw new ControlFileError(
      "crc-mismatch",
      `pg_control CRC-32C mismatch: stored ${hex32(storedCrc)}, computed ${hex32(computedCrc)} ` +
        `over its first ${layout.crcOffset} bytes; the file is corrupt (or torn by a concurrent ` +
        `write)`,
    );
  }
  const floatFormat = view.getFloat64(208, true);
  if (crcOk && floatFormat !== FLOAT_FORMAT_VALUE) {
    throw new ControlFileError(
      "incompatible",
      `pg_control was written with another floating-point format or alignment ` +
        `(floatFormat ${floatFormat}, expected ${FLOAT_FORMAT_VALUE})`,
    );
  }

  const u32 = (offset: number) => view.getUint32(offset, true);
  const i32 = (offset: number) => view.getInt32(offset, true);
  const u64 = (offset: number) => view.getBigUint64(offset, true);
  const bool = (offset: number) => bytes[offset] !== 0;
  const time = (offset: number) => new Date(Number(view.getBigInt64(offset, true)) * 1000);
  const stateCode = u32(16);
  const walLevelCode = i32(172);

  return {
    pgControlVersion: version,
    catalogVersionNo: u32(12),
    systemIdentifier: u64(0),
    state: DB_STATES[stateCode] ?? "unrecognized status code",
    stateCode,
    lastModified: time(24),
    checkpointLsn: u64(32),
    redoLsn: u64(40),
    timeline: u32(48),
    prevTimeline: u32(52),
    fullPageWrites: bool(56),
    nextFullXid: u64(64),
    nextOid: u32(72),
    checkpointTime: time(104),
    unloggedLsn: u64(128),
    minRecoveryPoint: u64(136),
    minRecoveryPointTimeline: u32(144),
    backupStartPoint: u64(152),
    backupEndPoint: u64(160),
    backupEndRequired: bool(168),
    walLevel: WAL_LEVELS[walLevelCode] ?? "unrecognized wal_level",
    maxConnections: i32(180),
    maxAlign: u32(204),
    blockSize: u32(216),
    relSegSize: u32(220),
    walBlockSize: u32(224),
    walSegmentSize: u32(228),
    dataChecksumVersion: u32(252),
    defaultCharSignedness: layout.defaultCharSignednessOffset === null
      ? null
      : bool(layout.defaultCharSignednessOffset),
    crcOk,
  };
}

/** Options of {@linkcode readControlFile}. */
export interface ReadControlFileOptions extends ParseControlFileOptions {
  /**
   * How many times to read the file in all while its CRC does not match (default 5, 20 ms
   * apart). The server rewrites pg_control in place, so a read racing with a write can see a torn
   * file; PostgreSQL's own tools retry the same way.
   */
  attempts?: number;
}

/**
 * Reads and parses `<pgdata>/global/pg_control`, retrying a read whose CRC does not match (see
 * {@linkcode ReadControlFileOptions.attempts}). Throws {@linkcode ControlFileError}: `unreadable`
 * when the file cannot be read, otherwise as {@linkcode parseControlFile}, with the path in the
 * message.
 */
export async function readControlFile(
  pgdata: string,
  options: ReadControlFileOptions = {},
): Promise<ControlFile> {
  const path = join(pgdata, "global", "pg_control");
  const attempts = Math.max(1, options.attempts ?? 5);
  for (let attempt = 1;; attempt++) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (error) {
      throw new ControlFileError(
        "unreadable",
        `cannot read ${path}: ${errorMessage(error)}`,
        { cause: error },
      );
    }
    try {
      return parseControlFile(bytes, options);
    } catch (error) {
      if (!(error instanceof ControlFileError)) throw error;
      if (error.code === "crc-mismatch" && attempt < attempts) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        continue;
      }
      throw new ControlFileError(error.code, `${path}: ${error.message}`, { cause: error });
    }
  }
}

/**
 * The `wal_segment_size` recorded in `<pgdata>/global/pg_control`, or `null` when there is no
 * usable control file there: missing or unreadable (for example when `pgdata` is really the
 * parent of a `pg_wal` directory that is not in a data directory), corrupt, or of a version this
 * module does not know. Callers then fall back to 16 MiB; one that wants to say why can call
 * {@linkcode readControlFile} itself.
 */
export async function walSegmentSizeOf(pgdata: string): Promise<number | null> {
  try {
    const control = await readControlFile(pgdata);
    return isValidWalSegmentSize(control.walSegmentSize) ? control.walSegmentSize : null;
  } catch (error) {
    if (error instanceof ControlFileError) return null;
    throw error;
  }
}

let crc32cTable: Uint32Array | undefined;

/** CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), PostgreSQL's `pg_crc32c`. */
export function crc32c(bytes: Uint8Array): number {
  const table = crc32cTable ??= makeCrc32cTable();
  let crc = 0xFFFFFFFF;
  for (let i = 0; i < bytes.length; i++) {
    crc = table[(crc ^ bytes[i]) & 0xFF] ^ (crc >>> 8);
  }
  return (crc ^ 0xFFFFFFFF) >>> 0;
}

function makeCrc32cTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82F63B78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

function hex32(value: number): string {
  return `0x${value.toString(16).toUpperCase().padStart(8, "0")}`;
}
