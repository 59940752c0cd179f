/**
 * Safe extraction (src/backup/extract.ts): RestoreTarget + VolumeExtractor on temp directories,
 * fed hand-made tar streams (test/backup/_tar_build.ts) in chunks of awkward sizes so that every
 * state change (header, file data, extended header data, skipped data, padding, end) happens at
 * and across chunk boundaries.
 *
 * Every test works in a fresh `base/` holding `data/` (the data directory), `ts1/` (a tablespace
 * location) and `outside/` (what an attacker aims at: `secret`, `target`, a subdirectory). A
 * refused member must leave everything but `data/` and `ts1/` exactly as it was (names, kinds,
 * modes, times, link counts, contents), and the path the attack aimed at must not exist.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  PG_CONTROL_PARTIAL,
  RestoreTarget,
  type RestoreTargetOptions,
  UnsafeMemberError,
  VolumeExtractor,
  type VolumeExtractSummary,
  WRITE_BUFFER_BYTES,
} from "../../src/backup/extract.ts";
import { encodeTarHeader, type TarEntry, tarHeaderLength } from "../../src/backup/tar.ts";
import { TarFormatError } from "../../src/backup/tar_header.ts";
import { exists, makeScratchDir, sha, snapshot, withCleanup } from "./_restore_scratch.ts";
import {
  concat,
  dirMember,
  fileMember,
  gnuLongMember,
  hardlinkMember,
  member,
  noise,
  padded,
  paxMember,
  rawHeader,
  symlinkMember,
  tarEnd,
  tarStream,
} from "./_tar_build.ts";

const MiB = 1024 * 1024;
const VOLUME = "part_00000000.tar.lzo";
const OID = "16385";
/** Chunk sizes: one byte, around a block, 64 KiB, the whole stream in one view. */
const CHUNKS = [1, 511, 513, 64 * 1024, Infinity];
const T0 = 1_600_000_000;

// ---------------------------------------------------------------------------------------------
// Helpers

interface Env {
  base: string;
  dataDir: string;
  /** A tablespace location (a root when the target is made with tablespaces). */
  ts: string;
  /** What attacks aim at: secret, target, sub/. */
  outside: string;
  cleanup(): Promise<void>;
}

async function makeEnv(): Promise<Env> {
  const { dir: base, outside } = await makeScratchDir("wald-extract-", T0);
  const dataDir = join(base, "data");
  const ts = join(base, "ts1");
  Deno.mkdirSync(dataDir, { mode: 0o700 });
  Deno.mkdirSync(ts, { mode: 0o700 });
  return {
    base,
    dataDir,
    ts,
    outside,
    cleanup: () => Deno.remove(base, { recursive: true }),
  };
}

/** Runs `body` in a fresh environment, removed afterwards. */
const withEnv = (body: (env: Env) => Promise<void>) => withCleanup(makeEnv, body);

/** A test run in a fresh environment. */
const extractTest = (name: string, body: (env: Env) => Promise<void>) =>
  Deno.test(name, () => withEnv(body));

function makeTarget(
  env: Env,
  tablespaces = false,
  options: RestoreTargetOptions = {},
): RestoreTarget {
  return new RestoreTarget({
    dataDir: env.dataDir,
    tablespaces: new Map(tablespaces ? [[OID, env.ts]] : []),
  }, options);
}

/**
 * Feeds `stream` in `chunk`-byte views of one reused buffer (scribbled over once each write
 * resolves, as the caller may reuse it), then ends the volume. On failure the extractor is aborted
 * and the target abandoned, as fetch.ts does.
 */
async function feed(
  target: RestoreTarget,
  stream: Uint8Array,
  chunk: number,
  volume = VOLUME,
): Promise<VolumeExtractSummary> {
  const extractor = new VolumeExtractor(target, volume);
  const size = Math.max(1, Math.min(chunk, stream.length));
  const reused = new Uint8Array(size);
  try {
    for (let at = 0; at < stream.length; at += size) {
      const piece = stream.subarray(at, Math.min(at + size, stream.length));
      const view = reused.subarray(0, piece.length);
      view.set(piece);
      await extractor.write(view);
      view.fill(0xee);
    }
    return await extractor.end();
  } catch (error) {
    await extractor.abort();
    await target.abandon();
    throw error;
  }
}

function outsideSnapshot(env: Env): string[] {
  return snapshot(env.base, [env.dataDir, env.ts]);
}

function modeOf(path: string): number {
  return Deno.lstatSync(path).mode! & 0o7777;
}

function mtimeOf(path: string): number {
  return Deno.lstatSync(path).mtime!.getTime() / 1000;
}

/** Extracts one volume into a new target and finishes it. */
async function restore(
  env: Env,
  stream: Uint8Array,
  chunk = Infinity,
  tablespaces = false,
): Promise<VolumeExtractSummary> {
  const target = makeTarget(env, tablespaces);
  const summary = await feed(target, stream, chunk);
  await target.finish();
  return summary;
}

function encoded(entry: Partial<TarEntry> & { name: string }, data?: Uint8Array): Uint8Array {
  const e: TarEntry = {
    kind: "file",
    size: data?.length ?? 0,
    mode: 0o600,
    uid: 26,
    gid: 26,
    mtime: T0,
    ...entry,
  };
  const header = new Uint8Array(tarHeaderLength(e));
  encodeTarHeader(e, header, 0);
  return concat(header, padded(data ?? new Uint8Array(0)));
}

const text = (s: string) => new TextEncoder().encode(s);

// ---------------------------------------------------------------------------------------------
// What a good volume restores

