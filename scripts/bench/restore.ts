/**
 * Restore benchmark: `wal-d backup-fetch DIR LATEST` of a ~800 MB PostgreSQL base backup from a
 * file:// store, against the floor `lzop -dc VOLUME | tar -xf - -C DIR`, in the same run.
 *
 *   deno task bench:restore [--size-mb N] [--runs N] [--major 13..18] [--pool-size N] [--json PATH]
 *
 * 1. A cluster from npm (the test harness) is filled with N MB (default 800) of table data (as in
 *    bench:backup), and `scripts/wal-d backup-push` stores one base backup in a file:// store in a
 *    temporary directory; the server is then stopped. The volumes are extracted once with GNU tar
 *    into a reference directory (untimed).
 * 2. One warm-up round (shown, not counted), then --runs rounds (default 3). Each round (the task
 *    runs with --allow-all: Deno reads /proc/<pid> only with it) runs the three sides in rotating
 *    order, each into a fresh empty directory on the same disk, after `sync` (so no side pays for
 *    another's dirty pages) and after reading every volume once (so the store is in the page cache
 *    for all three):
 *    - floor: for each volume in order, `lzop -dc VOLUME | tar -xf - -C DIR` (two processes);
 *    - floor + sync: the same followed by `sync` (wal-d fsyncs what it restores; the floor does
 *      not, so this shows what durability costs);
 *    - wal-d: `scripts/wal-d backup-fetch DIR LATEST` (default --pool-size), with its peak RSS
 *      (VmHWM of /proc/<pid>/status, polled every 20 ms; its Web Workers are threads of the same
 *      process, so they are included).
 *    After each wal-d round, untimed, the restored tree is compared with the reference: the same
 *    paths, types, modes, sizes and symlink targets (`find -printf`), and the same contents
 *    (`diff -r --no-dereference`). A difference ends the benchmark with an error.
 * 3. MB/s = the backup's expanded size (the sentinel's `expanded_size_bytes`: the tar members'
 *    bytes) / wall seconds. Targets: wal-d ≥ 0.9× the floor's MB/s, peak RSS ≤ 128 MiB.
 *
 * @module
 */

import { join } from "node:path";
import { commandOutput, describeMachine, LZOP } from "./native.ts";
import { duBytes, parsePgBenchArgs, timed, withFilledCluster } from "./pg_data.ts";
import { formatTable, MB, median } from "./report.ts";
import { WAL_D_LAUNCHER } from "../../test/_pg/cluster.ts";

const USAGE = "usage: deno task bench:restore [--size-mb N] [--runs N] [--major 13..18] " +
  "[--pool-size N] [--json PATH]";
/** Target: wal-d's MB/s over the floor's. */
export const SPEED_TARGET = 0.9;
/** Target: peak RSS of backup-fetch, MiB. */
export const RSS_TARGET_MIB = 128;

type Side = "floor" | "floor+sync" | "wal-d";
const SIDES: Side[] = ["floor", "floor+sync", "wal-d"];

/** One timed restore. */
interface Round {
  /** 0 for the warm-up round (not counted), then 1, 2, ... */
  run: number;
  side: Side;
  seconds: number;
  mbPerSecond: number;
  /** wal-d only. */
  peakMiB?: number;
}

/** Extracts `volumes` in order into `dir` with `lzop -dc | tar -xf -`, then `sync` if asked. */
function floorArgs(dir: string, volumes: string[], sync: boolean): string[] {
  const script = `set -o pipefail; dir="$1"; shift
for v in "$@"; do ${LZOP} -dc "$v" | tar -xf - -C "$dir" || exit 1; done${sync ? "\nsync" : ""}`;
  return ["-c", script, "floor", dir, ...volumes];
}

