/**
 * The completion sentinel of a base backup,
 * `basebackups_005/base_<SEG24>_<OFF8>_backup_stop_sentinel.json` (spec §2): its types, and its
 * encoding and parsing.
 *
 * A backup exists only once its sentinel does: backup-push uploads it last, after every volume.
 * Its text is plain JSON (never compressed or encrypted), written the way WAL-E's Python
 * `json.dumps` writes it: separators `", "` and `": "`, non-ASCII characters as `\uXXXX` escapes,
 * keys in insertion order. WAL-E's four fields come first, in WAL-E's order; wal-d's extension
 * fields follow. WAL-E copies every top-level key of a sentinel onto its backup record and uses
 * only its own, so WAL-E reads wal-d's sentinels unchanged, and the text of a sentinel wal-d
 * writes with WAL-E's fields only is byte for byte what WAL-E 1.1.1 writes.
 *
 * ```json
 * {"wal_segment_backup_stop": "000000010000000000000003",
 *  "wal_segment_offset_backup_stop": "00000256",
 *  "expanded_size_bytes": 39727137,
 *  "spec": {"base_prefix": "/var/lib/postgresql/15/main/", "tablespaces": ["16422"],
 *           "16422": {"loc": "/mnt/ts1/", "link": "pg_tblspc/16422"}},
 *  "wal_d_version": "0.1.0", "format": 1,
 *  "backup_start_lsn": "0/3000028", "backup_stop_lsn": "0/3000100",
 *  "timeline": 1, "stop_timeline": 1, "wal_segment_size": 16777216,
 *  "server_version_num": 150020, "server_version": "PostgreSQL 15.20 on x86_64-pc-linux-gnu, ...",
 *  "system_identifier": "7442385906046398476",
 *  "start_time": "2026-11-21T05:19:50.511Z", "finish_time": "2026-11-21T05:19:51.027Z",
 *  "compression": "lzop", "encryption": null,
 *  "volumes": [{"name": "part_00000000.tar.lzo", "size": 6588128,
 *               "sha256": "0b6f…", "expanded_size_bytes": 40253440, "members": 1019}]}
 * ```
 *
 * (one line in the object; wrapped here for reading).
 *
 * Parsing is tolerant of what WAL-E wrote: the extension fields are simply absent (their
 * properties are `undefined`), as are `expanded_size_bytes` and `spec` in sentinels of WAL-E
 * versions before 0.8, and unknown keys are ignored. Whatever is present must have the right
 * type: a corrupt sentinel is a {@linkcode SentinelError} naming the key.
 *
 * @module
 */

import {
  formatLsn,
  isSegmentName,
  isValidWalSegmentSize,
  type Lsn,
  parseLsn,
  type SegmentName,
} from "../layout/mod.ts";
import { errorMessage } from "../io/error_message.ts";

/** The version of wal-d's sentinel extension fields (the `format` field). */
export const SENTINEL_FORMAT = 1;

/** MIME type of the sentinel object (WAL-E's). */
export const SENTINEL_CONTENT_TYPE = "application/json";

/** Compression of the volumes: lzop (`.tar.lzo`), the only one WAL-E and wal-d write. */
export type SentinelCompression = "lzop";

/** Encryption of the volumes: OpenPGP (WAL-E's `gpg -e`); `null` in a sentinel: none. */
export type SentinelEncryption = "pgp";

/** A tablespace of the backed-up cluster: its `pg_tblspc/<name>` link and where it pointed. */
export interface TablespaceSpec {
  /** The directory name under `pg_tblspc` (the tablespace's OID), e.g. `"16422"`. */
  name: string;
  /** The link's target, with a trailing `/` (WAL-E's `loc`), e.g. `"/mnt/ts1/"`. */
  loc: string;
  /** The link, relative to the data directory (WAL-E's `link`), e.g. `"pg_tblspc/16422"`. */
  link: string;
}

/**
 * WAL-E's tablespace `spec`. In the JSON it is `{"base_prefix": …, "tablespaces": [names…],
 * <name>: {"loc": …, "link": …}, …}`, one entry per name, in the order of the list.
 */
export interface BackupSpec {
  /** The data directory as given to backup-push, with a trailing `/` (WAL-E's `base_prefix`). */
  basePrefix: string;
  /** The tablespaces, in the order of WAL-E's `tablespaces` list. */
  tablespaces: TablespaceSpec[];
}

