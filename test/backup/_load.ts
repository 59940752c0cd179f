/**
 * Shared by the backup tests against real PostgreSQL (backup_push_pg_test.ts,
 * backup_fetch_pg_test.ts): the majors they run on, and the tables and the write load that run
 * against a cluster while a base backup is taken.
 */

import type { Cluster, PgMajor } from "../_pg/cluster.ts";

/** 13, 15, 17 and 18 (a test of a major that is not installed is ignored by ignoreUnlessPg). */
export const BACKUP_MAJORS: readonly PgMajor[] = [13, 15, 17, 18];

/**
 * The tables startLoad writes to: `t` with 20,000 rows, and an empty `in_ts` in a new tablespace
 * `ts` at `location`.
 */
export async function createLoadTables(pg: Cluster, location: string): Promise<void> {
  await pg.exec(`
    CREATE TABLE t (id int PRIMARY KEY, payload text NOT NULL);
    INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 20000) i;
  `);
  await pg.exec(`CREATE TABLESPACE ts LOCATION '${location}'`);
  await pg.exec("CREATE TABLE in_ts (v int) TABLESPACE ts");
}

/**
 * Write load until `stop()`: inserts and updates on `t (id int PRIMARY KEY, payload text)` and
 * inserts into `in_ts (v int)`, in small transactions; `stop()` returns how many committed.
 */
export function startLoad(pg: Cluster): { stop(): Promise<number> } {
  let running = true;
  let batches = 0;
  const loop = (async () => {
    while (running) {
      await pg.exec(`
        INSERT INTO t SELECT i, md5(i::text) FROM generate_series(
          ${100_000 + batches * 500}, ${100_000 + batches * 500 + 499}) i;
        UPDATE t SET payload = payload || 'x' WHERE id % 97 = ${batches % 97};
        INSERT INTO in_ts SELECT i FROM generate_series(1, 50) i;
      `);
      batches++;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return batches;
    },
  };
}
