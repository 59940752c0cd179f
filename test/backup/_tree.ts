/**
 * Files on disk for the backup tests: a fresh temporary directory per test, a tree of files,
 * directories and symlinks made from a plain object (walk_test.ts, tar_test.ts), keys of a
 * file:// store written by hand (catalog_test.ts, backup_list_cli_test.ts), commands run with
 * their output checked, and a module run as the PostgreSQL user (to meet permissions that root
 * would not).
 *
 * @module
 */

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { PROJECT_ROOT, runAsPgUser } from "../_pg/cluster.ts";

/** A node of a tree: a file's text or bytes, or a symlink; a name ending in `/` is a directory. */
export type Node = string | Uint8Array | { symlink: string };

/** Makes `nodes` under `root` (parent directories as needed). */
export async function build(root: string, nodes: Record<string, Node>): Promise<void> {
  for (const [rel, node] of Object.entries(nodes)) {
    const path = `${root}/${rel}`.replace(/\/$/, "");
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    if (rel.endsWith("/")) await Deno.mkdir(path, { recursive: true });
    else if (typeof node === "string") await Deno.writeTextFile(path, node);
    else if (node instanceof Uint8Array) await Deno.writeFile(path, node);
    else await Deno.symlink(node.symlink, path);
  }
}

/** Writes a store key of a file:// store under `dir` (its directories made), timed `mtime`. */
export async function writeKey(
  dir: string,
  key: string,
  text: string,
  mtime?: Date,
): Promise<void> {
  const path = join(dir, key);
  await Deno.mkdir(dirname(path), { recursive: true });
  await Deno.writeTextFile(path, text);
  if (mtime !== undefined) await Deno.utime(path, mtime, mtime);
}

/** Runs `body` in a new temporary directory (its real path), removed afterwards. */
export async function withTempDir(
  prefix: string,
  body: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix }));
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs a command (C.UTF-8, UTC); throws with its stderr when it fails. */
export async function run(cmd: string[]): Promise<{ stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "piped",
    env: { LC_ALL: "C.UTF-8", TZ: "UTC" },
  }).output();
  const dec = new TextDecoder();
  const result = { stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  if (!out.success) throw new Error(`${cmd.join(" ")} failed: ${result.stderr}`);
  return result;
}

/** The file: URL of a module of the project, for a script written outside it to import. */
export function projectModule(path: string): string {
  return new URL(`file://${PROJECT_ROOT}/${path}`).href;
}

/**
 * Writes `source` as a module in `dir` (which the PostgreSQL user must be able to read), runs it
 * as that user with read permission only, and returns the JSON its last output line holds.
 */
export async function runModuleAsPgUser(dir: string, source: string): Promise<unknown> {
  const script = `${dir}/as_pg_user.ts`;
  await Deno.writeTextFile(script, source);
  await Deno.chmod(script, 0o644);
  const out = await runAsPgUser(["deno", "run", "--no-config", "--allow-read", script]);
  assert.equal(out.code, 0, out.stderr);
  return JSON.parse(out.stdout.trim().split("\n").at(-1)!);
}
