/**
 * The catalog of base backups in a store: which backups exist (those with a completion sentinel,
 * spec §2.1), their sentinels, and which one a query (`LATEST` or a name) means.
 *
 * Differences from WAL-E, on purpose:
 *
 * - **One listing level.** `basebackups_005/` is listed with the delimiter `/`, so only the
 *   sentinels (and one common prefix per backup directory) come back. WAL-E listed the prefix
 *   recursively and paged through every volume key of every backup (spec §12.16) before throwing
 *   them away.
 * - **Sorted.** Backups come in the order of their start position: timeline, then the start
 *   segment, then the start offset, then the name. WAL-E printed the backend's listing order,
 *   which is lexicographic on S3, GCS, Azure and Swift but arbitrary (`os.walk`) on `file`. Since a
 *   name is `base_<timeline><log><seg>_<offset>` with fixed-width fields, this order is also the
 *   lexicographic order of the names, i.e. what the object stores gave WAL-E.
 * - **LATEST is the backup that starts furthest into the WAL** (greatest timeline, then greatest
 *   start LSN), the upload time only breaking ties. WAL-E took the sentinel with the greatest
 *   last-modified time (spec §4.2, §12.8), and that time lies: a backup copied or re-uploaded into
 *   the prefix (a restore of the archive, a bucket migration, a sentinel rewritten) gets a new
 *   time, and the clocks of several hosts writing one prefix differ. The start position is a fact
 *   of the WAL history and agrees with what `delete retain` keeps. It assumes one cluster per
 *   prefix (wal-push enforces that for WAL): backups of a different, newer cluster in the same
 *   prefix would start at lower LSNs.
 * - **Sentinel details on every backend**, `file` included (WAL-E's `file` backend never read
 *   them, spec §2.2).
 *
 * @module
 */

import { UserError } from "../cli/errors.ts";
import {
  type BackupName,
  backupSentinelKey,
  BASE_BACKUP_REGEXP,
  BASEBACKUP_DIRECTORY,
  COMPLETE_BASE_BACKUP_REGEXP,
  isBackupName,
  parseBackupSentinelKey,
  type SegmentName,
} from "../layout/mod.ts";
import type { Logger } from "../log/logger.ts";
import { listObjects } from "../storage/list.ts";
import { type ObjectStore, StorageError } from "../storage/types.ts";
import { parseSentinel, type Sentinel, SentinelError } from "./sentinel.ts";
import { concatBytes } from "../io/bytes.ts";
import { compareStrings } from "../io/compare.ts";
import { forEachLimited } from "../io/concurrency.ts";

/** The query that names the most recent backup. */
export const LATEST = "LATEST";

/** Sentinels are read concurrently, at most this many at once by default. */
export const DEFAULT_DETAIL_CONCURRENCY = 4;

/** A sentinel larger than this is refused as corrupt (wal-d's are a few kB per 100 volumes). */
export const MAX_SENTINEL_BYTES = 4 * 1024 * 1024;

/** A complete backup: one whose sentinel exists. */
export interface BackupEntry {
  /** The backup's name, `base_<SEG24>_<OFF8>`. */
  name: BackupName;
  /** The sentinel's last-modified time, as the store's listing reports it. */
  lastModified: Date;
  /** The WAL segment holding the start LSN (from the name). */
  startSegment: SegmentName;
  /** The start offset as written in the name: 8 characters, opaque (decimal in WAL-E's names). */
  startOffset: string;
  /** The sentinel's key (`basebackups_005/<name>_backup_stop_sentinel.json`). */
  sentinelKey: string;
  /**
   * The parsed sentinel, when details were requested and it could be read; `undefined` when they
   * were not requested, or when the sentinel was missing or corrupt (a warning says which).
   */
  detail?: Sentinel;
}

/** Options of {@linkcode listBackups} and {@linkcode findBackup}. */
export interface CatalogOptions {
  /** Read and parse each backup's sentinel into {@linkcode BackupEntry.detail}. */
  detail?: boolean;
  /** Aborts the listing and the reads. */
  signal?: AbortSignal;
  /** Receives a WARNING for each sentinel that cannot be read or parsed. */
  log?: Logger;
  /** Sentinels read at once; default {@linkcode DEFAULT_DETAIL_CONCURRENCY}. */
  concurrency?: number;
}

