/** A write load for backup tests: runs against a cluster while a base backup is taken. */

import type { Cluster } from "../_pg/cluster.ts";

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
