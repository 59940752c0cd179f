/**
 * Base backup benchmark: `wal-d backup-push` of a ~800 MB PostgreSQL cluster to a file:// store,
 * against the floor `tar -cf - PGDATA | lzop -1 > FILE`, in the same run.
 *
 *   deno task bench:backup [--size-mb N] [--runs N] [--major 13..18] [--json PATH]
 *
 * 1. A cluster from npm (the test harness) is filled with N MB (default 800) of table data like a
 *    pgbench database's (integers, md5 text, some repetition), then checkpointed; it stays
 *    running, since backup-push works on a live server.
 * 2. Each round (the task runs with --allow-all: Deno reads /proc/<pid> only with it), on the
 *    same disk, in alternating order: the floor (GNU tar piped into `lzop -1`, two processes, so
 *    two cores) and `scripts/wal-d backup-push PGDATA` into a fresh store, with its peak RSS
 *    (VmHWM of /proc/<pid>/status, polled every 20 ms; compression workers are threads of the
 *    same process, so they are included).
 * 3. MB/s = bytes of the data directory outside pg_wal (as `du` counts them; neither side archives
 *    pg_wal's contents) / wall seconds, for both. Target: wal-d ≥ 0.9× the floor's MB/s, peak
 *    RSS ≤ 128 MiB.
 *
 * @module
 */

import { LZOP } from "./native.ts";
import { duBytes, parsePgBenchArgs, timed, withFilledCluster } from "./pg_data.ts";
import { MB, median } from "./report.ts";
import { WAL_D_LAUNCHER } from "../../test/_pg/cluster.ts";

const USAGE = "usage: deno task bench:backup [--size-mb N] [--runs N] [--major 13..18] " +
  "[--json PATH]";
/** Target: wal-d's MB/s over the floor's. */
export const SPEED_TARGET = 0.9;
/** Target: peak RSS of backup-push, MiB. */
export const RSS_TARGET_MIB = 128;

async function main(): Promise<void> {
  const options = parsePgBenchArgs(Deno.args, USAGE);
  const { runs, jsonPath } = options;
  await withFilledCluster(
    options,
    "wald-bench-backup-",
    async (cluster, work) => {
      // Both sides skip pg_wal's contents, so they are not counted.
      const dataBytes = await duBytes(cluster.dataDir) - await duBytes(`${cluster.dataDir}/pg_wal`);
      console.log(`data directory without pg_wal: ${(dataBytes / MB).toFixed(0)} MB`);
      const floor: number[] = [];
      const ours: number[] = [];
      const rss: number[] = [];
      for (let run = 0; run < runs; run++) {
        const order = run % 2 === 0 ? ["floor", "wal-d"] : ["wal-d", "floor"];
        for (const which of order) {
          await Deno.remove(`${work}/out`, { recursive: true }).catch(() => {});
          await Deno.mkdir(`${work}/out`);
          if (which === "floor") {
            const { seconds } = await timed("bash", [
              "-c",
              // pg_wal's contents are left out by both (wal-d archives WAL on its own).
              `set -o pipefail; tar -cf - --exclude='./pg_wal/?*' -C "$1" . | ${LZOP} -1 > "$2"`,
              "floor",
              cluster.dataDir,
              `${work}/out/floor.tar.lzo`,
            ]);
            floor.push(dataBytes / MB / seconds);
          } else {
            const { seconds, peakMiB } = await timed(WAL_D_LAUNCHER, [
              "backup-push",
              cluster.dataDir,
            ], {
              ...cluster.pgEnv,
              WALE_FILE_PREFIX: `file://localhost${work}/out/store`,
              WALE_LOG_DESTINATION: "stderr",
            });
            ours.push(dataBytes / MB / seconds);
            rss.push(peakMiB);
          }
        }
      }
      const ratio = median(ours) / median(floor);
      console.log(`backup of ${(dataBytes / MB).toFixed(0)} MB, median of ${runs}:`);
      console.log(`  floor (tar | lzop -1)   ${median(floor).toFixed(0).padStart(5)} MB/s`);
      console.log(
        `  wal-d backup-push       ${median(ours).toFixed(0).padStart(5)} MB/s  ` +
          `${ratio.toFixed(2)}x (target ${SPEED_TARGET}x), peak RSS ${
            Math.max(...rss).toFixed(0)
          } MiB (target ${RSS_TARGET_MIB})`,
      );
      if (jsonPath !== null) {
        await Deno.writeTextFile(
          jsonPath,
          JSON.stringify({ dataBytes, floor, ours, rss, ratio }, null, 2),
        );
      }
    },
  );
}

await main();
