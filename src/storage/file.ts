/**
 * The `file://` backend: objects are files under a directory (spec §1.4).
 *
 * **Paths.** As in WAL-E, the physical path of logical key `K` is `'/' + pathPrefix + K`; the
 * URL's host part is ignored (`file://localhost/backups/pg` and `file:///backups/pg` both store
 * under `/backups/pg/`, `file://backups/pg` under `/pg/`). Keys must be relative paths without
 * `.`, `..` or empty components.
 *
 * **Atomic writes** (unlike WAL-E, which writes final paths in place, spec §12.11). `put` writes
 * to a temporary file in the target's directory, named `.<name>.tmp-<12 hex digits>`, fsyncs it,
 * renames it over the final name and fsyncs the directory. Readers see the old object or the new
 * one, never a partial one; a failed or aborted put removes its temporary file, and one left by a
 * crash is never listed. Concurrent puts of one key each write their own temporary file; the last
 * rename wins, and the object is always one complete upload.
 *
 * **Modes.** Directories this backend creates get mode 0700 and files 0600 (less the umask):
 * an archive holds the whole database, so it gets the protection PostgreSQL gives its data
 * directory. (WAL-E used the process defaults, usually 0755 and 0644.) Existing directories keep
 * their modes. Newly created directories are made durable by fsyncing their parents.
 *
 * **Listing** is sorted by key (JavaScript string order, which is byte order for the ASCII keys
 * WAL-E writes), unlike WAL-E's `os.walk` order, and paged with an opaque cursor (the last key or
 * common prefix returned). Only regular files (and symbolic links to them) are objects.
 *
 * **Deleting** removes the files, then the directories that became empty, up to but not
 * including the root.
 *
 * @module
 */
import { isTemporaryName, syncDirectory, temporaryName } from "../io/atomic_file.ts";
import type { StoragePrefix } from "../config/types.ts";
import { fileStorageRoot } from "../config/prefix.ts";
import { fileByteStream, writeAll } from "../io/file_stream.ts";
import { classifyError, hintForError } from "./policy.ts";
import type {
  CallOptions,
  DeleteResult,
  GetOptions,
  ListOptions,
  ListPage,
  ObjectInfo,
  ObjectStore,
  PutBody,
  PutOptions,
} from "./types.ts";
import { StorageError } from "./types.ts";
import { readChunks } from "../io/byob.ts";
import { basename, dirname } from "../io/path.ts";
import { compareStrings } from "../io/compare.ts";
import { errorMessage } from "../io/error_message.ts";

/** Mode of the directories this backend creates (before the umask). */
const FILE_STORE_DIRECTORY_MODE = 0o700;
/** Mode of the files this backend creates (before the umask). */
const FILE_STORE_FILE_MODE = 0o600;
/** Default page size of {@linkcode FileStore.list}. */
export const DEFAULT_LIST_PAGE_SIZE = 1000;
/** How long continuation pages of a listing may reuse a directory's sorted entries. */
export const LISTING_CACHE_MS = 60_000;
/** Directories with fewer entries are read afresh for every page. */
const LISTING_CACHE_MIN_ENTRIES = 512;
/** At most this many directories are kept. */
const LISTING_CACHE_DIRECTORIES = 8;

/** Options of {@linkcode FileStore}. */
export interface FileStoreOptions {
  /** Random bytes for temporary names; default `crypto.getRandomValues`. */
  readonly randomBytes?: (size: number) => Uint8Array;
}

function isMissing(error: unknown): boolean {
  return error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory;
}

let cachedUser: string | undefined;

/** `name (uid N)` of the user running us, as well as we can tell, for hints. */
function describeCurrentUser(): string {
  if (cachedUser !== undefined) return cachedUser;
  let uid: number | null = null;
  try {
    uid = Deno.uid();
  } catch {
    // No --allow-sys: the name alone has to do.
  }
  let name: string | undefined;
  if (uid !== null) {
    try {
      for (const line of Deno.readTextFileSync("/etc/passwd").split("\n")) {
        const fields = line.split(":");
        if (fields.length > 2 && fields[2] === String(uid)) {
          name = fields[0];
          break;
        }
      }
    } catch {
      // Unreadable: fall back to the environment.
    }
  }
  if (name === undefined) {
    try {
      name = Deno.env.get("USER") ?? Deno.env.get("LOGNAME");
    } catch {
      // No --allow-env.
    }
  }
  cachedUser = name === undefined
    ? uid === null ? "the current user" : `uid ${uid}`
    : uid === null
    ? `"${name}"`
    : `"${name}" (uid ${uid})`;
  return cachedUser;
}

