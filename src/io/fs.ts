/**
 * Small file system queries that answer "not there" with `null` instead of an error.
 *
 * @module
 */

/** `lstat` of `path` (a link is not followed), or `null` when nothing is there. */
export function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** The real path of `path` (links resolved), or `null` when it does not resolve. */
export function realPathOrNull(path: string): string | null {
  try {
    return Deno.realPathSync(path);
  } catch {
    return null;
  }
}

/** The process's umask (the permission bits new files and directories lose). */
export function currentUmask(): number {
  try {
    return Deno.umask();
  } catch {
    return 0o777; // unknown: assume every bit may be lost
  }
}