/** A volume of small members of every kind; `check` verifies what it restored. */
function smallVolume(env: Env) {
  const small = noise(100, 2);
  const paxName = `base/16384/${"p".repeat(120)}/${"q".repeat(150)}`;
  const unicode = "base/données/été ☃.txt";
  const gnuName = `pg_stat/${"g".repeat(180)}`;
  const gnuLink = `../${"l".repeat(150)}`;
  const stream = tarStream(
    dirMember("/", { mode: 0o750, mtime: T0 + 1 }),
    fileMember("PG_VERSION", "17\n", { mode: 0o600, mtime: T0 + 2 }),
    dirMember("base/", { mode: 0o700, mtime: T0 + 3 }),
    dirMember("base/1/", { mode: 0o750, mtime: T0 + 4 }),
    fileMember("base/1/empty", "", { mode: 0o600, mtime: T0 + 5 }),
    fileMember("base/1/small", small, { mode: 0o640, mtime: T0 + 6 }),
    fileMember("base/1/b511", noise(511, 3)),
    fileMember("base/1/b512", noise(512, 4)),
    fileMember("base/1/b513", noise(513, 5)),
    member({ name: "base/1/v7", type: "\0", magic: "v7", mode: 0o600 }, text("v7 file")),
    member({ name: "base/1/contiguous", type: "7", mode: 0o600 }, text("type 7")),
    fileMember("deep/a/b/c", "deep"), // parents without members
    hardlinkMember("base/1/small.link", "base/1/small"),
    symlinkMember("pg_wal", "/nonexistent/wal-disk/pg_wal"),
    symlinkMember("to_secret", "../outside/secret"),
    encoded({ name: paxName }, text("pax long name")),
    encoded({ name: unicode, mode: 0o644 }, text("non-ASCII")),
    encoded({ name: "base/lien", kind: "symlink", linkTarget: `/mnt/${"é".repeat(80)}` }),
    gnuLongMember("L", gnuName),
    member({ name: gnuName.slice(0, 100), magic: "gnu", mode: 0o600 }, text("gnu long name")),
    gnuLongMember("K", gnuLink),
    gnuLongMember("L", `${gnuName}.symlink`),
    symlinkMember(gnuName.slice(0, 100), gnuLink.slice(0, 100), { magic: "gnu" }),
    gnuLongMember("K", gnuName),
    hardlinkMember("pg_stat/gnu.hardlink", gnuName.slice(0, 100), { magic: "gnu" }),
    // PAX overrides: size (the ustar field says 0), fractional mtime, linkpath of a hard link.
    paxMember([["size", "1500"], ["mtime", `${T0 + 7}.75`]]),
    member({ name: "base/1/paxsize", size: 0, mode: 0o600 }, noise(1500, 6)),
    paxMember([["linkpath", "base/1/paxsize"]]),
    hardlinkMember("base/1/paxsize.link", "ignored"),
    // A global header (its path must not rename anything) and a GNU volume label are skipped.
    paxMember([["path", "evil"], ["comment", "global"]], { type: "g" }),
    member({ name: "volume label", type: "V", magic: "gnu" }),
    fileMember("after_global", "x"),
  );
  const check = () => {
    const d = (rel: string) => join(env.dataDir, rel);
    assert.equal(Deno.readTextFileSync(d("PG_VERSION")), "17\n");
    assert.equal(modeOf(d("PG_VERSION")), 0o600);
    assert.equal(mtimeOf(d("PG_VERSION")), T0 + 2);
    assert.equal(Deno.readFileSync(d("base/1/empty")).length, 0);
    assert.equal(mtimeOf(d("base/1/empty")), T0 + 5);
    assert.deepEqual(Deno.readFileSync(d("base/1/small")), small);
    assert.equal(modeOf(d("base/1/small")), 0o640);
    assert.equal(mtimeOf(d("base/1/small")), T0 + 6);
    assert.deepEqual(Deno.readFileSync(d("base/1/b511")), noise(511, 3));
    assert.deepEqual(Deno.readFileSync(d("base/1/b512")), noise(512, 4));
    assert.deepEqual(Deno.readFileSync(d("base/1/b513")), noise(513, 5));
    assert.equal(Deno.readTextFileSync(d("base/1/v7")), "v7 file");
    assert.equal(Deno.readTextFileSync(d("base/1/contiguous")), "type 7");
    assert.equal(Deno.readTextFileSync(d("deep/a/b/c")), "deep");
    assert.equal(modeOf(d("deep/a/b")), 0o700, "implicit parents are made 0700");
    const link = Deno.statSync(d("base/1/small.link"));
    assert.equal(link.ino, Deno.statSync(d("base/1/small")).ino, "a hard link, not a copy");
    assert.equal(link.nlink, 2);
    assert.equal(Deno.readLinkSync(d("pg_wal")), "/nonexistent/wal-disk/pg_wal");
    assert.ok(!exists("/nonexistent/wal-disk"));
    assert.equal(Deno.readLinkSync(d("to_secret")), "../outside/secret");
    assert.equal(Deno.readTextFileSync(d(paxName)), "pax long name");
    assert.equal(Deno.readTextFileSync(d(unicode)), "non-ASCII");
    assert.equal(modeOf(d(unicode)), 0o644);
    assert.equal(Deno.readLinkSync(d("base/lien")), `/mnt/${"é".repeat(80)}`);
    assert.equal(Deno.readTextFileSync(d(gnuName)), "gnu long name");
    assert.equal(Deno.readLinkSync(d(`${gnuName}.symlink`)), gnuLink);
    assert.equal(Deno.statSync(d("pg_stat/gnu.hardlink")).ino, Deno.statSync(d(gnuName)).ino);
    assert.deepEqual(Deno.readFileSync(d("base/1/paxsize")), noise(1500, 6));
    assert.equal(mtimeOf(d("base/1/paxsize")), T0 + 7);
    assert.equal(
      Deno.statSync(d("base/1/paxsize.link")).ino,
      Deno.statSync(d("base/1/paxsize")).ino,
    );
    assert.ok(!exists(d("evil")));
    assert.ok(!exists(d("volume label")));
    assert.equal(Deno.readTextFileSync(d("after_global")), "x");
    assert.ok(!exists(d(gnuName.slice(0, 100))), "the truncated GNU name is not used");
    assert.ok(!exists(d("././@LongLink")) && !exists(d("././@PaxHeader")));
  };
  return {
    stream,
    check,
    members: 24,
    bytes: 3 + 100 + 511 + 512 + 513 + 7 + 6 + 4 + 13 + 9 + 13 + 1500 + 1,
  };
}

