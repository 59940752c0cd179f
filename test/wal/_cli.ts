/** Runs the wal-d CLI as PostgreSQL would: a separate process, checked by exit code and output. */

import { join } from "node:path";
import { denoRunArguments } from "../../src/cli/reinvoke.ts";

const root = new URL("../../", import.meta.url).pathname;

/** What one wal-d run did. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Arguments of Deno for `wal-d ...args`: `run <launcher flags> mod.ts ...args`, as scripts/wal-d. */
export function walDArgs(args: string[]): string[] {
  return [...denoRunArguments(join(root, "deno.json")), join(root, "mod.ts"), ...args];
}

/** Runs `deno run <launcher flags> mod.ts ...args` with the given environment and cwd. */
export async function walD(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: walDArgs(args),
    cwd: options.cwd,
    env: { WALE_LOG_DESTINATION: "stderr", NO_COLOR: "1", ...options.env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** A scratch area: a file:// store and a fake PostgreSQL data directory with pg_wal. */
export interface Scratch {
  dir: string;
  store: string;
  pgdata: string;
  walDir: string;
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

export async function scratch(): Promise<Scratch> {
  const dir = await Deno.makeTempDir({ prefix: "wald-wal-" });
  const store = join(dir, "store");
  const pgdata = join(dir, "pgdata");
  const walDir = join(pgdata, "pg_wal");
  await Deno.mkdir(join(walDir, "archive_status"), { recursive: true });
  return {
    dir,
    store,
    pgdata,
    walDir,
    env: { WALE_FILE_PREFIX: `file://localhost${store}` },
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
}

/** Segment-like bytes: distinct per seed, compressible like real WAL. */
export function segmentBytes(seed: number, size = 16 * 1024 * 1024): Uint8Array {
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  for (let page = 0; page < size / 8192; page++) {
    const at = page * 8192;
    view.setUint16(at, 0xd110, true);
    view.setUint32(at + 8, seed * 1000 + page, true);
    if (page % 4 === 0) out.fill((seed + page) & 0xff, at + 24, at + 2048);
  }
  return out;
}
