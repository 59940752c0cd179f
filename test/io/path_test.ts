import assert from "node:assert/strict";
import * as node from "node:path";
import {
  basename,
  dirname,
  fromFileUrl,
  isAbsolute,
  join,
  normalize,
  resolve,
} from "../../src/io/path.ts";

const samples = [
  "",
  "/",
  ".",
  "..",
  "a",
  "/a",
  "a/",
  "/a/b/",
  "a//b",
  "./a/../b",
  "../../a",
  "/../a",
  "pg_wal/000000010000000000000001",
  "/var/lib/postgresql/15/main/pg_wal/RECOVERYXLOG",
  "a/b/../../..",
  "//a//b//",
];

Deno.test("path: join, normalize, dirname and basename agree with node:path (posix)", () => {
  for (const p of samples) {
    assert.equal(normalize(p), node.posix.normalize(p).replace(/(.)\/$/, "$1"), `normalize ${p}`);
    // node:path keeps a stray slash in dirname("a//b") ("a/"); POSIX dirname(1) says "a".
    if (!p.includes("//")) assert.equal(dirname(p), node.posix.dirname(p), `dirname ${p}`);
    assert.equal(basename(p), node.posix.basename(p), `basename ${p}`);
    assert.equal(isAbsolute(p), node.posix.isAbsolute(p), `isAbsolute ${p}`);
    for (const q of samples) {
      assert.equal(join(p, q), node.posix.join(p, q).replace(/(.)\/$/, "$1"), `join ${p} ${q}`);
    }
    assert.equal(resolve(p), node.posix.resolve(p), `resolve ${p}`);
  }
});

Deno.test("path: dirname with repeated slashes follows POSIX dirname(1)", () => {
  assert.equal(dirname("a//b"), "a");
  assert.equal(dirname("//a//b//"), "//a");
  assert.equal(dirname("pg_wal//RECOVERYXLOG"), "pg_wal");
});

Deno.test("path: file URLs", () => {
  assert.equal(fromFileUrl("file:///a/b%20c/mod.ts"), "/a/b c/mod.ts");
  assert.throws(() => fromFileUrl("https://example.com/x"), TypeError);
});
