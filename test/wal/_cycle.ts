/**
 * The archive-and-restore cycle the WAL tests run against every backend: a real PostgreSQL with
 * archive_command = wal-d wal-push, a cold copy taken early, a write load with segment switches,
 * then the copy restored from an empty pg_wal through restore_command = wal-d wal-fetch (prefetch
 * on), and its rows compared with the primary's.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  cloneCluster,
  type Cluster,
  type PgMajor,
  recover,
  switchWal,
  waitForArchived,
  WAL_D_LAUNCHER,
  withCluster,
} from "../_pg/cluster.ts";

/** Settings of a cluster that archives through wal-d. */
export const ARCHIVE_SETTINGS = {
  wal_level: "replica",
  archive_mode: "on",
  archive_command: `${WAL_D_LAUNCHER} wal-push %p`,
};

/** Rows whose exact contents a restore must reproduce. */
export async function snapshot(pg: Cluster): Promise<string> {
  const [row] = await pg.sql<{ n: string; s: string; h: string }>(
    "SELECT count(*) AS n, sum(id) AS s, md5(string_agg(id || ':' || payload, ',' ORDER BY id)) AS h FROM t",
  );
  return `${row.n}|${row.s}|${row.h}`;
}

/** Options of {@linkcode archiveAndRecover}. */
export interface CycleOptions {
  major: PgMajor;
  segmentMiB: number;
  /** The wal-d environment (prefix, credentials) of both servers' archive/restore commands. */
  env: Record<string, string>;
  /** Write batches, each followed by a segment switch. */
  batches: number;
  /** Checks the archive holds `segments` (the primary is stopped), before the restore. */
  checkArchive(segments: string[]): Promise<void>;
}

/** What the restore left, for backend-specific assertions. */
export interface CycleResult {
  /** The restored server's log (its restore_command output). */
  log: string;
  /** Names left in the restored pg_wal. */
  walDirNames: string[];
}

/** Runs the cycle; asserts the restored rows equal the primary's and nothing failed. */
export async function archiveAndRecover(options: CycleOptions): Promise<CycleResult> {
  const { major, segmentMiB, env } = options;
  return await withCluster({
    major,
    initdbArgs: [`--wal-segsize=${segmentMiB}`],
    settings: ARCHIVE_SETTINGS,
    env,
  }, async (pg) => {
    await pg.exec(`
      CREATE TABLE t (id int PRIMARY KEY, payload text NOT NULL);
      INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 2000) i;
    `);
    await pg.stop();
    const copy = await cloneCluster(pg, { settings: { archive_mode: "off" }, env });
    try {
      await pg.start();
      // Load: batches of writes, updates and deletes, each followed by a segment switch.
      const archived: string[] = [];
      for (let batch = 0; batch < options.batches; batch++) {
        await pg.exec(`
          INSERT INTO t SELECT i, repeat(md5(i::text), 8)
            FROM generate_series(${3000 + batch * 3000}, ${5000 + batch * 3000}) i;
          UPDATE t SET payload = payload || '-u${batch}' WHERE id % 7 = ${batch};
          DELETE FROM t WHERE id % 11 = ${batch};
        `);
        const segment = await switchWal(pg);
        await waitForArchived(pg, segment);
        archived.push(segment);
      }
      const expected = await snapshot(pg);
      const [stats] = await pg.sql<{ failed: string }>(
        "SELECT failed_count AS failed FROM pg_stat_archiver",
      );
      assert.equal(Number(stats.failed), 0, await pg.logTail());
      await pg.stop();
      await options.checkArchive(archived);

      // Everything the copy needs must come from the archive.
      const walDir = join(copy.dataDir, "pg_wal");
      for (const entry of Deno.readDirSync(walDir)) {
        if (entry.isFile) await Deno.remove(join(walDir, entry.name));
      }
      await recover(copy, {
        restoreCommand: `${WAL_D_LAUNCHER} wal-fetch %f %p`,
        timeoutMs: 120_000,
      });
      assert.equal(await snapshot(copy), expected);
      const log = await Deno.readTextFile(copy.logFile);
      assert.match(log, /action=wal-fetch .*state=complete/);
      assert.doesNotMatch(log, / ERROR +MSG:/);
      return { log, walDirNames: [...Deno.readDirSync(walDir)].map((e) => e.name) };
    } finally {
      await copy.close();
    }
  });
}
