/**
 * WAL archiving benchmark: `wal-d wal-push` as PostgreSQL runs it (one fresh process per
 * segment), against native `lzop -1` as the floor, in one run.
 *
 *   deno task bench:wal [--json PATH] [--runs N] [--catchup-runs N] [--segments N]
 *                       [--major 13..18] [--no-pg]
 *
 * 1. Data: a real, full, busy 16 MiB WAL segment, made by a PostgreSQL cluster from npm (the
 *    test harness) under an OLTP-like load and archived with `cp`; and the synthetic busy segment
 *    of scripts/bench/data.ts. Their `lzop -1` ratios.
 * 2. Latency of one wal-push: `scripts/wal-d wal-push pg_wal/<name>` spawned from a fake data
 *    directory (no .ready files), a fresh empty file:// store per run; beside it, in the same
 *    rounds, `lzop -1 -c SEG > DEST` (the floor), the CLI's start-up (`scripts/wal-d version`),
 *    Deno's start-up (`deno run` of an empty file) and wal-push with the store on /dev/shm (no
 *    fsync cost). Where wal-push's time goes, from the timestamps of its own log lines.
 * 3. Catch-up of a backlog: N segments marked `.ready`, pushed by an emulated PostgreSQL archiver
 *    (one `wal-push -p 8` process at a time, `.ready` renamed to `.done` on exit 0), against two
 *    `lzop -1` processes in parallel (`xargs -P 2`); and the same with `-p 1`.
 *
 * Everything runs in temporary directories that are removed at the end, and the PostgreSQL server
 * is stopped and removed before anything is timed.
 *
 * @module
 */

import { commandOutput, describeMachine, LZOP, type MachineInfo, probeLzop } from "./native.ts";
import { scanBenchArgs } from "./args.ts";
import { denoRunArguments } from "../../src/cli/reinvoke.ts";
import { segmentName } from "../../src/layout/segment.ts";
import { join } from "node:path";
import {
  type Cluster,
  createCluster,
  makePgUserTempDir,
  type PgMajor,
  pgSkipReason,
  PROJECT_ROOT,
  waitForArchived,
  WAL_D_LAUNCHER,
} from "../../test/_pg/cluster.ts";
import { formatTable, MB, median, verdict } from "./report.ts";
import { generateWalSegment, setUint64, WAL_SEGMENT_SIZE } from "./data.ts";

/** wal-push latency target: median wal-push / median `lzop -1 -c SEG > DEST`. */
export const LATENCY_TARGET = 2.5;
/** Start-up target of the CLI (`scripts/wal-d version`), milliseconds. */
export const STARTUP_TARGET_MS = 25;
/** Catch-up target: emulated archiver with `wal-push -p 8` / two parallel `lzop -1`. */
export const CATCHUP_TARGET = 1.3;
/** Warm-up rounds before the measured latency runs. */
const WARMUPS = 3;
/** `--pool-size` of the catch-up measurement (wal-push's default). */
const CATCHUP_POOL = 8;
/** Size of a WAL page (XLOG_BLCKSZ). */
const WAL_PAGE = 8192;

/* ------------------------------------------------------------------------------------------ */
/* Types                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/** Command-line options. */
export interface BenchOptions {
  jsonPath?: string;
  /** Measured latency runs per command (after {@linkcode WARMUPS} warm-up rounds). */
  runs: number;
  /** Runs of each catch-up measurement. */
  catchupRuns: number;
  /** Segments in the catch-up backlog. */
  segments: number;
  /** PostgreSQL major that makes the real segment. */
  major: PgMajor;
  /** Skip PostgreSQL (synthetic segment only). */
  noPg: boolean;
}

/** The machine and software the numbers come from, and where the benchmark writes. */
export interface WalMachineInfo extends MachineInfo {
  /** File system of the temporary directory (where stores and floors write). */
  tempDir: string;
  tempFs: string;
  /** /proc/loadavg at the start and at the end: other work on the machine skews the numbers. */
  loadAtStart: string;
  loadAtEnd: string;
}

/** Wall-clock times of one measured command, milliseconds, warm-ups excluded. */
export interface Timing {
  samplesMs: number[];
  medianMs: number;
  p90Ms: number;
  minMs: number;
}

/** One 16 MiB segment the benchmark runs on. */
export interface DataSet {
  name: string;
  description: string;
  source: string;
  /** The WAL file name it is archived under. */
  segmentName: string;
  bytes: number;
  /** Share of zero bytes, and how many zero bytes end the file (a switched-early segment). */
  zeroShare: number;
  tailZeroBytes: number;
  lzopBytes: number | null;
  /** Size of the object wal-push wrote (from the first measured upload). */
  walPushBytes: number | null;
  /** The file, in the benchmark's temporary directory. */
  path: string;
}

/** wal-push's own log timestamps of one run, milliseconds since the spawn. */
export interface PushPhases {
  /** Spawn to the "begin archiving" log line: start-up, module loading, config, checks. */
  toBeginMs: number;
  /** "begin archiving" to "completed archiving": read, compress, write, fsync, rename. */
  putMs: number;
  /** "completed archiving" to the process's exit. */
  toExitMs: number;
}

/**
 * What a fresh `deno run` process (launcher flags) measures of itself: importing the modules
 * wal-push loads for an upload ({@linkcode WAL_PUSH_MODULES}, at once, as wal-push does)
 * (src/commands/wal_push.ts and all it loads), then our lzop stream over the segment
 * (`openLzopFileReadable` to a discarding sink, no write) twice: cold and warm.
 */
export interface ProbeResult {
  importWalPushMs: number;
  /** Modules of {@linkcode WAL_PUSH_MODULES} that failed to load (renamed or moved). */
  importFailures: string[];
  compressFirstMs: number;
  compressSecondMs: number;
}

/** Latency results for one data set. */
export interface LatencyResult {
  dataSet: string;
  runs: number;
  warmups: number;
  /** Keyed by {@linkcode LatencyCommand}; absent when skipped. */
  commands: Partial<Record<LatencyCommand, Timing>>;
  /** Median phases of wal-push with the store on disk, and on /dev/shm (null: not measured). */
  phases: { disk: PushPhases | null; shm: PushPhases | null };
  /** Medians of the fresh-process probe (see {@linkcode ProbeResult}), or null if it failed. */
  probe: ProbeResult | null;
  /** Why the probe failed, or null. */
  probeError: string | null;
  /** wal-push / lzop floor (medians), or null without lzop. */
  walPushOverFloor: number | null;
}

/** The commands timed side by side. */
export type LatencyCommand =
  | "walPush"
  | "walPushShm"
  | "lzop"
  | "lzopSync"
  | "walDVersion"
  | "denoModVersion"
  | "denoEmpty";

/** Catch-up results for one data set. */
export interface CatchUpResult {
  dataSet: string;
  segments: number;
  bytes: number;
  /** How the distinct segments were made. */
  copies: string;
  runs: number;
  /** Seconds of each run, per method; absent when skipped. */
  methods: Partial<Record<CatchUpMethod, number[]>>;
  /** Median seconds per method. */
  medianSeconds: Partial<Record<CatchUpMethod, number>>;
  /**
   * Per wal-push method and run: seconds from the loop's end until detached children had exited,
   * and counts of log lines (uploads completed, calls answered as already archived, warnings).
   */
  archiver: Partial<Record<CatchUpMethod, Omit<ArchiverRun, "seconds">[]>>;
  /** `wal-push -p 8` / floor, `wal-push -p 1` / floor, or null without lzop. */
  pooledOverFloor: number | null;
  singleOverFloor: number | null;
}

