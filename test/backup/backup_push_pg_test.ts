/**
 * backup-push against real PostgreSQL 13, 15, 17 and 18: a backup under write load with a
 * tablespace and an unlogged table, its layout and sentinel, volumes read by a generic tar reader,
 * and the backup restored (GNU tar, then recovery through wal-fetch) to the primary's exact rows.
 * On 17 also: a standby's backup, a backup killed midway, and bad inputs.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { extract } from "tar-stream";
import { decompressLzop } from "../../src/codec/lzop.ts";
import { parseSentinel } from "../../src/backup/sentinel.ts";
import {
  adoptDataDir,
  chownToPgUser,
  cloneStandby,
  type Cluster,
  createCluster,
  ignoreUnlessPg,
  makePgUserTempDir,
  type PgMajor,
  recover,
  switchWal,
  waitFor,
  waitForArchived,
  WAL_D_LAUNCHER,
} from "../_pg/cluster.ts";
import { ARCHIVE_SETTINGS, snapshot } from "../wal/_cycle.ts";
import { walD } from "../wal/_cli.ts";
import { sha256Hex } from "../codec/_data.ts";
import { BACKUP_MAJORS as MAJORS, createLoadTables, startLoad } from "./_load.ts";

Deno.env.set("AWS_EC2_METADATA_DISABLED", "true");

const BACKUP_NAME = /^base_[0-9A-F]{24}_[0-9]{8}$/;

/** Members of one tar volume (names, in order), read with tar-stream from the lzop object. */
async function tarMembers(lzop: Uint8Array): Promise<{ name: string; type: string }[]> {
  const tar = decompressLzop(lzop);
  const members: { name: string; type: string }[] = [];
  const reader = extract();
  const done = new Promise<void>((resolve, reject) => {
    reader.on("entry", (header, stream, next) => {
      members.push({ name: header.name, type: header.type ?? "file" });
      stream.on("end", next);
      stream.resume();
    });
    reader.on("finish", resolve);
    reader.on("error", reject);
  });
  reader.end(tar);
  await done;
  return members;
}

/** A file:// store the PostgreSQL user's archive_command can write to. */
async function storeDir(): Promise<{ dir: string; prefix: string }> {
  const dir = await makePgUserTempDir("wald-backup-store-");
  return { dir, prefix: `file://localhost${dir}` };
}

