/**
 * backup-fetch restores the genuine WAL-E 1.1.1 archives (test/fixtures/wal-e-1.1.1: `plain`, PAX
 * tar headers; `gnutar`, GNU tar headers) to every recovery state the fixture documents, through
 * the CLI, and PostgreSQL 15 recovers from them through the restore_command backup-fetch wrote
 * (wal-d wal-fetch, reading WAL-E's wal_005 objects, timelines 1 and 2):
 *
 * | state           | backup-fetch flags                                     | expected.json setting                 |
 * | --------------- | ------------------------------------------------------ | ------------------------------------- |
 * | `at_backup`     | `--target-immediate --target-action promote`           | `recovery_target = 'immediate'`       |
 * | `branch_point`  | `--target-name fixture_branch --target-action promote` | `recovery_target_name`                |
 * | `timeline1_end` | `--target-timeline 1`                                  | `recovery_target_timeline = '1'`      |
 * | `final`         | `--target-timeline latest` (plain: `--recover`)        | `recovery_target_timeline = 'latest'` |
 *
 * Without a target, recovery runs to the end of the archive and the server promotes itself, so
 * the last two need no `--target-action` (and backup-fetch refuses one without a target).
 *
 * Every fixture query's result, formatted as `psql -X -A -t -F '|'` prints it, must equal the one
 * WAL-E's own restore gave. The fixture's tablespace (`spec` in the sentinel) is restored through
 * a restore-spec file (backup-fetch makes the pg_tblspc/<oid> link to a fresh directory), except
 * in plain/final, where the link is made beforehand and backup-fetch runs without a spec (WAL-E's
 * other documented way).
 *
 * backup-fetch runs as the test process (root on CI, through `walD`), except gnutar/final, which
 * runs it as the PostgreSQL user through scripts/wal-d, as a database host would. The server gets
 * no WALE_* variable: the restore_command backup-fetch wrote must carry the configuration.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { parseSettingLine, parseSettings } from "../../src/backup/recovery.ts";
import {
  chownToPgUser,
  type Cluster,
  ignoreUnlessPg,
  makePgUserTempDir,
  runAsPgUser,
  WAL_D_LAUNCHER,
  withCluster,
} from "../_pg/cluster.ts";
import { type CliResult, walD } from "../wal/_cli.ts";
import {
  assertFixtureState,
  fixtureReadableByPgUser,
  formatAsPsql,
  queryAsPsql,
  startRestored,
  WALE_EXPECTED,
  WALE_STATES,
  WALE_VARIANTS,
  walePrefix,
  type WaleState,
  waleTablespaceOid,
  type WaleVariant,
  writeServerFiles,
} from "./_wale_fixture.ts";

/** The backup-fetch flags that reach each state. */
function targetFlags(variant: WaleVariant, state: WaleState): string[] {
  switch (state) {
    case "at_backup":
      return ["--target-immediate", "--target-action", "promote"];
    case "branch_point":
      return ["--target-name", WALE_EXPECTED.restore_point, "--target-action", "promote"];
    case "timeline1_end":
      return ["--target-timeline", "1"];
    case "final":
      return variant === "plain" ? ["--recover"] : ["--target-timeline", "latest"];
  }
}

/** gnutar/final: backup-fetch run as the PostgreSQL user (scripts/wal-d), not as the test. */
function fetchAsPgUser(variant: WaleVariant, state: WaleState): boolean {
  return variant === "gnutar" && state === "final";
}

/** plain/final: tablespace link made beforehand, no restore spec. */
function linkBeforehand(variant: WaleVariant, state: WaleState): boolean {
  return variant === "plain" && state === "final";
}

/**
 * The settings of a postgresql.conf-style file, names in lower case (the last occurrence of a name
 * wins); every line that is not blank or a comment must be a setting.
 */
function parseConf(text: string): Map<string, string> {
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.trim().startsWith("#")) continue;
    assert.ok(parseSettingLine(line), `unparsable configuration line: ${line}`);
  }
  return new Map(parseSettings(text).map(([name, value]) => [name.toLowerCase(), value]));
}

/** What backup-fetch must have written for `state` into postgresql.auto.conf. */
function expectedRecoverySettings(state: WaleState): Record<string, string> {
  const settings: Record<string, string> = { ...WALE_EXPECTED.restore_settings[state] };
  if (state === "at_backup" || state === "branch_point") {
    settings.recovery_target_action = "promote";
  }
  return settings;
}