/**
 * The complete backups in `store`, ordered by start position (see the module notes). With
 * `detail`, each sentinel is read (one GET each, a few at a time); a sentinel that is missing by
 * then, unreadable or corrupt leaves `detail` undefined and logs a warning, as WAL-E left the
 * fields empty when a read timed out. Listing failures are thrown (`StorageError`).
 */
export async function listBackups(
  store: ObjectStore,
  options: CatalogOptions = {},
): Promise<BackupEntry[]> {
  const entries = await listSentinels(store, BASEBACKUP_DIRECTORY, options.signal);
  entries.sort(compareStartPositions);
  if (options.detail) await loadDetails(store, entries, options);
  return entries;
}

/** `no backups found` (WAL-E's message): there is no complete backup `where` (e.g. in the store). */
export function noBackupsFound(where: string): UserError {
  return new UserError("no backups found", {
    detail: `There is no complete backup (a *_backup_stop_sentinel.json object) ${where}.`,
    hint: 'Check the storage prefix, or take a backup with "wal-d backup-push PGDATA".',
  });
}

/** A backup name that is not a complete backup; `detail` says where it was looked for. */
export function noBackupNamed(name: string, detail?: string): UserError {
  return new UserError(`no backup named "${name}" found`, {
    detail,
    hint: 'Run "wal-d backup-list" and give a name exactly as it prints it, or LATEST.',
  });
}

/**
 * The backup a query names: an exact backup name, or {@linkcode LATEST} (the backup with the
 * greatest start position, see the module notes). With `detail`, only that backup's sentinel is
 * read. Throws {@linkcode UserError} (exit 1): `invalid backup query submitted` for anything else
 * (WAL-E's message), `no backups found` when there is no backup at all, and
 * `no backup named "…" found` for a name that is not a complete backup.
 */
export async function findBackup(
  store: ObjectStore,
  query: string,
  options: CatalogOptions = {},
): Promise<BackupEntry> {
  let found: BackupEntry | null;
  if (query === LATEST) {
    found = latestBackup(await listSentinels(store, BASEBACKUP_DIRECTORY, options.signal));
    if (found === null) throw noBackupsFound(`under "${store.url(BASEBACKUP_DIRECTORY)}"`);
  } else if (BASE_BACKUP_REGEXP.test(query)) {
    found = await findByName(store, query, options.signal);
    if (found === null) {
      throw noBackupNamed(
        query,
        `"${
          store.url(isBackupName(query) ? backupSentinelKey(query) : BASEBACKUP_DIRECTORY)
        }" does not exist.`,
      );
    }
  } else {
    throw invalidQuery(query);
  }
  if (options.detail) await loadDetails(store, [found], options);
  return found;
}

/** WAL-E's error for a query that is neither a backup name nor `LATEST` (exit 1). */
export function invalidQuery(query: string): UserError {
  return new UserError("invalid backup query submitted", {
    detail: `The submitted query operator was "${query}."`,
    hint: "Give a backup name as backup-list prints it (base_<24 hex digits>_<8 digits>) or " +
      "LATEST.",
  });
}

/**
 * The backup {@linkcode LATEST} means among `entries`: the greatest start position, ties broken
 * by the later last-modified time; `null` when there are none.
 */
export function latestBackup(entries: readonly BackupEntry[]): BackupEntry | null {
  let best: BackupEntry | null = null;
  for (const entry of entries) {
    if (best === null) {
      best = entry;
      continue;
    }
    const order = compareStartPositions(entry, best, false) ||
      entry.lastModified.getTime() - best.lastModified.getTime();
    if (order > 0) best = entry;
  }
  return best;
}

/**
 * Orders backups by start position: timeline, then log and segment number, then offset (as a
 * number when both are decimal, else as text), then, unless `byName` is false, by name.
 */
export function compareStartPositions(
  a: Pick<BackupEntry, "name" | "startSegment" | "startOffset">,
  b: Pick<BackupEntry, "name" | "startSegment" | "startOffset">,
  byName = true,
): number {
  // Fixed-width upper-case hex: text order is numeric order (timeline first, then log, seg).
  const bySegment = compareStrings(a.startSegment, b.startSegment);
  if (bySegment !== 0) return bySegment;
  const decimal = /^[0-9]{8}$/;
  const byOffset = decimal.test(a.startOffset) && decimal.test(b.startOffset)
    ? Number(a.startOffset) - Number(b.startOffset)
    : compareStrings(a.startOffset, b.startOffset);
  if (byOffset !== 0 || !byName) return byOffset;
  return compareStrings(a.name, b.name);
}

