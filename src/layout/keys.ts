/**
 * WAL-E's storage keys (spec §1.3), relative to the prefix's path: what wal-d writes and reads so
 * that archives move between WAL-E and wal-d in both directions.
 *
 * ```text
 * wal_005/<basename>.lzo                                             archived WAL-dir file
 * basebackups_005/base_<SEG24>_<OFF8>/                               a backup's "directory"
 * basebackups_005/base_<SEG24>_<OFF8>/extended_version.txt           version text, uploaded first
 * basebackups_005/base_<SEG24>_<OFF8>/tar_partitions/part_%08d.tar.lzo   volume n (from 0)
 * basebackups_005/base_<SEG24>_<OFF8>_backup_stop_sentinel.json      sentinel, uploaded last
 * ```
 *
 * `<SEG24>` is the WAL segment holding the backup's start LSN and `<OFF8>` the LSN's byte offset in
 * it, in decimal, zero-padded to 8 characters (not hex: LSN 0/2000028 on timeline 1 gives
 * `base_000000010000000000000002_00000040`).
 *
 * Two kinds of matching live here. The `*_REGEXP` constants are WAL-E's regexes as Python's
 * `re.match` applies them: anchored at the start only, so a sentinel name followed by anything
 * (`…_backup_stop_sentinel.json.bak`) matches too. Use them where wal-d must decide exactly as
 * WAL-E does (which listed keys backup-list shows, which keys delete removes). The `parse*` and
 * `is*` functions match whole strings, which is what wal-d's own names and user input need.
 *
 * @module
 */

import { LayoutError } from "./errors.ts";
import { isSegmentName, type SegmentName } from "./segment.ts";

/** WAL-E's storage-format version, the suffix of both top-level directories. */
export const STORAGE_FORMAT_VERSION = "005";
/** Directory of archived WAL files. */
export const WAL_DIRECTORY = "wal_005/";
/** Directory of base backups and their sentinels. */
export const BASEBACKUP_DIRECTORY = "basebackups_005/";
/** Suffix of a completion sentinel's key, after the backup name. */
export const SENTINEL_SUFFIX = "_backup_stop_sentinel.json";
/** Name of the version text inside a backup's directory. */
export const EXTENDED_VERSION_FILE = "extended_version.txt";
/** Folder of the tar volumes inside a backup's directory. */
export const VOLUME_FOLDER = "tar_partitions/";

/** A base backup's name: `base_<SEG24>_<OFF8>`, e.g. `base_000000010000000000000002_00000040`. */
export type BackupName = string;

/** The parts of a backup name. */
export interface ParsedBackupName {
  /** The whole name. */
  name: BackupName;
  /** The WAL segment holding the backup's start LSN. */
  segment: SegmentName;
  /**
   * The offset as written: 8 characters of `[0-9A-F]`. WAL-E writes decimal digits, but readers
   * must accept any such string and treat it as opaque (spec §3.3).
   */
  offset: string;
  /** The offset read as WAL-E's decimal number, or `null` when it holds a hex letter. */
  offsetBytes: number | null;
}

/** A tar volume key's parts. */
export interface ParsedVolumeKey {
  /** The backup the volume belongs to. */
  backup: BackupName;
  /** The volume's number (`part_00000003.tar.lzo` is 3). */
  partition: number;
}

/**
 * The largest offset a backup name can carry: WAL-E's offset field is 8 decimal digits. Offsets
 * beyond it occur only with `wal_segment_size` ≥ 128 MiB (see {@linkcode backupName}).
 */
export const MAX_BACKUP_NAME_OFFSET = 99_999_999;

const SEGMENT_SOURCE = "(?<filename>(?<tli>[0-9A-F]{8})(?<log>[0-9A-F]{8})(?<seg>[0-9A-F]{8}))";