const TARGET_SETTINGS = [
  "recovery_target",
  "recovery_target_name",
  "recovery_target_time",
  "recovery_target_xid",
  "recovery_target_lsn",
  "recovery_target_timeline",
  "recovery_target_action",
];

/**
 * The recovery target settings in `conf`; in `final`, recovery_target_timeline 'latest' is
 * PostgreSQL's default, so `--recover` may leave it out.
 */
function recoveryTargets(conf: Map<string, string>, state: WaleState): Record<string, string> {
  const targets = Object.fromEntries(
    [...conf].filter(([name]) => TARGET_SETTINGS.includes(name)),
  );
  if (state === "final") {
    targets.recovery_target_timeline ??= "latest";
  }
  return targets;
}

/**
 * Paths under `root` (itself included, symlinks not followed) whose owner is not `uid`:`gid`.
 * backup-fetch run as root gives what it restores the data directory's owner.
 */
async function ownedOtherwise(root: string, uid: number, gid: number): Promise<string[]> {
  const wrong: string[] = [];
  const visit = async (path: string) => {
    const info = await Deno.lstat(path);
    if (info.uid !== uid || info.gid !== gid) wrong.push(`${path} (${info.uid}:${info.gid})`);
    if (!info.isDirectory) return;
    for await (const entry of Deno.readDir(path)) await visit(join(path, entry.name));
  };
  await visit(root);
  return wrong;
}