/** Buffer size of byte-stream bodies: read into one reused buffer, then written. */
const BYTE_BODY_BUFFER = 1024 * 1024;

/**
 * Writes every chunk of `body` to `file`; an abort cancels the body and throws its reason. A byte
 * stream (`type: "bytes"`) is read into two reused buffers, so its producer allocates nothing.
 */
async function writeBody(
  file: Deno.FsFile,
  body: Uint8Array | ReadableStream<Uint8Array>,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (body instanceof Uint8Array) {
    await writeAll(file, body);
    return;
  }
  for await (const chunk of readChunks(body, { bufferBytes: BYTE_BODY_BUFFER, signal })) {
    signal?.throwIfAborted();
    await writeAll(file, chunk);
  }
  // A cancel on abort ends the read loop as if the body were complete: it is not.
  signal?.throwIfAborted();
}

/** An entry of a listing walk: an object key, or a common prefix (with a delimiter). */
type ListEntry = { kind: "object"; key: string } | { kind: "prefix"; prefix: string };

/** What one listing walk looks for. */
interface ListQuery {
  readonly prefix: string;
  readonly delimiter: string | undefined;
  readonly cursor: string | undefined;
  readonly signal: AbortSignal | undefined;
}

/** A directory entry with the name it sorts by (directories sort as `name/`). */
interface SortedEntry {
  readonly name: string;
  readonly sortName: string;
  readonly isDirectory: boolean;
}

/** The `file://` backend. */
export class FileStore implements ObjectStore {
  readonly scheme = "file";
  /** The directory holding the objects: absolute, ending with `/`. */
  readonly root: string;
  readonly #randomBytes: (size: number) => Uint8Array;
  /** Sorted entries of large directories, reused by the continuation pages of a listing. */
  readonly #listingCache = new Map<string, { entries: SortedEntry[]; expires: number }>();

  /** `root` is the absolute directory holding the objects (a trailing `/` is added if missing). */
  constructor(root: string, options: FileStoreOptions = {}) {
    if (!root.startsWith("/")) {
      throw new StorageError("permanent", `file store root "${root}" is not an absolute path`);
    }
    this.root = root.endsWith("/") ? root : `${root}/`;
    this.#randomBytes = options.randomBytes ??
      ((size) => crypto.getRandomValues(new Uint8Array(size)));
  }

  /** The store of a `file` prefix: root `'/' + pathPrefix`, the URL host ignored (spec §1.4). */
  static fromPrefix(prefix: StoragePrefix, options: FileStoreOptions = {}): FileStore {
    return new FileStore(fileStorageRoot(prefix), options);
  }

  url(key: string): string {
    return `file://${this.root}${key}`;
  }

  /** The physical path of `key`: the root followed by the key. */
  pathOf(key: string): string {
    const parts = key.split("/");
    const bad = key === "" || key.includes("\0") ||
      parts.some((part) => part === "" || part === "." || part === "..");
    if (bad) {
      throw new StorageError("permanent", `invalid object key "${key}" for the file store`, {
        hint: "Keys are relative paths without empty, '.' or '..' components.",
      });
    }
    if (isTemporaryName(parts[parts.length - 1])) {
      throw new StorageError(
        "permanent",
        `invalid object key "${key}": the file store reserves names like ".<name>.tmp-<hex>" ` +
          "for uploads in progress",
      );
    }
    return this.root + key;
  }

