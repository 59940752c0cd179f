/**
 * Scratch directories for the restore tests (extract_test.ts, backup_fetch_test.ts): a fresh
 * temporary directory holding `outside/` (what attacks aim at: `secret`, `target` and a
 * subdirectory `sub/`, with fixed modes and times), a snapshot of a tree that shows any change
 * to it (names, kinds, modes, times, link counts, link targets, contents), `exists`, and
 * `withCleanup` to run a test body in a fresh scratch directory.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { lstatOrNull } from "../../src/io/fs.ts";

/** The SHA-256 of `data`, in hex. */
export function sha(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Whether anything (a dangling symlink too) is at `path`. */
export function exists(path: string): boolean {
  return lstatOrNull(path) !== null;
}

/** The entries of a directory, sorted by name. */
export function sortedEntries(dir: string): Deno.DirEntry[] {
  return [...Deno.readDirSync(dir)].sort((a, b) => a.name < b.name ? -1 : 1);
}

/** Runs `body` with what `make` returns, then that thing's `cleanup()`, whatever `body` did. */
export async function withCleanup<T extends { cleanup(): Promise<void> }>(
  make: () => Promise<T>,
  body: (made: T) => Promise<void>,
): Promise<void> {
  const made = await make();
  try {
    await body(made);
  } finally {
    await made.cleanup();
  }
}

/** A new temporary directory (its real path) holding `outside/`, all of it timed `mtime`. */
export async function makeScratchDir(
  prefix: string,
  mtime: number,
): Promise<{ dir: string; outside: string }> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix }));
  const outside = join(dir, "outside");
  Deno.mkdirSync(join(outside, "sub"), { recursive: true, mode: 0o755 });
  Deno.writeTextFileSync(join(outside, "secret"), "the secret\n", { mode: 0o600 });
  Deno.writeTextFileSync(join(outside, "target"), "the target\n", { mode: 0o644 });
  for (const p of ["sub", "secret", "target", ""]) Deno.utimeSync(join(outside, p), mtime, mtime);
  return { dir, outside };
}

/**
 * Everything under `root` but the paths in `skip`, one line each: kind, mode, mtime, link count,
 * link target, content. `root`'s own line is left out with `withRoot: false` (for a directory
 * in which the code under test may create an entry).
 */
export function snapshot(root: string, skip: string[], withRoot = true): string[] {
  const out: string[] = [];
  const visit = (path: string, rel: string) => {
    const info = Deno.lstatSync(path);
    let line = `${rel} mode=${(info.mode! & 0o7777).toString(8)} mtime=${info.mtime?.getTime()} ` +
      `nlink=${info.nlink}`;
    if (info.isSymlink) line += ` -> ${Deno.readLinkSync(path)}`;
    else if (info.isFile) line += ` file ${sha(Deno.readFileSync(path))}`;
    else if (info.isDirectory) line += " dir";
    if (withRoot || path !== root) out.push(line);
    if (!info.isDirectory) return;
    for (const entry of sortedEntries(path)) {
      const child = join(path, entry.name);
      if (!skip.includes(child)) visit(child, `${rel}/${entry.name}`);
    }
  };
  visit(root, ".");
  return out;
}
