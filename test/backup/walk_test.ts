import assert from "node:assert/strict";
import { UserError } from "../../src/cli/errors.ts";
import { type ClusterMember, walkCluster } from "../../src/backup/walk.ts";
import { encodeSentinel } from "../../src/backup/sentinel.ts";
import { build, projectModule, run, runModuleAsPgUser, withTempDir } from "./_tree.ts";

/** A test run in a fresh temporary directory, removed afterwards. */
const treeTest = (name: string, body: (root: string) => Promise<void>) =>
  Deno.test(name, () => withTempDir("wald-walk-", body));

function names(members: readonly ClusterMember[]): string[] {
  return members.map((m) => m.name);
}

function byName(members: readonly ClusterMember[], name: string): ClusterMember {
  const member = members.find((m) => m.name === name);
  assert.ok(member, `no member ${name}`);
  return member;
}

const PG_DIR = "PG_16_202307071";

/** A data directory touching every rule, and an external tablespace for it. */
async function fakeCluster(root: string): Promise<{ pgdata: string; tablespace: string }> {
  const pgdata = `${root}/data`;
  const tablespace = `${root}/ts1`;
  await build(pgdata, {
    "PG_VERSION": "16\n",
    "postgresql.conf": "port = 5432\n",
    "postgresql.auto.conf": "",
    "postgresql.auto.conf.tmp": "",
    "pg_hba.conf": "local all all trust\n",
    "pg_ident.conf": "",
    "postmaster.pid": "123\n",
    "postmaster.opts": "postgres\n",
    "backup_label": "START WAL LOCATION\n",
    "backup_label.old": "old\n",
    "backup_manifest": "{}",
    "tablespace_map": "",
    "recovery.signal": "",
    "standby.signal": "",
    "recovery.conf": "",
    "recovery.done": "",
    "promote": "",
    "current_logfiles": "stderr log/postgresql.log\n",
    "global/pg_control": "control",
    "global/1260": "relation",
    "global/pg_filenode.map": "map",
    "global/pg_internal.init": "cache",
    "base/1/PG_VERSION": "16\n",
    "base/1/112": "catalog",
    "base/1/112_fsm": "fsm",
    "base/1/pg_internal.init": "cache",
    "base/1/pg_internal.init.4242": "cache being written",
    "base/1/pgsql_tmp4242.0": "temp",
    "base/1/t3_16400": "temp relation",
    "base/1/t3_16400_fsm": "temp relation fsm",
    "base/1/t3_16400.1": "temp relation segment",
    "base/1/16384": "unlogged",
    "base/1/16384.1": "unlogged segment",
    "base/1/16384_fsm": "unlogged fsm",
    "base/1/16384_vm": "unlogged vm",
    "base/1/16384_init": "init fork",
    "base/1/16385": "logged",
    "base/1/16385_fsm": "logged fsm",
    "base/1/16385_vm": "logged vm",
    "base/1/t16385": "not a temp relation name",
    "base/1/lost+found/x": "gone",
    "base/pgsql_tmp/pgsql_tmp4242.0": "sort spill",
    "pg_wal/000000010000000000000001": "wal",
    "pg_wal/archive_status/000000010000000000000001.ready": "",
    "pg_xlog/x": "old wal",
    "pg_log/postgresql-Mon.log": "log",
    "log/postgresql.log": "kept: PostgreSQL 10's log directory is not excluded",
    "pg_replslot/slot1/state": "slot",
    "pg_stat_tmp/global.stat": "stats",
    "pg_stat/pgstat.stat": "kept",
    "pg_dynshmem/mmap.1": "x",
    "pg_notify/0000": "x",
    "pg_serial/0000": "x",
    "pg_snapshots/00000003-00000002-1": "x",
    "pg_subtrans/0000": "x",
    "pg_multixact/members/0000": "kept",
    "pg_multixact/offsets/0000": "kept",
    "pg_commit_ts/": "",
    "pg_logical/mappings/": "",
    ".wal-d/prefetch/x": "wal-d state",
    "base/.wal-e/x": "wal-e state at depth",
    "deep/deeper/pgsql_tmp/x": "temp at depth",
    "deep/deeper/pg_stat_tmp/x": "stats temp at depth",
    "lost+found/x": "fsck",
    "conf.link": { symlink: "postgresql.conf" },
    "dangling": { symlink: "/nonexistent/target" },
    "dir.link": { symlink: "/usr" },
    "pg_tblspc/16400": { symlink: tablespace },
    "pg_tblspc/16500/PG_16_202307071/5/16600": "in-place tablespace file",
    "pg_tblspc/16500/PG_16_202307071/5/16601_init": "in-place init",
    "pg_tblspc/16500/PG_16_202307071/5/16601": "in-place unlogged",
    "pg_tblspc/99999": { symlink: `${root}/missing-tablespace` },
  });
  await build(tablespace, {
    [`${PG_DIR}/16384/16390`]: "tablespace relation",
    [`${PG_DIR}/16384/16390_vm`]: "tablespace vm",
    [`${PG_DIR}/16384/16391`]: "tablespace unlogged",
    [`${PG_DIR}/16384/16391_init`]: "tablespace init",
    [`${PG_DIR}/16384/16391_fsm`]: "tablespace unlogged fsm",
    [`${PG_DIR}/16384/t5_100`]: "tablespace temp relation",
    [`${PG_DIR}/16384/pg_internal.init`]: "cache",
    [`${PG_DIR}/pgsql_tmp/pgsql_tmp77.1`]: "tablespace temp",
  });
  return { pgdata, tablespace };
}