/** WAL-E's `SEGMENT_REGEXP` (start-anchored): groups `filename`, `tli`, `log`, `seg`. */
export const SEGMENT_REGEXP = new RegExp(`^${SEGMENT_SOURCE}`);
/** WAL-E's `SEGMENT_READY_REGEXP`: an `archive_status/<segment>.ready` entry (start-anchored). */
export const SEGMENT_READY_REGEXP = new RegExp(`^${SEGMENT_SOURCE}\\.ready`);
/** WAL-E's `BASE_BACKUP_REGEXP`: `base_<SEG24>_<OFF8>` (start-anchored); adds group `offset`. */
export const BASE_BACKUP_REGEXP = new RegExp(`^base_${SEGMENT_SOURCE}_(?<offset>[0-9A-F]{8})`);
/** WAL-E's `COMPLETE_BASE_BACKUP_REGEXP`: a sentinel's name (start-anchored). */
export const COMPLETE_BASE_BACKUP_REGEXP = new RegExp(
  `^base_${SEGMENT_SOURCE}_(?<offset>[0-9A-F]{8})_backup_stop_sentinel\\.json`,
);
/** WAL-E's `VOLUME_REGEXP`: `part_<n>.tar.lzo` (start-anchored); group 1 is the number. */
export const VOLUME_REGEXP = /^part_(\d+)\.tar\.lzo/;
/** WAL-E delete's pattern of an archived segment, `<SEG24>.lzo` (start-anchored). */
export const DELETE_WAL_SEGMENT_REGEXP = new RegExp(`^${SEGMENT_SOURCE}\\.lzo`);
/**
 * WAL-E delete's pattern of an archived backup history file, `<SEG24>.<8 hex>.backup.lzo`
 * (start-anchored). As in WAL-E, the dots before `backup` and `lzo` are unescaped (any character).
 */
export const DELETE_WAL_BACKUP_HISTORY_REGEXP = new RegExp(
  `^${SEGMENT_SOURCE}\\.[A-F0-9]{8}.backup.lzo`,
);
/** WAL-E delete's pattern of a timeline history file, `<8 hex>.history` (start-anchored). */
export const DELETE_HISTORY_REGEXP = /^[A-F0-9]{8}\.history/;

const BACKUP_NAME = /^base_(?<segment>[0-9A-F]{24})_(?<offset>[0-9A-F]{8})$/;
const WAL_KEY = /^wal_005\/(?<basename>[^/]+)\.lzo$/;
const SENTINEL_KEY =
  /^basebackups_005\/(?<name>base_[0-9A-F]{24}_[0-9A-F]{8})_backup_stop_sentinel\.json$/;
const VOLUME_KEY = new RegExp(
  "^basebackups_005/(?<name>base_[0-9A-F]{24}_[0-9A-F]{8})/tar_partitions/" +
    "part_(?<n>[0-9]+)\\.tar\\.lzo$",
);

/**
 * The key of an archived WAL-directory file: `wal_005/<basename>.lzo`. `basename` is the file's
 * name, without directories (`000000010000000000000003`, `00000002.history`, …). Throws
 * {@linkcode LayoutError} for an empty name, `.`, `..` or a name with a `/`.
 */
export function walKey(basename: string): string {
  if (basename === "" || basename === "." || basename === ".." || basename.includes("/")) {
    throw new LayoutError(
      `invalid WAL file name ${JSON.stringify(basename)}: expected a file name without "/"`,
    );
  }
  return `${WAL_DIRECTORY}${basename}.lzo`;
}

/** The basename of a key made by {@linkcode walKey}, or `null` when `key` is not one. */
export function parseWalKey(key: string): string | null {
  const basename = WAL_KEY.exec(key)?.groups?.basename;
  return basename === undefined || basename === "." || basename === ".." ? null : basename;
}

/** Whether `name` is a whole backup name, `base_<24 hex>_<8 of [0-9A-F]>`. */
export function isBackupName(name: string): name is BackupName {
  return BACKUP_NAME.test(name);
}

/**
 * The backup name WAL-E gives a backup starting at byte `offsetBytes` of `segment`:
 * `base_<segment>_<offset in decimal, zero-padded to 8>`. Take both from
 * `pgWalfileNameOffset(startLsn, …)` (spec §3.3).
 *
 * **Offsets above 99 999 999 are refused** (a {@linkcode LayoutError}): they occur only with a
 * `wal_segment_size` of 128 MiB or more, and no 8-character rendering of them is safe. WAL-E
 * truncates the decimal digits (`lpad`), so two backups starting in the same segment can get the
 * same name and overwrite each other; a hex rendering would read as a different decimal offset
 * (and can collide with one). A caller can keep the start offset small by switching to a new WAL
 * segment (`pg_switch_wal()`) just before starting the backup, and check
 * {@linkcode backupNameOffsetFits} first.
 */
export function backupName(segment: SegmentName, offsetBytes: number): BackupName {
  if (!isSegmentName(segment)) {
    throw new LayoutError(
      `invalid WAL segment name ${JSON.stringify(segment)}: expected 24 upper-case hex digits`,
    );
  }
  return `base_${segment}_${formatSegmentOffset(offsetBytes, `backup start offset in ${segment}`)}`;
}