for (const chunk of CHUNKS) {
  extractTest(`extract: members of every kind, in ${chunk}-byte chunks`, async (env) => {
    const before = outsideSnapshot(env);
    let reported = 0;
    const target = makeTarget(env, false, { onBytes: (n) => reported += n });
    const volume = smallVolume(env);
    const summary = await feed(target, volume.stream, chunk);
    assert.deepEqual(summary, { members: volume.members, bytes: volume.bytes });
    assert.equal(reported, volume.bytes);
    // Directory modes and times wait for finish() (their contents are still being written).
    assert.equal(modeOf(join(env.dataDir, "base/1")), 0o700);
    assert.equal(modeOf(env.dataDir), 0o700);
    assert.equal(target.controlFileWritten, false);
    await target.finish();
    volume.check();
    assert.equal(modeOf(join(env.dataDir, "base/1")), 0o750);
    assert.equal(mtimeOf(join(env.dataDir, "base/1")), T0 + 4);
    assert.equal(modeOf(join(env.dataDir, "base")), 0o700);
    assert.equal(mtimeOf(join(env.dataDir, "base")), T0 + 3);
    // The root member "/" is the data directory itself.
    assert.equal(modeOf(env.dataDir), 0o750);
    assert.equal(mtimeOf(env.dataDir), T0 + 1);
    // The symlink to outside/secret was created, never followed.
    assert.deepEqual(outsideSnapshot(env), before);
  });
}

Deno.test("extract: files around the 1 MiB write buffer, byte for byte, in every chunk size", async () => {
  const sizes = [
    WRITE_BUFFER_BYTES - 1,
    WRITE_BUFFER_BYTES,
    WRITE_BUFFER_BYTES + 1,
    2 * WRITE_BUFFER_BYTES,
    5 * MiB + 123,
  ];
  assert.equal(WRITE_BUFFER_BYTES, MiB);
  const contents = sizes.map((size, i) => noise(size, 10 + i));
  const stream = tarStream(
    ...contents.flatMap((data, i) => [
      fileMember(`big/f${i}`, data, { mtime: T0 + i, mode: 0o640 }),
      fileMember(`big/s${i}`, `small after ${i}`),
    ]),
  );
  const total = sizes.reduce((a, b) => a + b, 0) + sizes.map((_, i) => `small after ${i}`.length)
    .reduce((a, b) => a + b, 0);
  for (const chunk of [511, 513, 64 * 1024, MiB - 1, MiB + 1, Infinity]) {
    await withEnv(async (env) => {
      const summary = await restore(env, stream, chunk);
      assert.deepEqual(summary, { members: 2 * sizes.length, bytes: total }, `chunk ${chunk}`);
      contents.forEach((data, i) => {
        const path = join(env.dataDir, `big/f${i}`);
        const restored = Deno.readFileSync(path);
        assert.equal(restored.length, data.length, `f${i}, chunk ${chunk}`);
        assert.equal(sha(restored), sha(data), `f${i}, chunk ${chunk}`);
        assert.equal(mtimeOf(path), T0 + i);
        assert.equal(modeOf(path), 0o640);
        assert.equal(Deno.readTextFileSync(join(env.dataDir, `big/s${i}`)), `small after ${i}`);
      });
    });
  }
});

extractTest("extract: a 1 MiB + 1 file fed one byte at a time", async (env) => {
  const data = noise(WRITE_BUFFER_BYTES + 1, 77);
  await restore(env, tarStream(fileMember("f", data), fileMember("g", "next")), 1);
  assert.equal(sha(Deno.readFileSync(join(env.dataDir, "f"))), sha(data));
  assert.equal(Deno.readTextFileSync(join(env.dataDir, "g")), "next");
});

/** Modes are restored exactly (whatever the umask), but never setuid, setgid or sticky bits. */
const MODE_CASES: {
  name: string;
  umask?: number;
  members: Uint8Array[];
  modes: [string, number][];
}[] = [
  {
    // initdb --allow-group-access clusters have 0750 directories and 0640 files; a restore run
    // under a umask of 077 must not turn them into 0600.
    name: "extract: file modes are restored exactly, whatever the umask",
    umask: 0o077,
    members: [
      dirMember("base/", { mode: 0o750 }),
      fileMember("base/group_readable", "x", { mode: 0o640 }),
      fileMember("base/world_readable", "x", { mode: 0o644 }),
    ],
    modes: [["base", 0o750], ["base/group_readable", 0o640], ["base/world_readable", 0o644]],
  },
  {
    name: "extract: setuid, setgid and sticky bits are never restored",
    members: [
      dirMember("d/", { mode: 0o3755 }),
      fileMember("d/suid", "x", { mode: 0o4755 }),
      fileMember("d/sgid", "x", { mode: 0o2750 }),
    ],
    modes: [["d", 0o755], ["d/suid", 0o755], ["d/sgid", 0o750]],
  },
];

for (const { name, umask, members, modes } of MODE_CASES) {
  extractTest(name, async (env) => {
    const previous = umask === undefined ? undefined : Deno.umask(umask);
    try {
      await restore(env, tarStream(...members));
    } finally {
      if (previous !== undefined) Deno.umask(previous);
    }
    for (const [rel, mode] of modes) assert.equal(modeOf(join(env.dataDir, rel)), mode, rel);
  });
}

extractTest(
  "extract: a pre-1970 mtime (PAX, as encodeTarHeader writes it) is restored",
  async (env) => {
    await restore(env, tarStream(encoded({ name: "old", mtime: -86400 }, text("1969"))));
    assert.equal(Deno.readTextFileSync(join(env.dataDir, "old")), "1969");
    assert.equal(mtimeOf(join(env.dataDir, "old")), -86400);
  },
);