treeTest("walk: exclusion rules, order, tablespaces", async (root) => {
  const { pgdata, tablespace } = await fakeCluster(root);
  const walk = await walkCluster(pgdata);
  const T = `pg_tblspc/16400/${PG_DIR}`;
  const I = `pg_tblspc/16500/${PG_DIR}`;
  assert.deepEqual(names(walk.members), [
    "/",
    ".wal-d/",
    "PG_VERSION",
    "base/",
    "base/.wal-e/",
    "base/1/",
    "base/1/112",
    "base/1/112_fsm",
    "base/1/16384_init",
    "base/1/16385",
    "base/1/16385_fsm",
    "base/1/16385_vm",
    "base/1/PG_VERSION",
    "base/1/t16385",
    "base/pgsql_tmp/",
    "conf.link",
    "dangling",
    "deep/",
    "deep/deeper/",
    "deep/deeper/pg_stat_tmp/",
    "deep/deeper/pgsql_tmp/",
    "dir.link",
    "global/",
    "global/1260",
    "global/pg_filenode.map",
    "log/",
    "log/postgresql.log",
    "pg_commit_ts/",
    "pg_dynshmem/",
    "pg_hba.conf",
    "pg_ident.conf",
    "pg_log/",
    "pg_logical/",
    "pg_logical/mappings/",
    "pg_multixact/",
    "pg_multixact/members/",
    "pg_multixact/members/0000",
    "pg_multixact/offsets/",
    "pg_multixact/offsets/0000",
    "pg_notify/",
    "pg_replslot/",
    "pg_serial/",
    "pg_snapshots/",
    "pg_stat/",
    "pg_stat/pgstat.stat",
    "pg_stat_tmp/",
    "pg_subtrans/",
    "pg_tblspc/",
    `${T}/`,
    `${T}/16384/`,
    `${T}/16384/16390`,
    `${T}/16384/16390_vm`,
    `${T}/16384/16391_init`,
    `${T}/pgsql_tmp/`,
    "pg_tblspc/16500/",
    `${I}/`,
    `${I}/5/`,
    `${I}/5/16600`,
    `${I}/5/16601_init`,
    "pg_tblspc/99999",
    "pg_wal/",
    "pg_xlog/",
    "postgresql.auto.conf",
    "postgresql.conf",
  ]);
  // Every member's path is where its bytes are; tablespace members are read through the link.
  for (const m of walk.members) {
    if (m.name === "/") assert.equal(m.path, pgdata);
    else assert.equal(m.path, `${pgdata}/${m.name.replace(/\/$/, "")}`);
  }
  assert.equal(byName(walk.members, `${T}/16384/16390`).size, "tablespace relation".length);

  assert.deepEqual(walk.tablespaces.map((t) => t.name), ["16400"]);
  assert.deepEqual(walk.tablespaces[0], {
    name: "16400",
    loc: `${tablespace}/`,
    link: "pg_tblspc/16400",
  });
  // In the sentinel they are WAL-E's spec: the list of names, then one entry per name.
  const encoded = encodeSentinel({
    walSegmentBackupStop: "000000010000000000000002",
    walSegmentOffsetBackupStop: "00000256",
    spec: { basePrefix: `${pgdata}/`, tablespaces: walk.tablespaces },
  });
  assert.ok(
    encoded.includes(
      `"tablespaces": ["16400"], "16400": {"loc": "${tablespace}/", "link": "pg_tblspc/16400"}`,
    ),
    encoded,
  );

  // Symlinks other than tablespaces are members, with their targets.
  assert.equal(byName(walk.members, "conf.link").kind, "symlink");
  assert.equal(byName(walk.members, "conf.link").linkTarget, "postgresql.conf");
  assert.equal(byName(walk.members, "dangling").linkTarget, "/nonexistent/target");
  assert.equal(byName(walk.members, "dir.link").linkTarget, "/usr");
  assert.equal(byName(walk.members, "pg_tblspc/99999").kind, "symlink");
  assert.deepEqual(walk.skipped, []);
});

