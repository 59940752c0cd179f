/**
 * What the base backup and restore benchmarks (backup.ts, restore.ts) share: their command line,
 * a running PostgreSQL cluster filled with ~N MB of pgbench-like table data, timing a command
 * with its peak RSS, and `du -sb`.
 *
 * @module
 */

import { scanBenchArgs } from "./args.ts";
import { commandOutput, probeLzop } from "./native.ts";
import { MB } from "./report.ts";
import { type Cluster, createCluster, type PgMajor, pgSkipReason } from "../../test/_pg/cluster.ts";

/** The flags both benchmarks take. */
export interface PgBenchOptions {
  /** Table data to load, MB (default 800). */
  sizeMb: number;
  /** Measured rounds (default 3). */
  runs: number;
  /** PostgreSQL major (default 17). */
  major: PgMajor;
  /** Where to write the figures as JSON, or null. */
  jsonPath: string | null;
}

/**
 * Parses `--size-mb N --runs N --major M --json PATH`; `extra` may take more flags (returns
 * false for an unknown one, as in scanBenchArgs).
 */
export function parsePgBenchArgs(
  args: string[],
  usage: string,
  extra: (flag: string, value: () => string) => boolean = () => false,
): PgBenchOptions {
  const options: PgBenchOptions = { sizeMb: 800, runs: 3, major: 17, jsonPath: null };
  scanBenchArgs(args, usage, (flag, value) => {
    if (flag === "--size-mb") options.sizeMb = Number(value());
    else if (flag === "--runs") options.runs = Number(value());
    else if (flag === "--major") options.major = Number(value()) as PgMajor;
    else if (flag === "--json") options.jsonPath = value();
    else return extra(flag, value);
    return true;
  });
  return options;
}

/** Bytes under `path` as `du -sb` counts them (apparent sizes, directories included). */
export async function duBytes(path: string): Promise<number> {
  const out = await commandOutput("du", ["-sb", path]);
  return Number(out?.split(/\s/)[0] ?? "0");
}

/**
 * Runs `command` (stdout discarded), polling its VmHWM in /proc/<pid>/status every 20 ms (the
 * wal-d launcher execs deno, so the pid is deno's, and its Web Workers are threads of that
 * process); returns wall seconds and peak RSS in MiB. Throws with the end of stderr when the
 * command fails. Reading /proc/<pid> needs --allow-all.
 */
export async function timed(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ seconds: number; peakMiB: number }> {
  const started = performance.now();
  const child = new Deno.Command(command, { args, env, stdout: "null", stderr: "piped" }).spawn();
  let peakKiB = 0;
  const poll = setInterval(async () => {
    try {
      const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
      const match = /VmHWM:\s+(\d+) kB/.exec(status);
      if (match) peakKiB = Math.max(peakKiB, Number(match[1]));
    } catch {
      // exited
    }
  }, 20);
  const { code, stderr } = await child.output();
  clearInterval(poll);
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} failed (${code}):\n` +
        new TextDecoder().decode(stderr).slice(-2000),
    );
  }
  return { seconds, peakMiB: peakKiB / 1024 };
}

/** Loads ~`sizeMb` MB of pgbench-like rows (integers, md5 text, some repetition), then checkpoints. */
async function fill(cluster: Cluster, sizeMb: number): Promise<void> {
  // About 180 bytes per row on disk with this shape.
  const rows = Math.round(sizeMb * MB / 180);
  await cluster.exec(`
    CREATE TABLE accounts (aid bigint, bid int, abalance int, filler text);
    INSERT INTO accounts
      SELECT i, i / 100000, ((i::bigint * 7919) % 100000)::int - 50000,
             md5(i::text) || repeat(' ', 40) || md5((i * 31)::text)
      FROM generate_series(1, ${rows}) AS i;
    CREATE INDEX ON accounts (aid);
    CHECKPOINT;
  `);
}

/**
 * Runs `body` with a started PostgreSQL `options.major` cluster (from npm, via the test harness)
 * filled with ~`options.sizeMb` MB of table data, and an empty temporary work directory (on the
 * same disk); both are removed afterwards. When PostgreSQL or native lzop cannot run, prints
 * `SKIP: why` and returns without calling `body`. `lzop` is the probed `lzop --version`.
 */
export async function withFilledCluster(
  options: PgBenchOptions,
  workPrefix: string,
  body: (cluster: Cluster, work: string, lzop: string) => Promise<void>,
): Promise<void> {
  const skip = await pgSkipReason([options.major]);
  if (skip !== undefined) {
    console.log(`SKIP: ${skip}`);
    return;
  }
  const lzop = await probeLzop();
  if ("skipped" in lzop) {
    console.log(`SKIP: ${lzop.skipped}`);
    return;
  }
  const cluster = await createCluster({ major: options.major, settings: { max_wal_size: "4GB" } });
  const work = await Deno.makeTempDir({ prefix: workPrefix });
  try {
    await cluster.start();
    console.log(`filling a PostgreSQL ${options.major} cluster with ~${options.sizeMb} MB ...`);
    await fill(cluster, options.sizeMb);
    await body(cluster, work, lzop.version);
  } finally {
    await cluster.close();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}