/** One tar volume of a backup, as wal-d records it (`volumes`). */
export interface SentinelVolume {
  /** The object's name inside `tar_partitions/`, e.g. `part_00000000.tar.lzo`. */
  name: string;
  /** Stored size in bytes (compressed, and encrypted if so). */
  size: number;
  /** SHA-256 of the stored bytes, 64 lower-case hex digits. */
  sha256: string;
  /** Sum of the sizes of the volume's tar members (like WAL-E's `expanded_size_bytes`). */
  expandedSizeBytes: number;
  /** Number of tar members in the volume. */
  members: number;
}

/**
 * A parsed sentinel. The first four properties are WAL-E's fields; the rest are wal-d's
 * extension, absent (`undefined`) in sentinels WAL-E wrote. wal-d's backup-push sets them all.
 */
export interface Sentinel {
  /** WAL segment holding the stop LSN (`wal_segment_backup_stop`), 24 upper-case hex digits. */
  walSegmentBackupStop: SegmentName;
  /**
   * The stop LSN's byte offset in that segment (`wal_segment_offset_backup_stop`): 8 characters,
   * decimal zero-padded as WAL-E writes it. Read as an opaque string, like a backup name's offset.
   */
  walSegmentOffsetBackupStop: string;
  /** Sum of the tar members' sizes over all volumes (`expanded_size_bytes`). */
  expandedSizeBytes?: number;
  /** The tablespace spec (`spec`). */
  spec?: BackupSpec;

  /** wal-d version that wrote the sentinel (`wal_d_version`). */
  walDVersion?: string;
  /** Version of the extension fields (`format`), {@linkcode SENTINEL_FORMAT}. */
  format?: typeof SENTINEL_FORMAT;
  /** Backup start LSN (`backup_start_lsn`, text `X/Y`). */
  backupStartLsn?: Lsn;
  /** Backup stop LSN (`backup_stop_lsn`, text `X/Y`). */
  backupStopLsn?: Lsn;
  /** Timeline at the start (`timeline`). */
  timeline?: number;
  /** Timeline at the stop (`stop_timeline`). */
  stopTimeline?: number;
  /** The cluster's `wal_segment_size` in bytes (`wal_segment_size`). */
  walSegmentSize?: number;
  /** The server's `server_version_num` (`server_version_num`), e.g. 150020. */
  serverVersionNum?: number;
  /** The server's `version()` string (`server_version`). */
  serverVersion?: string;
  /**
   * The cluster's system identifier (`system_identifier`), as a string of decimal digits: it
   * exceeds 2^53, so a JSON number would lose digits.
   */
  systemIdentifier?: string;
  /** When the backup started (`start_time`, ISO 8601 UTC). */
  startTime?: Date;
  /** When the backup finished, before the sentinel upload (`finish_time`, ISO 8601 UTC). */
  finishTime?: Date;
  /** Volume compression (`compression`). */
  compression?: SentinelCompression;
  /** Volume encryption (`encryption`): `null` for none. */
  encryption?: SentinelEncryption | null;
  /** The tar volumes, in order (`volumes`). */
  volumes?: SentinelVolume[];
}

/** A sentinel that cannot be parsed or encoded. The message names the sentinel and the key. */
export class SentinelError extends Error {
  /** The sentinel's name (as given to {@linkcode parseSentinel}). */
  readonly sentinel: string;
  /** The offending JSON key (dotted path, e.g. `volumes[0].sha256`), or `null` for the whole. */
  readonly field: string | null;

  constructor(sentinel: string, field: string | null, problem: string) {
    super(
      `corrupt backup sentinel "${sentinel}": ` +
        (field === null ? problem : `${field} ${problem}`),
    );
    this.name = "SentinelError";
    this.sentinel = sentinel;
    this.field = field;
  }
}

/** A JSON value as Python's `json.dumps` encodes it; a `Map` keeps its keys' insertion order. */
type PyJson = null | boolean | number | string | PyJson[] | Map<string, PyJson>;

/**
 * Encodes a JSON value exactly as Python's `json.dumps(value)` does with its defaults: separators
 * `", "` and `": "`, `ensure_ascii` (every character outside space..`~` as `\uXXXX`, lower-case
 * hex, UTF-16 code units), keys in insertion order. Only integers are supported as numbers.
 */
function pyDumps(value: PyJson): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new RangeError(`not a safe integer: ${value}`);
    return String(value);
  }
  if (typeof value === "string") return pyQuote(value);
  if (Array.isArray(value)) return `[${value.map(pyDumps).join(", ")}]`;
  const members = [...value].map(([key, member]) => `${pyQuote(key)}: ${pyDumps(member)}`);
  return `{${members.join(", ")}}`;
}

