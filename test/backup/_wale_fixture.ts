/**
 * The genuine WAL-E 1.1.1 archives in test/fixtures/wal-e-1.1.1/ (plain: PAX tar, gnutar: GNU
 * tar), what a correct restore of each recovery state must show (expected.json), and the pieces a
 * restore test needs around the restore itself: the server files WAL-E never backed up, starting
 * PostgreSQL 15 on the restored directory, and the fixture queries with their results formatted
 * as `psql -X -A -t -F '|'` prints them.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { adoptDataDir, type Cluster, runAsPgUser, waitForRecoveryEnd } from "../_pg/cluster.ts";

/** test/fixtures/wal-e-1.1.1/ (absolute path, with a trailing slash). */
export const WALE_FIXTURES: string = new URL("../fixtures/wal-e-1.1.1/", import.meta.url).pathname;

export const WALE_VARIANTS = ["plain", "gnutar"] as const;
export type WaleVariant = typeof WALE_VARIANTS[number];

export const WALE_STATES = ["at_backup", "branch_point", "timeline1_end", "final"] as const;
export type WaleState = typeof WALE_STATES[number];

/** The trimmed expected.json (see test/fixtures/wal-e-1.1.1/README.md). */
export interface WaleExpected {
  database: string;
  restore_point: string;
  queries: { name: string; sql: string; final_only?: boolean }[];
  states: Record<WaleState, string>;
  restore_settings: Record<WaleState, Record<string, string>>;
  results: Record<WaleState, Record<string, string>>;
  phase_rules: { final: { includes: string[]; excludes: string[] } };
  variants: Record<WaleVariant, {
    backup_name: string;
    spec: {
      base_prefix: string;
      tablespaces: string[];
      [oid: string]: string | string[] | { loc: string; link: string };
    };
    backup_label: string;
  }>;
}

export const WALE_EXPECTED: WaleExpected = JSON.parse(
  await Deno.readTextFile(join(WALE_FIXTURES, "expected.json")),
);

/** The variant's directory, a WAL-E prefix. */
export function waleVariantDir(variant: WaleVariant): string {
  return join(WALE_FIXTURES, variant);
}

/** `WALE_FILE_PREFIX` of the variant, WAL-E's `file://localhost<absolute path>` form. */
export function walePrefix(variant: WaleVariant): string {
  return `file://localhost${waleVariantDir(variant)}`;
}

/** The one tablespace of the fixture cluster (`fixture_ts`), from the sentinel's spec. */
export function waleTablespaceOid(variant: WaleVariant): string {
  const { tablespaces } = WALE_EXPECTED.variants[variant].spec;
  assert.equal(tablespaces.length, 1);
  return tablespaces[0];
}

/** The server's user must read the fixture archive (restore_command runs as that user). */
export async function fixtureReadableByPgUser(variant: WaleVariant): Promise<string | undefined> {
  const volume = join(
    waleVariantDir(variant),
    "basebackups_005",
    WALE_EXPECTED.variants[variant].backup_name,
    "tar_partitions",
    "part_00000000.tar.lzo",
  );
  const r = await runAsPgUser(["test", "-r", volume]);
  return r.code === 0 ? undefined : `${volume} is not readable by the PostgreSQL user`;
}

// ---------------------------------------------------------------------------------------------
// The restored server

/**
 * Writes what WAL-E left out of the backup (postgresql.conf, pg_hba.conf, pg_ident.conf). The
 * postgresql.conf is empty: the harness appends its `include_if_exists = 'wald-harness.conf'`
 * (socket, port, the test's settings), and postgresql.auto.conf, read after it, keeps whatever
 * the restore wrote there.
 */
export async function writeServerFiles(pgdata: string): Promise<void> {
  await Deno.writeTextFile(
    join(pgdata, "postgresql.conf"),
    "# Written by the WAL-E fixture restore test: WAL-E does not back up postgresql.conf.\n",
    { mode: 0o600 },
  );
  await Deno.writeTextFile(
    join(pgdata, "pg_hba.conf"),
    "local all all trust\n",
    { mode: 0o600 },
  );
  await Deno.writeTextFile(join(pgdata, "pg_ident.conf"), "", { mode: 0o600 });
}

/**
 * Settings for the restored server: no archiving, and no hot standby. With hot standby, recovery
 * checks the harness's max_connections (30) against the fixture primary's, and PostgreSQL 15 stops
 * with "recovery aborted because of insufficient parameter settings".
 */
export const RESTORE_SETTINGS = { archive_mode: "off", hot_standby: false } as const;

/**
 * Adopts a restored (and configured) PGDATA as a PostgreSQL 15 cluster, starts it and waits for
 * the end of recovery; the caller closes it.
 */
export async function startRestored(
  pgdata: string,
  env: Record<string, string>,
): Promise<Cluster> {
  const cluster = await adoptDataDir(15, pgdata, { settings: RESTORE_SETTINGS, env });
  try {
    await cluster.start();
    await waitForRecoveryEnd(cluster, 120_000);
    return cluster;
  } catch (e) {
    await cluster.close();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Queries

/**
 * Rows as `psql -X -A -t -F '|'` prints them, minus the final newline: each value in PostgreSQL's
 * text output form (the bytes the server sent, which is what psql prints too: `t`/`f`, numerics
 * with their scale, dates per DateStyle), NULL as the empty string, fields joined by `|`, rows by
 * newlines, no header or footer.
 */
export function formatAsPsql(rows: readonly (readonly (Uint8Array | null)[])[]): string {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  return rows.map((row) => row.map((v) => v === null ? "" : decoder.decode(v)).join("|")).join(
    "\n",
  );
}

/** Runs `sql` and returns its result formatted as psql would print it (see formatAsPsql). */
export async function queryAsPsql(cluster: Cluster, sql: string): Promise<string> {
  // postgres.js asks for results in text format; .raw() hands over each value's bytes as the
  // server sent them (null for NULL), with no parsing into JavaScript values.
  const rows = await cluster.client().unsafe(sql).raw();
  return formatAsPsql(rows as unknown as (Uint8Array | null)[][]);
}

/**
 * Runs every fixture query that has an expected result in `state` (after_backup_table has none
 * in at_backup: the table did not exist yet) and compares each exactly; then the phase rules.
 */
export async function assertFixtureState(
  cluster: Cluster,
  state: WaleState,
  what: string,
): Promise<void> {
  const expected = WALE_EXPECTED.results[state];
  const actual: Record<string, string> = {};
  for (const query of WALE_EXPECTED.queries) {
    if (!(query.name in expected)) continue;
    actual[query.name] = await queryAsPsql(cluster, query.sql);
  }
  const skipped = WALE_EXPECTED.queries.filter((q) => !(q.name in expected)).map((q) => q.name);
  assert.deepEqual(skipped, state === "at_backup" ? ["after_backup_table"] : [], what);
  assert.deepEqual(actual, expected, `${what}: every query result`);
  const phases = actual.phases.split(",");
  if (state === "final") {
    for (const phase of WALE_EXPECTED.phase_rules.final.includes) {
      assert.ok(phases.includes(phase), `${what}: phase ${phase} replayed (timeline 2)`);
    }
    for (const phase of WALE_EXPECTED.phase_rules.final.excludes) {
      assert.ok(!phases.includes(phase), `${what}: phase ${phase} (timeline 1 only) absent`);
    }
  } else {
    assert.ok(!phases.some((p) => p.startsWith("timeline-2")), `${what}: no timeline-2 phase`);
  }
}
