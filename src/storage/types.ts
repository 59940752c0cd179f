/**
 * The storage interface every backend implements (file, S3, Azure, Swift, GCS).
 *
 * Commands talk only to {@linkcode ObjectStore}; they never know which backend is behind it. Keys
 * are WAL-E's *logical* keys relative to the prefix's path (`wal_005/000000010000000000000003.lzo`);
 * each backend maps them to its physical names (spec §1.4: the file backend's absolute path, the
 * leading slash of GCS and Swift object names).
 *
 * @module
 */

/** A stored object, as a listing or a head request reports it. */
export interface ObjectInfo {
  /** Logical key, relative to the store's prefix. */
  key: string;
  /** Size in bytes. */
  size: number;
  /** Last modification time. */
  lastModified: Date;
}

/** One page of a listing. */
export interface ListPage {
  /** Objects directly matched (with a delimiter: those not below a further delimiter). */
  objects: ObjectInfo[];
  /** With a delimiter: the common prefixes one level down (each ends with the delimiter). */
  prefixes: string[];
  /** Pass back to get the next page; absent on the last page. */
  cursor?: string;
}

/** Options every call accepts. */
export interface CallOptions {
  /**
   * Aborts the call. The policy layer passes one to every backend call so that a call past its
   * deadline is really cancelled (its request closed), not merely abandoned.
   */
  signal?: AbortSignal;
}

/** Options for {@linkcode ObjectStore.list}. */
export interface ListOptions extends CallOptions {
  /** Group keys below this delimiter into `prefixes` (usually "/"). */
  delimiter?: string;
  /** Continue after a previous page. */
  cursor?: string;
  /** Largest page wanted (a backend may return fewer); default 1000. */
  pageSize?: number;
}

/**
 * The bytes of an upload. A function is called once per attempt and must return a fresh stream,
 * so an upload can be retried; a plain stream can be sent only once.
 */
export type PutBody = Uint8Array | ReadableStream<Uint8Array> | (() => ReadableStream<Uint8Array>);

/** Options for {@linkcode ObjectStore.put}. */
export interface PutOptions extends CallOptions {
  /** MIME type; WAL-E sets one only for the sentinel and extended_version.txt. */
  contentType?: string;
  /** Size in bytes when known in advance (lets a backend choose a single request). */
  size?: number;
  /** Aborts the upload; nothing is left under the key. */
  signal?: AbortSignal;
}

/** Options for {@linkcode ObjectStore.get}. */
export interface GetOptions extends CallOptions {
  /** Aborts the download (also once the stream is open: the stream then errors). */
  signal?: AbortSignal;
}

/** Outcome of a batch delete. */
export interface DeleteResult {
  /** Keys deleted, or already absent. */
  deleted: string[];
  /** Keys that could not be deleted, with the reason per key. */
  errors: { key: string; message: string }[];
}

/**
 * The handful of operations every backend provides (after WAL-G's `Folder`). Reads of a missing
 * object resolve to `null`, not an error: "not in the archive" is an answer, not a failure.
 *
 * Every call is bounded by a deadline and transient failures are retried by the policy layer
 * (src/storage/policy.ts), so backends implement single attempts and classify their errors as
 * {@linkcode StorageError}.
 */
export interface ObjectStore {
  /** The URL scheme: "file", "s3", "wabs", "swift" or "gs". */
  readonly scheme: string;
  /** The full URL of a key, for log lines (e.g. `s3://bucket/path/wal_005/...`). */
  url(key: string): string;
  /** Stores an object atomically: readers never see a partial object under `key`. */
  put(key: string, body: PutBody, options?: PutOptions): Promise<void>;
  /** Streams an object's bytes, or `null` when it does not exist. */
  get(key: string, options?: GetOptions): Promise<ReadableStream<Uint8Array> | null>;
  /** Size and modification time, or `null` when it does not exist. */
  head(key: string, options?: CallOptions): Promise<ObjectInfo | null>;
  /** One page of the keys starting with `prefix`. */
  list(prefix: string, options?: ListOptions): Promise<ListPage>;
  /** Deletes keys (in batches the backend chooses); absent keys count as deleted. */
  delete(keys: readonly string[], options?: CallOptions): Promise<DeleteResult>;
}

/** How a storage failure should be treated. */
export type StorageErrorKind =
  /** Worth retrying: timeouts, resets, 5xx, throttling. */
  | "transient"
  /** Retrying cannot help: permissions, missing bucket, bad credentials, invalid request. */
  | "permanent"
  /** The data read back is not what was stored (checksum mismatch, truncated object). */
  | "corrupt";

/** A classified storage failure. The message names the problem and, where possible, the fix. */
export class StorageError extends Error {
  readonly kind: StorageErrorKind;
  /** A hint for the operator (WAL-E's HINT line). */
  readonly hint?: string;
  constructor(
    kind: StorageErrorKind,
    message: string,
    options: { hint?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "StorageError";
    this.kind = kind;
    this.hint = options.hint;
  }
}