/** Removes a restore's directory; detached wal-fetch prefetches may still be finishing in it. */
async function removeSoon(dir: string): Promise<void> {
  for (let attempt = 0;; attempt++) {
    try {
      await Deno.remove(dir, { recursive: true });
      return;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      if (attempt >= 20) throw e;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

const pgIgnored = await ignoreUnlessPg([15], "backup-fetch of the WAL-E 1.1.1 fixtures");
const unreadable = pgIgnored ? undefined : await fixtureReadableByPgUser("plain");
if (unreadable) console.warn(`SKIP backup-fetch of the WAL-E 1.1.1 fixtures: ${unreadable}`);
// backup-fetch run by this process writes a restore_command naming this process's deno.
const denoUnusable = pgIgnored || unreadable
  ? undefined
  : (await runAsPgUser(["test", "-x", Deno.execPath()])).code === 0
  ? undefined
  : `the PostgreSQL user cannot run ${Deno.execPath()}, which the restore_command of a ` +
    "backup-fetch run by this process names";
if (denoUnusable) console.warn(`SKIP backup-fetch of the WAL-E 1.1.1 fixtures: ${denoUnusable}`);

Deno.test({
  name: "fixture query results formatted as psql -X -A -t -F '|' prints them (PostgreSQL 15)",
  ignore: pgIgnored,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    assert.equal(formatAsPsql([]), "");
    await withCluster({ major: 15 }, async (pg) => {
      // Booleans as t/f, NULL as nothing, numerics with their scale, bigint sums, dates in ISO,
      // separators inside values left alone, one line per row.
      assert.equal(
        await queryAsPsql(
          pg,
          "SELECT true, false, NULL::int, 1.50::numeric(6,2), sum(x), '2024-02-29'::date, 'a|b' " +
            "FROM (VALUES (1::bigint), (2)) v(x)",
        ),
        "t|f||1.50|3|2024-02-29|a|b",
      );
      assert.equal(
        await queryAsPsql(pg, "SELECT i, NULL FROM generate_series(1, 3) i"),
        "1|\n2|\n3|",
      );
      assert.equal(await queryAsPsql(pg, "SELECT 1 WHERE false"), "");
    });
  },
});

for (const variant of WALE_VARIANTS) {
  for (const state of WALE_STATES) {
    const how = linkBeforehand(variant, state)
      ? "tablespace link made beforehand"
      : "tablespace from --restore-spec";
    Deno.test({
      name: `backup-fetch restores WAL-E 1.1.1 ${variant} to ${state} (${how}, PostgreSQL 15)`,
      ignore: pgIgnored || unreadable !== undefined ||
        (denoUnusable !== undefined && !fetchAsPgUser(variant, state)),
      sanitizeResources: false,
      sanitizeOps: false,
      async fn() {
        const what = `${variant}/${state}`;
        const expected = WALE_EXPECTED.variants[variant];
        const oid = waleTablespaceOid(variant);
        const prefix = walePrefix(variant);
        const env = { WALE_FILE_PREFIX: prefix };
        const holder = await makePgUserTempDir("wald-wale-fetch-");
        const pgdata = join(holder, "data");
        const tablespace = join(holder, `tablespace-${oid}`);
        let restored: Cluster | undefined;
        try {
          await Deno.mkdir(pgdata, { mode: 0o700 });
          const args = ["backup-fetch", pgdata, "LATEST", ...targetFlags(variant, state)];
          if (linkBeforehand(variant, state)) {
            await Deno.mkdir(tablespace, { mode: 0o700 });
            await Deno.mkdir(join(pgdata, "pg_tblspc"), { mode: 0o700 });
            await Deno.symlink(tablespace, join(pgdata, "pg_tblspc", oid));
          } else {
            // WAL-E's spec form; gnutar keeps the sentinel's trailing slashes, plain has none.
            const slash = variant === "gnutar" ? "/" : "";
            const spec = {
              base_prefix: `${pgdata}${slash}`,
              tablespaces: [oid],
              [oid]: { loc: `${tablespace}${slash}`, link: `pg_tblspc/${oid}` },
            };
            const specFile = join(holder, "restore-spec.json");
            await Deno.writeTextFile(specFile, JSON.stringify(spec));
            args.push("--restore-spec", specFile);
          }
          await chownToPgUser(holder, true);

          let fetched: CliResult;
          if (fetchAsPgUser(variant, state)) {
            fetched = await runAsPgUser([WAL_D_LAUNCHER, ...args], {
              env: { ...env, WALE_LOG_DESTINATION: "stderr" },
            });
          } else {
            fetched = await walD(args, { env });
          }
          assert.equal(fetched.code, 0, `${what}: wal-d ${args.join(" ")}\n${fetched.stderr}`);
          assert.doesNotMatch(fetched.stderr, / ERROR +MSG:/, what);

          // The tablespace: pg_tblspc/<oid> links to the fresh directory, which holds its files.
          const link = join(pgdata, "pg_tblspc", oid);
          assert.ok((await Deno.lstat(link)).isSymlink, `${what}: ${link} is a symlink`);
          assert.equal(await Deno.realPath(link), await Deno.realPath(tablespace), what);
          assert.ok(
            (await Deno.stat(join(tablespace, "PG_15_202209061"))).isDirectory,
            `${what}: the tablespace's files are in ${tablespace}`,
          );
          // The backup's own files, as WAL-E archived them.
          assert.equal(
            await Deno.readTextFile(join(pgdata, "backup_label")),
            expected.backup_label,
            `${what}: backup_label`,
          );
          assert.equal((await Deno.readTextFile(join(pgdata, "PG_VERSION"))).trim(), "15");
          // Recovery: recovery.signal and exactly the state's settings in postgresql.auto.conf.
          assert.ok((await Deno.stat(join(pgdata, "recovery.signal"))).isFile, what);
          await assert.rejects(Deno.stat(join(pgdata, "standby.signal")), Deno.errors.NotFound);
          const auto = parseConf(await Deno.readTextFile(join(pgdata, "postgresql.auto.conf")));
          const restoreCommand = auto.get("restore_command") ?? "";
          assert.match(restoreCommand, /wal-fetch/, `${what}: restore_command`);
          assert.match(restoreCommand, /%f/, `${what}: restore_command`);
          assert.match(restoreCommand, /%p/, `${what}: restore_command`);
          assert.ok(restoreCommand.includes(prefix), `${what}: ${restoreCommand} names ${prefix}`);
          assert.deepEqual(recoveryTargets(auto, state), expectedRecoverySettings(state), what);

          // Everything restored, the tablespace and the recovery files belong to PGDATA's owner.
          const { uid, gid } = await Deno.stat(pgdata);
          const notOwned = [
            ...await ownedOtherwise(pgdata, uid!, gid!),
            ...await ownedOtherwise(tablespace, uid!, gid!),
          ];
          assert.deepEqual(notOwned.slice(0, 5), [], `${what}: owners`);

          // PostgreSQL 15 on the restored directory, with the files WAL-E did not back up.
          await writeServerFiles(pgdata);
          await chownToPgUser(holder, true);
          restored = await startRestored(pgdata, {});
          await assertFixtureState(restored, state, what);
          // The new timeline follows the newest one in the archive (00000002.history, which
          // restore_command fetched from WAL-E's wal_005/).
          const [{ tl }] = await restored.sql<{ tl: string }>(
            "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) AS tl",
          );
          assert.equal(tl, "00000003", `${what}: promoted to timeline 3`);
        } finally {
          await restored?.close();
          await removeSoon(holder);
        }
      },
    });
  }
}