/**
 * Reads one backup's sentinel: the parsed sentinel, or `null` when it does not exist. Throws
 * {@linkcode SentinelError} when it is corrupt (or larger than {@linkcode MAX_SENTINEL_BYTES}),
 * `StorageError` when it cannot be read.
 */
export async function readSentinel(
  store: ObjectStore,
  key: string,
  options: { signal?: AbortSignal } = {},
): Promise<Sentinel | null> {
  const stream = await store.get(key, { signal: options.signal });
  if (stream === null) return null;
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_SENTINEL_BYTES) {
        await reader.cancel().catch(() => {});
        throw new SentinelError(key, null, `is larger than ${MAX_SENTINEL_BYTES} bytes`);
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  const bytes = concatBytes(chunks);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new SentinelError(key, null, "is not UTF-8 text");
  }
  return parseSentinel(text, key);
}

/**
 * The complete backups among the keys directly under `prefix` (one level: delimiter `/`). A key
 * counts when its name matches WAL-E's start-anchored `COMPLETE_BASE_BACKUP_REGEXP`, as WAL-E
 * decides; when several keys give one backup name (`…_sentinel.json` and `…_sentinel.json.bak`),
 * the exact sentinel key wins, so each backup appears once.
 */
async function listSentinels(
  store: ObjectStore,
  prefix: string,
  signal: AbortSignal | undefined,
): Promise<BackupEntry[]> {
  const byName = new Map<BackupName, BackupEntry>();
  for await (const object of listObjects(store, prefix, { delimiter: "/", signal })) {
    if (!object.key.startsWith(BASEBACKUP_DIRECTORY)) continue;
    const base = object.key.slice(BASEBACKUP_DIRECTORY.length);
    if (base.includes("/")) continue;
    const groups = COMPLETE_BASE_BACKUP_REGEXP.exec(base)?.groups;
    if (groups === undefined) continue;
    const name = `base_${groups.filename}_${groups.offset}`;
    const previous = byName.get(name);
    if (previous !== undefined && parseBackupSentinelKey(previous.sentinelKey) !== null) {
      continue;
    }
    byName.set(name, {
      name,
      lastModified: object.lastModified,
      startSegment: groups.filename,
      startOffset: groups.offset,
      sentinelKey: object.key,
    });
  }
  return [...byName.values()];
}

/** The backup called `name`, found by listing its sentinel key as a prefix (one request). */
async function findByName(
  store: ObjectStore,
  name: string,
  signal: AbortSignal | undefined,
): Promise<BackupEntry | null> {
  // A query that only starts like a name (WAL-E's start-anchored match) equals no listed name.
  if (!isBackupName(name)) return null;
  const entries = await listSentinels(store, backupSentinelKey(name), signal);
  return entries.find((entry) => entry.name === name) ?? null;
}

/**
 * Fills {@linkcode BackupEntry.detail} of each entry by reading its sentinel, a few at a time
 * (`options.concurrency`); a sentinel that is gone, unreadable or corrupt leaves `detail`
 * undefined and logs a warning to `options.log`.
 */
export async function loadDetails(
  store: ObjectStore,
  entries: readonly BackupEntry[],
  options: CatalogOptions,
): Promise<void> {
  await forEachLimited(
    entries,
    options.concurrency ?? DEFAULT_DETAIL_CONCURRENCY,
    async (entry) => {
      entry.detail = await loadDetail(store, entry, options);
    },
  );
}

async function loadDetail(
  store: ObjectStore,
  entry: BackupEntry,
  options: CatalogOptions,
): Promise<Sentinel | undefined> {
  const url = store.url(entry.sentinelKey);
  try {
    const sentinel = await readSentinel(store, entry.sentinelKey, { signal: options.signal });
    if (sentinel !== null) return sentinel;
    options.log?.warning(`the sentinel of backup ${entry.name} is gone`, {
      detail: `"${url}" was listed but no longer exists; its details are left empty.`,
      hint: "A concurrent delete may have removed the backup; run backup-list again.",
    });
  } catch (error) {
    if (!(error instanceof SentinelError || error instanceof StorageError)) throw error;
    options.log?.warning(`cannot read the sentinel of backup ${entry.name}`, {
      detail: `${error.message} (${url}); its details are left empty.`,
      hint: error instanceof StorageError && error.hint !== undefined
        ? error.hint
        : "The backup cannot be restored without a readable sentinel; take a new backup.",
    });
  }
  return undefined;
}