/** Restores every volume of `name` with GNU tar into a new data dir owned by the PG user. */
async function restoreWithTar(
  storeRoot: string,
  name: string,
  major: PgMajor,
  env: Record<string, string>,
): Promise<Cluster> {
  const holder = await makePgUserTempDir("wald-restore-");
  const dataDir = join(holder, "data");
  await Deno.mkdir(dataDir, { mode: 0o700 });
  const volumes = join(storeRoot, "basebackups_005", name, "tar_partitions");
  for (const entry of [...Deno.readDirSync(volumes)].sort((a, b) => a.name < b.name ? -1 : 1)) {
    const tarPath = join(holder, `${entry.name}.tar`);
    await Deno.writeFile(tarPath, decompressLzop(await Deno.readFile(join(volumes, entry.name))));
    const out = await new Deno.Command("tar", {
      args: ["-xf", tarPath, "-C", dataDir],
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    await Deno.remove(tarPath);
  }
  // Tablespaces were extracted in place (pg_tblspc/<oid>/ as directories): move each to its own
  // location, link it, and point tablespace_map there (not at the primary's location).
  const map: string[] = [];
  for (const entry of [...Deno.readDirSync(join(dataDir, "pg_tblspc"))]) {
    const location = join(holder, `ts-${entry.name}`);
    await Deno.rename(join(dataDir, "pg_tblspc", entry.name), location);
    await Deno.symlink(location, join(dataDir, "pg_tblspc", entry.name));
    map.push(`${entry.name} ${location}\n`);
  }
  await Deno.writeTextFile(join(dataDir, "tablespace_map"), map.join(""));
  await chownToPgUser(holder, true);
  return await adoptDataDir(major, dataDir, {
    settings: { archive_mode: "off" },
    env,
    alsoRemove: [holder],
  });
}

for (const major of MAJORS) {
  Deno.test({
    name: `backup-push on PostgreSQL ${major}: under load, layout, sentinel, restorable`,
    ignore: await ignoreUnlessPg([major]),
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const { dir: storeRoot, prefix } = await storeDir();
      const tablespace = await makePgUserTempDir("wald-ts-");
      const pg = await createCluster({
        major,
        settings: ARCHIVE_SETTINGS,
        env: { WALE_FILE_PREFIX: prefix },
      });
      let restored: Cluster | undefined;
      try {
        await pg.start();
        await createLoadTables(pg, tablespace);
        await pg.exec("CREATE UNLOGGED TABLE scratch AS SELECT i FROM generate_series(1, 1000) i");
        const [{ oid }] = await pg.sql<{ oid: number }>(
          "SELECT oid FROM pg_tablespace WHERE spcname = 'ts'",
        );
        const [{ relfilenode }] = await pg.sql<{ relfilenode: number }>(
          "SELECT relfilenode FROM pg_class WHERE relname = 'scratch'",
        );
        const load = startLoad(pg);
        const env = { ...pg.pgEnv, WALE_FILE_PREFIX: prefix };
        const pushed = await walD(["backup-push", "--fast-checkpoint", pg.dataDir], { env });
        const batches = await load.stop();
        assert.equal(pushed.code, 0, pushed.stderr);
        assert.ok(batches > 0, "the load ran during the backup");
        const name = pushed.stdout.trim();
        assert.match(name, BACKUP_NAME);
        assert.match(pushed.stderr, /finish uploading a base backup volume/);
        assert.doesNotMatch(pushed.stderr, / (ERROR|WARNING) /);

        // More writes after the backup, archived; the restore must reach them.
        await pg.exec("INSERT INTO t SELECT i, 'after' FROM generate_series(900001, 900100) i");
        const last = await switchWal(pg);
        await waitForArchived(pg, last);
        const expected = await snapshot(pg);
        const [{ inTs }] = await pg.sql<{ inTs: string }>('SELECT count(*) AS "inTs" FROM in_ts');

        // Layout: extended_version.txt, volumes, the sentinel beside the backup's directory.
        const base = join(storeRoot, "basebackups_005");
        const version = await Deno.readTextFile(join(base, name, "extended_version.txt"));
        assert.match(version, new RegExp(`^PostgreSQL ${major}\\.`));
        const sentinel = parseSentinel(
          await Deno.readTextFile(join(base, `${name}_backup_stop_sentinel.json`)),
          name,
        );
        assert.equal(sentinel.timeline, 1);
        assert.equal(sentinel.serverVersionNum! >= major * 10000, true);
        assert.ok(sentinel.backupStopLsn! >= sentinel.backupStartLsn!);
        assert.equal(sentinel.spec?.basePrefix, `${pg.dataDir}/`);
        assert.deepEqual(sentinel.spec?.tablespaces.map((t) => t.name), [String(oid)]);
        assert.equal(sentinel.spec?.tablespaces[0].loc, `${tablespace}/`);
        const volumes = sentinel.volumes!;
        assert.ok(volumes.length >= 2, "data volume(s) and the final volume");
        const listed = [...Deno.readDirSync(join(base, name, "tar_partitions"))].map((e) => e.name)
          .sort();
        assert.deepEqual(listed, volumes.map((v) => v.name));
        const allMembers: string[] = [];
        for (const [i, volume] of volumes.entries()) {
          const bytes = await Deno.readFile(join(base, name, "tar_partitions", volume.name));
          assert.equal(volume.name, `part_${String(i).padStart(8, "0")}.tar.lzo`);
          assert.equal(bytes.length, volume.size);
          assert.equal(await sha256Hex(bytes), volume.sha256);
          const members = await tarMembers(bytes);
          assert.equal(members.length, volume.members);
          allMembers.push(...members.map((m) => m.name));
          if (i === volumes.length - 1) {
            // The final volume: the stop call's files, then pg_control, last.
            assert.deepEqual(
              members.map((m) => m.name),
              ["backup_label", "tablespace_map", "global/pg_control"],
            );
          }
        }
        assert.equal(
          sentinel.expandedSizeBytes,
          volumes.reduce((sum, v) => sum + v.expandedSizeBytes, 0),
        );
        for (const required of ["PG_VERSION", "global/1262", "pg_wal/", "postgresql.conf"]) {
          assert.ok(allMembers.includes(required), `${required} is archived`);
        }
        assert.equal(allMembers.filter((m) => m === "global/pg_control").length, 1);
        for (const excluded of ["postmaster.pid", "postmaster.opts"]) {
          assert.ok(!allMembers.includes(excluded), `${excluded} is not archived`);
        }
        assert.ok(!allMembers.some((m) => m.startsWith("pg_wal/0")), "no WAL in the backup");
        assert.ok(
          allMembers.some((m) => m.startsWith(`pg_tblspc/${oid}/PG_${major}_`)),
          "tablespace files are archived under pg_tblspc/<oid>/",
        );
        assert.ok(allMembers.some((m) => m.endsWith(`/${relfilenode}_init`)), "init fork kept");
        assert.ok(!allMembers.some((m) => m.endsWith(`/${relfilenode}`)), "unlogged data left out");

        // backup-list sees it.
        const list = await walD(["backup-list", "--json"], { env });
        assert.equal(list.code, 0, list.stderr);
        assert.deepEqual(JSON.parse(list.stdout).map((b: { name: string }) => b.name), [name]);

        // The backup restores: GNU tar, then recovery from the archive to its end.
        await pg.stop();
        restored = await restoreWithTar(storeRoot, name, major, { WALE_FILE_PREFIX: prefix });
        await recover(restored, {
          restoreCommand: `${WAL_D_LAUNCHER} wal-fetch %f %p`,
          timeoutMs: 120_000,
        });
        assert.equal(await snapshot(restored), expected);
        const [{ n }] = await restored.sql<{ n: string }>("SELECT count(*) AS n FROM in_ts");
        assert.equal(n, inTs);
        const [{ u }] = await restored.sql<{ u: string }>("SELECT count(*) AS u FROM scratch");
        assert.equal(u, "0", "unlogged tables come back empty");
      } finally {
        await restored?.close();
        await pg.close();
        await Deno.remove(storeRoot, { recursive: true });
        await Deno.remove(tablespace, { recursive: true }).catch(() => {});
      }
    },
  });
}

Deno.test({
  name: "backup-push on PostgreSQL 17: a standby, a backup killed midway, bad inputs",
  ignore: await ignoreUnlessPg([17]),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const { dir: storeRoot, prefix } = await storeDir();
    const pg = await createCluster({ major: 17, settings: { wal_level: "replica" } });
    let standby: Cluster | undefined;
    try {
      await pg.start();
      await pg.exec(`
        CREATE TABLE t (id int PRIMARY KEY, payload text NOT NULL);
        INSERT INTO t SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, 60000) i;
      `);
      const env = { ...pg.pgEnv, WALE_FILE_PREFIX: prefix };
      const sentinels = () =>
        [...Deno.readDirSync(join(storeRoot, "basebackups_005"))]
          .filter((e) => e.name.endsWith("_backup_stop_sentinel.json")).length;

      await t.step("a backup killed midway leaves no sentinel and no backup running", async () => {
        const child = new Deno.Command(WAL_D_LAUNCHER, {
          args: [
            "backup-push",
            "--fast-checkpoint",
            "--cluster-read-rate-limit",
            "1000000",
            pg.dataDir,
          ],
          env: { ...env, WALE_LOG_DESTINATION: "stderr" },
          stdout: "null",
          stderr: "null",
        }).spawn();
        await waitFor(async () => {
          const [row] = await pg.sql<{ n: string }>(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'wal-d'",
          );
          return Number(row.n) > 0 &&
            [...Deno.readDirSync(join(storeRoot, "basebackups_005"))].length > 0;
        }, { what: "the backup to be under way", cluster: pg });
        await new Promise((resolve) => setTimeout(resolve, 500));
        child.kill("SIGKILL");
        await child.status;
        assert.equal(sentinels(), 0);
        const list = await walD(["backup-list"], { env });
        assert.equal(list.code, 0, list.stderr);
        assert.equal(list.stdout.split("\r\n").filter((l) => l !== "").length, 1, "header only");
        // The server ended the killed session's backup: a new one runs.
        const again = await walD(["backup-push", "--fast-checkpoint", pg.dataDir], { env });
        assert.equal(again.code, 0, again.stderr);
        assert.equal(sentinels(), 1);
      });

      await t.step("a hot standby's backup", async () => {
        standby = await cloneStandby(pg);
        await pg.exec("INSERT INTO t VALUES (-1, 'streamed')");
        await waitFor(
          async () => (await standby!.sql("SELECT 1 FROM t WHERE id = -1")).length === 1,
          {
            what: "the standby to replay",
            cluster: standby,
          },
        );
        const pushed = await walD(["backup-push", "--fast-checkpoint", standby.dataDir], {
          env: { ...standby.pgEnv, WALE_FILE_PREFIX: prefix },
        });
        assert.equal(pushed.code, 0, pushed.stderr);
        assert.match(pushed.stderr, /a standby/);
        const name = pushed.stdout.trim();
        const sentinel = parseSentinel(
          await Deno.readTextFile(
            join(storeRoot, "basebackups_005", `${name}_backup_stop_sentinel.json`),
          ),
          name,
        );
        assert.equal(sentinel.timeline, 1);
        assert.ok(sentinel.backupStopLsn! >= sentinel.backupStartLsn!);
        assert.equal(sentinels(), 2);
      });

      await t.step("bad inputs: one clear line, exit 1, nothing written", async () => {
        const before = sentinels();
        const other = await Deno.makeTempDir({ prefix: "wald-not-pgdata-" });
        try {
          const cases: [string, string[], Record<string, string>, RegExp][] = [
            ["another directory", [other], env, /data_directory|data directory/],
            ["a missing directory", [`${other}/nope`], env, /nope/],
            ["no such role", [pg.dataDir], { ...env, PGUSER: "nobody_here" }, /nobody_here/],
            [
              "no server at the socket",
              [pg.dataDir],
              { ...env, PGPORT: "1" },
              /socket|server/,
            ],
            [
              "--while-offline on a running cluster",
              ["--while-offline", pg.dataDir],
              env,
              /is running \(postmaster\.pid exists\)/,
            ],
          ];
          await pg.exec("CREATE ROLE weak LOGIN");
          cases.push([
            "a role without backup privileges",
            [pg.dataDir],
            { ...env, PGUSER: "weak" },
            /GRANT/,
          ]);
          for (const [what, args, vars, pattern] of cases) {
            const result = await walD(["backup-push", ...args], { env: vars });
            assert.equal(result.code, 1, `${what}: ${result.stderr}`);
            const errors = result.stderr.split("\n").filter((l) => / ERROR +MSG:/.test(l));
            assert.equal(errors.length, 1, `${what}: ${result.stderr}`);
            assert.match(result.stderr, pattern, what);
          }
          await standby!.stop();
          await pg.stop();
          const down = await walD(["backup-push", pg.dataDir], { env });
          assert.equal(down.code, 1, down.stderr);
          assert.match(down.stderr, / ERROR +MSG: .*(server|socket)/);
          // Offline backups of a running cluster are refused (above); of a stopped one they work.
          const offline = await walD(["backup-push", "--while-offline", pg.dataDir], { env });
          assert.equal(offline.code, 0, offline.stderr);
          assert.equal(sentinels(), before + 1);
        } finally {
          await Deno.remove(other, { recursive: true });
        }
      });
    } finally {
      await standby?.close();
      await pg.close();
      await Deno.remove(storeRoot, { recursive: true });
    }
  },
});
