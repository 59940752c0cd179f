/**
 * `wal-d backup-fetch` end to end through the CLI (a separate process, as an operator runs it),
 * without PostgreSQL: hand-made backups in a file:// store (a sentinel and lzop-compressed tar
 * volumes, test/backup/_tar_build.ts), wal-d style (the sentinel lists each volume's size and
 * SHA-256) and WAL-E style (no list). Checks the restored tree exactly, every refusal (one ERROR
 * line naming the problem, exit 1), that a failed restore never leaves global/pg_control in
 * place, and that a tampered volume writes nothing outside the data directory.
 *
 * Layout of each test's scratch directory: `store/` (the archive), `pgdata/` (the restore
 * target, made by backup-fetch unless a test makes it), `outside/` (what attacks aim at) and
 * `ts1/` (a tablespace location).
 */

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { encodeSentinel, type Sentinel, type SentinelVolume } from "../../src/backup/sentinel.ts";
import { compressLzop } from "../../src/codec/lzop.ts";
import { backupSentinelKey, extendedVersionKey, volumeKey } from "../../src/layout/keys.ts";
import { type CliResult, walD } from "../wal/_cli.ts";
import {
  exists,
  makeScratchDir,
  sha,
  snapshot,
  sortedEntries,
  withCleanup,
} from "./_restore_scratch.ts";
import { SAMPLE_EXTENSION } from "./_sentinels.ts";
import {
  dirMember,
  fileMember,
  hardlinkMember,
  member,
  noise,
  paxMember,
  symlinkMember,
  tarStream,
} from "./_tar_build.ts";

const NAME = "base_000000010000000000000002_00000028";
const OLDER = "base_000000010000000000000001_00000028";
const T0 = 1_650_000_000;
const PG_CONTROL = noise(8192, 42);

/** Every prefix variable but the test's own empty (unset for wal-d). */
const NO_PREFIX = {
  WALE_S3_PREFIX: "",
  WALE_WABS_PREFIX: "",
  WALE_GS_PREFIX: "",
  WALE_SWIFT_PREFIX: "",
  WALD_ENV_DIR: "",
  WALD_PROGRESS_SECONDS: "0",
};

interface Scratch {
  dir: string;
  store: string;
  pgdata: string;
  outside: string;
  ts: string;
  env: Record<string, string>;
  fetch(args: string[]): Promise<CliResult>;
  cleanup(): Promise<void>;
}

