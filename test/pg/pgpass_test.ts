import assert from "node:assert/strict";
import { join } from "../../src/io/path.ts";
import {
  lookupPgpass,
  matchPgpass,
  parsePgpass,
  pgpassHostFor,
  pgpassPath,
  type PgpassTarget,
} from "../../src/pg/pgpass.ts";

function env(vars: Record<string, string>): { get(name: string): string | undefined } {
  return { get: (name) => vars[name] };
}

const target: PgpassTarget = { host: "db.example", port: 5432, database: "app", user: "alice" };

Deno.test("parsePgpass: fields, wildcards, escapes, comments, blank and short lines", () => {
  const text = [
    "# a comment: with:colons:in:it:x",
    "",
    "db.example:5432:app:alice:s3cret",
    "*:*:*:*:wild",
    "host\\:with\\:colons:5433:d\\\\b:u:pa\\:ss\\\\word:ignored-field",
    "\\*:1:2:3:literal-star",
    "too:few:fields:only",
    "crlf:1:2:3:pw\r",
    "a:b:c:d:",
    "a:b:c:d:trailing\\",
  ].join("\n");
  const entries = parsePgpass(text);
  assert.deepEqual(entries, [
    {
      line: 3,
      host: "db.example",
      port: "5432",
      database: "app",
      user: "alice",
      password: "s3cret",
    },
    { line: 4, host: null, port: null, database: null, user: null, password: "wild" },
    {
      line: 5,
      host: "host:with:colons",
      port: "5433",
      database: "d\\b",
      user: "u",
      password: "pa:ss\\word",
    },
    { line: 6, host: "*", port: "1", database: "2", user: "3", password: "literal-star" },
    { line: 8, host: "crlf", port: "1", database: "2", user: "3", password: "pw" },
    { line: 9, host: "a", port: "b", database: "c", user: "d", password: "" },
    { line: 10, host: "a", port: "b", database: "c", user: "d", password: "trailing\\" },
  ]);
});

Deno.test("parsePgpass: a '*' is a wildcard only as a whole field", () => {
  const [entry] = parsePgpass("*x:*:db*:*:p");
  assert.equal(entry.host, "*x");
  assert.equal(entry.port, null);
  assert.equal(entry.database, "db*");
  assert.equal(entry.user, null);
});

Deno.test("matchPgpass: the first matching line wins; ports compare as text", () => {
  const entries = parsePgpass([
    "other:5432:app:alice:no",
    "db.example:05432:app:alice:padded-port",
    "db.example:5432:*:alice:first",
    "*:*:*:*:second",
  ].join("\n"));
  assert.equal(matchPgpass(entries, target)?.password, "first");
  assert.equal(matchPgpass(entries, { ...target, user: "bob" })?.password, "second");
  assert.equal(matchPgpass(entries.slice(0, 2), target), undefined);
  assert.equal(matchPgpass(entries, { ...target, port: "5432" })?.password, "first");
});

Deno.test("pgpassHostFor: localhost for the default socket directory, as libpq", () => {
  assert.equal(pgpassHostFor("/var/run/postgresql", true, true), "localhost");
  assert.equal(pgpassHostFor("/tmp/elsewhere", true, false), "/tmp/elsewhere");
  assert.equal(pgpassHostFor("db.example", false, false), "db.example");
  assert.equal(pgpassHostFor("", false, false), "localhost");
  const entries = parsePgpass("localhost:5432:*:*:local\n/tmp/elsewhere:5432:*:*:dir\n");
  const socketTarget = { ...target, host: pgpassHostFor("/var/run/postgresql", true, true) };
  assert.equal(matchPgpass(entries, socketTarget)?.password, "local");
  const dirTarget = { ...target, host: pgpassHostFor("/tmp/elsewhere", true, false) };
  assert.equal(matchPgpass(entries, dirTarget)?.password, "dir");
});

Deno.test("pgpassPath: PGPASSFILE, else $HOME/.pgpass, else none", () => {
  assert.equal(pgpassPath(env({ PGPASSFILE: "/etc/pw", HOME: "/home/a" })), "/etc/pw");
  assert.equal(pgpassPath(env({ HOME: "/home/a" })), "/home/a/.pgpass");
  assert.equal(pgpassPath(env({})), null);
});

Deno.test("lookupPgpass: used at 0600 and 0400, ignored with a reason when group/world can read", async () => {
  const home = await Deno.makeTempDir({ prefix: "wald-pgpass-" });
  try {
    const file = join(home, ".pgpass");
    await Deno.writeTextFile(file, "db.example:5432:app:alice:s3cret\n");
    for (const mode of [0o600, 0o400]) {
      await Deno.chmod(file, mode);
      assert.deepEqual(lookupPgpass(env({ HOME: home }), target), {
        password: "s3cret",
        path: file,
        line: 1,
        ignoredReason: null,
      });
    }
    for (const mode of [0o640, 0o604, 0o660]) {
      await Deno.chmod(file, mode);
      const result = lookupPgpass(env({ HOME: home }), target);
      assert.equal(result.password, null);
      assert.match(result.ignoredReason ?? "", /has group or world access/);
      assert.ok(result.ignoredReason?.includes(file));
      assert.ok(!result.ignoredReason?.includes("s3cret"));
    }
    await Deno.chmod(file, 0o600);
    assert.equal(lookupPgpass(env({ HOME: home }), { ...target, user: "bob" }).password, null);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("lookupPgpass: a missing file is silent; a directory is ignored with a reason", async () => {
  const home = await Deno.makeTempDir({ prefix: "wald-pgpass-" });
  try {
    assert.deepEqual(lookupPgpass(env({ HOME: home }), target), {
      password: null,
      path: join(home, ".pgpass"),
      line: null,
      ignoredReason: null,
    });
    assert.equal(lookupPgpass(env({}), target).path, null);
    await Deno.mkdir(join(home, "dir"), { mode: 0o700 });
    const result = lookupPgpass(env({ PGPASSFILE: join(home, "dir") }), target);
    assert.equal(result.password, null);
    assert.match(result.ignoredReason ?? "", /is not a plain file/);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
