/**
 * `wal-d backup-list [QUERY] [--detail] [--json]`: lists the complete base backups.
 *
 * **Table (default).** WAL-E's output on stdout: Python's `csv` dialect `excel-tab` (TAB
 * separators, `\r\n` line endings, a field quoted with `"` only when it holds a TAB, a `"`, CR or
 * LF), a header row always, then one row per backup:
 *
 * ```text
 * name  last_modified  expanded_size_bytes  wal_segment_backup_start
 *   wal_segment_offset_backup_start  wal_segment_backup_stop  wal_segment_offset_backup_stop
 * ```
 *
 * Missing values are empty fields. `expanded_size_bytes` and the two stop columns are filled only
 * with `--detail` (one GET per sentinel), on every backend: WAL-E's `file` backend never filled
 * them. `last_modified` is printed the way WAL-E printed it on each backend (spec §7):
 *
 * | backend  | example                            |
 * | -------- | ---------------------------------- |
 * | s3       | `2014-06-04T20:38:28.000Z`         |
 * | file     | `2017-01-01T12:00:00.123000`       |
 * | wabs, gs | `2017-01-01 12:00:00.123000+00:00` |
 * | swift    | `2017-01-01T12:00:00.123000`       |
 *
 * (all UTC; times carry milliseconds, so the last three digits of microseconds are `000`; as in
 * Python's `isoformat`, `file`, `wabs` and `gs` times drop the fraction when it is zero).
 *
 * Rows are ordered by start position (WAL-E printed the backend's listing order; see
 * src/backup/catalog.ts).
 *
 * **QUERY.** `LATEST` prints the backup with the greatest start position (WAL-E: the latest
 * upload time; see src/backup/catalog.ts), or only the header when there is none, exit 0, as
 * WAL-E does (tools such as Patroni's wale_restore rely on that). An exact backup name prints
 * that backup; a name that is not a complete backup is an error, exit 1 (WAL-E printed only the
 * header). Anything else: `invalid backup query submitted`, exit 1, as WAL-E.
 *
 * **`--json`** (extension). A JSON array (2-space indented, one object per backup, same order
 * and query rules), each object with these keys, always all present, `null` when unknown
 * (without `--detail`, every sentinel field is `null`):
 *
 * | key | value |
 * | --- | --- |
 * | `name` | backup name |
 * | `last_modified` | sentinel's last-modified time, ISO 8601 UTC with milliseconds (every backend) |
 * | `wal_segment_backup_start`, `wal_segment_offset_backup_start` | from the name |
 * | `sentinel_key` | the sentinel's key relative to the prefix |
 * | `detail` | whether the sentinel was read (`--detail` and readable) |
 * | `expanded_size_bytes`, `wal_segment_backup_stop`, `wal_segment_offset_backup_stop` | WAL-E's sentinel fields |
 * | `spec` | `{"base_prefix": string, "tablespaces": [{"name", "loc", "link"}]}` |
 * | `wal_d_version`, `format` | wal-d's sentinel extension (null in WAL-E's backups) |
 * | `backup_start_lsn`, `backup_stop_lsn` | LSN text `X/Y` |
 * | `timeline`, `stop_timeline`, `wal_segment_size`, `server_version_num` | numbers |
 * | `server_version` | the server's `version()` |
 * | `system_identifier` | decimal digits, as a string (it exceeds 2^53) |
 * | `start_time`, `finish_time` | ISO 8601 UTC |
 * | `compression`, `encryption` | `"lzop"`; `"pgp"` or `null` (not encrypted; also unknown) |
 * | `volumes` | `{"count", "size" (stored bytes), "expanded_size_bytes"}` summed over the volumes |
 *
 * Errors: no prefix configured and a failing store are one ERROR record with a hint, exit 1.
 *
 * @module
 */

import type { Invocation } from "../cli/types.ts";
import {
  type BackupEntry,
  findBackup,
  LATEST,
  latestBackup,
  listBackups,
  loadDetails,
} from "../backup/catalog.ts";
import { writeAllSync } from "../io/file_stream.ts";
import { formatLsn } from "../layout/mod.ts";
import type { Logger } from "../log/logger.ts";
import { openStore } from "../storage/mod.ts";
import { asUserError } from "./common.ts";

/** Exit code of every failure (WAL-E's UserException). */
const FAILURE = 1;

/** The header row's columns, in WAL-E's order. */
export const BACKUP_LIST_COLUMNS = [
  "name",
  "last_modified",
  "expanded_size_bytes",
  "wal_segment_backup_start",
  "wal_segment_offset_backup_start",
  "wal_segment_backup_stop",
  "wal_segment_offset_backup_stop",
] as const;