/** The catch-up methods. */
export type CatchUpMethod = "walPushPooled" | "walPushSingle" | "lzopParallel";

/** Everything one run of the benchmark produced (the `--json` output). */
export interface BenchReport {
  startedAt: string;
  totalSeconds: number;
  machine: WalMachineInfo;
  /** Why lzop (the floors) was skipped, or null. */
  lzopSkipped: string | null;
  /** Why the real PostgreSQL segment was skipped, or null. */
  pgSkipped: string | null;
  /** How the real segment was made (major, load, segment chosen), or null. */
  pgSegment: string | null;
  /** Why the /dev/shm rows were skipped, or null. */
  shmSkipped: string | null;
  targets: {
    walPushOverLzop: number;
    startupMs: number;
    catchUpOverFloor: number;
  };
  options: Omit<BenchOptions, "jsonPath">;
  dataSets: Omit<DataSet, "path">[];
  latency: LatencyResult[];
  catchUp: CatchUpResult[];
}

/* ------------------------------------------------------------------------------------------ */
/* Options and machine                                                                        */
/* ------------------------------------------------------------------------------------------ */

const USAGE = "usage: deno task bench:wal [--json PATH] [--runs N] [--catchup-runs N] " +
  "[--segments N] [--major 13..18] [--no-pg]\n" +
  "  --json PATH        also write the results as JSON to PATH\n" +
  "  --runs N           measured wal-push latency runs per command (default 15; 3 warm-ups)\n" +
  "  --catchup-runs N   runs of each catch-up measurement (default 3; the median is reported)\n" +
  "  --segments N       segments in the catch-up backlog (default 64)\n" +
  "  --major N          PostgreSQL major that makes the real segment (default 17)\n" +
  "  --no-pg            skip PostgreSQL: the synthetic segment only";

/** Parses the command line (see {@linkcode USAGE}). */
export function parseOptions(args: string[]): BenchOptions {
  const options: BenchOptions = {
    runs: 15,
    catchupRuns: 3,
    segments: 64,
    major: 17,
    noPg: false,
  };
  const positive = (flag: string, text: string, max: number) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1 || n > max) {
      throw new Error(`${flag} must be an integer from 1 to ${max}; ${USAGE}`);
    }
    return n;
  };
  scanBenchArgs(args, USAGE, (flag, value) => {
    if (flag === "--json") {
      options.jsonPath = value();
    } else if (flag === "--runs") {
      options.runs = positive(flag, value(), 1000);
    } else if (flag === "--catchup-runs") {
      options.catchupRuns = positive(flag, value(), 100);
    } else if (flag === "--segments") {
      options.segments = positive(flag, value(), 1024);
    } else if (flag === "--major") {
      const major = Number(value());
      if (![13, 14, 15, 16, 17, 18].includes(major)) {
        throw new Error(`--major must be one of 13..18; ${USAGE}`);
      }
      options.major = major as PgMajor;
    } else if (flag === "--no-pg") {
      options.noPg = true;
    } else return false;
    return true;
  });
  return options;
}

/** The 1, 5 and 15 minute load averages. */
async function loadAverage(): Promise<string> {
  const text = await commandOutput("cat", ["/proc/loadavg"]);
  return text?.split(" ").slice(0, 3).join(" ") ?? "unknown";
}

async function describeWalMachine(lzop: string | null, tempDir: string): Promise<WalMachineInfo> {
  const df = await commandOutput("df", ["-T", tempDir]) ?? "";
  const [device, type] = df.trim().split("\n").at(-1)?.split(/\s+/) ?? [];
  return {
    ...await describeMachine(lzop),
    tempDir,
    tempFs: device && type ? `${type} on ${device}` : "unknown",
    loadAtStart: await loadAverage(),
    loadAtEnd: "",
  };
}

/* ------------------------------------------------------------------------------------------ */
/* Clean-up                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/** Temporary directories to remove at the end, also on SIGINT/SIGTERM. */
const tempDirs = new Set<string>();
/** Bind mounts to undo (before their directories are removed), with what to remove after. */
const mounts = new Map<string, string>();

async function makeTempDir(prefix: string, dir?: string): Promise<string> {
  const path = await Deno.makeTempDir({ prefix, dir });
  tempDirs.add(path);
  return path;
}

/** Removes `path`; it stays on the clean-up list if that fails. */
async function removeTempDir(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) return;
  }
  tempDirs.delete(path);
}

/** Unmounts `mountPoint` and removes the directory that was mounted there. */
function unmountSync(mountPoint: string): void {
  const source = mounts.get(mountPoint);
  mounts.delete(mountPoint);
  for (const [command, args] of [["umount", [mountPoint]], ["rm", ["-rf", "--", source!]]]) {
    try {
      new Deno.Command(command as string, {
        args: args as string[],
        stdout: "null",
        stderr: "null",
      })
        .outputSync();
    } catch { /* best effort */ }
  }
}

/** Set by a SIGINT/SIGTERM: failures after it are its consequences, not news. */
let interrupted = false;
/** Processes we spawned that have not exited yet. */
const liveChildren = new Set<Deno.ChildProcess>();
/**
 * WAL directories where wal-push may have started a detached background pusher. It writes its
 * pid into `.wal-d/push-ahead.lock` there (src/wal/status.ts), which is how we find it to stop it.
 */
const pusherWalDirs = new Set<string>();

/** Stops our children and any background pusher of our WAL directories (by pid). */
async function stopProcesses(): Promise<void> {
  for (const child of liveChildren) {
    try {
      child.kill("SIGTERM");
    } catch { /* exited meanwhile */ }
  }
  for (const walDir of pusherWalDirs) {
    const lock = await Deno.readTextFile(join(walDir, ".wal-d", "push-ahead.lock")).catch(() => "");
    const pid = Number(lock.trim());
    if (Number.isInteger(pid) && pid > 1) {
      try {
        Deno.kill(pid, "SIGTERM");
      } catch { /* gone */ }
    }
  }
}

/**
 * Stops what we started, undoes every mount, removes every temporary directory (retrying while
 * a process that was still exiting recreates files in them).
 */
async function cleanUp(): Promise<void> {
  await stopProcesses();
  for (const mountPoint of [...mounts.keys()]) unmountSync(mountPoint);
  for (let attempt = 0; attempt < 10 && tempDirs.size > 0; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 300));
    for (const dir of [...tempDirs]) await removeTempDir(dir);
  }
}

/**
 * On SIGINT/SIGTERM: clean up, then exit; Deno.exit() fires the "unload" event, on which the
 * harness stops and removes any cluster still running.
 */
function exitOnSignals(): () => void {
  const handler = () => {
    if (interrupted) return;
    interrupted = true;
    console.error("\ninterrupted: stopping processes, removing temporary directories");
    cleanUp().finally(() => Deno.exit(130));
  };
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, handler);
  return () => {
    for (const signal of signals) Deno.removeSignalListener(signal, handler);
  };
}