  async put(key: string, body: PutBody, options: PutOptions = {}): Promise<void> {
    const { signal } = options;
    const path = this.pathOf(key);
    const directory = dirname(path);
    const source = typeof body === "function" ? body() : body;
    let file: Deno.FsFile | undefined;
    let tempPath: string | undefined;
    try {
      signal?.throwIfAborted();
      ({ file, tempPath } = await this.#createTemporary(directory, basename(path)));
      await writeBody(file, source, signal);
      await file.sync();
      file.close();
      file = undefined;
      signal?.throwIfAborted();
      await Deno.rename(tempPath, path);
      tempPath = undefined;
      await syncDirectory(directory);
    } catch (error) {
      if (source instanceof ReadableStream && !source.locked) {
        source.cancel(error).catch(() => {});
      }
      try {
        file?.close();
      } catch {
        // Already closed.
      }
      if (tempPath !== undefined) await Deno.remove(tempPath).catch(() => {});
      throw this.#error(error, "write", path, signal);
    }
  }

  async get(key: string, options: GetOptions = {}): Promise<ReadableStream<Uint8Array> | null> {
    const { signal } = options;
    const path = this.pathOf(key);
    signal?.throwIfAborted();
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (error) {
      if (isMissing(error)) return null;
      throw this.#error(error, "read", path, signal);
    }
    try {
      if (!(await file.stat()).isFile) {
        file.close();
        return null;
      }
    } catch (error) {
      file.close();
      throw this.#error(error, "read", path, signal);
    }
    // With a signal, an abort errors the stream and closes the file.
    return fileByteStream(file, { signal });
  }

  async head(key: string, options: CallOptions = {}): Promise<ObjectInfo | null> {
    const path = this.pathOf(key);
    options.signal?.throwIfAborted();
    try {
      const info = await Deno.stat(path);
      if (!info.isFile) return null;
      return { key, size: info.size, lastModified: info.mtime ?? new Date(0) };
    } catch (error) {
      if (isMissing(error)) return null;
      throw this.#error(error, "read", path, options.signal);
    }
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    const pageSize = options.pageSize ?? DEFAULT_LIST_PAGE_SIZE;
    if (!Number.isInteger(pageSize) || pageSize < 1) {
      throw new StorageError("permanent", `invalid list page size ${pageSize}`);
    }
    const query: ListQuery = {
      prefix,
      delimiter: options.delimiter === "" ? undefined : options.delimiter,
      cursor: options.cursor,
      signal: options.signal,
    };
    query.signal?.throwIfAborted();
    // Walk from the deepest directory the prefix names in full.
    const start = prefix.slice(0, prefix.lastIndexOf("/") + 1);
    if (prefix.includes("\0") || /(^|\/)(\.{0,2})\//.test(start)) {
      throw new StorageError("permanent", `invalid list prefix "${prefix}" for the file store`, {
        hint: "Prefixes are relative paths without empty, '.' or '..' components.",
      });
    }
    const keys: string[] = [];
    const prefixes: string[] = [];
    let last: string | undefined;
    let more = false;
    let lastPrefix: string | undefined;
    for await (const entry of this.#walk(start, query, () => lastPrefix)) {
      if (keys.length + prefixes.length === pageSize) {
        more = true;
        break;
      }
      if (entry.kind === "object") {
        keys.push(entry.key);
        last = entry.key;
      } else {
        prefixes.push(entry.prefix);
        last = lastPrefix = entry.prefix;
      }
    }
    const objects = await this.#statAll(keys, query.signal);
    return more ? { objects, prefixes, cursor: last } : { objects, prefixes };
  }

  async delete(keys: readonly string[], options: CallOptions = {}): Promise<DeleteResult> {
    const { signal } = options;
    const deleted: string[] = [];
    const errors: { key: string; message: string }[] = [];
    const emptied = new Set<string>();
    for (const key of keys) {
      signal?.throwIfAborted();
      let path: string;
      try {
        path = this.pathOf(key);
        const info = await Deno.lstat(path);
        // A directory is not an object: nothing is stored under this key.
        if (!info.isDirectory) {
          await Deno.remove(path);
          emptied.add(dirname(path));
        }
        deleted.push(key);
      } catch (error) {
        if (isMissing(error)) {
          deleted.push(key);
        } else {
          if (signal?.aborted) throw signal.reason;
          const failure = this.#error(error, "delete", this.root + key, signal);
          errors.push({
            key,
            message: errorMessage(failure),
          });
        }
      }
    }
    await this.#prune(emptied);
    return { deleted, errors };
  }

  /** Removes the given directories and their ancestors while they are empty, below the root. */
  async #prune(directories: Set<string>): Promise<void> {
    const rootDirectory = this.root === "/" ? "/" : this.root.slice(0, -1);
    const deepestFirst = [...directories].sort((a, b) => b.length - a.length);
    const removed = new Set<string>();
    for (let directory of deepestFirst) {
      while (directory.startsWith(this.root) && directory !== rootDirectory) {
        if (!removed.has(directory)) {
          try {
            await Deno.remove(directory);
          } catch {
            break; // Not empty (or gone, or not ours to remove): its ancestors are not empty.
          }
          removed.add(directory);
        }
        directory = dirname(directory);
      }
    }
  }