treeTest("walk: member fields come from lstat", async (root) => {
  const pgdata = `${root}/data`;
  await build(pgdata, { "base/1/16384": "x".repeat(8192), "link": { symlink: "base" } });
  await Deno.chmod(pgdata, 0o750);
  await Deno.chmod(`${pgdata}/base/1/16384`, 0o640);
  await Deno.utime(`${pgdata}/base/1/16384`, 1_600_000_000.5, 1_600_000_000.25);
  await Deno.chown(`${pgdata}/base/1/16384`, 4242, 4343).catch(() => {}); // as root only
  const { members } = await walkCluster(pgdata);
  const rootMember = byName(members, "/");
  assert.equal(rootMember.kind, "directory");
  assert.equal(rootMember.mode, 0o750);
  assert.equal(rootMember.size, 0);
  const file = byName(members, "base/1/16384");
  const info = await Deno.lstat(file.path);
  assert.deepEqual(
    { kind: file.kind, size: file.size, mode: file.mode, uid: file.uid, gid: file.gid },
    { kind: "file", size: 8192, mode: 0o640, uid: info.uid, gid: info.gid },
  );
  assert.equal(file.mtime, 1_600_000_000.25);
  assert.equal(file.ino, info.ino);
  assert.equal(file.dev, info.dev);
  const link = byName(members, "link");
  assert.equal(link.size, 0);
  assert.equal(link.linkTarget, "base");
  assert.equal(byName(members, "base/").size, 0);
  const noRoot = await walkCluster(pgdata, { rootMember: false });
  assert.equal(noRoot.members[0].name, "base/");
});