/* ------------------------------------------------------------------------------------------ */
/* Processes                                                                                  */
/* ------------------------------------------------------------------------------------------ */

/**
 * The environment of every spawned command: ours without storage or PostgreSQL variables, the
 * running deno first on PATH (as the harness gives archive_command), no update check, no colour.
 */
function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (!/^PG|^WALE_|^WALD_|^AWS_|^WABS_|^SWIFT_|^GOOGLE_/.test(k)) env[k] = v;
  }
  const denoDir = Deno.execPath().replace(/\/[^/]*$/, "");
  env.PATH = `${denoDir}:${env.PATH ?? "/usr/bin:/bin"}`;
  env.LANG = "C.UTF-8";
  env.DENO_NO_UPDATE_CHECK = "1";
  env.NO_COLOR = "1";
  return { ...env, ...extra };
}

/** One finished process: wall time from spawn to exit, and its output. */
interface Spawned {
  ms: number;
  /** Wall clock (ms since the epoch) at the spawn. */
  spawnedAt: number;
  code: number;
  stdout: string;
  /** Its stderr; empty when `detachedStderr` was asked for (see {@linkcode timed}). */
  stderr: string;
}

const wallNow = () => performance.timeOrigin + performance.now();

/** Resolves with `promise`'s value, or with `fallback` after `ms`. */
function within<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<T>((resolve) => timer = setTimeout(() => resolve(fallback), ms));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Spawns `command` and times it from spawn to exit (waitpid, as PostgreSQL's archiver waits);
 * throws with its stderr unless it exits 0.
 *
 * `detachedStderr`: the command may leave detached children that inherit its stderr (wal-push
 * starts a background `wal-push-ahead`), so the stderr pipe reaches its end only when they have
 * exited too. Its text is then not awaited but pushed onto that list, to be awaited later (which
 * tells when every such child has exited).
 */
async function timed(
  command: string,
  args: string[],
  options: {
    cwd?: string;
    env?: Record<string, string>;
    stdinText?: string;
    detachedStderr?: Promise<string>[];
  } = {},
): Promise<Spawned> {
  const cmd = new Deno.Command(command, {
    args,
    cwd: options.cwd,
    env: options.env ?? childEnv(),
    clearEnv: true,
    stdin: options.stdinText === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const spawnedAt = wallNow();
  const start = performance.now();
  const child = cmd.spawn();
  liveChildren.add(child);
  const stdout = new Response(child.stdout).text();
  const stderr = new Response(child.stderr).text();
  if (options.stdinText !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdinText));
    await writer.close();
  }
  const { code } = await child.status;
  const ms = performance.now() - start;
  liveChildren.delete(child);
  const detached = options.detachedStderr !== undefined;
  if (detached) options.detachedStderr!.push(stderr);
  if (code !== 0) {
    const text = detached ? await within(stderr, 2000, "(stderr still open)") : await stderr;
    throw new Error(`${command} ${args.join(" ")} exited with status ${code}:\n${text.trim()}`);
  }
  return { ms, spawnedAt, code, stdout: await stdout, stderr: detached ? "" : await stderr };
}

/** `sync` (untimed): flushes dirty pages, so one measurement's writeback does not land in the next. */
async function syncAll(): Promise<void> {
  await new Deno.Command("sync", { stdout: "null", stderr: "null" }).output();
}

/* ------------------------------------------------------------------------------------------ */
/* Statistics                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/** Nearest-rank percentile. */
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)];
}

function timingOf(samplesMs: number[]): Timing {
  return {
    samplesMs,
    medianMs: median(samplesMs),
    p90Ms: percentile(samplesMs, 0.9),
    minMs: Math.min(...samplesMs),
  };
}

/* ------------------------------------------------------------------------------------------ */
/* WAL segments                                                                               */
/* ------------------------------------------------------------------------------------------ */

/** The WAL file name of segment `segNo` (16 MiB segments) on `timeline`. */
function walFileName(timeline: number, segNo: number): string {
  return segmentName(timeline, BigInt(segNo), WAL_SEGMENT_SIZE);
}

/** Timeline and segment number from the first page header of a 16 MiB segment. */
export function segmentIdentity(bytes: Uint8Array): { timeline: number; segNo: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const timeline = view.getUint32(4, true);
  const pageAddr = view.getUint32(8, true) + view.getUint32(12, true) * 0x1_0000_0000;
  if (pageAddr % WAL_SEGMENT_SIZE !== 0) {
    throw new Error(`first page address ${pageAddr.toString(16)} is not a segment start`);
  }
  return { timeline, segNo: pageAddr / WAL_SEGMENT_SIZE };
}

/**
 * A copy of a 16 MiB segment relabelled as segment `segNo`: the address in every page header
 * (xlp_pageaddr) moved to the new position, as consecutive segments differ. Records keep their
 * bytes, so each copy compresses as the original does, but no two copies are identical.
 */
export function relabelSegment(bytes: Uint8Array, segNo: number): Uint8Array {
  const copy = bytes.slice();
  const view = new DataView(copy.buffer);
  const magic = view.getUint16(0, true);
  const base = segNo * WAL_SEGMENT_SIZE;
  for (let at = 0; at < copy.length; at += WAL_PAGE) {
    if (view.getUint16(at, true) !== magic) continue; // not a page header: leave it alone
    setUint64(view, at + 8, base + at);
  }
  return copy;
}

function zeroStats(bytes: Uint8Array): { zeroShare: number; tailZeroBytes: number } {
  let zeros = 0;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0) zeros++;
  let tail = 0;
  while (tail < bytes.length && bytes[bytes.length - 1 - tail] === 0) tail++;
  return { zeroShare: zeros / bytes.length, tailZeroBytes: tail };
}

async function lzopSize(path: string): Promise<number> {
  const { code, stdout } = await new Deno.Command(LZOP, { args: ["-1", "-c", path] }).output();
  if (code !== 0) throw new Error(`${LZOP} -1 -c ${path} failed`);
  return stdout.length;
}

async function makeDataSet(
  dir: string,
  fields: { name: string; description: string; source: string },
  bytes: Uint8Array,
  lzop: boolean,
): Promise<DataSet> {
  const { timeline, segNo } = segmentIdentity(bytes);
  const path = join(dir, `${fields.name}.seg`);
  await Deno.writeFile(path, bytes);
  return {
    ...fields,
    segmentName: walFileName(timeline, segNo),
    bytes: bytes.length,
    ...zeroStats(bytes),
    lzopBytes: lzop ? await lzopSize(path) : null,
    walPushBytes: null,
    path,
  };
}

/* ------------------------------------------------------------------------------------------ */
/* A real busy segment from PostgreSQL                                                        */
/* ------------------------------------------------------------------------------------------ */