async function scratch(): Promise<Scratch> {
  const { dir, outside } = await makeScratchDir("wald-backup-fetch-", T0);
  const store = join(dir, "store");
  const ts = join(dir, "ts1");
  Deno.mkdirSync(store);
  Deno.mkdirSync(ts, { mode: 0o700 });
  const env = { ...NO_PREFIX, WALE_FILE_PREFIX: `file://localhost${store}` };
  return {
    dir,
    store,
    pgdata: join(dir, "pgdata"),
    outside,
    ts,
    env,
    fetch: (args) => walD(["backup-fetch", ...args], { env }),
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
}

/** Runs `body` in a fresh scratch directory, removed afterwards. */
const withScratch = (body: (s: Scratch) => Promise<void>) => withCleanup(scratch, body);

/** A test run in a fresh scratch directory. */
const fetchTest = (name: string, body: (s: Scratch) => Promise<void>) =>
  Deno.test(name, () => withScratch(body));

interface BackupOptions {
  /** WAL-E style: no wal-d extension fields, no volume list. */
  wale?: boolean;
  spec?: Sentinel["spec"];
  /** lzop header time of each volume (changing it changes the bytes, not the content). */
  mtimeSeconds?: number;
}

/** Stores a backup of these tar volumes; returns the stored (compressed) volumes. */
function writeBackup(
  s: Scratch,
  name: string,
  tars: Uint8Array[],
  options: BackupOptions = {},
): Uint8Array[] {
  const stored = tars.map((tar) => compressLzop(tar, { mtimeSeconds: options.mtimeSeconds ?? T0 }));
  const put = (key: string, bytes: Uint8Array | string) => {
    const path = join(s.store, key);
    Deno.mkdirSync(dirname(path), { recursive: true });
    if (typeof bytes === "string") Deno.writeTextFileSync(path, bytes);
    else Deno.writeFileSync(path, bytes);
  };
  put(extendedVersionKey(name), "PostgreSQL 17.0 on x86_64-pc-linux-gnu");
  stored.forEach((bytes, n) => put(volumeKey(name, n), bytes));
  const volumes: SentinelVolume[] = stored.map((bytes, n) => ({
    name: volumeKey(name, n).split("/").pop()!,
    size: bytes.length,
    sha256: sha(bytes),
    expandedSizeBytes: tars[n].length,
    members: 1,
  }));
  const waleFields: Sentinel = {
    walSegmentBackupStop: name.slice(5, 29),
    walSegmentOffsetBackupStop: "00000312",
    expandedSizeBytes: tars.reduce((sum, t) => sum + t.length, 0),
    spec: options.spec,
  };
  const segmentStart = BigInt(parseInt(name.slice(21, 29), 16)) * 0x1000000n;
  const sentinel: Sentinel = options.wale ? waleFields : {
    ...waleFields,
    spec: options.spec ?? { basePrefix: "/var/lib/postgresql/17/main/", tablespaces: [] },
    ...SAMPLE_EXTENSION,
    backupStartLsn: segmentStart + BigInt(parseInt(name.slice(30), 16)),
    backupStopLsn: segmentStart + 312n,
    encryption: null,
    volumes,
  };
  put(backupSentinelKey(name), encodeSentinel(sentinel));
  return stored;
}

/** The contents of a good two-volume backup (pg_control in the second volume, as wal-d puts it). */
const BIG = noise(2 * 1024 * 1024 + 17, 7);
function goodVolumes(): Uint8Array[] {
  return [
    tarStream(
      dirMember("/", { mode: 0o700, mtime: T0 }),
      fileMember("PG_VERSION", "17\n", { mtime: T0 + 1 }),
      dirMember("base/", { mtime: T0 + 2 }),
      dirMember("base/1/", { mtime: T0 + 3 }),
      fileMember("base/1/1259", noise(8192 * 3, 1), { mtime: T0 + 4 }),
      fileMember("base/1/big", BIG, { mode: 0o640 }),
      hardlinkMember("base/1/big.hardlink", "base/1/big"),
      fileMember("base/1/empty", ""),
      dirMember("pg_wal/"),
      symlinkMember("pg_stat_link", "/var/run/elsewhere"),
      paxMember([["path", "base/données/été"]]),
      fileMember("base/x", "non-ASCII name"),
    ),
    tarStream(
      dirMember("global/", { mtime: T0 + 5 }),
      fileMember("global/1262", noise(8192, 2)),
      fileMember("backup_label", "START WAL LOCATION: 0/2000028\n"),
      fileMember("global/pg_control", PG_CONTROL, { mtime: T0 + 6 }),
    ),
  ];
}

/** What goodVolumes restores: relative path → content, "dir", or "-> target". */
function goodTree(): Map<string, string> {
  return new Map([
    ["PG_VERSION", sha("17\n")],
    ["backup_label", sha("START WAL LOCATION: 0/2000028\n")],
    ["base", "dir"],
    ["base/1", "dir"],
    ["base/1/1259", sha(noise(8192 * 3, 1))],
    ["base/1/big", sha(BIG)],
    ["base/1/big.hardlink", sha(BIG)],
    ["base/1/empty", sha(new Uint8Array(0))],
    ["base/données", "dir"],
    ["base/données/été", sha("non-ASCII name")],
    ["global", "dir"],
    ["global/1262", sha(noise(8192, 2))],
    ["global/pg_control", sha(PG_CONTROL)],
    ["pg_stat_link", "-> /var/run/elsewhere"],
    ["pg_wal", "dir"],
  ]);
}

/** The tree under `root`: relative path → sha256 of a file, "dir", or "-> target". */
function tree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (dir: string, rel: string) => {
    for (const entry of sortedEntries(dir)) {
      const path = join(dir, entry.name);
      const r = rel === "" ? entry.name : `${rel}/${entry.name}`;
      const info = Deno.lstatSync(path);
      if (info.isSymlink) out.set(r, `-> ${Deno.readLinkSync(path)}`);
      else if (info.isDirectory) {
        out.set(r, "dir");
        visit(path, r);
      } else out.set(r, sha(Deno.readFileSync(path)));
    }
  };
  visit(root, "");
  return out;
}