treeTest("walk: a symlinked pg_wal is a symlink member; a relative PGDATA works", async (root) => {
  const cwd = Deno.cwd();
  try {
    await build(root, {
      "wal/000000010000000000000001": "wal",
      "data/PG_VERSION": "16\n",
      "data/pg_wal": { symlink: `${root}/wal` },
      "data/pg_xlog": { symlink: "../wal" },
    });
    Deno.chdir(root);
    const walk = await walkCluster("data");
    assert.deepEqual(names(walk.members), ["/", "PG_VERSION", "pg_wal", "pg_xlog"]);
    assert.equal(byName(walk.members, "pg_wal").kind, "symlink");
    assert.equal(byName(walk.members, "pg_wal").linkTarget, `${root}/wal`);
    assert.equal(byName(walk.members, "pg_xlog").linkTarget, "../wal");
    assert.equal(walk.members[0].path, `${root}/data`);
  } finally {
    Deno.chdir(cwd);
  }
});

treeTest("walk: hard links name the first member of their inode", async (root) => {
  const pgdata = `${root}/data`;
  await build(pgdata, { "a/file": "shared bytes", "single": "one link" });
  await Deno.link(`${pgdata}/a/file`, `${pgdata}/b-link`);
  await Deno.link(`${pgdata}/a/file`, `${pgdata}/c-link`);
  await Deno.link(`${pgdata}/single`, `${root}/outside`); // nlink 2, one path inside: a file
  const { members } = await walkCluster(pgdata);
  assert.deepEqual(
    members.map((m) => [m.name, m.kind, m.size, m.linkTarget]),
    [
      ["/", "directory", 0, undefined],
      ["a/", "directory", 0, undefined],
      ["a/file", "file", 12, undefined],
      ["b-link", "hardlink", 0, "a/file"],
      ["c-link", "hardlink", 0, "a/file"],
      ["single", "file", 8, undefined],
    ],
  );
});

treeTest(
  "walk: fifos, sockets and names that are not UTF-8 are skipped, with reasons",
  async (root) => {
    const pgdata = `${root}/data`;
    await build(pgdata, { "base/1/112": "x" });
    await run(["mkfifo", `${pgdata}/base/fifo`]);
    const python = await new Deno.Command("python3", {
      args: [
        "-c",
        "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
        `${pgdata}/.s.PGSQL.5432`,
      ],
    }).output().catch(() => null);
    const haveSocket = python?.success ?? false;
    if (!haveSocket) console.log("python3 missing: the socket case is not checked");
    await run(["sh", "-c", `touch "${pgdata}/bad$(printf '\\377')name"`]);
    const walk = await walkCluster(pgdata);
    assert.deepEqual(names(walk.members), ["/", "base/", "base/1/", "base/1/112"]);
    const reasons = Object.fromEntries(walk.skipped.map((s) => [s.path, s.reason]));
    assert.match(reasons[`${pgdata}/base/fifo`], /fifo/);
    if (haveSocket) assert.match(reasons[`${pgdata}/.s.PGSQL.5432`], /socket/);
    const bad = walk.skipped.find((s) => s.path.includes("bad"));
    assert.ok(bad);
    assert.match(bad.reason, /UTF-8/);
    assert.equal(walk.skipped.length, haveSocket ? 3 : 2);
  },
);

treeTest("walk: long and non-ASCII names", async (root) => {
  const pgdata = `${root}/data`;
  const long = "d".repeat(200);
  const longer = "e".repeat(250);
  await build(pgdata, {
    [`${long}/${longer}/${"f".repeat(255)}`]: "deep",
    "données/été.conf": "accents",
    "日本/テーブル": "kanji",
  });
  const { members } = await walkCluster(pgdata);
  assert.deepEqual(names(members), [
    "/",
    `${long}/`,
    `${long}/${longer}/`,
    `${long}/${longer}/${"f".repeat(255)}`,
    "données/",
    "données/été.conf",
    "日本/",
    "日本/テーブル",
  ]);
});

treeTest("walk: a missing or non-directory PGDATA is a UserError", async (root) => {
  await assert.rejects(walkCluster(`${root}/nope`), (error: unknown) => {
    assert.ok(error instanceof UserError);
    assert.match(error.message, /does not exist/);
    assert.ok(error.message.includes(`${root}/nope`));
    return true;
  });
  await Deno.writeTextFile(`${root}/file`, "");
  await assert.rejects(walkCluster(`${root}/file`), UserError);
});

