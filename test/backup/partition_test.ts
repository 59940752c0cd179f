import assert from "node:assert/strict";
import { UserError } from "../../src/cli/errors.ts";
import {
  PARTITION_MAX_BYTES,
  PARTITION_MAX_MEMBERS,
  partitionMembers,
} from "../../src/backup/partition.ts";
import type { ClusterMember, ClusterMemberKind } from "../../src/backup/walk.ts";

let nextIno = 1;

function member(name: string, size = 0, kind?: ClusterMemberKind, link?: string): ClusterMember {
  const k = kind ?? (name.endsWith("/") ? "directory" : "file");
  const m: ClusterMember = {
    name,
    path: `/pgdata/${name}`,
    kind: k,
    size: k === "file" ? size : 0,
    mode: 0o600,
    uid: 26,
    gid: 26,
    mtime: 1_700_000_000,
    dev: 1,
    ino: nextIno++,
  };
  if (link !== undefined) m.linkTarget = link;
  return m;
}

function shape(members: readonly ClusterMember[], options = {}) {
  return partitionMembers(members, options).map((p) => p.members.map((m) => m.name));
}

Deno.test("partition: WAL-E's limits", () => {
  assert.equal(PARTITION_MAX_BYTES, 1610612736);
  assert.equal(PARTITION_MAX_MEMBERS, 6144);
});

Deno.test("partition: a new volume when bytes_so_far + size >= the byte limit", () => {
  const members = [
    member("/"),
    member("a", 40),
    member("b", 59), // 99 < 100: same volume
    member("c", 1), // 99 + 1 >= 100: next volume
    member("d/"),
    member("d/e", 100), // a file of exactly the limit fills a volume of its own
    member("f", 0), // 100 + 0 >= 100: next volume, even empty files
  ];
  const partitions = partitionMembers(members, { maxBytes: 100 });
  assert.deepEqual(partitions.map((p) => p.members.map((m) => m.name)), [
    ["/", "a", "b"],
    ["c", "d/"],
    ["d/e"],
    ["f"],
  ]);
  assert.deepEqual(partitions.map((p) => p.bytes), [99, 1, 100, 0]);
  // Every member exactly once, in walk order.
  assert.deepEqual(partitions.flatMap((p) => p.members), members);
});

Deno.test("partition: a new volume when the volume already holds the member limit", () => {
  const members = Array.from({ length: 10 }, (_, i) => member(`f${i}`, 1));
  assert.deepEqual(shape(members, { maxMembers: 4 }), [
    ["f0", "f1", "f2", "f3"],
    ["f4", "f5", "f6", "f7"],
    ["f8", "f9"],
  ]);
  assert.deepEqual(shape(members.slice(0, 4), { maxMembers: 4 }), [["f0", "f1", "f2", "f3"]]);
  // Directories and links count as members too.
  const mixed = [member("/"), member("d/"), member("l", 0, "symlink", "x"), member("f", 5)];
  assert.deepEqual(shape(mixed, { maxMembers: 2 }), [["/", "d/"], ["l", "f"]]);
});

Deno.test("partition: never an empty volume, even for a first file of exactly the limit", () => {
  assert.deepEqual(shape([member("a", 100), member("b", 1)], { maxBytes: 100 }), [["a"], ["b"]]);
  assert.deepEqual(shape([member("a", 100), member("b", 100)], { maxBytes: 100 }), [["a"], ["b"]]);
  assert.deepEqual(shape([]), []);
  const real = partitionMembers([member("seg", PARTITION_MAX_BYTES)]);
  assert.equal(real.length, 1);
  assert.equal(real[0].bytes, PARTITION_MAX_BYTES);
});

Deno.test("partition: a file larger than a volume is a UserError naming it", () => {
  assert.throws(
    () => partitionMembers([member("/"), member("base/1/huge", 101)], { maxBytes: 100 }),
    (error: unknown) => {
      assert.ok(error instanceof UserError);
      assert.equal(
        error.message,
        "/pgdata/base/1/huge is 101 bytes, more than the 100 bytes a volume holds",
      );
      assert.match(error.hint ?? "", /1 GiB segments/);
      return true;
    },
  );
  assert.throws(() => partitionMembers([member("big", PARTITION_MAX_BYTES + 1)]), UserError);
});

Deno.test("partition: hard links stay links within a volume, become copies across volumes", () => {
  const members = [
    member("a", 60),
    member("a-link", 0, "hardlink", "a"), // same volume: a link
    member("b", 30),
    member("c", 50), // 90 + 50 >= 130: next volume
    member("a-link2", 0, "hardlink", "a"), // a is in volume 0: a copy, 60 bytes
    member("a-link3", 0, "hardlink", "a"), // links to the copy in this volume
    member("d", 50), // 110 + 50 >= 130: next volume
    member("a-link4", 0, "hardlink", "a"), // a copy again
  ];
  const partitions = partitionMembers(members, { maxBytes: 200 });
  assert.equal(partitions.length, 1, "all in one volume with a large limit");
  assert.deepEqual(partitions[0].members, members);

  const split = partitionMembers(members, { maxBytes: 130 });
  assert.deepEqual(
    split.map((p) => p.members.map((m) => [m.name, m.kind, m.size, m.linkTarget ?? null])),
    [
      [["a", "file", 60, null], ["a-link", "hardlink", 0, "a"], ["b", "file", 30, null]],
      [["c", "file", 50, null], ["a-link2", "file", 60, null], [
        "a-link3",
        "hardlink",
        0,
        "a-link2",
      ]],
      [["d", "file", 50, null], ["a-link4", "file", 60, null]],
    ],
  );
  assert.deepEqual(split.map((p) => p.bytes), [90, 110, 110]);
  // A copy that does not fit opens the next volume, as a copy.
  const tight = partitionMembers(members, { maxBytes: 100 });
  assert.deepEqual(
    tight.map((p) => p.members.map((m) => `${m.name}:${m.kind}:${m.linkTarget ?? ""}`)),
    [
      ["a:file:", "a-link:hardlink:a", "b:file:"],
      ["c:file:"],
      ["a-link2:file:", "a-link3:hardlink:a-link2"],
      ["d:file:"],
      ["a-link4:file:"],
    ],
  );
  // The copy reads the link's own path (the same inode's bytes).
  assert.equal(split[1].members[1].path, "/pgdata/a-link2");
  assert.ok(!("linkTarget" in split[1].members[1]));
});