/**
 * Everything in the scratch directory but pgdata, the store and ts1, with modes and times (the
 * scratch directory's own entry is left out: backup-fetch may create pgdata in it).
 */
function outsideSnapshot(s: Scratch): string[] {
  return snapshot(s.dir, [s.pgdata, s.store, s.ts], false);
}

/** Runs backup-fetch; nothing outside pgdata, the store and ts1 may change. */
async function fetchOutsideUnchanged(
  s: Scratch,
  args: string[],
  message = "something outside the data directory changed",
): Promise<CliResult> {
  const before = outsideSnapshot(s);
  const result = await s.fetch(args);
  assert.deepEqual(outsideSnapshot(s), before, message);
  return result;
}

/** Exit 1 and exactly one ERROR line, matching `message`. Returns the ERROR block (with HINT). */
function assertOneError(result: CliResult, message: RegExp): string {
  const context = `exit ${result.code}\nstderr:\n${result.stderr}`;
  assert.equal(result.code, 1, context);
  const errors = result.stderr.split("\n").filter((line) => /\bERROR\b/.test(line));
  assert.equal(errors.length, 1, `one ERROR line expected\n${context}`);
  assert.match(errors[0], /^wal_e\.main\s+ERROR\s+MSG: /, context);
  assert.match(errors[0], message, context);
  assert.ok(!/CRITICAL|unprocessed exception/i.test(result.stderr), context);
  const block = result.stderr.slice(result.stderr.indexOf(errors[0]));
  assert.match(block, /\n\s+HINT: \S/, `a hint expected\n${context}`);
  return block;
}

function assertOk(result: CliResult): void {
  assert.equal(result.code, 0, `exit ${result.code}\nstderr:\n${result.stderr}`);
  assert.ok(!/\bERROR\b|CRITICAL/.test(result.stderr), result.stderr);
}

function assertNoControlFile(s: Scratch): void {
  assert.ok(!exists(join(s.pgdata, "global/pg_control")), "global/pg_control is in place");
}

// ---------------------------------------------------------------------------------------------
// Good backups