treeTest(
  "walk: directories and files vanishing during the walk are skipped, not errors",
  async (root) => {
    const pgdata = `${root}/data`;
    // Another process drops "databases" (directories of 40 files) while the walk runs, until a
    // walk has overlapped the deletions (usually the first).
    const seen = { directory: 0, file: 0 };
    for (let round = 0; round < 20 && seen.directory + seen.file === 0; round++) {
      for (let d = 0; d < 150; d++) {
        Deno.mkdirSync(`${pgdata}/base/${10000 + d}`, { recursive: true });
        for (let f = 0; f < 40; f++) Deno.writeFileSync(`${pgdata}/base/${10000 + d}/${f}`, EMPTY);
      }
      const dropper = new Deno.Command("sh", {
        args: ["-c", `cd "${pgdata}/base" && for d in $(ls -r); do rm -rf "$d"; done`],
      }).spawn();
      await new Promise((r) => setTimeout(r, round % 4)); // let it start, at varying moments
      const walk = await walkCluster(pgdata);
      await dropper.status;
      for (const s of walk.skipped) {
        assert.match(s.reason, /vanished/);
        if (s.reason.startsWith("directory")) seen.directory++;
        else seen.file++;
      }
      // What was listed is all named members of the tree; nothing was listed twice.
      assert.equal(new Set(names(walk.members)).size, walk.members.length);
      await Deno.remove(pgdata, { recursive: true });
    }
    console.log(`vanished during walks: ${seen.directory} directories, ${seen.file} files`);
    assert.ok(seen.directory + seen.file > 0, "no walk overlapped the deletions");
  },
);

const EMPTY = new Uint8Array(0);

/** Runs a walk of `pgdata` as an unprivileged user; returns the error's fields as JSON. */
async function walkAsUnprivileged(pgdata: string, scriptDir: string) {
  return await runModuleAsPgUser(
    scriptDir,
    `import { walkCluster } from ${JSON.stringify(projectModule("src/backup/walk.ts"))};
try {
  const walk = await walkCluster(${JSON.stringify(pgdata)});
  console.log(JSON.stringify({ members: walk.members.length }));
} catch (error) {
  console.log(JSON.stringify({ name: error.name, message: error.message, hint: error.hint }));
}
`,
  ) as { members?: number; name: string; message: string; hint: string };
}

treeTest("walk: permission denied on a directory is a UserError naming it", async (root) => {
  try {
    await Deno.chmod(root, 0o755);
    const pgdata = `${root}/data`;
    await build(pgdata, { "base/1/112": "x", "base/2/113": "y" });
    for (const dir of [pgdata, `${pgdata}/base`, `${pgdata}/base/1`]) await Deno.chmod(dir, 0o755);
    await Deno.chmod(`${pgdata}/base/2`, 0o000);
    const result = await walkAsUnprivileged(pgdata, root);
    if (result.members !== undefined && Deno.uid() === 0) {
      throw new Error("the unprivileged user read a 000 directory");
    }
    assert.equal(result.name, "UserError");
    assert.equal(result.message, `permission denied reading ${pgdata}/base/2`);
    assert.match(result.hint, /PostgreSQL OS user/);

    await Deno.chmod(`${pgdata}/base/2`, 0o755);
    if (Deno.uid() !== 0) return; // the data directory below would be ours, so readable
    await Deno.chmod(pgdata, 0o700); // owned by root: the data directory itself is unreadable
    const top = await walkAsUnprivileged(pgdata, root);
    assert.equal(top.name, "UserError");
    assert.equal(top.message, `permission denied reading ${pgdata}`);
  } finally {
    await Deno.chmod(`${root}/data/base/2`, 0o755).catch(() => {});
  }
});