async function runQuiet(command: string, args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(command, { args, stdout: "null" }).output();
  if (code !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} failed (${code}): ${new TextDecoder().decode(stderr)}`,
    );
  }
}

/** Every path below `dir` with its type, mode, size (regular files) and symlink target. */
async function listing(dir: string): Promise<string[]> {
  const out = await commandOutput("find", [
    dir,
    "-mindepth",
    "1",
    "-printf",
    "%P\t%y\t%m\t%s\t%l\n",
  ]);
  if (out === null) throw new Error(`find ${dir} failed`);
  return out.split("\n").filter((line) => line !== "").map((line) => {
    const [path, type, mode, size, target] = line.split("\t");
    return [path, type, mode, type === "f" ? size : "", target].join("\t");
  }).sort();
}

/** Throws, naming the first differences, unless `dir` holds exactly what `reference` holds. */
async function checkSameTree(reference: string, dir: string): Promise<void> {
  const [want, got] = await Promise.all([listing(reference), listing(dir)]);
  const wanted = new Set(want);
  const gotten = new Set(got);
  const missing = want.filter((line) => !gotten.has(line));
  const extra = got.filter((line) => !wanted.has(line));
  if (missing.length > 0 || extra.length > 0) {
    const show = (lines: string[]) => lines.slice(0, 10).map((l) => `    ${l}`).join("\n");
    throw new Error(
      `the restore differs from GNU tar's (path, type, mode, size, link target):\n` +
        `  only in tar's (${missing.length}):\n${show(missing)}\n` +
        `  only in wal-d's (${extra.length}):\n${show(extra)}`,
    );
  }
  const diff = await new Deno.Command("diff", {
    args: ["-r", "-q", "--no-dereference", reference, dir],
  }).output();
  if (diff.code !== 0) {
    const text = new TextDecoder().decode(diff.stdout) + new TextDecoder().decode(diff.stderr);
    throw new Error(`the restored contents differ from GNU tar's:\n${text.slice(0, 2000)}`);
  }
}

/** The one backup in `store`: its name, volume paths in order and expanded size. */
async function findBackup(
  store: string,
): Promise<{ name: string; volumes: string[]; expandedBytes: number; compressedBytes: number }> {
  const root = join(store, "basebackups_005");
  const sentinels = [...Deno.readDirSync(root)].filter((e) =>
    e.name.endsWith("_backup_stop_sentinel.json")
  );
  if (sentinels.length !== 1) throw new Error(`expected one backup in ${root}`);
  const name = sentinels[0].name.replace(/_backup_stop_sentinel\.json$/, "");
  const sentinel = JSON.parse(await Deno.readTextFile(join(root, sentinels[0].name)));
  const folder = join(root, name, "tar_partitions");
  const volumes = [...Deno.readDirSync(folder)].map((e) => e.name).sort().map((v) =>
    join(folder, v)
  );
  let compressedBytes = 0;
  for (const volume of volumes) compressedBytes += (await Deno.stat(volume)).size;
  return { name, volumes, expandedBytes: Number(sentinel.expanded_size_bytes), compressedBytes };
}