const SCHEMA = `
  CREATE TABLE accounts (
    id int PRIMARY KEY,
    name text NOT NULL,
    balance numeric(14, 2) NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
  ) WITH (fillfactor = 85);
  INSERT INTO accounts (id, name)
    SELECT i, 'customer ' || i || ' ' || md5(i::text) FROM generate_series(1, 50000) i;
  CREATE TABLE orders (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    account_id int NOT NULL,
    status text NOT NULL,
    amount numeric(12, 2) NOT NULL,
    currency char(3) NOT NULL,
    sku text NOT NULL,
    quantity int NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz,
    note text
  ) WITH (fillfactor = 90);
  CREATE INDEX orders_account_id ON orders (account_id);
  INSERT INTO orders (account_id, status, amount, currency, sku, quantity, note)
    SELECT 1 + (random() * 49999)::int, 'delivered', round((random() * 500)::numeric, 2), 'EUR',
           'SKU-' || lpad((random() * 99999)::int::text, 5, '0'), 1 + (random() * 4)::int,
           CASE WHEN random() < 0.2 THEN 'leave at the door' END
      FROM generate_series(1, 100000);
`;

/**
 * One batch of OLTP transactions, each committed on its own: a new order (heap insert, two index
 * inserts), a payment on the account (an update), a status change of a random order (a HOT
 * update when its page has room, else a new row version and two index inserts), and now and then
 * a purge of an old order.
 */
const LOAD_BATCH = `
  DO $$
  DECLARE
    top bigint;
    account int;
    other bigint;
  BEGIN
    FOR i IN 1..4000 LOOP
      INSERT INTO orders (account_id, status, amount, currency, sku, quantity, note)
        VALUES (1 + (random() * 49999)::int, 'new', round((random() * 500)::numeric, 2), 'EUR',
                'SKU-' || lpad((random() * 99999)::int::text, 5, '0'), 1 + (random() * 4)::int,
                CASE WHEN random() < 0.2 THEN 'gift wrap, leave at the door' END)
        RETURNING id INTO top;
      -- (random ids in variables: random() in a WHERE clause would mean a sequential scan)
      account := 1 + (random() * 49999)::int;
      UPDATE accounts SET balance = balance + 12.5, updated_at = now() WHERE id = account;
      other := 1 + (random() * (top - 1))::bigint;
      UPDATE orders SET status = 'shipped', updated_at = now() WHERE id = other;
      IF i % 20 = 0 THEN
        other := 1 + (random() * 50000)::bigint;
        DELETE FROM orders WHERE id = other;
      END IF;
      COMMIT;
    END LOOP;
  END $$`;

/** Position of an LSN in bytes (`pg_current_wal_lsn() - '0/0'`). */
async function currentWalPosition(pg: Cluster): Promise<number> {
  const [row] = await pg.sql<{ pos: string }>(
    "SELECT (pg_current_wal_lsn() - '0/0')::bigint::text AS pos",
  );
  return Number(row.pos);
}

/**
 * Runs PostgreSQL `major` with `archive_command = 'cp %p <dir>/%f'`, loads it until the WAL has
 * moved through three segments after a checkpoint, and returns the second complete segment after
 * the checkpoint: filled by the load alone and switched because it was full (no pg_switch_wal,
 * so no zero-filled tail). The server and its directories are removed before returning.
 */