/**
 * An offset within a segment as WAL-E writes it in backup names and in the sentinel's
 * `wal_segment_offset_backup_stop`: 8 decimal digits, zero-padded. Throws a {@linkcode
 * LayoutError} naming `what` when it is not an integer from 0 to
 * {@linkcode MAX_BACKUP_NAME_OFFSET} (see {@linkcode backupName}).
 */
export function formatSegmentOffset(offsetBytes: number, what = "segment offset"): string {
  if (!Number.isInteger(offsetBytes) || offsetBytes < 0) {
    throw new LayoutError(`invalid ${what} ${offsetBytes}: expected an integer >= 0`);
  }
  if (!backupNameOffsetFits(offsetBytes)) {
    throw new LayoutError(
      `${what} ${offsetBytes} does not fit the 8 decimal digits of WAL-E's format (only ` +
        `possible with wal_segment_size >= 128 MiB); WAL-E would truncate it and could give ` +
        `two backups the same name`,
    );
  }
  return String(offsetBytes).padStart(8, "0");
}

/** Whether {@linkcode backupName} can name a backup starting at `offsetBytes`. */
export function backupNameOffsetFits(offsetBytes: number): boolean {
  return Number.isInteger(offsetBytes) && offsetBytes >= 0 &&
    offsetBytes <= MAX_BACKUP_NAME_OFFSET;
}

/**
 * Splits a backup name into its segment and offset. Accepts any 8-character `[0-9A-F]` offset, as
 * WAL-E's readers do; throws {@linkcode LayoutError} for anything that is not a whole backup name.
 */
export function parseBackupName(name: string): ParsedBackupName {
  const groups = BACKUP_NAME.exec(name)?.groups;
  if (groups === undefined) {
    throw new LayoutError(
      `invalid backup name ${JSON.stringify(name)}: expected base_<24 hex digits>_<8 of 0-9A-F>, ` +
        `like base_000000010000000000000002_00000040`,
    );
  }
  const offset = groups.offset;
  return {
    name,
    segment: groups.segment,
    offset,
    offsetBytes: /^[0-9]{8}$/.test(offset) ? Number.parseInt(offset, 10) : null,
  };
}

function checkedBackupName(name: BackupName): BackupName {
  parseBackupName(name);
  return name;
}

/** A backup's "directory" prefix (not an object): `basebackups_005/<name>/`. */
export function backupDirectoryKey(name: BackupName): string {
  return `${BASEBACKUP_DIRECTORY}${checkedBackupName(name)}/`;
}

/** A backup's version text: `basebackups_005/<name>/extended_version.txt`. */
export function extendedVersionKey(name: BackupName): string {
  return `${backupDirectoryKey(name)}${EXTENDED_VERSION_FILE}`;
}

/** Prefix of a backup's volumes: `basebackups_005/<name>/tar_partitions/`. */
export function volumeFolderKey(name: BackupName): string {
  return `${backupDirectoryKey(name)}${VOLUME_FOLDER}`;
}

/** Tar volume `n` (from 0): `basebackups_005/<name>/tar_partitions/part_%08d.tar.lzo`. */
export function volumeKey(name: BackupName, n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new LayoutError(`invalid volume number ${n}: expected an integer >= 0`);
  }
  return `${volumeFolderKey(name)}part_${String(n).padStart(8, "0")}.tar.lzo`;
}

/**
 * The backup and number of a volume key (`…/tar_partitions/part_<digits>.tar.lzo`, any number of
 * digits, as WAL-E's `part_(\d+)`), or `null` when `key` is not a volume key.
 */
export function parseVolumeKey(key: string): ParsedVolumeKey | null {
  const groups = VOLUME_KEY.exec(key)?.groups;
  if (groups === undefined) return null;
  const partition = Number(groups.n);
  return Number.isSafeInteger(partition) ? { backup: groups.name, partition } : null;
}

/** A backup's completion sentinel: `basebackups_005/<name>_backup_stop_sentinel.json`. */
export function backupSentinelKey(name: BackupName): string {
  return `${BASEBACKUP_DIRECTORY}${checkedBackupName(name)}${SENTINEL_SUFFIX}`;
}

/** The backup name of a sentinel key, or `null` when `key` is not a whole sentinel key. */
export function parseBackupSentinelKey(key: string): BackupName | null {
  return SENTINEL_KEY.exec(key)?.groups?.name ?? null;
}