Deno.test("extract: global/pg_control is written under a temporary name, renamed by finish()", async () => {
  for (const name of ["global/pg_control", "./global/pg_control", "global//pg_control"]) {
    await withEnv(async (env) => {
      const control = noise(8192, 9);
      const target = makeTarget(env);
      assert.equal(target.controlFileWritten, false);
      await feed(
        target,
        tarStream(dirMember("global/"), fileMember(name, control), fileMember("global/1260", "x")),
        513,
      );
      assert.equal(target.controlFileWritten, true, name);
      assert.ok(!exists(join(env.dataDir, "global/pg_control")), `${name}: not before finish()`);
      assert.deepEqual(Deno.readFileSync(join(env.dataDir, PG_CONTROL_PARTIAL)), control);
      assert.equal(PG_CONTROL_PARTIAL, "global/pg_control.wal-d-partial");
      await target.finish();
      assert.deepEqual(Deno.readFileSync(join(env.dataDir, "global/pg_control")), control);
      assert.ok(!exists(join(env.dataDir, PG_CONTROL_PARTIAL)));
    });
  }
});

extractTest("extract: a failed restore leaves no global/pg_control", async (env) => {
  const target = makeTarget(env);
  await feed(target, tarStream(fileMember("global/pg_control", noise(8192, 1))), Infinity);
  // A second volume fails: finish() is never called.
  await assert.rejects(
    feed(target, tarStream(fileMember("../x", "x")), Infinity, "part_00000001.tar.lzo"),
    UnsafeMemberError,
  );
  assert.equal(target.controlFileWritten, true);
  assert.ok(!exists(join(env.dataDir, "global/pg_control")));
});

extractTest("extract: pg_control of a tablespace is an ordinary file", async (env) => {
  const target = makeTarget(env, true);
  await feed(target, tarStream(fileMember(`pg_tblspc/${OID}/global/pg_control`, "ts")), 1);
  assert.equal(target.controlFileWritten, false);
  assert.equal(Deno.readTextFileSync(join(env.ts, "global/pg_control")), "ts");
});

Deno.test("extract: tablespace members go to their location; pg_tblspc/<oid> itself makes nothing", async () => {
  for (const chunk of [1, 513, Infinity]) {
    await withEnv(async (env) => {
      const before = outsideSnapshot(env);
      const stream = tarStream(
        dirMember("pg_tblspc/"),
        dirMember(`pg_tblspc/${OID}`, { mode: 0o777 }),
        dirMember(`pg_tblspc/${OID}/`, { mode: 0o777 }),
        dirMember(`pg_tblspc/${OID}/PG_17_202406281/`, { mode: 0o700, mtime: T0 + 9 }),
        dirMember(`pg_tblspc/${OID}/PG_17_202406281/5/`),
        fileMember(`pg_tblspc/${OID}/PG_17_202406281/5/16390`, noise(9000, 1)),
        hardlinkMember(
          `pg_tblspc/${OID}/PG_17_202406281/5/16390.link`,
          `pg_tblspc/${OID}/PG_17_202406281/5/16390`,
        ),
        // A tablespace without a root (--blind-restore): restored inside the data directory.
        dirMember("pg_tblspc/16400/"),
        fileMember("pg_tblspc/16400/PG_17_202406281/f", "in place"),
      );
      await restore(env, stream, chunk, true);
      const file = join(env.ts, "PG_17_202406281/5/16390");
      assert.deepEqual(Deno.readFileSync(file), noise(9000, 1));
      assert.equal(Deno.statSync(`${file}.link`).ino, Deno.statSync(file).ino);
      assert.equal(mtimeOf(join(env.ts, "PG_17_202406281")), T0 + 9);
      assert.equal(modeOf(env.ts), 0o700, "the location's own mode is left alone");
      assert.ok(!exists(join(env.dataDir, `pg_tblspc/${OID}`)), "nothing made for the root");
      assert.equal(
        Deno.readTextFileSync(join(env.dataDir, "pg_tblspc/16400/PG_17_202406281/f")),
        "in place",
      );
      assert.deepEqual(outsideSnapshot(env), before);
    });
  }
});

extractTest("extract: symlinks are created as they are and never followed", async (env) => {
  const before = outsideSnapshot(env);
  await restore(
    env,
    tarStream(
      symlinkMember("to_target", join(env.outside, "target")),
      symlinkMember("to_dir", "../outside"),
      // A directory member over a symlink keeps the symlink: no mode or time set through it.
      dirMember("to_dir/", { mode: 0o777, mtime: 12345 }),
      // A file member replaces the symlink; the file it pointed to is left alone.
      fileMember("to_target", "replaced"),
      symlinkMember("dangling", "does/not/exist"),
      symlinkMember("self", "self"),
    ),
    1,
  );
  assert.equal(Deno.readTextFileSync(join(env.dataDir, "to_target")), "replaced");
  assert.ok(Deno.lstatSync(join(env.dataDir, "to_target")).isFile);
  assert.equal(Deno.readLinkSync(join(env.dataDir, "to_dir")), "../outside");
  assert.equal(Deno.readLinkSync(join(env.dataDir, "dangling")), "does/not/exist");
  assert.equal(Deno.readLinkSync(join(env.dataDir, "self")), "self");
  assert.deepEqual(outsideSnapshot(env), before);
});