const SHORT_ESCAPES: Readonly<Record<string, string>> = {
  '"': '\\"',
  "\\": "\\\\",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\b": "\\b",
  "\f": "\\f",
};

function pyQuote(text: string): string {
  let out = '"';
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    const code = text.charCodeAt(i);
    const short = SHORT_ESCAPES[char];
    if (short !== undefined) out += short;
    else if (code >= 0x20 && code <= 0x7e) out += char;
    else out += `\\u${code.toString(16).padStart(4, "0")}`;
  }
  return `${out}"`;
}

const DECIMAL_OFFSET = /^[0-9]{8}$/;
const OPAQUE_OFFSET = /^[0-9A-F]{8}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const VOLUME_NAME = /^part_[0-9]+\.tar\.lzo$/;
const DIGITS = /^[0-9]{1,20}$/;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
const MAX_TIMELINE = 0xFFFF_FFFF;
const MAX_UINT64 = 0xFFFF_FFFF_FFFF_FFFFn;

/** Where encoding happens, for the messages of {@linkcode encodeSentinel}. */
const NEW_SENTINEL = "(sentinel being written)";

/**
 * The sentinel's text, as it is stored: WAL-E's fields in WAL-E's order and formatting, then the
 * extension fields that are set (`undefined` ones are left out), in the order of the module's
 * example. No trailing newline (WAL-E writes none). Throws {@linkcode SentinelError} for a value
 * that {@linkcode parseSentinel} would refuse, and for a stop offset that is not 8 decimal digits.
 */
export function encodeSentinel(sentinel: Sentinel): string {
  if (!DECIMAL_OFFSET.test(sentinel.walSegmentOffsetBackupStop)) {
    throw new SentinelError(
      NEW_SENTINEL,
      "wal_segment_offset_backup_stop",
      `must be 8 decimal digits, got ${JSON.stringify(sentinel.walSegmentOffsetBackupStop)}`,
    );
  }
  const fields = new Map<string, PyJson>();
  const set = (key: string, value: PyJson | undefined) => {
    if (value !== undefined) fields.set(key, value);
  };
  set("wal_segment_backup_stop", sentinel.walSegmentBackupStop);
  set("wal_segment_offset_backup_stop", sentinel.walSegmentOffsetBackupStop);
  set("expanded_size_bytes", sentinel.expandedSizeBytes);
  if (sentinel.spec !== undefined) set("spec", specJson(sentinel.spec));
  set("wal_d_version", sentinel.walDVersion);
  set("format", sentinel.format);
  set("backup_start_lsn", lsnText(sentinel.backupStartLsn, "backup_start_lsn"));
  set("backup_stop_lsn", lsnText(sentinel.backupStopLsn, "backup_stop_lsn"));
  set("timeline", sentinel.timeline);
  set("stop_timeline", sentinel.stopTimeline);
  set("wal_segment_size", sentinel.walSegmentSize);
  set("server_version_num", sentinel.serverVersionNum);
  set("server_version", sentinel.serverVersion);
  set("system_identifier", sentinel.systemIdentifier);
  set("start_time", timeText(sentinel.startTime, "start_time"));
  set("finish_time", timeText(sentinel.finishTime, "finish_time"));
  set("compression", sentinel.compression);
  set("encryption", sentinel.encryption);
  if (sentinel.volumes !== undefined) {
    set(
      "volumes",
      sentinel.volumes.map((volume) =>
        new Map<string, PyJson>([
          ["name", volume.name],
          ["size", volume.size],
          ["sha256", volume.sha256],
          ["expanded_size_bytes", volume.expandedSizeBytes],
          ["members", volume.members],
        ])
      ),
    );
  }
  let text: string;
  try {
    text = pyDumps(fields);
  } catch (error) {
    throw new SentinelError(NEW_SENTINEL, null, `has a value JSON cannot hold: ${error}`);
  }
  // The same checks as a reader's: wal-d never writes a sentinel it would refuse to read.
  parseSentinel(text, NEW_SENTINEL);
  return text;
}

/** WAL-E's JSON shape of a spec (see {@linkcode BackupSpec}), keys in WAL-E's order. */
function specJson(spec: BackupSpec): Map<string, PyJson> {
  const json = new Map<string, PyJson>([
    ["base_prefix", spec.basePrefix],
    ["tablespaces", spec.tablespaces.map((t) => t.name)],
  ]);
  for (const t of spec.tablespaces) {
    json.set(t.name, new Map<string, PyJson>([["loc", t.loc], ["link", t.link]]));
  }
  return json;
}

