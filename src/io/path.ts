/**
 * POSIX path helpers. wal-d runs where PostgreSQL does (Linux and other POSIX systems), and
 * importing `node:path` costs about 6 ms of start-up (Deno loads its Node compatibility layer),
 * paid on every archive_command call.
 *
 * @module
 */

/** Joins path segments and normalizes the result (`.` and `..` resolved, no duplicate slashes). */
export function join(...parts: string[]): string {
  const joined = parts.filter((p) => p.length > 0).join("/");
  return joined.length === 0 ? "." : normalize(joined);
}

/** Normalizes a path: collapses slashes, resolves `.` and `..` segments (not through symlinks). */
export function normalize(path: string): string {
  if (path.length === 0) return ".";
  const absolute = path.startsWith("/");
  const out: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!absolute) out.push("..");
    } else out.push(segment);
  }
  const body = out.join("/");
  if (absolute) return `/${body}`;
  return body.length > 0 ? body : ".";
}

/** The directory part of a path, like POSIX dirname(1). */
export function dirname(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  if (trimmed.length === 0) return path.startsWith("/") ? "/" : ".";
  const slash = trimmed.lastIndexOf("/");
  if (slash < 0) return ".";
  if (slash === 0) return "/";
  return trimmed.slice(0, slash).replace(/\/+$/, "") || "/";
}

/** The last segment of a path, like POSIX basename(1). */
export function basename(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  if (trimmed.length === 0) return "";
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

/** Whether a path is absolute. */
export function isAbsolute(path: string): boolean {
  return path.startsWith("/");
}

/** An absolute, normalized path: `path` relative to the current directory unless absolute. */
export function resolve(path: string): string {
  return normalize(isAbsolute(path) ? path : `${Deno.cwd()}/${path}`);
}

/** The path of a `file:` URL. */
export function fromFileUrl(url: string | URL): string {
  const parsed = url instanceof URL ? url : new URL(url);
  if (parsed.protocol !== "file:") throw new TypeError(`not a file URL: ${parsed.href}`);
  return decodeURIComponent(parsed.pathname);
}