extractTest("extract: two volumes extracted concurrently into one target", async (env) => {
  const target = makeTarget(env);
  const volumes = [0, 1, 2].map((v) =>
    tarStream(
      dirMember("base/"),
      dirMember("base/1/"),
      ...[0, 1, 2, 3].map((i) => fileMember(`base/1/${v}_${i}`, noise(300_000 + i, v * 10 + i))),
    )
  );
  await Promise.all(volumes.map((stream, v) => feed(target, stream, 4096 + v, `part_${v}`)));
  await target.finish();
  for (const v of [0, 1, 2]) {
    for (const i of [0, 1, 2, 3]) {
      assert.equal(
        sha(Deno.readFileSync(join(env.dataDir, `base/1/${v}_${i}`))),
        sha(noise(300_000 + i, v * 10 + i)),
      );
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Reuse of a non-empty directory (--force)

extractTest("extract (force): existing files are replaced, never written through", async (env) => {
  const d = (rel: string) => join(env.dataDir, rel);
  // Taken first: the hard link below raises outside/secret's link count until it is replaced.
  const before = outsideSnapshot(env);
  Deno.mkdirSync(d("global"));
  Deno.writeTextFileSync(d("plain"), "old content, longer than the new one");
  Deno.symlinkSync("../outside/target", d("f"));
  Deno.symlinkSync(join(env.outside, "target"), d("abs"));
  Deno.symlinkSync("../outside/created-through-link", d("dangling"));
  Deno.linkSync(join(env.outside, "secret"), d("hardlinked")); // shares outside/secret's inode
  Deno.symlinkSync("../../outside/target", d(PG_CONTROL_PARTIAL));
  Deno.symlinkSync("../../outside/secret", d("global/pg_control"));
  Deno.symlinkSync("../outside/target", d("sym"));
  Deno.symlinkSync("../outside/target", d("hl"));
  Deno.writeTextFileSync(d("base_file"), "b");
  await restore(
    env,
    tarStream(
      fileMember("plain", "new"),
      fileMember("f", "member f"),
      fileMember("abs", "member abs"),
      fileMember("dangling", "member dangling"),
      fileMember("hardlinked", "member hardlinked"),
      fileMember("global/pg_control", "control"),
      symlinkMember("sym", "elsewhere"),
      hardlinkMember("hl", "base_file"),
    ),
  );
  for (
    const [rel, content] of [
      ["plain", "new"],
      ["f", "member f"],
      ["abs", "member abs"],
      ["dangling", "member dangling"],
      ["hardlinked", "member hardlinked"],
      ["global/pg_control", "control"],
    ]
  ) {
    assert.ok(Deno.lstatSync(d(rel)).isFile, rel);
    assert.equal(Deno.readTextFileSync(d(rel)), content, rel);
  }
  assert.equal(Deno.readLinkSync(d("sym")), "elsewhere");
  assert.equal(Deno.statSync(d("hl")).ino, Deno.statSync(d("base_file")).ino);
  assert.ok(!exists(d(PG_CONTROL_PARTIAL)));
  assert.ok(!exists(join(env.outside, "created-through-link")));
  assert.deepEqual(outsideSnapshot(env), before);
});

extractTest(
  "extract (force): an existing directory is reused, its mode set at finish()",
  async (env) => {
    Deno.mkdirSync(join(env.dataDir, "base/1"), { recursive: true, mode: 0o755 });
    Deno.writeTextFileSync(join(env.dataDir, "base/1/old"), "kept");
    await restore(
      env,
      tarStream(dirMember("base/", { mode: 0o700 }), fileMember("base/1/new", "n")),
    );
    assert.equal(modeOf(join(env.dataDir, "base")), 0o700);
    assert.equal(Deno.readTextFileSync(join(env.dataDir, "base/1/old")), "kept");
    assert.equal(Deno.readTextFileSync(join(env.dataDir, "base/1/new")), "n");
  },
);

// ---------------------------------------------------------------------------------------------
// Malicious members

type ErrorClass = typeof UnsafeMemberError | typeof TarFormatError;

interface Attack {
  name: string;
  /** Members of the volume (the end blocks are added). */
  members: (env: Env) => Uint8Array[];
  /** Made before the extraction (a pre-existing state of the data directory). */
  setup?: (env: Env) => void;
  /** The target has tablespace 16385 → ts1. */
  tablespaces?: boolean;
  /** The error expected (default UnsafeMemberError); a list: any of them. */
  error?: ErrorClass | ErrorClass[];
  message: RegExp;
  /** Absolute paths the attack aimed at: must not exist afterwards. */
  absent?: (env: Env) => string[];
  /** More checks afterwards. */
  check?: (env: Env) => void;
}

const EVIL = `/etc/wald-extract-test-${crypto.randomUUID()}`;

const ATTACKS: Attack[] = [
  {
    name: "absolute name under /etc",
    members: () => [fileMember(EVIL, "pwned")],
    message: /has an absolute name/,
    absent: () => [EVIL],
  },
  {
    name: "absolute name in the outside directory",
    members: (env) => [fileMember(join(env.outside, "abs"), "pwned")],
    message: /absolute name/,
    absent: (env) => [join(env.outside, "abs")],
  },
  {
    name: "absolute directory name",
    members: (env) => [dirMember(`${env.outside}/newdir/`)],
    message: /absolute name/,
    absent: (env) => [join(env.outside, "newdir")],
  },
  {
    name: "absolute name given by a PAX path over a harmless ustar name",
    members: (
      env,
    ) => [paxMember([["path", join(env.outside, "pax")]]), fileMember("harmless", "x")],
    message: /absolute name/,
    absent: (env) => [join(env.outside, "pax")],
    check: (env) => assert.ok(!exists(join(env.dataDir, "harmless"))),
  },
  {
    name: "'..' component: ../outside/x",
    members: () => [fileMember("../outside/x", "pwned")],
    message: /'\.\.' component/,
    absent: (env) => [join(env.outside, "x")],
  },
  {
    name: "'..' component: a/../../outside/x",
    members: () => [dirMember("a/"), fileMember("a/../../outside/x", "pwned")],
    message: /'\.\.' component/,
    absent: (env) => [join(env.outside, "x")],
  },
  {
    name: "'..' component: ./../outside/x",
    members: () => [fileMember("./../outside/x", "pwned")],
    message: /'\.\.' component/,
    absent: (env) => [join(env.outside, "x")],
  },
  {
    name: "'..' alone as a directory",
    members: () => [dirMember("../", { mode: 0o777 })],
    message: /'\.\.' component/,
  },
  {
    name: "'..' out of a tablespace: pg_tblspc/<oid>/../../x",
    tablespaces: true,
    members: () => [fileMember(`pg_tblspc/${OID}/../../x`, "pwned")],
    message: /'\.\.' component/,
    absent: (env) => [join(env.base, "x"), join(env.ts, "../x")],
  },
  {
    name: "'..' out of a tablespace into outside",
    tablespaces: true,
    members: () => [fileMember(`pg_tblspc/${OID}/../outside/x`, "pwned")],
    message: /'\.\.' component/,
    absent: (env) => [join(env.outside, "x")],
  },
  {
    name: "'..' in a GNU long name",
    members: () => [gnuLongMember("L", "../outside/gnu"), fileMember("short", "pwned")],
    message: /'\.\.' component/,
    absent: (env) => [join(env.outside, "gnu")],
  },
  {
    name: "symlink to ../outside, then a file through it",
    members: () => [symlinkMember("link", "../outside"), fileMember("link/x", "pwned")],
    message: /written through the symlink/,
    absent: (env) => [join(env.outside, "x")],
  },
  {
    name: "symlink to ../outside, then a file through it into an existing subdirectory",
    members: () => [symlinkMember("link", "../outside"), fileMember("link/sub/x", "pwned")],
    message: /written through the symlink/,
    absent: (env) => [join(env.outside, "sub/x")],
  },
  {
    name: "symlink to ../outside, then a file replacing a file there",
    members: () => [symlinkMember("link", "../outside"), fileMember("link/target", "pwned")],
    message: /written through the symlink/,
  },
  {
    name: "symlink to an absolute directory, then a file under it",
    members: (env) => [symlinkMember("abs", env.outside), fileMember("abs/y", "pwned")],
    message: /written through the symlink/,
    absent: (env) => [join(env.outside, "y")],
  },
  {
    name: "symlink to /etc, then a file under it",
    members: () => [symlinkMember("etc", "/etc"), fileMember(`etc/${EVIL.slice(5)}`, "pwned")],
    message: /written through the symlink/,
    absent: () => [EVIL],
  },
  {
    name: "directory symlink, then a directory member under it",
    members: () => [symlinkMember("dlink", "../outside"), dirMember("dlink/newdir/")],
    message: /written through the symlink/,
    absent: (env) => [join(env.outside, "newdir")],
  },
  {
    name: "directory symlink, then a symlink member under it",
    members: () => [symlinkMember("dlink", "../outside"), symlinkMember("dlink/evil", "/etc")],
    message: /written through the symlink/,
    absent: (env) => [join(env.outside, "evil")],
  },
  {
    name: "directory symlink, then a hard link member under it",
    members: () => [
      symlinkMember("dlink", "../outside"),
      fileMember("f", "x"),
      hardlinkMember("dlink/hl", "f"),
    ],
    message: /written through the symlink/,
    absent: (env) => [join(env.outside, "hl")],
  },
  {
    name: "nested: a symlink inside a directory pointing two levels up",
    members: () => [
      dirMember("a/"),
      symlinkMember("a/up", "../../outside"),
      fileMember("a/up/x", "pwned"),
    ],
    message: /written through the symlink/,
    absent: (env) => [join(env.outside, "x")],
  },
  {
    name: "hard link to ../outside/secret",
    members: () => [hardlinkMember("h", "../outside/secret")],
    message: /'\.\.' component/,
    absent: (env) => [join(env.dataDir, "h")],
  },
  {
    name: "hard link to /etc/passwd",
    members: () => [hardlinkMember("h", "/etc/passwd")],
    message: /absolute name/,
    absent: (env) => [join(env.dataDir, "h")],
  },
  {
    name: "hard link to an absolute path outside",
    members: (env) => [hardlinkMember("h", join(env.outside, "secret"))],
    message: /absolute name/,
    absent: (env) => [join(env.dataDir, "h")],
  },
  {
    name: "hard link to outside through a symlink member",
    members: () => [symlinkMember("l", "../outside"), hardlinkMember("h", "l/secret")],
    message: /written through the symlink/,
    absent: (env) => [join(env.dataDir, "h")],
  },
  {
    name: "hard link to a symlink",
    members: () => [symlinkMember("s", "../outside/secret"), hardlinkMember("h", "s")],
    message: /not a restored regular file/,
    absent: (env) => [join(env.dataDir, "h")],
  },
  {
    name: "hard link to a directory",
    members: () => [dirMember("d/"), hardlinkMember("h", "d")],
    message: /not a restored regular file/,
    absent: (env) => [join(env.dataDir, "h")],
  },
  {
    name: "hard link to the data directory itself",
    members: () => [hardlinkMember("h", "/")],
    message: /root directory/,
  },
  {
    name: "hard link to a member not restored",
    members: () => [hardlinkMember("h", "base/1/nothing")],
    message: /not a restored regular file/,
  },
  {
    // A corrupt archive must give a clean refusal (exit 1 at the CLI), not a raw file system
    // error after the member's target was deleted.
    name: "hard link to itself",
    members: () => [fileMember("a", "precious"), hardlinkMember("a", "a")],
    error: [UnsafeMemberError, TarFormatError],
    message: /member "a"/,
  },
  {
    name: "symlink with an empty target",
    members: () => [symlinkMember("s", "")],
    error: [UnsafeMemberError, TarFormatError],
    message: /member "s"/,
  },
  {
    name: "hard link through a PAX linkpath to outside",
    members: () => [paxMember([["linkpath", "../outside/secret"]]), hardlinkMember("h", "ok")],
    message: /'\.\.' component/,
  },
  {
    name: "hard link through a GNU long link to /etc/passwd",
    members: () => [gnuLongMember("K", "/etc/passwd"), hardlinkMember("h", "ok", { magic: "gnu" })],
    message: /absolute name/,
  },
  {
    name: "character device",
    members: () => [member({ name: "tty", type: "3" })],
    message: /character-device/,
    absent: (env) => [join(env.dataDir, "tty")],
  },
  {
    name: "block device",
    members: () => [member({ name: "sda", type: "4" })],
    message: /block-device/,
    absent: (env) => [join(env.dataDir, "sda")],
  },
  {
    name: "fifo",
    members: () => [member({ name: "pipe", type: "6" })],
    message: /fifo/,
    absent: (env) => [join(env.dataDir, "pipe")],
  },
  {
    name: "GNU sparse member ('S')",
    members: () => [member({ name: "sparse", type: "S", magic: "gnu" }, noise(512))],
    message: /'S'/,
    absent: (env) => [join(env.dataDir, "sparse")],
  },
  {
    name: "PAX GNU.sparse.* (sparse format 1.0)",
    members: () => [
      paxMember([["GNU.sparse.major", "1"], ["GNU.sparse.minor", "0"], [
        "GNU.sparse.name",
        "sparse",
      ], ["GNU.sparse.realsize", "1048576"]]),
      fileMember("GNUSparseFile.0/sparse", noise(512)),
    ],
    message: /GNU sparse/,
    absent: (env) => [join(env.dataDir, "GNUSparseFile.0"), join(env.dataDir, "sparse")],
  },
  {
    name: "unknown type flag",
    members: () => [member({ name: "weird", type: "Z" }, noise(100))],
    message: /unknown tar type 'Z'/,
    absent: (env) => [join(env.dataDir, "weird")],
  },
  {
    name: "a file replacing a directory",
    members: () => [dirMember("d/"), fileMember("d/keep", "k"), fileMember("d", "pwned")],
    message: /would replace the directory/,
    check: (env) => assert.equal(Deno.readTextFileSync(join(env.dataDir, "d/keep")), "k"),
  },
  {
    name: "a symlink replacing a directory",
    members: () => [dirMember("d/"), fileMember("d/keep", "k"), symlinkMember("d", "../outside")],
    message: /would replace the directory/,
    check: (env) => {
      assert.ok(Deno.lstatSync(join(env.dataDir, "d")).isDirectory);
      assert.equal(Deno.readTextFileSync(join(env.dataDir, "d/keep")), "k");
    },
  },
  {
    name: "a hard link replacing a directory",
    members: () => [dirMember("d/"), fileMember("f", "x"), hardlinkMember("d", "f")],
    message: /would replace the directory/,
  },
  {
    name: "a directory replacing a file",
    members: () => [fileMember("f", "x"), dirMember("f/")],
    message: /would replace the file/,
  },
  {
    name: "a file under a file",
    members: () => [fileMember("f", "x"), fileMember("f/g", "y")],
    message: /to be a directory/,
  },
  {
    name: "a pre-existing directory replaced by a file",
    setup: (env) => Deno.mkdirSync(join(env.dataDir, "pg_wal")),
    members: () => [fileMember("pg_wal", "x")],
    message: /would replace the directory/,
  },
  {
    name: "a pre-existing symlink evil -> ../outside, member evil/x",
    setup: (env) => Deno.symlinkSync("../outside", join(env.dataDir, "evil")),
    members: () => [fileMember("evil/x", "pwned")],
    message: /written through the symlink/,
    absent: (env) => [join(env.outside, "x")],
  },
  {
    name: "a pre-existing symlink evil -> outside (absolute), member evil/sub/",
    setup: (env) => Deno.symlinkSync(env.outside, join(env.dataDir, "evil")),
    members: () => [dirMember("evil/", { mode: 0o777 }), dirMember("evil/newdir/")],
    message: /written through the symlink/,
    absent: (env) => [join(env.outside, "newdir")],
  },
  {
    name: "a pre-existing symlink global -> ../outside, member global/pg_control",
    setup: (env) => Deno.symlinkSync("../outside", join(env.dataDir, "global")),
    members: () => [fileMember("global/pg_control", "pwned")],
    message: /written through the symlink/,
    absent: (
      env,
    ) => [join(env.outside, "pg_control"), join(env.outside, "pg_control.wal-d-partial")],
  },
  {
    name: "a pre-existing symlink in a tablespace location",
    tablespaces: true,
    setup: (env) => Deno.symlinkSync("../outside", join(env.ts, "PG_17")),
    members: () => [fileMember(`pg_tblspc/${OID}/PG_17/x`, "pwned")],
    message: /written through the symlink/,
    absent: (env) => [join(env.outside, "x")],
  },
  {
    name: "a hard link to outside through a pre-existing symlink",
    setup: (env) => Deno.symlinkSync("../outside", join(env.dataDir, "evil")),
    members: () => [hardlinkMember("h", "evil/secret")],
    message: /written through the symlink/,
    absent: (env) => [join(env.dataDir, "h")],
  },
  {
    name: "a symlink in place of the data directory",
    members: () => [symlinkMember("./", "../outside")],
    message: /in place of a root/,
  },
  {
    name: "a symlink in place of a tablespace root",
    tablespaces: true,
    members: () => [symlinkMember(`pg_tblspc/${OID}`, "../outside")],
    message: /in place of a root/,
  },
  {
    name: "a file in place of a tablespace root",
    tablespaces: true,
    members: () => [fileMember(`pg_tblspc/${OID}`, "x")],
    message: /in place of a root/,
  },
  {
    name: "a file in place of the data directory",
    members: () => [fileMember("/", "x")],
    message: /in place of a root/,
  },
];

const FORMAT_ERRORS: Attack[] = [
  {
    name: "bad header checksum",
    members: () => [fileMember("ok", "x"), rawHeader({ name: "bad", checksum: "bad" })],
    error: TarFormatError,
    message: /checksum mismatch/,
    absent: (env) => [join(env.dataDir, "bad")],
  },
  {
    name: "non-octal size",
    members: () => [rawHeader({ name: "bad", size: "12x\0" })],
    error: TarFormatError,
    message: /size .*octal/,
  },
  {
    name: "a header after one end-of-archive block",
    members: () => [fileMember("ok", "x"), new Uint8Array(512), fileMember("late", "y")],
    error: TarFormatError,
    message: /follows an end-of-archive block/,
    absent: (env) => [join(env.dataDir, "late")],
  },
  {
    name: "an oversize PAX header",
    members: () => [member({ name: "././@PaxHeader", type: "x", size: 1024 * 1024 + 1 })],
    error: TarFormatError,
    message: /implausibly large/,
  },
  {
    name: "an oversize GNU long name",
    members: () => [member({ name: "././@LongLink", type: "L", magic: "gnu", size: 8 * MiB })],
    error: TarFormatError,
    message: /implausibly large/,
  },
  {
    name: "a malformed PAX record",
    members: () => [paxMember(text("99 path=x\n")), fileMember("f", "x")],
    error: TarFormatError,
    message: /malformed PAX record/,
  },
  {
    name: "a name that is not UTF-8",
    members: () => [member({ name: new Uint8Array([0x66, 0xff]) })],
    error: TarFormatError,
    message: /UTF-8/,
  },
];

async function runAttack(attack: Attack, chunk: number): Promise<void> {
  await withEnv(async (env) => {
    attack.setup?.(env);
    const before = outsideSnapshot(env);
    const target = makeTarget(env, attack.tablespaces ?? false);
    const stream = tarStream(...attack.members(env));
    await assert.rejects(feed(target, stream, chunk), (error: unknown) => {
      const expected = [attack.error ?? UnsafeMemberError].flat();
      assert.ok(
        expected.some((e) => error instanceof e),
        `${attack.name}: expected ${expected.map((e) => e.name).join(" or ")}, got ${
          (error as Error)?.stack ?? error
        }`,
      );
      assert.match((error as Error).message, attack.message, attack.name);
      assert.ok((error as Error).message.startsWith(`${VOLUME}: `), (error as Error).message);
      return true;
    });
    assert.deepEqual(outsideSnapshot(env), before, `${attack.name}: something changed outside`);
    for (const path of attack.absent?.(env) ?? []) {
      assert.ok(!exists(path), `${attack.name}: ${path} was created`);
    }
    attack.check?.(env);
  });
}

/** Each list of refusals, under the title its tests are named with. */
const REFUSALS: [string, Attack[]][] = [
  ["extract refuses", ATTACKS],
  ["extract: corrupt volume", FORMAT_ERRORS],
];

for (const [title, attacks] of REFUSALS) {
  for (const attack of attacks) {
    Deno.test(`${title}: ${attack.name}`, async () => {
      for (const chunk of [1, 513, Infinity]) await runAttack(attack, chunk);
    });
  }
}

extractTest("extract refuses: the member is named in the message", async (env) => {
  await assert.rejects(
    feed(makeTarget(env), tarStream(fileMember("../outside/x", "x")), Infinity, "part_7"),
    { name: "UnsafeMemberError", message: `part_7: member "../outside/x" has a '..' component` },
  );
});

extractTest(
  "extract: a symlink member pointing outside, followed by no member through it, is data",
  async (env) => {
    // The attack needs a second member; a lone link is what pg_wal links are.
    const before = outsideSnapshot(env);
    await restore(env, tarStream(symlinkMember("link", "../outside")));
    assert.equal(Deno.readLinkSync(join(env.dataDir, "link")), "../outside");
    assert.deepEqual(outsideSnapshot(env), before);
  },
);

// ---------------------------------------------------------------------------------------------
// Truncated volumes

const TRUNCATIONS: [string, () => Uint8Array][] = [
  ["mid-header", () => rawHeader({ name: "f", size: 10 }).subarray(0, 100)],
  ["after a header, before its data", () => rawHeader({ name: "f", size: 10 })],
  ["mid-data", () => fileMember("f", noise(1000)).subarray(0, 512 + 500)],
  ["mid-data of a file over 1 MiB", () => fileMember("f", noise(3 * MiB)).subarray(0, 2 * MiB)],
  ["mid-padding", () => fileMember("f", noise(100)).subarray(0, 512 + 300)],
  ["mid-PAX data", () => paxMember([["path", "x".repeat(600)]]).subarray(0, 512 + 200)],
  ["mid-PAX padding", () => {
    const m = paxMember([["path", "x".repeat(100)]]);
    return m.subarray(0, m.length - 10);
  }],
  ["mid-GNU long name", () => gnuLongMember("L", "y".repeat(700)).subarray(0, 700)],
  [
    "mid-skipped data (directory with a size)",
    () => member({ name: "d/", type: "5", size: 1000 }).subarray(0, 900),
  ],
];

for (const [what, stream] of TRUNCATIONS) {
  Deno.test(`extract: a volume truncated ${what}: end() throws TarFormatError`, async () => {
    for (const chunk of [1, 511, Infinity]) {
      if (chunk === 1 && stream().length > MiB) continue;
      await withEnv(async (env) => {
        const target = makeTarget(env);
        await assert.rejects(feed(target, concat(fileMember("first", "ok"), stream()), chunk), (
          error: unknown,
        ) => {
          assert.ok(error instanceof TarFormatError, `${what}: ${error}`);
          assert.match(error.message, /part_00000000\.tar\.lzo: .*truncated/);
          return true;
        });
      });
    }
  });
}

extractTest(
  "extract: complete members without end blocks are accepted; garbage after the end is ignored",
  async (env) => {
    const target = makeTarget(env);
    assert.deepEqual(await feed(target, fileMember("a", "1"), 7), { members: 1, bytes: 1 });
    const afterEnd = concat(
      fileMember("b", "2"),
      tarEnd(1024),
      fileMember("late", "3"),
      noise(700),
    );
    assert.deepEqual(await feed(target, afterEnd, 100), { members: 1, bytes: 1 });
    assert.deepEqual(await feed(target, new Uint8Array(0), 1), { members: 0, bytes: 0 });
    await target.finish();
    assert.ok(!exists(join(env.dataDir, "late")));
    assert.equal(Deno.readTextFileSync(join(env.dataDir, "b")), "2");
  },
);