export async function realSegment(
  major: PgMajor,
): Promise<{ bytes: Uint8Array; description: string }> {
  const archive = await makePgUserTempDir("wald-bench-wal-archive-");
  tempDirs.add(archive);
  let pg: Cluster | undefined;
  try {
    const started = performance.now();
    pg = await createCluster({
      major,
      initdbArgs: ["--wal-segsize=16"],
      settings: {
        wal_level: "replica",
        archive_mode: "on",
        archive_command: `cp %p ${archive}/%f`,
        max_wal_size: "1GB",
        checkpoint_timeout: "30min",
      },
    });
    await pg.start();
    await pg.exec(SCHEMA);
    // Full-page images follow a checkpoint, as on any server: start the measured load after one.
    await pg.exec("CHECKPOINT");
    const startSeg = Math.floor(await currentWalPosition(pg) / WAL_SEGMENT_SIZE);
    const chosen = startSeg + 2;
    let batches = 0;
    for (;;) {
      await pg.exec(LOAD_BATCH);
      batches++;
      const seg = Math.floor(await currentWalPosition(pg) / WAL_SEGMENT_SIZE);
      if (seg > chosen) break;
      if (batches > 200) throw new Error("the load did not fill three WAL segments");
    }
    const [{ tli }] = await pg.sql<{ tli: number }>(
      "SELECT timeline_id AS tli FROM pg_control_checkpoint()",
    );
    const name = walFileName(Number(tli), chosen);
    await waitForArchived(pg, name);
    const bytes = await Deno.readFile(join(archive, name));
    if (bytes.length !== WAL_SEGMENT_SIZE) {
      throw new Error(`archived ${name} has ${bytes.length} bytes, not ${WAL_SEGMENT_SIZE}`);
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const description = `PostgreSQL ${major}: ${name}, the 2nd segment after a CHECKPOINT, ` +
      `completed by the load (${batches} batches of 4000 OLTP transactions), no pg_switch_wal; ` +
      `made in ${seconds} s`;
    return { bytes, description };
  } finally {
    await pg?.close();
    await removeTempDir(archive);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* wal-push latency                                                                           */
/* ------------------------------------------------------------------------------------------ */

/** A fake data directory: `pg_wal/<segments>` and an empty `pg_wal/archive_status/`. */
async function makeDataDir(dir: string): Promise<string> {
  const walDir = join(dir, "pg_wal");
  await Deno.mkdir(join(walDir, "archive_status"), { recursive: true });
  return walDir;
}

/** Timestamp (ms since the epoch) of wal-push's log line with `state=<state>`, or null. */
function logTime(stderr: string, state: string): number | null {
  const pattern = new RegExp(`time=(\\S+)-00 .*state=${state}\\b`);
  const match = stderr.match(pattern);
  if (!match) return null;
  const [whole, fraction = "0"] = match[1].split(".");
  return Date.parse(`${whole}Z`) + Number(`0.${fraction}`) * 1000;
}

/** The phases of one wal-push run, or null (with a warning) if its log lines are not found. */
function phasesOf(run: Spawned): PushPhases | null {
  const begin = logTime(run.stderr, "begin");
  const complete = logTime(run.stderr, "complete");
  if (begin === null || complete === null) {
    console.error(
      `note: no begin/complete log lines with time= in wal-push's stderr:\n${run.stderr}`,
    );
    return null;
  }
  return {
    toBeginMs: begin - run.spawnedAt,
    putMs: complete - begin,
    toExitMs: run.spawnedAt + run.ms - complete,
  };
}

function medianPhases(all: PushPhases[]): PushPhases | null {
  if (all.length === 0) return null;
  return {
    toBeginMs: median(all.map((p) => p.toBeginMs)),
    putMs: median(all.map((p) => p.putMs)),
    toExitMs: median(all.map((p) => p.toExitMs)),
  };
}

/**
 * The modules wal-push loads for an upload: the command (which loads the others on demand), the
 * store and the file backend, the push logic. Missing ones are reported, not fatal.
 */
const WAL_PUSH_MODULES = [
  "src/commands/wal_push.ts",
  "src/storage/mod.ts",
  "src/storage/file.ts",
  "src/wal/push.ts",
];

/** The probe program (see {@linkcode ProbeResult}); prints its measurements as JSON. */
function probeSource(): string {
  const urls = WAL_PUSH_MODULES.map((m) => new URL(`../../${m}`, import.meta.url).href);
  const lzopFile = new URL("../../src/codec/lzop_file.ts", import.meta.url).href;
  return `const start = performance.now();
const urls = ${JSON.stringify(urls)};
const loaded = await Promise.allSettled(urls.map((url) => import(url)));
const importWalPushMs = performance.now() - start;
const importFailures = urls.filter((_, i) => loaded[i].status === "rejected");
const { openLzopFileReadable } = await import(${JSON.stringify(lzopFile)});
const compress = async () => {
  const start = performance.now();
  await openLzopFileReadable(Deno.args[0]).pipeTo(new WritableStream());
  return performance.now() - start;
};
const compressFirstMs = await compress();
const compressSecondMs = await compress();
console.log(JSON.stringify({ importWalPushMs, importFailures, compressFirstMs, compressSecondMs }));
`;
}

interface LatencyContext {
  work: string;
  /** A directory on /dev/shm, or null. */
  shm: string | null;
  lzop: boolean;
  runs: number;
}

/**
 * Times the latency commands in rounds (one of each per round, so drift hits all alike): 3
 * warm-up rounds, then `runs` measured ones. Every wal-push gets a fresh empty store.
 */
async function measureLatency(set: DataSet, context: LatencyContext): Promise<LatencyResult> {
  const { lzop, shm, runs } = context;
  const dir = join(context.work, `latency-${set.name}`);
  const walDir = await makeDataDir(join(dir, "data"));
  const segment = join(walDir, set.segmentName);
  await Deno.copyFile(set.path, segment);
  const empty = join(dir, "empty.ts");
  await Deno.writeTextFile(empty, "");
  const probe = join(dir, "probe.ts");
  await Deno.writeTextFile(probe, probeSource());
  await syncAll();

  const launcherFlags = denoRunArguments(join(PROJECT_ROOT, "deno.json"));
  const deno = Deno.execPath();
  let storeCounter = 0;
  const walPush = async (root: string): Promise<Spawned> => {
    const store = join(root, `store-${++storeCounter}`);
    await Deno.mkdir(store);
    const env = childEnv({ WALE_FILE_PREFIX: `file://${store}`, WALE_LOG_DESTINATION: "stderr" });
    const run = await timed(WAL_D_LAUNCHER, ["wal-push", `pg_wal/${set.segmentName}`], {
      cwd: join(dir, "data"),
      env,
    });
    const object = join(store, "wal_005", `${set.segmentName}.lzo`);
    const size = (await Deno.stat(object)).size; // throws if nothing was uploaded
    set.walPushBytes ??= size;
    await Deno.remove(store, { recursive: true });
    return run;
  };
  const dest = join(dir, "floor.lzo");
  const commands: [LatencyCommand, () => Promise<Spawned>][] = [];
  commands.push(["walPush", () => walPush(dir)]);
  if (shm) commands.push(["walPushShm", () => walPush(shm)]);
  if (lzop) {
    const floor = `${LZOP} -1 -c "$1" > "$2"`;
    commands.push(["lzop", () => timed("sh", ["-c", floor, "sh", segment, dest])]);
    commands.push([
      "lzopSync",
      () => timed("sh", ["-c", `${floor} && sync "$2" "$3"`, "sh", segment, dest, dir]),
    ]);
  }
  commands.push(["walDVersion", () => timed(WAL_D_LAUNCHER, ["version"])]);
  commands.push([
    "denoModVersion",
    () => timed(deno, [...launcherFlags, join(PROJECT_ROOT, "mod.ts"), "version"]),
  ]);
  commands.push(["denoEmpty", () => timed(deno, [...launcherFlags, empty])]);

  const samples = new Map<LatencyCommand, number[]>(commands.map(([name]) => [name, []]));
  const phases = { disk: [] as PushPhases[], shm: [] as PushPhases[] };
  const probes: ProbeResult[] = [];
  let probeError: string | null = null;
  for (let round = 0; round < WARMUPS + runs; round++) {
    for (const [name, run] of commands) {
      await syncAll();
      const result = await run();
      if (round < WARMUPS) continue;
      samples.get(name)!.push(result.ms);
      const pushPhases = name.startsWith("walPush") ? phasesOf(result) : null;
      if (pushPhases) phases[name === "walPush" ? "disk" : "shm"].push(pushPhases);
    }
    // Not timed from outside: the probe reports its own phases.
    if (probeError !== null) continue;
    try {
      const out = await timed(deno, [...launcherFlags, probe, segment]);
      if (round >= WARMUPS) probes.push(JSON.parse(out.stdout));
    } catch (error) {
      probeError = (error as Error).message.split("\n").slice(0, 3).join(" ");
      console.error(`probe failed (reported as skipped): ${probeError}`);
    }
  }
  await Deno.remove(dest).catch(() => {});

  const timings: LatencyResult["commands"] = {};
  for (const [name, values] of samples) timings[name] = timingOf(values);
  return {
    dataSet: set.name,
    runs,
    warmups: WARMUPS,
    commands: timings,
    phases: { disk: medianPhases(phases.disk), shm: medianPhases(phases.shm) },
    probe: probeError === null && probes.length
      ? {
        importWalPushMs: median(probes.map((p) => p.importWalPushMs)),
        importFailures: probes[0].importFailures,
        compressFirstMs: median(probes.map((p) => p.compressFirstMs)),
        compressSecondMs: median(probes.map((p) => p.compressSecondMs)),
      }
      : null,
    probeError,
    walPushOverFloor: timings.lzop ? timings.walPush!.medianMs / timings.lzop.medianMs : null,
  };
}

/* ------------------------------------------------------------------------------------------ */
/* Catch-up of a backlog                                                                      */
/* ------------------------------------------------------------------------------------------ */

interface CatchUpContext {
  work: string;
  lzop: boolean;
  segments: number;
  runs: number;
}

/** One pass of the emulated archiver. */
interface ArchiverRun {
  /** From the first spawn to the last exit (and its `.done` rename). */
  seconds: number;
  /** From then until every detached child (background pusher) had exited too. */
  tailSeconds: number;
  /** Log lines of all its processes: uploads completed, */
  completed: number;
  /** calls answered from the push-ahead ledger, */
  ledgerAnswers: number;
  /** pushes that found the object archived already and compared its content, */
  sameContentSkips: number;
  /** and warnings. */
  warnings: number;
}

/** How long to wait for detached background pushers after the loop. */
const DETACHED_TIMEOUT_MS = 180_000;

/**
 * The emulated archiver: for each ready segment in name order, one `wal-push -p <pool>` process
 * (cwd = the data directory), then `.ready` renamed to `.done` on exit 0, one process at a time.
 * Then waits until detached children have exited (their stderr pipes closed).
 */
async function archiverLoop(
  dataDir: string,
  names: string[],
  store: string,
  pool: number,
): Promise<ArchiverRun> {
  const status = join(dataDir, "pg_wal", "archive_status");
  const env = childEnv({ WALE_FILE_PREFIX: `file://${store}`, WALE_LOG_DESTINATION: "stderr" });
  const logs: Promise<string>[] = [];
  const start = performance.now();
  for (const name of names) {
    await timed(WAL_D_LAUNCHER, ["wal-push", "-p", String(pool), `pg_wal/${name}`], {
      cwd: dataDir,
      env,
      detachedStderr: logs,
    });
    await Deno.rename(join(status, `${name}.ready`), join(status, `${name}.done`));
  }
  const end = performance.now();
  const all = await within(Promise.all(logs), DETACHED_TIMEOUT_MS, null);
  if (all === null) {
    throw new Error(
      `detached wal-d processes still running ${DETACHED_TIMEOUT_MS} ms after the loop`,
    );
  }
  const text = all.join("");
  const count = (pattern: RegExp) => text.match(pattern)?.length ?? 0;
  return {
    seconds: (end - start) / 1000,
    tailSeconds: (performance.now() - end) / 1000,
    completed: count(/state=complete\b/g),
    ledgerAnswers: count(/MSG: WAL file was already archived by an earlier wal-push/g),
    sameContentSkips: count(/MSG: skipping a WAL file that is already archived/g),
    warnings: count(/^\S+ +WARNING /gm),
  };
}

/** Resets the backlog: every segment `.ready`, no `.done`, no wal-d ledger. */
async function resetBacklog(dataDir: string, names: string[]): Promise<void> {
  const walDir = join(dataDir, "pg_wal");
  const status = join(walDir, "archive_status");
  await Deno.remove(status, { recursive: true });
  await Deno.remove(join(walDir, ".wal-d"), { recursive: true }).catch(() => {});
  await Deno.mkdir(status);
  for (const name of names) await Deno.writeFile(join(status, `${name}.ready`), new Uint8Array());
}

async function countObjects(store: string): Promise<number> {
  let n = 0;
  for await (const entry of Deno.readDir(join(store, "wal_005"))) {
    if (entry.name.endsWith(".lzo")) n++;
  }
  return n;
}

async function measureCatchUp(set: DataSet, context: CatchUpContext): Promise<CatchUpResult> {
  const { lzop, segments, runs } = context;
  const dir = join(context.work, `catchup-${set.name}`);
  const dataDir = join(dir, "data");
  const walDir = await makeDataDir(dataDir);
  pusherWalDirs.add(walDir);
  const original = await Deno.readFile(set.path);
  const { timeline, segNo } = segmentIdentity(original);
  const names: string[] = [];
  for (let i = 0; i < segments; i++) {
    const name = walFileName(timeline, segNo + i);
    await Deno.writeFile(join(walDir, name), relabelSegment(original, segNo + i));
    names.push(name);
  }
  await syncAll();

  const methods: Record<CatchUpMethod, number[]> = {
    walPushPooled: [],
    walPushSingle: [],
    lzopParallel: [],
  };
  const archiver: CatchUpResult["archiver"] = { walPushPooled: [], walPushSingle: [] };
  const checkStore = async (store: string) => {
    const n = await countObjects(store);
    if (n !== segments) throw new Error(`catch-up archived ${n} of ${segments} segments`);
  };
  for (let run = 1; run <= runs; run++) {
    if (lzop) {
      const out = join(dir, `floor-${run}`);
      await Deno.mkdir(out);
      await syncAll();
      const result = await timed("xargs", [
        "-P",
        "2",
        "-n",
        "1",
        "sh",
        "-c",
        `${LZOP} -1 -c "pg_wal/$1" > "$0/$1.lzo"`,
        out,
      ], { cwd: dataDir, stdinText: names.join("\n") + "\n" });
      methods.lzopParallel.push(result.ms / 1000);
      const made = [...Deno.readDirSync(out)].length;
      if (made !== segments) throw new Error(`lzop floor wrote ${made} of ${segments} files`);
      await Deno.remove(out, { recursive: true });
    }
    for (const [method, pool] of [["walPushPooled", CATCHUP_POOL], ["walPushSingle", 1]] as const) {
      const store = join(dir, `store-${method}-${run}`);
      await Deno.mkdir(store);
      await resetBacklog(dataDir, names);
      await syncAll();
      const { seconds, ...rest } = await archiverLoop(dataDir, names, store, pool);
      methods[method].push(seconds);
      archiver[method]!.push(rest);
      if (rest.completed !== segments || rest.warnings > 0) {
        console.error(
          `  note: ${method} run ${run}: ${rest.completed} uploads completed for ` +
            `${segments} segments, ${rest.warnings} warnings`,
        );
      }
      await checkStore(store);
      await Deno.remove(store, { recursive: true });
    }
    console.error(
      `  catch-up run ${run}/${runs}: ` +
        Object.entries(methods).filter(([, s]) => s.length)
          .map(([m, s]) => `${m} ${s.at(-1)!.toFixed(2)} s`).join(", "),
    );
  }
  await Deno.remove(dir, { recursive: true });
  pusherWalDirs.delete(walDir);

  const medianSeconds: CatchUpResult["medianSeconds"] = {};
  for (const [method, seconds] of Object.entries(methods) as [CatchUpMethod, number[]][]) {
    if (seconds.length) medianSeconds[method] = median(seconds);
  }
  const floor = medianSeconds.lzopParallel ?? null;
  return {
    dataSet: set.name,
    segments,
    bytes: segments * set.bytes,
    copies: "copies of the segment relabelled as consecutive segments (xlp_pageaddr of every " +
      "page header rewritten; records unchanged)",
    runs,
    methods: lzop
      ? methods
      : { walPushPooled: methods.walPushPooled, walPushSingle: methods.walPushSingle },
    medianSeconds,
    archiver,
    pooledOverFloor: floor ? medianSeconds.walPushPooled! / floor : null,
    singleOverFloor: floor ? medianSeconds.walPushSingle! / floor : null,
  };
}

/* ------------------------------------------------------------------------------------------ */
/* Report                                                                                     */
/* ------------------------------------------------------------------------------------------ */

const ms = (n: number | null | undefined) => n === null || n === undefined ? "-" : n.toFixed(1);
const times = (n: number | null) => n === null ? "-" : `${n.toFixed(2)}x`;

const COMMAND_LABELS: Record<LatencyCommand, string> = {
  walPush: "scripts/wal-d wal-push pg_wal/SEG (store on disk)",
  walPushShm: "scripts/wal-d wal-push pg_wal/SEG (store on /dev/shm)",
  lzop: "sh -c 'lzop -1 -c SEG > DEST' (floor)",
  lzopSync: "sh -c 'lzop -1 -c SEG > DEST && sync DEST DIR'",
  walDVersion: "scripts/wal-d version (CLI start-up)",
  denoModVersion: "deno run <launcher flags> mod.ts version",
  denoEmpty: "deno run <launcher flags> empty.ts",
};

function dataSetTable(sets: DataSet[]): string {
  return formatTable(
    [
      "data set",
      "segment",
      ">zero bytes",
      ">zero tail",
      ">lzop -1 bytes",
      ">lzop ratio",
      ">wal-push bytes",
      ">wal-push ratio",
    ],
    sets.map((s) => [
      s.name,
      s.segmentName,
      `${(s.zeroShare * 100).toFixed(1)}%`,
      String(s.tailZeroBytes),
      s.lzopBytes === null ? "-" : String(s.lzopBytes),
      s.lzopBytes === null ? "-" : `${(s.bytes / s.lzopBytes).toFixed(2)}x`,
      s.walPushBytes === null ? "-" : String(s.walPushBytes),
      s.walPushBytes === null ? "-" : `${(s.bytes / s.walPushBytes).toFixed(2)}x`,
    ]),
  );
}

function latencyTable(results: LatencyResult[]): string {
  const rows: string[][] = [];
  for (const r of results) {
    const floor = r.commands.lzop?.medianMs ?? null;
    for (const name of Object.keys(COMMAND_LABELS) as LatencyCommand[]) {
      const t = r.commands[name];
      if (!t) continue;
      let target = "";
      if (name === "walPush" && floor !== null) {
        target = `<=${LATENCY_TARGET}x ${verdict(t.medianMs / floor <= LATENCY_TARGET)}`;
      }
      if (name === "walDVersion") {
        target = `<=${STARTUP_TARGET_MS} ms ${verdict(t.medianMs <= STARTUP_TARGET_MS)}`;
      }
      rows.push([
        r.dataSet,
        COMMAND_LABELS[name],
        ms(t.medianMs),
        ms(t.p90Ms),
        ms(t.minMs),
        floor === null ? "-" : times(t.medianMs / floor),
        target,
      ]);
    }
  }
  return formatTable(
    ["data set", "command", ">median ms", ">p90 ms", ">min ms", ">x floor", "target"],
    rows,
  );
}

function breakdownTable(results: LatencyResult[]): string {
  const rows: string[][] = [];
  for (const r of results) {
    const c = r.commands;
    const d = r.phases.disk;
    const s = r.phases.shm;
    const p = r.probe;
    const total = c.walPush!.medianMs;
    const share = (n: number | undefined) =>
      n === undefined ? "-" : `${(n / total * 100).toFixed(0)}%`;
    const add = (what: string, value: number | undefined, shm?: number) =>
      rows.push([r.dataSet, what, ms(value), share(value), ms(shm)]);
    const minus = (a?: number, b?: number) =>
      a !== undefined && b !== undefined ? a - b : undefined;
    add("spawn -> 'begin archiving' log line", d?.toBeginMs, s?.toBeginMs);
    add("  Deno start-up: deno run empty.ts", c.denoEmpty?.medianMs);
    add(
      "  bash launcher: wal-d version - deno run mod.ts version",
      minus(c.walDVersion?.medianMs, c.denoModVersion?.medianMs),
    );
    add(
      "  CLI modules + parse: deno run mod.ts version - empty.ts",
      minus(c.denoModVersion?.medianMs, c.denoEmpty?.medianMs),
    );
    add(
      "  rest: wal-push modules, config, store, checks (- wal-d version)",
      minus(d?.toBeginMs, c.walDVersion?.medianMs),
    );
    const failed = p?.importFailures.length ? ` (${p.importFailures.length} failed)` : "";
    add(`    of which importing wal-push's modules (probe)${failed}`, p?.importWalPushMs);
    add("'begin' -> 'completed' (read, compress, write, fsync, rename)", d?.putMs, s?.putMs);
    add("  our lzop stream over the segment, cold, fresh process (probe)", p?.compressFirstMs);
    add("  the same, second call in that process (probe)", p?.compressSecondMs);
    add("  durability: disk put - /dev/shm put", minus(d?.putMs, s?.putMs));
    add("'completed' -> exit", d?.toExitMs, s?.toExitMs);
    add("total: wal-push median (spawn to exit)", total, c.walPushShm?.medianMs);
  }
  return formatTable(["data set", "phase", ">disk ms", ">of total", ">shm ms"], rows);
}

function catchUpTable(results: CatchUpResult[]): string {
  const rows: string[][] = [];
  for (const r of results) {
    const floor = r.medianSeconds.lzopParallel ?? null;
    const labels: [CatchUpMethod, string][] = [
      ["lzopParallel", "2 x lzop -1 -c in parallel (xargs -P 2), floor"],
      ["walPushPooled", `archiver loop: wal-push -p ${CATCHUP_POOL}, one process at a time`],
      ["walPushSingle", "archiver loop: wal-push -p 1, one process at a time"],
    ];
    for (const [method, label] of labels) {
      const seconds = r.methods[method];
      const med = r.medianSeconds[method];
      if (!seconds || med === undefined) continue;
      const ratio = floor === null ? null : med / floor;
      const logs = r.archiver[method];
      const sum = (key: keyof Omit<ArchiverRun, "seconds">) =>
        logs ? logs.reduce((n, run) => n + run[key], 0) : 0;
      const processes = logs
        ? `${sum("completed")}/${sum("ledgerAnswers")}/${sum("sameContentSkips")}/` +
          `${sum("warnings")}/${(sum("tailSeconds") * 1000).toFixed(0)}`
        : "";
      rows.push([
        r.dataSet,
        label,
        med.toFixed(2),
        seconds.map((s) => s.toFixed(2)).join(" "),
        (r.bytes / MB / med).toFixed(0),
        times(ratio),
        method === "walPushPooled" && ratio !== null
          ? `<=${CATCHUP_TARGET}x ${verdict(ratio <= CATCHUP_TARGET)}`
          : "",
        processes,
      ]);
    }
  }
  return formatTable(
    [
      "data set",
      "method",
      ">median s",
      ">runs s",
      ">MB/s",
      ">x floor",
      "target",
      ">up/ledger/recheck/warn/tail ms",
    ],
    rows,
  );
}

function header(report: BenchReport): string {
  const m = report.machine;
  const o = report.options;
  return [
    "wal-d WAL archiving benchmark: wal-push as archive_command vs native lzop -1",
    `machine  ${m.cpuModel}, nproc ${m.nproc}, ${m.os}`,
    `runtime  Deno ${m.deno}, V8 ${m.v8}`,
    `load     ${m.loadAtStart} at the start (1/5/15 min); ${m.loadAtEnd} at the end, with this ` +
    "benchmark's own load",
    `lzop     ${
      m.lzop === null ? `SKIPPED (no floors): ${report.lzopSkipped}` : `${LZOP}: ${m.lzop}`
    }`,
    `disk     temporary dir ${m.tempDir} (${m.tempFs}): data, stores and floor outputs`,
    `shm      ${
      report.shmSkipped === null
        ? "a /dev/shm (tmpfs) directory, bind-mounted in the temporary dir: the no-fsync store"
        : `SKIPPED: ${report.shmSkipped}`
    }`,
    `real     ${report.pgSegment ?? `SKIPPED: ${report.pgSkipped}`}`,
    `method   latency: ${WARMUPS} warm-up rounds, then ${o.runs} rounds of every command in turn;`,
    "         wall clock from spawn to exit; each wal-push into a fresh empty file:// store from",
    "         a fake data dir (cwd) whose pg_wal/archive_status has no .ready files;",
    "         WALE_LOG_DESTINATION=stderr. `sync` (untimed) before every command. wal-push",
    "         fsyncs the object and its directory; lzop does not (the lzop+sync row does).",
    `         catch-up: ${o.segments} distinct segments, ${o.catchupRuns} runs, median.`,
    "         MB = 10^6 bytes of uncompressed WAL.",
  ].join("\n");
}

/** The whole report as printed. */
export function formatReport(report: BenchReport, sets: DataSet[]): string {
  return [
    header(report),
    "",
    "Data sets (16 MiB segments; ratio = input / compressed)",
    dataSetTable(sets),
    "",
    `wal-push latency: one segment per process, ${report.options.runs} runs after ${WARMUPS} ` +
    "warm-ups (x floor = median / lzop's median)",
    latencyTable(report.latency),
    "",
    "Where wal-push's time goes (medians). The three phases come from the timestamps of",
    "wal-push's own log lines; 'probe' rows from a fresh deno process (launcher flags) that times",
    "itself: importing what wal-push loads for an upload (src/commands/wal_push.ts,",
    "src/storage/mod.ts, src/storage/file.ts, src/wal/push.ts), then openLzopFileReadable(SEG)",
    "-> discard, twice.",
    breakdownTable(report.latency),
    "",
    `Catch-up of a ${report.options.segments}-segment backlog (emulated PostgreSQL archiver)`,
    "Segments: copies of the data set's segment relabelled as consecutive segments (every page",
    "header's xlp_pageaddr rewritten, records unchanged). LZO compresses each file on its own, so",
    "they cost what distinct busy segments cost, and no two files are identical.",
    catchUpTable(report.catchUp),
    "up/ledger/recheck/warn/tail: over all runs, log lines of uploads completed, calls answered",
    "from the push-ahead ledger, pushes that found the object already archived and compared it,",
    "warnings; and the time from the loop's last exit until detached wal-d processes had exited.",
  ].join("\n");
}

/* ------------------------------------------------------------------------------------------ */
/* Main                                                                                       */
/* ------------------------------------------------------------------------------------------ */

/**
 * A directory on /dev/shm that wal-push may write to. Deno refuses every path under /dev to a
 * program without --allow-all (also through symlinks), and scripts/wal-d runs with narrower
 * permissions; so a fresh /dev/shm directory is bind-mounted on `<work>/shm` (needs root), and
 * unmounted and removed at the end.
 */
async function shmDir(work: string): Promise<string | { skipped: string }> {
  const made = await new Deno.Command("mktemp", {
    args: ["-d", "-p", "/dev/shm", "wal-d-bench-wal.XXXXXX"],
    stderr: "piped",
  }).output().catch((error: Error) => ({
    code: -1,
    stdout: new Uint8Array(),
    stderr: new TextEncoder().encode(error.message),
  }));
  if (made.code !== 0) {
    const why = new TextDecoder().decode(made.stderr).trim();
    return { skipped: `cannot make a directory on /dev/shm: ${why}` };
  }
  const source = new TextDecoder().decode(made.stdout).trim();
  const mountPoint = join(work, "shm");
  await Deno.mkdir(mountPoint);
  mounts.set(mountPoint, source);
  const mount = await new Deno.Command("mount", {
    args: ["--bind", source, mountPoint],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (mount.code !== 0) {
    unmountSync(mountPoint);
    const why = new TextDecoder().decode(mount.stderr).trim();
    return {
      skipped: "Deno refuses /dev/shm to wal-d (no --allow-all) and bind-mounting it elsewhere " +
        `failed (needs root): ${why}`,
    };
  }
  return mountPoint;
}

/** Runs the whole benchmark; returns its report and the data sets. */
export async function runBenchmark(
  options: BenchOptions,
): Promise<{ report: BenchReport; sets: DataSet[] }> {
  const started = performance.now();
  const probe = await probeLzop();
  const lzop = "version" in probe;
  if (!lzop) console.log(`lzop floors skipped: ${probe.skipped}`);
  const work = await makeTempDir("wal-d-bench-wal-");
  const removeSignals = exitOnSignals();
  try {
    const shm = await shmDir(work);
    const report: BenchReport = {
      startedAt: new Date().toISOString(),
      totalSeconds: 0,
      machine: await describeWalMachine(lzop ? probe.version : null, work),
      lzopSkipped: lzop ? null : probe.skipped,
      pgSkipped: null,
      pgSegment: null,
      shmSkipped: typeof shm === "string" ? null : shm.skipped,
      targets: {
        walPushOverLzop: LATENCY_TARGET,
        startupMs: STARTUP_TARGET_MS,
        catchUpOverFloor: CATCHUP_TARGET,
      },
      options: {
        runs: options.runs,
        catchupRuns: options.catchupRuns,
        segments: options.segments,
        major: options.major,
        noPg: options.noPg,
      },
      dataSets: [],
      latency: [],
      catchUp: [],
    };

    const sets: DataSet[] = [];
    const pgSkip = options.noPg ? "--no-pg" : await pgSkipReason([options.major]);
    if (pgSkip) {
      report.pgSkipped = `PostgreSQL ${options.major}: ${pgSkip}`;
      console.log(`real segment skipped: ${report.pgSkipped}`);
    } else {
      console.error(`making a real busy segment with PostgreSQL ${options.major}...`);
      const real = await realSegment(options.major);
      report.pgSegment = real.description;
      sets.push(
        await makeDataSet(
          work,
          {
            name: `wal-pg${options.major}-real`,
            description: "real busy segment: OLTP inserts, updates, deletes, two indexes",
            source: real.description,
          },
          real.bytes,
          lzop,
        ),
      );
    }
    sets.push(
      await makeDataSet(
        work,
        {
          name: "wal-synthetic",
          description: "synthetic busy PG15 segment (OLTP records, full-page images)",
          source: "scripts/bench/data.ts generateWalSegment()",
        },
        generateWalSegment(),
        lzop,
      ),
    );

    for (const set of sets) {
      console.error(`${set.name}: wal-push latency (${WARMUPS} + ${options.runs} rounds)...`);
      report.latency.push(
        await measureLatency(set, {
          work,
          shm: typeof shm === "string" ? shm : null,
          lzop,
          runs: options.runs,
        }),
      );
    }
    for (const set of sets) {
      console.error(`${set.name}: catch-up of ${options.segments} segments...`);
      report.catchUp.push(
        await measureCatchUp(set, {
          work,
          lzop,
          segments: options.segments,
          runs: options.catchupRuns,
        }),
      );
    }
    report.dataSets = sets.map(({ path: _path, ...rest }) => rest);
    report.totalSeconds = (performance.now() - started) / 1000;
    report.machine.loadAtEnd = await loadAverage();
    return { report, sets };
  } finally {
    await cleanUp();
    removeSignals();
  }
}

if (import.meta.main) {
  const options = parseOptions(Deno.args);
  const { report, sets } = await runBenchmark(options).catch((error) => {
    // Interrupted: the signal handler is cleaning up and will exit.
    if (interrupted) return new Promise<never>(() => {});
    throw error;
  });
  console.log(formatReport(report, sets));
  console.log(`\ntotal ${report.totalSeconds.toFixed(0)} s`);
  if (options.jsonPath) {
    await Deno.writeTextFile(options.jsonPath, JSON.stringify(report, null, 2) + "\n");
    console.log(`results written to ${options.jsonPath}`);
  }
}