async function main(): Promise<void> {
  let poolSize: string | null = null;
  const options = parsePgBenchArgs(Deno.args, USAGE, (flag, value) => {
    if (flag !== "--pool-size") return false;
    poolSize = value();
    return true;
  });
  const { runs, jsonPath } = options;
  await withFilledCluster(options, "wald-bench-restore-", async (cluster, work, lzopVersion) => {
    const machine = await describeMachine(lzopVersion);
    const loadAtStart = (await Deno.readTextFile("/proc/loadavg")).trim();
    const store = join(work, "store");
    const env = { WALE_FILE_PREFIX: `file://localhost${store}`, WALE_LOG_DESTINATION: "stderr" };
    console.log("backup-push into a file:// store ...");
    await timed(WAL_D_LAUNCHER, ["backup-push", "--fast-checkpoint", cluster.dataDir], {
      ...cluster.pgEnv,
      ...env,
    });
    await cluster.stop();
    const backup = await findBackup(store);
    const reference = join(work, "reference");
    await Deno.mkdir(reference);
    await timed("bash", floorArgs(reference, backup.volumes, false));
    const bytes = backup.expandedBytes;
    console.log(
      `${backup.name}: ${backup.volumes.length} volume(s), ${
        (backup.compressedBytes / MB).toFixed(0)
      } MB compressed, ${(bytes / MB).toFixed(0)} MB expanded (du -sb of the restore: ${
        (await duBytes(reference) / MB).toFixed(0)
      } MB)`,
    );
    const out = join(work, "out");
    const rounds: Round[] = [];
    // Round 0 warms up (the first restore of a run was the slowest in every trial run, on either
    // side); it is shown but not counted.
    for (let run = 0; run <= runs; run++) {
      const first = run % SIDES.length;
      const order = [...SIDES.slice(first), ...SIDES.slice(0, first)];
      for (const side of order) {
        await Deno.remove(out, { recursive: true }).catch(() => {});
        await runQuiet("sync", []);
        await Deno.mkdir(out);
        await runQuiet("cat", backup.volumes); // into the page cache, for every side alike
        if (side === "wal-d") {
          const { seconds, peakMiB } = await timed(WAL_D_LAUNCHER, [
            "backup-fetch",
            ...(poolSize === null ? [] : ["--pool-size", poolSize]),
            out,
            "LATEST",
          ], env);
          rounds.push({ run, side, seconds, mbPerSecond: bytes / MB / seconds, peakMiB });
          await checkSameTree(reference, out);
        } else {
          const { seconds } = await timed("bash", floorArgs(out, backup.volumes, side !== "floor"));
          rounds.push({ run, side, seconds, mbPerSecond: bytes / MB / seconds });
        }
      }
    }
    const counted = rounds.filter((r) => r.run > 0);
    const rates = (side: Side) => counted.filter((r) => r.side === side).map((r) => r.mbPerSecond);
    const floor = median(rates("floor"));
    const floorSync = median(rates("floor+sync"));
    const ours = median(rates("wal-d"));
    const peakMiB = Math.max(...rounds.map((r) => r.peakMiB ?? 0));
    const ratio = ours / floor;
    const loadAtEnd = (await Deno.readTextFile("/proc/loadavg")).trim();
    console.log(
      `\nmachine: ${machine.nproc} cores, ${machine.cpuModel}, ${machine.os}, Deno ${machine.deno}` +
        `, ${machine.lzop}; /proc/loadavg at the start ${loadAtStart}, at the end ${loadAtEnd}`,
    );
    console.log(`\nper round (MB/s, in the order run):`);
    console.log(formatTable(
      ["round", "side", ">seconds", ">MB/s", ">peak RSS MiB"],
      rounds.map((r) => [
        r.run === 0 ? "warm-up" : String(r.run),
        r.side,
        r.seconds.toFixed(2),
        r.mbPerSecond.toFixed(0),
        r.peakMiB === undefined ? "" : r.peakMiB.toFixed(0),
      ]),
    ));
    console.log(
      `\nrestore of ${(bytes / MB).toFixed(0)} MB (expanded), median of ${runs}; ` +
        `every wal-d restore matched GNU tar's:`,
    );
    console.log(formatTable(["", ">MB/s", ">wal-d / this", "target"], [
      [
        "floor (lzop -dc | tar -x)",
        floor.toFixed(0),
        ratio.toFixed(2) + "x",
        `≥ ${SPEED_TARGET}x`,
      ],
      ["floor, then sync", floorSync.toFixed(0), (ours / floorSync).toFixed(2) + "x", ""],
      ["wal-d backup-fetch (fsyncs)", ours.toFixed(0), "", ""],
    ]));
    console.log(
      `wal-d: ${ratio.toFixed(2)}x the floor (target ${SPEED_TARGET}x), peak RSS ${
        peakMiB.toFixed(0)
      } MiB (target ${RSS_TARGET_MIB})`,
    );
    if (jsonPath !== null) {
      await Deno.writeTextFile(
        jsonPath,
        JSON.stringify(
          {
            machine,
            loadAtStart,
            loadAtEnd,
            backup: { ...backup, volumes: backup.volumes.length },
            bytes,
            floor,
            floorSync,
            ours,
            ratio,
            ratioFloorSync: ours / floorSync,
            peakMiB,
            rounds,
          },
          null,
          2,
        ),
      );
    }
  });
}

await main();