function lsnText(lsn: Lsn | undefined, field: string): string | undefined {
  if (lsn === undefined) return undefined;
  try {
    return formatLsn(lsn);
  } catch {
    throw new SentinelError(NEW_SENTINEL, field, `is not an LSN: ${String(lsn)}`);
  }
}

function timeText(time: Date | undefined, field: string): string | undefined {
  if (time === undefined) return undefined;
  if (!(time instanceof Date) || Number.isNaN(time.getTime())) {
    throw new SentinelError(NEW_SENTINEL, field, "is not a valid date");
  }
  return time.toISOString();
}

/**
 * Parses a sentinel's text. `name` names it in error messages (the backup name or the key).
 * Throws {@linkcode SentinelError} when the text is not a JSON object, when WAL-E's stop fields
 * are missing, or when any known field present has the wrong type or form.
 */
export function parseSentinel(text: string, name: string): Sentinel {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    const reason = errorMessage(error);
    throw new SentinelError(name, null, `is not JSON (${reason})`);
  }
  if (!isObject(json)) throw new SentinelError(name, null, "is not a JSON object");
  const r = new FieldReader(name, json, "");

  const sentinel: Sentinel = {
    walSegmentBackupStop: r.required(
      "wal_segment_backup_stop",
      (v) => typeof v === "string" && isSegmentName(v) ? v : fail("must be a WAL segment name"),
    ),
    walSegmentOffsetBackupStop: r.required(
      "wal_segment_offset_backup_stop",
      (v) =>
        typeof v === "string" && OPAQUE_OFFSET.test(v)
          ? v
          : fail("must be 8 characters of 0-9A-F (a decimal offset)"),
    ),
  };
  const assign = <K extends keyof Sentinel>(key: K, value: Sentinel[K] | undefined) => {
    if (value !== undefined) sentinel[key] = value;
  };
  assign("expandedSizeBytes", r.optional("expanded_size_bytes", count));
  assign("spec", r.optional("spec", (v, path) => parseSpec(name, v, path)));
  assign("walDVersion", r.optional("wal_d_version", nonEmptyString));
  assign(
    "format",
    r.optional("format", (v) =>
      v === SENTINEL_FORMAT ? SENTINEL_FORMAT : fail(
        typeof v === "number"
          ? `is ${v}, newer than this wal-d reads (${SENTINEL_FORMAT}); upgrade wal-d`
          : `must be the number ${SENTINEL_FORMAT}`,
      )),
  );
  assign("backupStartLsn", r.optional("backup_start_lsn", lsn));
  assign("backupStopLsn", r.optional("backup_stop_lsn", lsn));
  assign("timeline", r.optional("timeline", timeline));
  assign("stopTimeline", r.optional("stop_timeline", timeline));
  assign(
    "walSegmentSize",
    r.optional(
      "wal_segment_size",
      (v) =>
        typeof v === "number" && isValidWalSegmentSize(v)
          ? v
          : fail("must be a power of two from 1 MiB to 1 GiB"),
    ),
  );
  assign(
    "serverVersionNum",
    r.optional(
      "server_version_num",
      (v) =>
        Number.isSafeInteger(v) && (v as number) > 0
          ? v as number
          : fail("must be a positive integer"),
    ),
  );
  assign("serverVersion", r.optional("server_version", nonEmptyString));
  assign(
    "systemIdentifier",
    r.optional(
      "system_identifier",
      (v) =>
        typeof v === "string" && DIGITS.test(v) && BigInt(v) <= MAX_UINT64
          ? v
          : fail("must be a string of decimal digits (an unsigned 64-bit integer)"),
    ),
  );
  assign("startTime", r.optional("start_time", isoTime));
  assign("finishTime", r.optional("finish_time", isoTime));
  assign(
    "compression",
    r.optional(
      "compression",
      (v) => v === "lzop" ? v : fail(`must be "lzop" (the only compression this wal-d reads)`),
    ),
  );
  if (Object.hasOwn(json, "encryption")) {
    sentinel.encryption = r.required(
      "encryption",
      (v) => v === null || v === "pgp" ? v : fail(`must be null or "pgp"`),
    );
  }
  assign("volumes", r.optional("volumes", (v, path) => parseVolumes(name, v, path)));
  return sentinel;
}

/** Thrown inside a field check; {@linkcode FieldReader} turns it into a {@linkcode SentinelError}. */
class FieldProblem extends Error {}

function fail(problem: string): never {
  throw new FieldProblem(problem);
}

