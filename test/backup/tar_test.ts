import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import tarStream from "tar-stream";
import {
  encodeTarHeader,
  TAR_BLOCK_SIZE,
  TAR_RECORD_SIZE,
  tarEndLength,
  type TarEntry,
  tarHeaderLength,
  tarPaddingLength,
} from "../../src/backup/tar.ts";
import {
  type MemoryMember,
  TarVolumeReader,
  type TarVolumeReaderOptions,
  type VolumeMember,
} from "../../src/backup/tar_reader.ts";
import { walkCluster } from "../../src/backup/walk.ts";
import { concatBytes } from "../../src/io/bytes.ts";
import { noise } from "./_tar_build.ts";
import { build, projectModule, run, runModuleAsPgUser, withTempDir } from "./_tree.ts";

// ---------------------------------------------------------------------------------------------
// Helpers

/** A test run in a fresh temporary directory, removed afterwards. */
const treeTest = (name: string, body: (root: string) => Promise<void>) =>
  Deno.test(name, () => withTempDir("wald-tar-", body));

/**
 * Reads a whole volume through one reused buffer of `bufferSize`, checking the read contract:
 * every read but the last fills the buffer, then 0.
 */
async function readVolume(
  members: readonly VolumeMember[],
  bufferSize = 256 * 1024,
  options: TarVolumeReaderOptions = {},
): Promise<{ tar: Uint8Array; reader: TarVolumeReader }> {
  const reader = new TarVolumeReader(members, options);
  const buffer = new Uint8Array(bufferSize);
  const parts: Uint8Array[] = [];
  for (;;) {
    const n = await reader.read(buffer);
    if (n > 0) parts.push(buffer.slice(0, n));
    if (n < buffer.length) break;
  }
  assert.equal(await reader.read(buffer), 0, "a read after the end returns 0");
  reader.close();
  const tar = concatBytes(parts);
  assert.equal(tar.length % TAR_RECORD_SIZE, 0, "padded to a multiple of 10240");
  assert.equal(reader.position, tar.length);
  return { tar, reader };
}

interface ParsedEntry {
  name: string;
  type: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname: string | null;
  pax: Record<string, string> | null;
  data: Uint8Array;
}

/** Every entry of `tar`, as npm's tar-stream reads it. */
async function readWithTarStream(tar: Uint8Array): Promise<ParsedEntry[]> {
  const extract = tarStream.extract();
  const entries: ParsedEntry[] = [];
  const done = new Promise<void>((resolve, reject) => {
    extract.on("entry", (header, stream, next) => {
      const chunks: Uint8Array[] = [];
      stream.on("data", (chunk: unknown) => chunks.push(new Uint8Array(chunk as Uint8Array)));
      stream.on("end", () => {
        entries.push({
          name: header.name,
          type: header.type,
          size: header.size,
          mode: header.mode,
          uid: header.uid,
          gid: header.gid,
          mtime: header.mtime.getTime() / 1000,
          linkname: header.linkname,
          pax: (header.pax ?? null) as Record<string, string> | null,
          data: concatBytes(chunks),
        });
        next();
      });
      stream.resume();
    });
    extract.on("finish", resolve);
    extract.on("error", reject);
  });
  extract.end(Buffer.from(tar.buffer, tar.byteOffset, tar.length));
  await done;
  return entries;
}