export async function run(inv: Invocation<"backup-list">, log: Logger): Promise<number> {
  const { query, detail, json } = inv.args;
  const catalogLog = log.getLogger("wal_e.operator.backup");
  let entries: BackupEntry[];
  let scheme: string;
  try {
    const store = await openStore(inv.config, log);
    scheme = store.scheme;
    const options = { detail, log: catalogLog };
    if (query === null) {
      entries = await listBackups(store, options);
    } else if (query === LATEST) {
      // LATEST on an empty archive prints the header only and succeeds, as WAL-E.
      const latest = latestBackup(await listBackups(store));
      entries = latest === null ? [] : [latest];
      if (detail) await loadDetails(store, entries, options);
    } else {
      entries = [await findBackup(store, query, options)];
    }
  } catch (error) {
    asUserError(error, FAILURE);
  }
  const text = json ? renderBackupJson(entries) : renderBackupTable(entries, scheme);
  writeAllSync(Deno.stdout, new TextEncoder().encode(text));
  return 0;
}

/** WAL-E's table (see the module notes): header and rows, `\r\n`-terminated. */
export function renderBackupTable(entries: readonly BackupEntry[], scheme: string): string {
  const rows: string[][] = [[...BACKUP_LIST_COLUMNS]];
  for (const entry of entries) {
    const detail = entry.detail;
    rows.push([
      entry.name,
      formatLastModified(entry.lastModified, scheme),
      detail?.expandedSizeBytes === undefined ? "" : String(detail.expandedSizeBytes),
      entry.startSegment,
      entry.startOffset,
      detail?.walSegmentBackupStop ?? "",
      detail?.walSegmentOffsetBackupStop ?? "",
    ]);
  }
  return rows.map((row) => row.map(excelTabField).join("\t") + "\r\n").join("");
}

/** A field as Python's `csv` writes it with dialect `excel-tab` and minimal quoting. */
export function excelTabField(field: string): string {
  return /[\t"\r\n]/.test(field) ? `"${field.replaceAll('"', '""')}"` : field;
}

/**
 * A last-modified time as WAL-E printed it on the backend of `scheme` (see the module notes).
 * Unknown schemes get the S3 form.
 */
export function formatLastModified(time: Date, scheme: string): string {
  const iso = time.toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  const seconds = iso.slice(0, 19);
  const millis = iso.slice(20, 23);
  const micros = `${millis}000`;
  // Python's isoformat() and str() of a datetime leave out a zero fraction.
  const fraction = millis === "000" ? "" : `.${micros}`;
  switch (scheme) {
    case "file":
      return `${seconds}${fraction}`;
    case "wabs":
    case "gs":
      return `${seconds.replace("T", " ")}${fraction}+00:00`;
    case "swift":
      return `${seconds}.${micros}`;
    default:
      return iso;
  }
}

/** The `--json` output (see the module notes), with a final newline. */
export function renderBackupJson(entries: readonly BackupEntry[]): string {
  return `${JSON.stringify(entries.map(backupJson), null, 2)}\n`;
}

/** One backup as a `--json` object. */
export function backupJson(entry: BackupEntry): Record<string, unknown> {
  const d = entry.detail;
  const volumes = d?.volumes;
  return {
    name: entry.name,
    last_modified: entry.lastModified.toISOString(),
    wal_segment_backup_start: entry.startSegment,
    wal_segment_offset_backup_start: entry.startOffset,
    sentinel_key: entry.sentinelKey,
    detail: d !== undefined,
    expanded_size_bytes: d?.expandedSizeBytes ?? null,
    wal_segment_backup_stop: d?.walSegmentBackupStop ?? null,
    wal_segment_offset_backup_stop: d?.walSegmentOffsetBackupStop ?? null,
    spec: d?.spec === undefined ? null : {
      base_prefix: d.spec.basePrefix,
      tablespaces: d.spec.tablespaces.map((t) => ({ name: t.name, loc: t.loc, link: t.link })),
    },
    wal_d_version: d?.walDVersion ?? null,
    format: d?.format ?? null,
    backup_start_lsn: d?.backupStartLsn === undefined ? null : formatLsn(d.backupStartLsn),
    backup_stop_lsn: d?.backupStopLsn === undefined ? null : formatLsn(d.backupStopLsn),
    timeline: d?.timeline ?? null,
    stop_timeline: d?.stopTimeline ?? null,
    wal_segment_size: d?.walSegmentSize ?? null,
    server_version_num: d?.serverVersionNum ?? null,
    server_version: d?.serverVersion ?? null,
    system_identifier: d?.systemIdentifier ?? null,
    start_time: d?.startTime?.toISOString() ?? null,
    finish_time: d?.finishTime?.toISOString() ?? null,
    compression: d?.compression ?? null,
    encryption: d?.encryption ?? null,
    volumes: volumes === undefined ? null : {
      count: volumes.length,
      size: volumes.reduce((sum, v) => sum + v.size, 0),
      expanded_size_bytes: volumes.reduce((sum, v) => sum + v.expandedSizeBytes, 0),
    },
  };
}
