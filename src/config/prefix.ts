/**
 * Storage prefix selection and URL parsing (spec §1.1, §1.4).
 *
 * The URL is split the way Python's `urllib.parse.urlparse` splits it (WAL-E's parser), so odd
 * prefixes keep naming the same objects: leading C0 controls and spaces are stripped, tabs and
 * newlines removed, the scheme lower-cased, the netloc runs from `//` to the first `/`, `?` or
 * `#`, and the query and fragment are discarded. Percent escapes are NOT decoded.
 */
import { UserError } from "../cli/errors.ts";
import type { PrefixSource, StoragePrefix, StorageScheme } from "./types.ts";
import { STORAGE_SCHEMES } from "./types.ts";

/** The pieces of a URL, as Python's `urlsplit` yields them. */
export interface SplitUrl {
  scheme: string;
  netloc: string;
  path: string;
  query: string;
  fragment: string;
}

const SCHEME_CHARS = /^[A-Za-z][A-Za-z0-9+\-.]*$/;

/** Python `urllib.parse.urlsplit` (3.11), minus the IPv6 bracket validation. */
export function splitUrl(input: string): SplitUrl {
  // deno-lint-ignore no-control-regex
  let rest = input.replace(/^[\x00-\x20]+/, "").replace(/[\t\r\n]/g, "");
  let scheme = "";
  let netloc = "";
  let query = "";
  let fragment = "";
  const colon = rest.indexOf(":");
  if (colon > 0 && SCHEME_CHARS.test(rest.slice(0, colon))) {
    scheme = rest.slice(0, colon).toLowerCase();
    rest = rest.slice(colon + 1);
  }
  if (rest.startsWith("//")) {
    let end = rest.length;
    for (const delimiter of ["/", "?", "#"]) {
      const at = rest.indexOf(delimiter, 2);
      if (at !== -1 && at < end) end = at;
    }
    netloc = rest.slice(2, end);
    rest = rest.slice(end);
  }
  const hash = rest.indexOf("#");
  if (hash !== -1) {
    fragment = rest.slice(hash + 1);
    rest = rest.slice(0, hash);
  }
  const question = rest.indexOf("?");
  if (question !== -1) {
    query = rest.slice(question + 1);
    rest = rest.slice(0, question);
  }
  return { scheme, netloc, path: rest, query, fragment };
}

/** `path` without leading slashes, plus a trailing `/` if non-empty (spec §1.1). */
export function pathPrefixFromUrlPath(path: string): string {
  const stripped = path.replace(/^\/+/, "");
  return stripped === "" || stripped.endsWith("/") ? stripped : `${stripped}/`;
}

function isStorageScheme(scheme: string): scheme is StorageScheme {
  return (STORAGE_SCHEMES as readonly string[]).includes(scheme);
}

/** Parses a storage prefix URL. Throws a {@link UserError} (exit 1) for an unsupported scheme. */
export function parseStoragePrefix(url: string, source?: PrefixSource): StoragePrefix {
  const split = splitUrl(url);
  if (!isStorageScheme(split.scheme)) {
    const from = source === undefined ? "" : ` from ${source}`;
    const shown = split.scheme === "" ? "no scheme" : `the scheme "${split.scheme}"`;
    throw new UserError(`unsupported storage prefix URL scheme in "${url}"`, {
      detail: `The prefix "${url}"${from} has ${shown}; ` +
        `expected one of "s3", "wabs", "swift", "gs" or "file".`,
      hint: "Use a URL such as s3://bucket/path, gs://bucket/path or file:///var/backups/pg.",
    });
  }
  return {
    scheme: split.scheme,
    url,
    storeName: split.netloc,
    pathPrefix: pathPrefixFromUrlPath(split.path),
  };
}

/**
 * Filesystem directory of a `file` prefix: `'/' + pathPrefix`. The URL host is ignored, so
 * `file:///backups/pg` and `file://localhost/backups/pg` give `/backups/pg/`, while
 * `file://backups/pg` gives `/pg/` (spec §1.4).
 */
export function fileStorageRoot(prefix: StoragePrefix): string {
  return `/${prefix.pathPrefix}`;
}

/**
 * The URL of object `key` under `prefix`, as the stores print it (`ObjectStore.url`):
 * `s3://bucket/path/key`, `file:///path/key` (a file URL's host is ignored, as in
 * {@linkcode fileStorageRoot}). For log lines that must not wait for a store to be opened (opening
 * an S3 store loads the AWS SDK).
 */
export function objectUrl(prefix: StoragePrefix, key: string): string {
  const host = prefix.scheme === "file" ? "" : prefix.storeName;
  return `${prefix.scheme}://${host}/${prefix.pathPrefix}${key}`;
}

/** Prefix flags, in WAL-E's precedence order. */
export interface PrefixFlags {
  filePrefix?: string;
  gsPrefix?: string;
  s3Prefix?: string;
  wabsPrefix?: string;
}

/** Prefix environment variables, in WAL-E's precedence order (after the flags). */
export const PREFIX_ENV_VARS = [
  "WALE_FILE_PREFIX",
  "WALE_GS_PREFIX",
  "WALE_S3_PREFIX",
  "WALE_SWIFT_PREFIX",
  "WALE_WABS_PREFIX",
] as const;

/** The first non-empty prefix among the flags, then the variables (spec §1.1). */
export function selectPrefixUrl(
  flags: PrefixFlags,
  getEnv: (name: string) => string | undefined,
): { url: string; source: PrefixSource } | null {
  const fromFlags: [string | undefined, PrefixSource][] = [
    [flags.filePrefix, "--file-prefix"],
    [flags.gsPrefix, "--gs-prefix"],
    [flags.s3Prefix, "--s3-prefix"],
    [flags.wabsPrefix, "--wabs-prefix"],
  ];
  for (const [value, source] of fromFlags) {
    if (value !== undefined && value !== "") return { url: value, source };
  }
  for (const name of PREFIX_ENV_VARS) {
    const value = getEnv(name);
    if (value !== undefined && value !== "") return { url: value, source: name };
  }
  return null;
}