/** Python's tarfile (WAL-E's reader) on `path`, or null when python3 is missing. */
async function readWithPython(path: string): Promise<unknown[] | null> {
  const script = `
import json, sys, tarfile
out = []
with tarfile.open(sys.argv[1], "r|") as t:
    for m in t:
        data = t.extractfile(m).read() if m.isfile() else b""
        out.append([m.name, m.type.decode(), m.size, m.mode, m.uid, m.gid, int(m.mtime),
                    m.linkname, len(data)])
print(json.dumps(out))
`;
  try {
    const { stdout } = await run(["python3", "-c", script, path]);
    return JSON.parse(stdout);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

const TAR_TYPE: Record<string, string> = {
  file: "file",
  directory: "directory",
  symlink: "symlink",
  hardlink: "link",
};

// ---------------------------------------------------------------------------------------------
// Headers

function entry(fields: Partial<TarEntry> & { name: string }): TarEntry {
  return {
    kind: "file",
    size: 0,
    mode: 0o600,
    uid: 26,
    gid: 26,
    mtime: 1_700_000_000,
    ...fields,
  };
}

/** The header bytes of `e` followed by its (zero) data and the end of an archive. */
function headerOnlyArchive(e: TarEntry): Uint8Array {
  const length = tarHeaderLength(e);
  const size = e.kind === "file" ? e.size : 0;
  assert.ok(size < 1 << 20);
  const out = new Uint8Array(length + size + tarPaddingLength(size) + tarEndLength(0) + 10240);
  assert.equal(encodeTarHeader(e, out, 0), length);
  const used = length + size + tarPaddingLength(size);
  return out.subarray(0, used + tarEndLength(used));
}

Deno.test("tar: ustar fields, name splitting and when a PAX header is added", async () => {
  const name100 = `${"a".repeat(50)}/${"b".repeat(49)}`;
  const split = `${"p".repeat(150)}/${"n".repeat(100)}`; // 251 bytes: prefix 150 + name 100
  const splitDir = `${"p".repeat(155)}/${"n".repeat(99)}/`; // 256 bytes with the trailing '/'
  const unsplittable = `${"x".repeat(101)}`; // no '/' to split at
  const long = `${"d/".repeat(150)}file`; // 304 bytes
  const cases: [TarEntry, number, Record<string, string> | null][] = [
    [entry({ name: "short" }), 512, null],
    [entry({ name: name100 }), 512, null],
    [entry({ name: split }), 512, null],
    [entry({ name: splitDir, kind: "directory" }), 512, null],
    [entry({ name: unsplittable }), 1536, { path: unsplittable }],
    [entry({ name: long }), 1536, { path: long }],
    [entry({ name: "été/données", size: 3 }), 1536, { path: "été/données" }],
    [entry({ name: "l", kind: "symlink", linkTarget: "t".repeat(100) }), 512, null],
    [
      entry({ name: "l", kind: "symlink", linkTarget: `/${"t".repeat(100)}` }),
      1536,
      { linkpath: `/${"t".repeat(100)}` },
    ],
    [entry({ name: "h", kind: "hardlink", linkTarget: "目標" }), 1536, { linkpath: "目標" }],
    [entry({ name: "big-uid", uid: 0o7777777 }), 512, null],
    [
      entry({ name: "big-ids", uid: 0o10000000, gid: 4_000_000_000 }),
      1536,
      { uid: String(0o10000000), gid: "4000000000" },
    ],
    [entry({ name: "old", mtime: -1.5 }), 1536, { mtime: "-1.5" }],
    [entry({ name: "frac", mtime: 1_700_000_000.75 }), 512, null],
  ];
  for (const [e, length, pax] of cases) {
    assert.equal(tarHeaderLength(e), length, e.name);
    const [parsed] = await readWithTarStream(headerOnlyArchive(e));
    const expectedName = e.name;
    assert.equal(parsed.name, expectedName);
    assert.equal(parsed.type, TAR_TYPE[e.kind]);
    assert.equal(parsed.mode, e.mode);
    assert.equal(parsed.linkname ?? "", e.linkTarget ?? "");
    if (pax === null) {
      assert.equal(parsed.pax, null, e.name);
      assert.equal(parsed.uid, e.uid);
      assert.equal(parsed.gid, e.gid);
      assert.equal(parsed.mtime, Math.floor(e.mtime));
    } else assert.deepEqual(parsed.pax, pax, e.name);
  }
});

Deno.test("tar: sizes of 8 GiB and more go in a PAX record", async () => {
  const e = entry({ name: "huge", size: 8 * 1024 ** 3 });
  assert.equal(tarHeaderLength(e), 1536);
  const header = new Uint8Array(1536);
  encodeTarHeader(e, header, 0);
  // tar-stream reports an entry as soon as its header is parsed; its data need not follow.
  const extract = tarStream.extract();
  const parsed = await new Promise<{ size: number; pax: unknown }>((resolve, reject) => {
    extract.on("entry", (h) => {
      resolve({ size: h.size, pax: h.pax });
      extract.destroy();
    });
    extract.on("error", reject);
    extract.write(Buffer.from(header));
  });
  assert.equal(parsed.size, 8 * 1024 ** 3);
  assert.deepEqual(parsed.pax, { size: String(8 * 1024 ** 3) });
  const ustarSize = new TextDecoder().decode(header.subarray(1024 + 124, 1024 + 135));
  assert.equal(ustarSize, "00000000000");
  assert.equal(tarHeaderLength(entry({ name: "under", size: 8 * 1024 ** 3 - 1 })), 512);
});

Deno.test("tar: headers are written at an offset, never past their length", () => {
  const buffer = new Uint8Array(4096).fill(0xee);
  const e = entry({ name: `${"q".repeat(300)}`, size: 5 });
  const n = encodeTarHeader(e, buffer, 1000);
  assert.equal(n, 1536);
  assert.ok(buffer.subarray(0, 1000).every((b) => b === 0xee));
  assert.ok(buffer.subarray(1000 + n).every((b) => b === 0xee));
  assert.throws(() => encodeTarHeader(e, buffer, 4096 - 1535), RangeError);
  assert.equal(new TextDecoder().decode(buffer.subarray(1000 + 257, 1000 + 265)), "ustar\u000000");
  assert.equal(buffer[1000 + 156], 0x78); // 'x'
  assert.equal(buffer[1000 + 1024 + 156], 0x30); // '0'
  assert.equal(tarPaddingLength(0), 0);
  assert.equal(tarPaddingLength(1), 511);
  assert.equal(tarPaddingLength(512), 0);
  assert.equal(tarEndLength(0), TAR_RECORD_SIZE);
  assert.equal(tarEndLength(512), TAR_RECORD_SIZE - 512);
  assert.equal(tarEndLength(TAR_RECORD_SIZE - 1024), 1024);
  assert.equal(tarEndLength(TAR_RECORD_SIZE - 512), 1024 + TAR_RECORD_SIZE - 512);
  assert.equal(TAR_BLOCK_SIZE, 512);
});

// ---------------------------------------------------------------------------------------------
// Volumes of a real tree

/** A tree with every kind of member, long and non-ASCII names, and data of awkward sizes. */
async function sampleTree(pgdata: string): Promise<void> {
  const deepDir = `${"d".repeat(120)}/${"e".repeat(140)}`;
  await build(pgdata, {
    "PG_VERSION": "16\n",
    "postgresql.conf": "shared_buffers = 128MB\n",
    "base/1/112": noise(8192, 1),
    "base/1/113": noise(8192 * 3 + 17, 2),
    "base/1/114": noise(1, 3),
    "base/1/empty": "",
    "base/1/big": noise(100_000, 4),
    [`${deepDir}/${"f".repeat(200)}`]: noise(1000, 5),
    [`${"g".repeat(99)}/h`]: "name of 101 bytes",
    "données/été.conf": "accents",
    "日本/テーブル": noise(513, 6),
    "pg_wal/000000010000000000000001": "excluded",
    "link.conf": { symlink: "postgresql.conf" },
    "long.link": { symlink: `/${"l".repeat(150)}/target` },
    "dir.link": { symlink: "/usr" },
  });
  await Deno.link(`${pgdata}/base/1/113`, `${pgdata}/hard`);
  await Deno.chmod(pgdata, 0o700);
  await Deno.chmod(`${pgdata}/base/1/112`, 0o640);
  await Deno.chmod(`${pgdata}/PG_VERSION`, 0o400);
  await Deno.utime(`${pgdata}/base/1/113`, 1_500_000_000, 1_500_000_000.5);
  await Deno.chown(`${pgdata}/base/1/114`, 4242, 4343).catch(() => {}); // as root only
}

treeTest(
  "tar: volumes of a tree read back by GNU tar, tar-stream and Python's tarfile",
  async (root) => {
    const pgdata = `${root}/data`;
    await sampleTree(pgdata);
    const { members } = await walkCluster(pgdata);
    assert.ok(members.some((m) => m.kind === "hardlink"));

    let diskBytes = 0;
    let announced = 0;
    const { tar, reader } = await readVolume(members, 256 * 1024, {
      onBytes: (n) => diskBytes += n,
      beforeRead: (n) => {
        announced += n;
        return Promise.resolve();
      },
    });
    const fileBytes = members.reduce((n, m) => n + m.size, 0);
    assert.equal(reader.expandedBytes, fileBytes);
    assert.equal(reader.membersWritten, members.length);
    assert.equal(diskBytes, fileBytes);
    assert.equal(announced, fileBytes);
    // The same bytes whatever the buffer size, also sizes that split headers and blocks.
    for (const size of [7, 511, 512, 1000, 4096, 65536 + 3]) {
      const other = await readVolume(members, size);
      assert.deepEqual(other.tar, tar, `buffer of ${size}`);
    }

    const tarPath = `${root}/volume.tar`;
    await Deno.writeFile(tarPath, tar);

    // GNU tar: lists every member, and extracts the same bytes, modes, times and links.
    const listing = (await run(["tar", "--numeric-owner", "-tvf", tarPath])).stdout.trim()
      .split("\n");
    assert.equal(listing.length, members.length);
    for (const [i, m] of members.entries()) {
      assert.ok(listing[i].includes(m.name), `${listing[i]} names ${m.name}`);
      assert.ok(listing[i].includes(` ${m.uid}/${m.gid} `), listing[i]);
    }
    const out = `${root}/out`;
    await Deno.mkdir(out);
    await run(["tar", "-xf", tarPath, "-C", out]);
    for (const m of members) {
      const path = m.name === "/" ? out : `${out}/${m.name}`;
      const info = await Deno.lstat(path);
      assert.equal((info.mode ?? 0) & 0o7777, m.mode, `mode of ${m.name}`);
      if (Deno.uid() === 0) assert.equal(info.uid, m.uid, `uid of ${m.name}`);
      if (m.kind === "file" || m.kind === "hardlink") {
        const original = await Deno.readFile(m.path);
        assert.deepEqual(await Deno.readFile(path), original, m.name);
        assert.equal(info.mtime!.getTime() / 1000, Math.floor(m.mtime), `mtime of ${m.name}`);
      }
      if (m.kind === "symlink") assert.equal(await Deno.readLink(path), m.linkTarget);
      if (m.kind === "hardlink") {
        assert.equal(info.ino, (await Deno.lstat(`${out}/${m.linkTarget}`)).ino, m.name);
      }
      if (m.kind === "directory" && m.name !== "/") {
        assert.equal(info.mtime!.getTime() / 1000, Math.floor(m.mtime), `mtime of ${m.name}`);
      }
    }

    // tar-stream.
    const parsed = await readWithTarStream(tar);
    assert.deepEqual(
      parsed.map((e) => [e.name, e.type, e.size, e.mode, e.uid, e.gid, e.mtime, e.linkname]),
      members.map((m) => [
        m.name,
        TAR_TYPE[m.kind],
        m.size,
        m.mode,
        m.uid,
        m.gid,
        Math.floor(m.mtime),
        m.linkTarget ?? null,
      ]),
    );
    for (const [i, m] of members.entries()) {
      if (m.kind === "file") assert.deepEqual(parsed[i].data, await Deno.readFile(m.path));
    }

    // Python's tarfile, which WAL-E extracts with. It strips directories' trailing '/'.
    const python = await readWithPython(tarPath);
    if (python === null) console.log("python3 is missing: Python's tarfile is not checked");
    else {
      const TYPE: Record<string, string> = {
        file: "0",
        directory: "5",
        symlink: "2",
        hardlink: "1",
      };
      assert.deepEqual(
        python,
        members.map((m) => [
          m.name === "/" ? "" : m.name.replace(/\/$/, ""),
          TYPE[m.kind],
          m.size,
          m.mode,
          m.uid,
          m.gid,
          Math.floor(m.mtime),
          m.linkTarget ?? "",
          m.size,
        ]),
      );
    }
  },
);

treeTest("tar: in-memory members, and large ids read back by GNU tar", async (root) => {
  await build(root, { "data/global/1260": noise(9000, 7) });
  const { members } = await walkCluster(`${root}/data`);
  const label = new TextEncoder().encode("START WAL LOCATION: 0/2000028\n");
  const control = noise(8192, 8);
  const memory = (name: string, data: Uint8Array, uid = 26): MemoryMember => ({
    kind: "data",
    name,
    data,
    mode: 0o600,
    uid,
    gid: uid,
    mtime: 1_700_000_123,
  });
  const all: VolumeMember[] = [
    ...members,
    memory("backup_label", label),
    memory("tablespace_map", new Uint8Array(0)),
    memory("global/pg_control", control, 5_000_000),
  ];
  const { tar, reader } = await readVolume(all, 256 * 1024);
  assert.equal(reader.expandedBytes, 9000 + label.length + 8192);
  for (const size of [3, 512, 700]) assert.deepEqual((await readVolume(all, size)).tar, tar);
  const parsed = await readWithTarStream(tar);
  assert.deepEqual(parsed.at(-3)!.data, label);
  assert.equal(parsed.at(-2)!.size, 0);
  assert.deepEqual(parsed.at(-1)!.data, control);
  assert.deepEqual(parsed.at(-1)!.pax, { uid: "5000000", gid: "5000000" });

  const tarPath = `${root}/v.tar`;
  await Deno.writeFile(tarPath, tar);
  const listing = (await run(["tar", "--numeric-owner", "-tvf", tarPath])).stdout;
  assert.match(
    listing,
    /-rw------- 5000000\/5000000 +8192 2023-11-14 22:\d\d global\/pg_control/,
  );
  const out = `${root}/out`;
  await Deno.mkdir(out);
  await run(["tar", "-xf", tarPath, "-C", out]);
  assert.deepEqual(await Deno.readFile(`${out}/global/pg_control`), control);
  assert.deepEqual(await Deno.readFile(`${out}/backup_label`), label);
});

// ---------------------------------------------------------------------------------------------
// Files changing during the backup

for (const [how, syncReadMaxBytes] of [["synchronous", undefined], ["asynchronous", 0]] as const) {
  Deno.test(`tar: files that grow, shrink or vanish after the walk (WAL-E §3.7), ${how} reads`, () =>
    growShrinkVanish(syncReadMaxBytes));
}

function growShrinkVanish(syncReadMaxBytes: number | undefined): Promise<void> {
  return withTempDir("wald-tar-", async (root) => {
    const pgdata = `${root}/data`;
    const a = noise(10_000, 11);
    const b = noise(10_000, 12);
    const d = noise(3000, 14);
    await build(pgdata, { a, b, c: noise(100, 13), d, e: noise(50, 15) });
    const { members } = await walkCluster(pgdata);
    assert.deepEqual(members.map((m) => m.name), ["/", "a", "b", "c", "d", "e"]);
    // e grows before it is opened: its header records the size at open time.
    await Deno.writeFile(`${pgdata}/e`, noise(70, 16));

    const skipped: [string, string][] = [];
    const shrank: [string, number, number][] = [];
    const acted = new Set<number>();
    const options: TarVolumeReaderOptions = {
      syncReadMaxBytes,
      onMemberSkipped: (m, reason) => skipped.push([m.name, reason]),
      onMemberShrank: (m, recorded, read) => shrank.push([m.name, recorded, read]),
      beforeRead: async () => {
        const current = reader.membersWritten; // "/" is 1, a is 2, b is 3
        if (acted.has(current)) return;
        acted.add(current);
        if (current === 2) {
          const file = await Deno.open(`${pgdata}/a`, { append: true });
          await file.write(noise(5000, 99)); // a grows after its header: cut to 10000
          file.close();
        }
        if (current === 3) {
          await Deno.truncate(`${pgdata}/b`, 3000); // b shrinks after its header: NUL-padded
          await Deno.remove(`${pgdata}/c`); // c vanishes before it is opened: skipped
        }
      },
    };
    const reader = new TarVolumeReader(members, options);
    const buffer = new Uint8Array(4096);
    const parts: Uint8Array[] = [];
    for (;;) {
      const n = await reader.read(buffer);
      parts.push(buffer.slice(0, n));
      if (n < buffer.length) break;
    }
    const tar = concatBytes(parts);
    assert.deepEqual(skipped, [["c", "vanished before it was read"]]);
    assert.deepEqual(shrank, [["b", 10_000, 3000]]);
    assert.equal(reader.membersWritten, 5);
    assert.equal(reader.expandedBytes, 10_000 + 10_000 + 3000 + 70);

    const parsed = await readWithTarStream(tar);
    assert.deepEqual(parsed.map((e) => e.name), ["/", "a", "b", "d", "e"]);
    assert.deepEqual(parsed[1].data, a);
    const bExpected = new Uint8Array(10_000);
    bExpected.set(b.subarray(0, 3000));
    assert.deepEqual(parsed[2].data, bExpected);
    assert.deepEqual(parsed[3].data, d);
    assert.deepEqual(parsed[4].data, noise(70, 16));
    const tarPath = `${root}/v.tar`;
    await Deno.writeFile(tarPath, tar);
    await run(["tar", "-tf", tarPath]);
  });
}

treeTest("tar: a hard link whose target vanished stores its own bytes instead", async (root) => {
  const pgdata = `${root}/data`;
  const data = noise(2000, 21);
  await build(pgdata, { a: data });
  await Deno.link(`${pgdata}/a`, `${pgdata}/b`);
  await Deno.link(`${pgdata}/a`, `${pgdata}/c`);
  const { members } = await walkCluster(pgdata);
  assert.deepEqual(members.map((m) => [m.name, m.kind]), [
    ["/", "directory"],
    ["a", "file"],
    ["b", "hardlink"],
    ["c", "hardlink"],
  ]);
  await Deno.remove(`${pgdata}/a`);
  const skipped: string[] = [];
  const { tar } = await readVolume(members, 1024, {
    onMemberSkipped: (m) => skipped.push(m.name),
  });
  assert.deepEqual(skipped, ["a"]);
  const parsed = await readWithTarStream(tar);
  assert.deepEqual(parsed.map((e) => [e.name, e.type, e.linkname]), [
    ["/", "directory", null],
    ["b", "file", null],
    ["c", "link", "b"],
  ]);
  assert.deepEqual(parsed[1].data, data);
});

treeTest("tar: at most one file is open at a time, and close() releases it", async (root) => {
  const pgdata = `${root}/data`;
  const nodes: Record<string, Uint8Array> = {};
  for (let i = 0; i < 20; i++) nodes[`f${i}`] = noise(3000 + i * 700, 30 + i);
  await build(pgdata, nodes);
  const { members } = await walkCluster(pgdata);
  // /proc/self/fd needs --allow-all in Deno; ls reads this process's table just as well.
  const openUnder = async () => {
    const { stdout } = await run(["ls", "-l", `/proc/${Deno.pid}/fd`]);
    return stdout.split("\n").filter((line) => line.includes(`${pgdata}/`)).length;
  };
  let most = 0;
  const reader = new TarVolumeReader(members, {
    syncReadMaxBytes: 4000, // some files read synchronously, some not
    beforeRead: async () => {
      most = Math.max(most, await openUnder());
    },
  });
  const buffer = new Uint8Array(1000);
  for (let i = 0; i < 10; i++) await reader.read(buffer);
  assert.equal(most, 1);
  assert.equal(await openUnder(), 1);
  reader.close();
  assert.equal(await openUnder(), 0);
  assert.equal(await reader.read(buffer), 0);
});

treeTest("tar: a member that is no longer a regular file is skipped", async (root) => {
  const pgdata = `${root}/data`;
  await build(pgdata, { a: "x", b: "y" });
  const { members } = await walkCluster(pgdata);
  await Deno.remove(`${pgdata}/a`);
  await Deno.mkdir(`${pgdata}/a`);
  const skipped: [string, string][] = [];
  const { tar } = await readVolume(members, 512, {
    onMemberSkipped: (m, reason) => skipped.push([m.name, reason]),
  });
  assert.deepEqual(skipped, [["a", "no longer a regular file"]]);
  assert.deepEqual((await readWithTarStream(tar)).map((e) => e.name), ["/", "b"]);
});

Deno.test("tar: an empty member list is just the end of the archive", async () => {
  const { tar, reader } = await readVolume([], 4096);
  assert.deepEqual(tar, new Uint8Array(TAR_RECORD_SIZE));
  assert.equal(reader.membersWritten, 0);
});

treeTest("tar: permission denied on a file is a UserError naming it", async (root) => {
  await Deno.chmod(root, 0o755);
  const pgdata = `${root}/data`;
  await build(pgdata, { "base/1/112": "readable", "base/1/113": "secret" });
  for (const dir of [pgdata, `${pgdata}/base`, `${pgdata}/base/1`]) await Deno.chmod(dir, 0o755);
  await Deno.chmod(`${pgdata}/base/1/112`, 0o644);
  await Deno.chmod(`${pgdata}/base/1/113`, 0o000);
  const result = await runModuleAsPgUser(
    root,
    `import { walkCluster } from ${JSON.stringify(projectModule("src/backup/walk.ts"))};
import { TarVolumeReader } from ${JSON.stringify(projectModule("src/backup/tar_reader.ts"))};
const { members } = await walkCluster(${JSON.stringify(pgdata)});
const reader = new TarVolumeReader(members);
const buffer = new Uint8Array(256 * 1024);
try {
  while (await reader.read(buffer) === buffer.length);
  console.log(JSON.stringify({ ok: true }));
} catch (error) {
  console.log(JSON.stringify({ name: error.name, message: error.message, hint: error.hint }));
}
`,
  ) as { name: string; message: string; hint: string };
  assert.equal(result.name, "UserError", JSON.stringify(result));
  assert.equal(result.message, `permission denied reading ${pgdata}/base/1/113`);
  assert.match(result.hint, /PostgreSQL OS user/);
});