type Check<T> = (value: unknown, path: string) => T;

/** Reads typed fields of one JSON object, naming `path.key` in every error. */
class FieldReader {
  constructor(
    readonly sentinel: string,
    readonly object: Record<string, unknown>,
    readonly path: string,
  ) {}

  required<T>(key: string, check: Check<T>): T {
    const path = this.path + key;
    if (!Object.hasOwn(this.object, key)) {
      throw new SentinelError(this.sentinel, path, "is missing");
    }
    const value = this.object[key];
    try {
      return check(value, path);
    } catch (error) {
      if (!(error instanceof FieldProblem)) throw error;
      throw new SentinelError(this.sentinel, path, `${error.message}, got ${describe(value)}`);
    }
  }

  optional<T>(key: string, check: Check<T>): T | undefined {
    return Object.hasOwn(this.object, key) ? this.required(key, check) : undefined;
  }
}

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function count(value: unknown): number {
  return Number.isSafeInteger(value) && (value as number) >= 0
    ? value as number
    : fail("must be an integer >= 0");
}

function nonEmptyString(value: unknown): string {
  return typeof value === "string" && value !== "" ? value : fail("must be a non-empty string");
}

function aString(value: unknown): string {
  return typeof value === "string" ? value : fail("must be a string");
}

function lsn(value: unknown): Lsn {
  if (typeof value !== "string") fail(`must be an LSN text like "0/3000028"`);
  try {
    return parseLsn(value);
  } catch {
    return fail(`must be an LSN text like "0/3000028"`);
  }
}

function timeline(value: unknown): number {
  return Number.isSafeInteger(value) && (value as number) >= 1 &&
      (value as number) <= MAX_TIMELINE
    ? value as number
    : fail("must be a timeline ID (an integer from 1 to 4294967295)");
}

function isoTime(value: unknown): Date {
  if (typeof value !== "string" || !ISO_UTC.test(value)) {
    fail(`must be an ISO 8601 UTC time like "2026-11-21T05:19:50.511Z"`);
  }
  const time = new Date(value);
  return Number.isNaN(time.getTime()) ? fail("is not a valid date") : time;
}

function parseSpec(sentinel: string, value: unknown, path: string): BackupSpec {
  if (!isObject(value)) fail("must be an object");
  const r = new FieldReader(sentinel, value, `${path}.`);
  const basePrefix = r.required("base_prefix", aString);
  const names = r.required(
    "tablespaces",
    (v) =>
      Array.isArray(v) && v.every((n) => typeof n === "string")
        ? v as string[]
        : fail("must be a list of strings"),
  );
  const seen = new Set<string>();
  const tablespaces = names.map((tsName, i): TablespaceSpec => {
    if (
      tsName === "" || tsName.includes("/") || tsName === "." || tsName === ".." ||
      tsName === "base_prefix" || tsName === "tablespaces" || seen.has(tsName)
    ) {
      throw new SentinelError(
        sentinel,
        `${path}.tablespaces[${i}]`,
        `must be a distinct directory name under pg_tblspc, got ${describe(tsName)}`,
      );
    }
    seen.add(tsName);
    const entry = r.required(tsName, (v) => isObject(v) ? v : fail("must be an object"));
    const er = new FieldReader(sentinel, entry, `${path}.${tsName}.`);
    return { name: tsName, loc: er.required("loc", aString), link: er.required("link", aString) };
  });
  return { basePrefix, tablespaces };
}

function parseVolumes(sentinel: string, value: unknown, path: string): SentinelVolume[] {
  if (!Array.isArray(value)) fail("must be a list");
  const seen = new Set<string>();
  return value.map((item, i): SentinelVolume => {
    const itemPath = `${path}[${i}]`;
    if (!isObject(item)) throw new SentinelError(sentinel, itemPath, "must be an object");
    const r = new FieldReader(sentinel, item, `${itemPath}.`);
    const name = r.required(
      "name",
      (v) =>
        typeof v === "string" && VOLUME_NAME.test(v) && !seen.has(v)
          ? v
          : fail("must be a distinct volume name like part_00000000.tar.lzo"),
    );
    seen.add(name);
    return {
      name,
      size: r.required("size", count),
      sha256: r.required(
        "sha256",
        (v) =>
          typeof v === "string" && SHA256_HEX.test(v)
            ? v
            : fail("must be 64 lower-case hex digits"),
      ),
      expandedSizeBytes: r.required("expanded_size_bytes", count),
      members: r.required("members", count),
    };
  });
}