  /** Creates the temporary file of an upload, making the directory first if it is missing. */
  async #createTemporary(
    directory: string,
    name: string,
  ): Promise<{ file: Deno.FsFile; tempPath: string }> {
    for (let tries = 1;; tries++) {
      const tempPath = `${directory}/${temporaryName(name, this.#randomBytes(6))}`;
      try {
        const file = await Deno.open(tempPath, {
          write: true,
          createNew: true,
          mode: FILE_STORE_FILE_MODE,
        });
        return { file, tempPath };
      } catch (error) {
        // A concurrent delete may prune the directory we just made: make it again, a few times.
        if (error instanceof Deno.errors.NotFound && tries <= 3) {
          await this.#makeDirectories(directory);
        } else if (!(error instanceof Deno.errors.AlreadyExists && tries <= 3)) {
          throw error;
        }
      }
    }
  }

  /** `mkdir -p directory`, fsyncing the parent of each directory it creates. */
  async #makeDirectories(directory: string): Promise<void> {
    const missing: string[] = [];
    for (let current = directory; current !== "/"; current = dirname(current)) {
      try {
        const info = await Deno.stat(current);
        if (!info.isDirectory) {
          throw new Deno.errors.NotADirectory(`"${current}" is not a directory`);
        }
        break;
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
        missing.push(current);
      }
    }
    for (const current of missing.reverse()) {
      try {
        await Deno.mkdir(current, { mode: FILE_STORE_DIRECTORY_MODE });
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      }
      await syncDirectory(dirname(current));
    }
  }

  /**
   * The entries of the directory of key prefix `directoryKey`, sorted; `[]` if it is gone.
   *
   * A directory has no order, so every page of a listing must read the whole directory: paging
   * through `wal_005/` with 100 000 segments would read it 100 times. Large directories are
   * therefore kept for {@linkcode LISTING_CACHE_MS} and reused by continuation pages (those with
   * a cursor); a first page always reads afresh. A listing is not a snapshot on any backend:
   * objects added meanwhile may be missed, and objects deleted meanwhile are dropped when their
   * size is read.
   */
  async #readSorted(query: ListQuery, directoryKey: string): Promise<SortedEntry[]> {
    const path = this.root + directoryKey;
    const now = Date.now();
    const cached = this.#listingCache.get(path);
    if (cached !== undefined && query.cursor !== undefined && cached.expires > now) {
      return cached.entries;
    }
    const entries = await this.#readDirectory(path, query.signal);
    if (entries.length >= LISTING_CACHE_MIN_ENTRIES) {
      this.#listingCache.delete(path);
      this.#listingCache.set(path, { entries, expires: now + LISTING_CACHE_MS });
      for (const [oldPath, old] of this.#listingCache) {
        if (this.#listingCache.size <= LISTING_CACHE_DIRECTORIES && old.expires > now) break;
        this.#listingCache.delete(oldPath);
      }
    }
    return entries;
  }

  async #readDirectory(path: string, signal?: AbortSignal): Promise<SortedEntry[]> {
    const entries: SortedEntry[] = [];
    try {
      for await (const entry of Deno.readDir(path)) {
        let isDirectory = entry.isDirectory;
        let isFile = entry.isFile;
        if (entry.isSymlink) {
          try {
            const target = await Deno.stat(path + entry.name);
            // Links to directories are not followed (no loops); links to files are objects.
            isFile = target.isFile;
            isDirectory = false;
          } catch {
            continue; // Dangling.
          }
        }
        if (isDirectory) {
          entries.push({ name: entry.name, sortName: `${entry.name}/`, isDirectory: true });
        } else if (isFile && !isTemporaryName(entry.name)) {
          entries.push({ name: entry.name, sortName: entry.name, isDirectory: false });
        }
      }
    } catch (error) {
      if (isMissing(error)) return [];
      throw this.#error(error, "list", path, signal);
    }
    return entries.sort((a, b) => compareStrings(a.sortName, b.sortName));
  }

  /** Whether the directory of key prefix `directoryKey` holds an object at any depth. */
  async #holdsObject(directoryKey: string, signal?: AbortSignal): Promise<boolean> {
    const query = { prefix: "", delimiter: undefined, cursor: undefined, signal };
    for (const entry of await this.#readSorted(query, directoryKey)) {
      if (!entry.isDirectory) return true;
      if (await this.#holdsObject(directoryKey + entry.sortName, signal)) return true;
    }
    return false;
  }

  /** With a delimiter: the common prefix grouping `key`, if `key` has one. */
  #groupOf(key: string, query: ListQuery): string | undefined {
    if (query.delimiter === undefined || !key.startsWith(query.prefix)) return undefined;
    const at = key.indexOf(query.delimiter, query.prefix.length);
    return at === -1 ? undefined : key.slice(0, at + query.delimiter.length);
  }

  /**
   * The keys (or common prefixes) below `directoryKey` that match `query` and come after its
   * cursor, in order. `lastPrefix` gives the last common prefix emitted, to emit each once.
   */
  async *#walk(
    directoryKey: string,
    query: ListQuery,
    lastPrefix: () => string | undefined,
  ): AsyncGenerator<ListEntry> {
    const { prefix, cursor, signal } = query;
    for (const entry of await this.#readSorted(query, directoryKey)) {
      signal?.throwIfAborted();
      const name = directoryKey + entry.sortName;
      if (!name.startsWith(prefix) && !(entry.isDirectory && prefix.startsWith(name))) continue;
      // Everything at or below `name` sorts before the cursor: skip it.
      if (cursor !== undefined && cursor > name && !cursor.startsWith(name)) continue;
      const group = this.#groupOf(name, query);
      if (group !== undefined) {
        if (group === lastPrefix() || (cursor !== undefined && group <= cursor)) continue;
        if (!entry.isDirectory || await this.#holdsObject(name, signal)) {
          yield { kind: "prefix", prefix: group };
        }
      } else if (entry.isDirectory) {
        yield* this.#walk(name, query, lastPrefix);
      } else if (cursor === undefined || name > cursor) {
        yield { kind: "object", key: name };
      }
    }
  }

  /** Size and mtime of each key; keys deleted meanwhile are left out. */
  async #statAll(keys: string[], signal?: AbortSignal): Promise<ObjectInfo[]> {
    const infos: (ObjectInfo | null)[] = [];
    const batch = 64;
    for (let i = 0; i < keys.length; i += batch) {
      signal?.throwIfAborted();
      const stats = keys.slice(i, i + batch).map((key) => this.#stat(key, signal));
      infos.push(...await Promise.all(stats));
    }
    return infos.filter((info): info is ObjectInfo => info !== null);
  }

  /** Size and mtime of a listed key, or `null` if it is gone or not a file. */
  async #stat(key: string, signal?: AbortSignal): Promise<ObjectInfo | null> {
    try {
      const info = await Deno.stat(this.root + key);
      return info.isFile ? { key, size: info.size, lastModified: info.mtime ?? new Date(0) } : null;
    } catch (error) {
      if (isMissing(error)) return null;
      throw this.#error(error, "list", this.root + key, signal);
    }
  }

  /**
   * A failure as a StorageError naming the path and, where known, the fix. An abort is passed
   * on unchanged.
   */
  #error(
    error: unknown,
    action: "read" | "write" | "list" | "delete",
    path: string,
    signal: AbortSignal | undefined,
  ): unknown {
    if (error instanceof StorageError) return error;
    if (signal?.aborted && error === signal.reason) return error;
    const kind = classifyError(error);
    const detail = errorMessage(error);
    if (error instanceof Deno.errors.PermissionDenied) {
      const need = action === "read" || action === "list" ? "read" : "write to";
      return new StorageError(
        "permanent",
        `permission denied: cannot ${action} "${path}" in the file store`,
        {
          cause: error,
          hint: `wal-d runs as ${describeCurrentUser()}, who must be able to ${need} ` +
            `"${dirname(path)}" and search its parent directories. Fix the ownership or mode of ` +
            `the archive directory "${this.root}", or run wal-d as the user who owns it.`,
        },
      );
    }
    if (error instanceof Deno.errors.NotCapable) {
      return new StorageError("permanent", `cannot ${action} "${path}": ${detail}`, {
        cause: error,
        hint: "Run wal-d with --allow-read and --allow-write for the archive directory.",
      });
    }
    if (error instanceof Deno.errors.NotADirectory) {
      return new StorageError(
        "permanent",
        `cannot ${action} "${path}": a component of the path is a file, not a directory`,
        { cause: error, hint: `Check the file store root "${this.root}" (the storage prefix).` },
      );
    }
    if (error instanceof Deno.errors.IsADirectory) {
      return new StorageError("permanent", `cannot ${action} "${path}": it is a directory`, {
        cause: error,
      });
    }
    return new StorageError(kind, `cannot ${action} "${path}": ${detail}`, {
      cause: error,
      hint: hintForError(error),
    });
  }
}

export { isTemporaryName, temporaryName };