fetchTest(
  "backup-fetch: a wal-d backup (volumes listed with SHA-256) restores exactly",
  async (s) => {
    writeBackup(s, NAME, goodVolumes());
    const result = await s.fetch([s.pgdata, "LATEST"]);
    assertOk(result);
    assert.match(result.stderr, /every volume matched the sentinel's size and SHA-256/);
    assert.deepEqual(tree(s.pgdata), goodTree());
    assert.equal(Deno.statSync(s.pgdata).mode! & 0o777, 0o700);
    assert.equal(Deno.statSync(join(s.pgdata, "base/1/big")).mode! & 0o777, 0o640);
    assert.equal(Deno.statSync(join(s.pgdata, "base/1/big")).nlink, 2);
    assert.equal(
      Deno.statSync(join(s.pgdata, "global/pg_control")).mtime!.getTime(),
      (T0 + 6) * 1000,
    );
    assert.equal(Deno.statSync(join(s.pgdata, "base/1")).mtime!.getTime(), (T0 + 3) * 1000);
  },
);

fetchTest("backup-fetch: a backup named exactly, among others; one volume at a time", async (s) => {
  writeBackup(s, OLDER, goodVolumes());
  writeBackup(s, NAME, [tarStream(fileMember("global/pg_control", "newer"))]);
  assertOk(await s.fetch([s.pgdata, OLDER, "--pool-size", "1"]));
  assert.deepEqual(tree(s.pgdata), goodTree());
});

fetchTest("backup-fetch: a WAL-E backup (no volume list) restores", async (s) => {
  writeBackup(s, NAME, goodVolumes(), {
    wale: true,
    spec: { basePrefix: "/var/lib/postgresql/9.6/main/", tablespaces: [] },
  });
  const result = await s.fetch([s.pgdata, NAME]);
  assertOk(result);
  assert.ok(!/every volume matched/.test(result.stderr));
  assert.deepEqual(tree(s.pgdata), goodTree());
});

fetchTest("backup-fetch: PGDATA holding only pg_tblspc/<oid> links counts as empty", async (s) => {
  const volumes = goodVolumes();
  volumes.push(tarStream(
    dirMember("pg_tblspc/"),
    dirMember("pg_tblspc/16385/"),
    dirMember("pg_tblspc/16385/PG_17_202406281/"),
    fileMember("pg_tblspc/16385/PG_17_202406281/16390", "in the tablespace"),
  ));
  writeBackup(s, NAME, volumes, {
    spec: {
      basePrefix: "/var/lib/postgresql/17/main/",
      tablespaces: [{ name: "16385", loc: "/mnt/ts1/", link: "pg_tblspc/16385" }],
    },
  });
  Deno.mkdirSync(join(s.pgdata, "pg_tblspc"), { recursive: true, mode: 0o700 });
  Deno.symlinkSync(s.ts, join(s.pgdata, "pg_tblspc/16385"));
  Deno.mkdirSync(join(s.pgdata, "lost+found"));
  const result = await s.fetch([s.pgdata, NAME]);
  assertOk(result);
  assert.equal(
    Deno.readTextFileSync(join(s.ts, "PG_17_202406281/16390")),
    "in the tablespace",
  );
  assert.equal(Deno.readLinkSync(join(s.pgdata, "pg_tblspc/16385")), s.ts);
  const expected = goodTree();
  expected.set("lost+found", "dir");
  expected.set("pg_tblspc", "dir");
  expected.set("pg_tblspc/16385", `-> ${s.ts}`);
  assert.deepEqual(tree(s.pgdata), expected);
});

// ---------------------------------------------------------------------------------------------
// The destination

fetchTest(
  "backup-fetch: a non-empty PGDATA is refused without --force, restored over with it",
  async (s) => {
    writeBackup(s, NAME, goodVolumes());
    Deno.mkdirSync(join(s.pgdata, "base/1"), { recursive: true });
    Deno.writeTextFileSync(join(s.pgdata, "stray"), "left by someone");
    Deno.writeTextFileSync(join(s.pgdata, "PG_VERSION"), "16\n");
    const refused = await s.fetch([s.pgdata, NAME]);
    assertOneError(refused, new RegExp(`${s.pgdata} is not empty`));
    assert.match(refused.stderr, /--force/);
    assert.equal(Deno.readTextFileSync(join(s.pgdata, "PG_VERSION")), "16\n");

    assertOk(await s.fetch([s.pgdata, NAME, "--force"]));
    const expected = goodTree();
    expected.set("stray", sha("left by someone"));
    assert.deepEqual(tree(s.pgdata), expected);
  },
);

fetchTest("backup-fetch: postmaster.pid in PGDATA is refused, even with --force", async (s) => {
  writeBackup(s, NAME, goodVolumes());
  Deno.mkdirSync(s.pgdata);
  Deno.writeTextFileSync(join(s.pgdata, "postmaster.pid"), "12345\n");
  for (const force of [[], ["--force"]]) {
    const result = await s.fetch([s.pgdata, NAME, ...force]);
    assertOneError(
      result,
      /attempting to overwrite a live data directory: .*postmaster\.pid exists/,
    );
    assert.deepEqual([...Deno.readDirSync(s.pgdata)].map((e) => e.name), ["postmaster.pid"]);
  }
});

fetchTest("backup-fetch: a PGDATA whose parent is missing gives a clear error", async (s) => {
  writeBackup(s, NAME, goodVolumes());
  const pgdata = join(s.dir, "no-such-parent", "pgdata");
  const result = await s.fetch([pgdata, NAME]);
  const block = assertOneError(result, new RegExp(`cannot create ${pgdata}`));
  assert.match(block, /HINT: Create the parent directory first/);
  assert.ok(!exists(join(s.dir, "no-such-parent")));
});

fetchTest("backup-fetch: a PGDATA that is a file is refused", async (s) => {
  writeBackup(s, NAME, goodVolumes());
  Deno.writeTextFileSync(s.pgdata, "a file");
  for (const force of [[], ["--force"]]) {
    assertOneError(
      await s.fetch([s.pgdata, NAME, ...force]),
      new RegExp(`${s.pgdata} is not a directory`),
    );
    assert.equal(Deno.readTextFileSync(s.pgdata), "a file");
  }
});

// ---------------------------------------------------------------------------------------------
// Damaged backups

fetchTest("backup-fetch: a listed volume deleted from the store", async (s) => {
  writeBackup(s, NAME, goodVolumes());
  Deno.removeSync(join(s.store, volumeKey(NAME, 1)));
  const result = await s.fetch([s.pgdata, NAME]);
  assertOneError(
    result,
    /volumes do not match its sentinel \(missing: part_00000001\.tar\.lzo\)/,
  );
  assertNoControlFile(s);
});

fetchTest("backup-fetch: a volume not in the sentinel's list", async (s) => {
  const stored = writeBackup(s, NAME, goodVolumes());
  Deno.writeFileSync(join(s.store, volumeKey(NAME, 2)), stored[0]);
  const result = await s.fetch([s.pgdata, NAME]);
  assertOneError(result, /not in the backup's list: part_00000002\.tar\.lzo/);
  assertNoControlFile(s);
});

fetchTest(
  "backup-fetch: a volume with one byte flipped fails; pg_control is not put in place",
  async (s) => {
    const stored = writeBackup(s, NAME, goodVolumes());
    // Volume 0 (2 MiB of data), then volume 1 (pg_control), each at a few places.
    const cases: [number, number][] = [
      [0, Math.floor(stored[0].length / 2)],
      [0, stored[0].length - 20],
      [1, 60],
      [1, stored[1].length - 8],
    ];
    for (const [n, at] of cases) {
      const bytes = stored[n].slice();
      bytes[at] ^= 0x10;
      Deno.writeFileSync(join(s.store, volumeKey(NAME, n)), bytes);
      try {
        const result = await s.fetch([s.pgdata, NAME, "--force"]);
        assertOneError(
          result,
          new RegExp(`part_0000000${n}\\.tar\\.lzo.*corrupt|corrupt.*part_0000000${n}\\.tar\\.lzo`),
        );
        assertNoControlFile(s);
      } finally {
        Deno.writeFileSync(join(s.store, volumeKey(NAME, n)), stored[n]);
      }
    }
  },
);

fetchTest(
  "backup-fetch: a volume re-encoded (valid lzop and tar, other bytes) fails on SHA-256",
  async (s) => {
    writeBackup(s, NAME, goodVolumes());
    // The same tar compressed with another header time: same size, other SHA-256.
    const replaced = compressLzop(goodVolumes()[1], { mtimeSeconds: T0 + 1 });
    assert.equal(replaced.length, Deno.statSync(join(s.store, volumeKey(NAME, 1))).size);
    Deno.writeFileSync(join(s.store, volumeKey(NAME, 1)), replaced);
    const result = await s.fetch([s.pgdata, NAME]);
    assertOneError(
      result,
      /volume part_00000001\.tar\.lzo is corrupt: it does not match the sentinel/,
    );
    assertNoControlFile(s);
  },
);

fetchTest(
  "backup-fetch: a failed --force restore over a good one removes the old pg_control",
  async (s) => {
    const stored = writeBackup(s, NAME, goodVolumes());
    assertOk(await s.fetch([s.pgdata, NAME]));
    assert.ok(exists(join(s.pgdata, "global/pg_control")));
    Deno.writeFileSync(join(s.store, volumeKey(NAME, 0)), stored[0].subarray(0, 1000));
    const result = await s.fetch([s.pgdata, NAME, "--force"]);
    assertOneError(result, /part_00000000\.tar\.lzo/);
    assertNoControlFile(s);
  },
);

Deno.test("backup-fetch: a truncated volume fails (wal-d and WAL-E backups)", async () => {
  for (const wale of [false, true]) {
    for (const keep of [0.5, 0.99]) {
      await withScratch(async (s) => {
        const stored = writeBackup(s, NAME, goodVolumes(), { wale });
        Deno.writeFileSync(
          join(s.store, volumeKey(NAME, 0)),
          stored[0].subarray(0, Math.floor(stored[0].length * keep)),
        );
        const result = await s.fetch([s.pgdata, NAME]);
        assertOneError(result, /part_00000000\.tar\.lzo/);
        assert.match(result.stderr, /corrupt|truncated/);
        assertNoControlFile(s);
      });
    }
  }
});

fetchTest("backup-fetch: a WAL-E backup with a gap in its volume numbers fails", async (s) => {
  const stored = writeBackup(s, NAME, [...goodVolumes(), tarStream(fileMember("x", "y"))], {
    wale: true,
  });
  assert.equal(stored.length, 3);
  Deno.removeSync(join(s.store, volumeKey(NAME, 1)));
  const result = await s.fetch([s.pgdata, NAME]);
  assertOneError(result, /volume 1 is missing \(found part_00000002\.tar\.lzo next\)/);
  assertNoControlFile(s);
});

fetchTest("backup-fetch: a backup without global/pg_control fails", async (s) => {
  writeBackup(s, NAME, [goodVolumes()[0]]);
  assertOneError(await s.fetch([s.pgdata, NAME]), /holds no global\/pg_control/);
});

// ---------------------------------------------------------------------------------------------
// Tampered volumes: refused, nothing written outside

interface Attack {
  name: string;
  /** The malicious members (a good volume 0 and pg_control come with them). */
  members: (s: Scratch) => Uint8Array[];
  /** The member the ERROR line must name. */
  member: (s: Scratch) => string;
  /** Paths the attack aimed at: must not exist afterwards. */
  absent: (s: Scratch) => string[];
}

const ATTACKS: Attack[] = [
  {
    name: "an absolute name",
    members: (s) => [fileMember(join(s.outside, "abs"), "pwned")],
    member: (s) => join(s.outside, "abs"),
    absent: (s) => [join(s.outside, "abs")],
  },
  {
    name: "a '..' component",
    members: () => [fileMember("base/../../outside/dotdot", "pwned")],
    member: () => "base/../../outside/dotdot",
    absent: (s) => [join(s.outside, "dotdot")],
  },
  {
    name: "a file through a symlink member",
    members: () => [symlinkMember("escape", "../outside"), fileMember("escape/through", "pwned")],
    member: () => "escape/through",
    absent: (s) => [join(s.outside, "through")],
  },
  {
    name: "a file through a symlink to an absolute directory",
    members: (s) => [symlinkMember("abs", s.outside), fileMember("abs/through", "pwned")],
    member: () => "abs/through",
    absent: (s) => [join(s.outside, "through")],
  },
  {
    name: "a directory through a symlink member",
    members: () => [symlinkMember("escape", "../outside"), dirMember("escape/newdir/")],
    member: () => "escape/newdir/",
    absent: (s) => [join(s.outside, "newdir")],
  },
  {
    name: "a hard link to a file outside",
    members: () => [hardlinkMember("hl", "../outside/secret")],
    member: () => "hl",
    absent: (s) => [join(s.pgdata, "hl")],
  },
  {
    name: "a hard link to /etc/passwd",
    members: () => [hardlinkMember("passwd", "/etc/passwd")],
    member: () => "passwd",
    absent: (s) => [join(s.pgdata, "passwd")],
  },
  {
    name: "a hard link to a symlink",
    members: () => [symlinkMember("s", "../outside/secret"), hardlinkMember("hl", "s")],
    member: () => "hl",
    absent: (s) => [join(s.pgdata, "hl")],
  },
  {
    name: "a character device",
    members: () => [member({ name: "dev_null", type: "3" })],
    member: () => "dev_null",
    absent: (s) => [join(s.pgdata, "dev_null")],
  },
  {
    name: "a fifo",
    members: () => [member({ name: "fifo", type: "6" })],
    member: () => "fifo",
    absent: (s) => [join(s.pgdata, "fifo")],
  },
  {
    name: "a GNU sparse member",
    members: () => [member({ name: "sparse", type: "S", magic: "gnu" }, noise(512))],
    member: () => "sparse",
    absent: (s) => [join(s.pgdata, "sparse")],
  },
  {
    name: "a PAX GNU.sparse member",
    members: () => [paxMember([["GNU.sparse.major", "1"]]), fileMember("sparse1", noise(512))],
    member: () => "sparse1",
    absent: (s) => [join(s.pgdata, "sparse1")],
  },
  {
    name: "a symlink replacing a directory",
    members: () => [symlinkMember("base", "../outside")],
    member: () => "base",
    absent: () => [],
  },
];

for (const attack of ATTACKS) {
  fetchTest(`backup-fetch refuses a tampered volume: ${attack.name}`, async (s) => {
    const [first, second] = goodVolumes();
    const evil = tarStream(dirMember("base/"), ...attack.members(s));
    writeBackup(s, NAME, [first, evil, second]);
    const result = await fetchOutsideUnchanged(s, [s.pgdata, NAME]);
    const name = JSON.stringify(attack.member(s)).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const block = assertOneError(
      result,
      new RegExp(`refused to restore: part_00000001\\.tar\\.lzo: member ${name}`),
    );
    assert.match(block, /tampered/);
    for (const path of attack.absent(s)) assert.ok(!exists(path), `${path} exists`);
    assertNoControlFile(s);
  });
}

fetchTest(
  "backup-fetch: a pre-existing symlink in PGDATA is not written through (--force)",
  async (s) => {
    writeBackup(s, NAME, [
      tarStream(fileMember("evil/x", "pwned"), fileMember("global/pg_control", "c")),
    ]);
    Deno.mkdirSync(s.pgdata);
    Deno.symlinkSync("../outside", join(s.pgdata, "evil"));
    const result = await fetchOutsideUnchanged(s, [s.pgdata, NAME, "--force"]);
    assertOneError(
      result,
      /refused to restore: .*member "evil\/x" would be written through the symlink/,
    );
    assert.ok(!exists(join(s.outside, "x")));
  },
);

fetchTest(
  "backup-fetch (--force): a symlink in PGDATA replaced by a file member; its target untouched",
  async (s) => {
    writeBackup(s, NAME, goodVolumes());
    Deno.mkdirSync(join(s.pgdata, "global"), { recursive: true });
    Deno.symlinkSync("../outside/target", join(s.pgdata, "PG_VERSION"));
    Deno.symlinkSync("../../outside/secret", join(s.pgdata, "global/pg_control"));
    assertOk(await fetchOutsideUnchanged(s, [s.pgdata, NAME, "--force"]));
    assert.deepEqual(tree(s.pgdata), goodTree());
  },
);

fetchTest(
  "backup-fetch: a tablespace_map.wal-d-tmp symlink member does not write outside",
  async (s) => {
    // backup-fetch rewrites the restored tablespace_map through a temporary file named
    // tablespace_map.wal-d-tmp. A volume can hold a symlink by that name (symlinks are data); the
    // rewrite must replace it, never write through it.
    writeBackup(s, NAME, [
      tarStream(
        symlinkMember("tablespace_map.wal-d-tmp", "../outside/target"),
        fileMember("tablespace_map", "16385 /mnt/ts1\n"),
        fileMember("backup_label", "x"),
        fileMember("global/pg_control", "c"),
      ),
    ]);
    const result = await fetchOutsideUnchanged(
      s,
      [s.pgdata, NAME],
      "outside/target was written through the link",
    );
    assert.ok(result.code === 0 || result.code === 1, result.stderr);
    assert.ok(!/CRITICAL/.test(result.stderr), result.stderr);
    if (result.code === 0) {
      assert.ok(Deno.lstatSync(join(s.pgdata, "tablespace_map")).isFile);
    }
  },
);

/** Restored symlinks to a file outside that backup-fetch rewrites: never read through. */
const READ_THROUGH: { name: string; members: Uint8Array[]; args: string[] }[] = [
  {
    // A restored tablespace_map that is a symlink to a file outside must not be followed when
    // backup-fetch rewrites it: each line's first word (a whole line without spaces) would be
    // copied into a log WARNING.
    name: "backup-fetch: a tablespace_map symlink member is not read through",
    members: [
      symlinkMember("tablespace_map", "../outside/secret"),
      fileMember("global/pg_control", "c"),
    ],
    args: ["--blind-restore"],
  },
  {
    // --recover rewrites postgresql.auto.conf keeping its other lines; a restored auto.conf (or
    // postgresql.conf) that is a symlink to a file outside must not have that file's lines
    // copied into the data directory.
    name: "backup-fetch --recover: a postgresql.auto.conf symlink member is not read through",
    members: [
      symlinkMember("postgresql.auto.conf", "../outside/secret"),
      symlinkMember("postgresql.conf", "../outside/target"),
      fileMember("backup_label", "x"),
      fileMember("global/pg_control", PG_CONTROL),
    ],
    args: ["--recover"],
  },
];

for (const { name, members, args } of READ_THROUGH) {
  fetchTest(name, async (s) => {
    // Like /etc/shadow: lines without spaces.
    Deno.writeTextFileSync(join(s.outside, "secret"), "root:$6$very/secret/hash:19000:0:::\n");
    Deno.utimeSync(join(s.outside, "secret"), T0, T0);
    writeBackup(s, NAME, [tarStream(...members)]);
    const result = await fetchOutsideUnchanged(s, [s.pgdata, NAME, ...args]);
    assert.ok(!/CRITICAL/.test(result.stderr), result.stderr);
    assert.ok(!result.stderr.includes("very/secret"), result.stderr);
    for (const [rel, hash] of tree(s.pgdata)) {
      if (hash === "dir" || hash.startsWith("->")) continue;
      assert.ok(
        !Deno.readTextFileSync(join(s.pgdata, rel)).includes("very/secret"),
        `${rel} holds the outside file's content`,
      );
    }
  });
}

Deno.test("backup-fetch: a global/pg_control that is a link member never appears on failure", async () => {
  // pg_control is put in place last so that a failed restore is never startable; a volume that
  // holds it as a hard link or a symlink instead of a file must not get around that.
  for (
    const members of [
      [fileMember("global/real", PG_CONTROL), hardlinkMember("global/pg_control", "global/real")],
      [fileMember("global/real", PG_CONTROL), symlinkMember("global/pg_control", "real")],
    ]
  ) {
    await withScratch(async (s) => {
      writeBackup(s, NAME, [tarStream(dirMember("global/"), ...members)]);
      const result = await s.fetch([s.pgdata, NAME]);
      assert.equal(result.code, 1, result.stderr);
      assertNoControlFile(s);
    });
  }
});

fetchTest("backup-fetch: a backup that is not there leaves no PGDATA behind", async (s) => {
  assertOneError(await s.fetch([s.pgdata, "LATEST"]), /no backups found/);
  assert.ok(!exists(s.pgdata), "PGDATA was created although nothing could be restored");
  writeBackup(s, NAME, goodVolumes());
  assertOneError(await s.fetch([s.pgdata, OLDER]), new RegExp(`no backup named "${OLDER}"`));
  assert.ok(!exists(s.pgdata));
});
