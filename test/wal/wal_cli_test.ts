import assert from "node:assert/strict";
import { join } from "node:path";
import { compressLzop, decompressLzop } from "../../src/codec/lzop.ts";
import { randomBytes, sha256Hex } from "../codec/_data.ts";
import { scratch, segmentBytes, walD, walDArgs } from "./_cli.ts";

const SEG1 = "000000010000000000000001";
const SEG2 = "000000010000000000000002";
const SEG3 = "000000010000000000000003";
const SEG4 = "000000010000000000000004";

function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((line) => / (ERROR|CRITICAL) /.test(line));
}

Deno.test("wal-push: archives a segment as wal_005/<name>.lzo, durably and readable by lzop", async () => {
  const s = await scratch();
  try {
    const data = segmentBytes(1);
    await Deno.writeFile(join(s.walDir, SEG1), data, { mode: 0o600 });
    const result = await walD(["wal-push", `pg_wal/${SEG1}`], { env: s.env, cwd: s.pgdata });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /action=push-wal .*state=begin/);
    assert.match(result.stderr, /MSG: completed archiving to a file/);
    const object = await Deno.readFile(join(s.store, "wal_005", `${SEG1}.lzo`));
    assert.deepEqual(decompressLzop(object), data);
    // No temporary files are left in the store.
    const names = [...Deno.readDirSync(join(s.store, "wal_005"))].map((e) => e.name);
    assert.deepEqual(names, [`${SEG1}.lzo`]);
  } finally {
    await s.cleanup();
  }
});

Deno.test("wal-push: history, backup-label and partial files keep their names", async () => {
  const s = await scratch();
  try {
    const files = {
      "00000002.history": "1\t0/608E818\tat restore point\n",
      [`${SEG3}.00000028.backup`]: "START WAL LOCATION: 0/3000028\n",
      [`${SEG3}.partial`]: "partial segment bytes",
    };
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(join(s.walDir, name), text);
      const result = await walD(["wal-push", `pg_wal/${name}`], { env: s.env, cwd: s.pgdata });
      assert.equal(result.code, 0, result.stderr);
      const object = await Deno.readFile(join(s.store, "wal_005", `${name}.lzo`));
      assert.equal(new TextDecoder().decode(decompressLzop(object)), text);
    }
  } finally {
    await s.cleanup();
  }
});

Deno.test("wal-push: the same content again succeeds without rewriting; different content is refused", async () => {
  const s = await scratch();
  try {
    const path = join(s.walDir, SEG1);
    await Deno.writeFile(path, segmentBytes(1));
    assert.equal((await walD(["wal-push", path], { env: s.env })).code, 0);
    const object = join(s.store, "wal_005", `${SEG1}.lzo`);
    const before = await Deno.stat(object);
    const bytesBefore = await Deno.readFile(object);

    const again = await walD(["wal-push", path], { env: s.env });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /already archived with the same content/);
    assert.match(again.stderr, /state=skip/);
    assert.equal((await Deno.stat(object)).ino, before.ino, "object not rewritten");

    await Deno.writeFile(path, segmentBytes(2));
    const refused = await walD(["wal-push", path], { env: s.env });
    assert.equal(refused.code, 1);
    assert.deepEqual(errorLines(refused.stderr).length, 1, refused.stderr);
    assert.match(
      refused.stderr,
      /refusing to overwrite an archived WAL file with different content/,
    );
    assert.match(refused.stderr, /HINT: .*own prefix/);
    assert.deepEqual(await Deno.readFile(object), bytesBefore, "archived copy untouched");
  } finally {
    await s.cleanup();
  }
});

Deno.test("wal-push: bad input gives one clear line and exit 1, and writes nothing", async () => {
  const s = await scratch();
  try {
    const missing = await walD(["wal-push", join(s.walDir, SEG1)], { env: s.env });
    assert.equal(missing.code, 1);
    assert.equal(errorLines(missing.stderr).length, 1, missing.stderr);
    assert.match(missing.stderr, /MSG: could not find file for wal-push/);

    await Deno.writeTextFile(join(s.walDir, "postgresql.conf"), "x");
    const notWal = await walD(["wal-push", join(s.walDir, "postgresql.conf")], { env: s.env });
    assert.equal(notWal.code, 1);
    assert.match(notWal.stderr, /"postgresql.conf" is not the name of a WAL file/);

    await Deno.mkdir(join(s.walDir, SEG2));
    const directory = await walD(["wal-push", join(s.walDir, SEG2)], { env: s.env });
    assert.equal(directory.code, 1);
    assert.match(directory.stderr, /needs a regular file/);

    const noPrefix = await walD(["wal-push", join(s.walDir, SEG1)], { env: {} });
    assert.equal(noPrefix.code, 1);
    assert.match(noPrefix.stderr, /no storage prefix defined/);

    await assert.rejects(Deno.stat(join(s.store, "wal_005")), Deno.errors.NotFound);
  } finally {
    await s.cleanup();
  }
});

async function readyBacklog(walDir: string, names: string[]): Promise<void> {
  for (const [i, name] of names.entries()) {
    await Deno.writeFile(join(walDir, name), segmentBytes(i + 1, 1024 * 1024));
    await Deno.writeTextFile(join(walDir, "archive_status", `${name}.ready`), "");
  }
}

function listNames(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

/** Polls `done` every 50 ms until it holds, at most `tries` times (the assertions after tell). */
async function poll(done: () => boolean | Promise<boolean>, tries: number): Promise<void> {
  for (let i = 0; i < tries && !(await done()); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("wal-push --pool-size: pushes ready segments ahead, leaves .ready alone, answers later calls locally", async () => {
  const s = await scratch();
  try {
    const names = [SEG1, SEG2, SEG3, "000000010000000000000004", "000000010000000000000005"];
    await readyBacklog(s.walDir, names);
    // The call returns once SEG1 is stored; a background wal-push-ahead pushes the others
    // (walD waits for it: it writes to the same stderr).
    const first = await walD(["wal-push", "--pool-size", "3", `pg_wal/${SEG1}`], {
      env: s.env,
      cwd: s.pgdata,
    });
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(listNames(join(s.store, "wal_005")), names.map((n) => `${n}.lzo`));
    const status = listNames(join(s.walDir, "archive_status"));
    assert.deepEqual(status, names.map((n) => `${n}.ready`), "no .ready renamed");
    assert.deepEqual(listNames(join(s.walDir, ".wal-d", "pushed")), names.slice(1));
    for (const [i, name] of names.entries()) {
      const object = await Deno.readFile(join(s.store, "wal_005", `${name}.lzo`));
      assert.deepEqual(decompressLzop(object), segmentBytes(i + 1, 1024 * 1024), name);
    }

    // PostgreSQL's own call for SEG2 returns from the ledger, without touching the store: a file
    // stands in its place meanwhile, which fails any upload (root would pass a chmod 000).
    await Deno.rename(s.store, `${s.store}.away`);
    await Deno.writeTextFile(s.store, "not a store");
    const second = await walD(["wal-push", "-p", "1", `pg_wal/${SEG2}`], {
      env: s.env,
      cwd: s.pgdata,
    });
    await Deno.remove(s.store);
    await Deno.rename(`${s.store}.away`, s.store);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /already archived by an earlier wal-push/);
    // The entry stays until PostgreSQL marks the file done (it tells the background pusher the
    // file is archived); the next call drops it.
    const pushed = join(s.walDir, ".wal-d", "pushed");
    assert.ok(listNames(pushed).includes(SEG2));
    const statusDir = join(s.walDir, "archive_status");
    await Deno.rename(join(statusDir, `${SEG2}.ready`), join(statusDir, `${SEG2}.done`));
    const third = await walD(["wal-push", "-p", "1", `pg_wal/${SEG3}`], {
      env: s.env,
      cwd: s.pgdata,
    });
    assert.equal(third.code, 0, third.stderr);
    assert.ok(!listNames(pushed).includes(SEG2), listNames(pushed).join(" "));

    // A ledger entry holds only for the prefix it names.
    const otherStore = join(s.dir, "other-store");
    const elsewhere = await walD(["wal-push", "-p", "1", `pg_wal/${SEG4}`], {
      env: { WALE_FILE_PREFIX: `file://${otherStore}` },
      cwd: s.pgdata,
    });
    assert.equal(elsewhere.code, 0, elsewhere.stderr);
    await Deno.stat(join(otherStore, "wal_005", `${SEG4}.lzo`));

    // A changed file does not match its ledger entry: it is checked against the store.
    await Deno.writeFile(join(s.walDir, "000000010000000000000005"), segmentBytes(99, 1024 * 1024));
    const changed = await walD(["wal-push", "-p", "1", "pg_wal/000000010000000000000005"], {
      env: s.env,
      cwd: s.pgdata,
    });
    assert.equal(changed.code, 1, "different content refused, not skipped");
  } finally {
    await s.cleanup();
  }
});

Deno.test("wal-push --mark-done: renames the .ready of files pushed ahead, as WAL-E does", async () => {
  const s = await scratch();
  try {
    const names = [SEG1, SEG2, SEG3, SEG4];
    await readyBacklog(s.walDir, names);
    // SEG3 is already archived with other content: its push fails and it stays ready.
    await Deno.mkdir(join(s.store, "wal_005"), { recursive: true });
    await Deno.writeFile(join(s.store, "wal_005", `${SEG3}.lzo`), compressLzop(segmentBytes(50)));
    const marked = await walD(["wal-push", "--mark-done", "-p", "8", `pg_wal/${SEG1}`], {
      env: s.env,
      cwd: s.pgdata,
    });
    assert.equal(marked.code, 0, marked.stderr);
    assert.match(marked.stderr, /WARNING +MSG: could not push a ready WAL file ahead of time/);
    assert.deepEqual(listNames(join(s.walDir, "archive_status")), [
      `${SEG1}.ready`, // the requested file is PostgreSQL's to mark
      `${SEG2}.done`,
      `${SEG3}.ready`,
      `${SEG4}.done`,
    ]);
    // PostgreSQL's later call for SEG3 gets the real error.
    const refused = await walD(["wal-push", `pg_wal/${SEG3}`], { env: s.env, cwd: s.pgdata });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /refusing to overwrite/);
  } finally {
    await s.cleanup();
  }
});

Deno.test("wal-push: a missing archive_status directory is not an error", async () => {
  const s = await scratch();
  try {
    await Deno.remove(join(s.walDir, "archive_status"));
    await Deno.writeFile(join(s.walDir, SEG1), segmentBytes(1, 65536));
    const result = await walD(["wal-push", "-p", "8", join(s.walDir, SEG1)], { env: s.env });
    assert.equal(result.code, 0, result.stderr);
  } finally {
    await s.cleanup();
  }
});

Deno.test("wal-fetch: restores to the destination, exit 1 with an INFO line when not archived", async () => {
  const s = await scratch();
  try {
    const data = segmentBytes(5);
    await Deno.writeFile(join(s.walDir, SEG1), data);
    assert.equal((await walD(["wal-push", join(s.walDir, SEG1)], { env: s.env })).code, 0);
    await Deno.remove(join(s.walDir, SEG1));

    const restored = await walD(["wal-fetch", "-p", "0", SEG1, "pg_wal/RECOVERYXLOG"], {
      env: s.env,
      cwd: s.pgdata,
    });
    assert.equal(restored.code, 0, restored.stderr);
    assert.deepEqual(await Deno.readFile(join(s.walDir, "RECOVERYXLOG")), data);
    assert.match(restored.stderr, /action=wal-fetch .*state=complete/);

    const missing = await walD(["wal-fetch", "-p", "0", SEG2, "pg_wal/RECOVERYXLOG2"], {
      env: s.env,
      cwd: s.pgdata,
    });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, / INFO +MSG: WAL file is not in the archive/);
    assert.equal(errorLines(missing.stderr).length, 0);
    await assert.rejects(Deno.stat(join(s.walDir, "RECOVERYXLOG2")), Deno.errors.NotFound);
  } finally {
    await s.cleanup();
  }
});

Deno.test("wal-fetch: corrupt or foreign data fails with exit 2 and leaves no destination", async () => {
  const s = await scratch();
  try {
    await Deno.mkdir(join(s.store, "wal_005"), { recursive: true });
    const good = compressLzop(segmentBytes(3, 1024 * 1024));
    const corrupt = good.slice();
    corrupt[corrupt.length - 100] ^= 0xff;
    await Deno.writeFile(join(s.store, "wal_005", `${SEG1}.lzo`), corrupt);
    await Deno.writeFile(join(s.store, "wal_005", `${SEG2}.lzo`), segmentBytes(1, 4096));
    for (const name of [SEG1, SEG2]) {
      const result = await walD(["wal-fetch", "-p", "0", name, "pg_wal/RECOVERYXLOG"], {
        env: s.env,
        cwd: s.pgdata,
      });
      assert.equal(result.code, 2, result.stderr);
      assert.equal(errorLines(result.stderr).length, 1, result.stderr);
      assert.match(result.stderr, /corrupt/);
      const left = [...Deno.readDirSync(s.walDir)].map((e) => e.name);
      assert.deepEqual(left.filter((n) => n.includes("RECOVERYXLOG")), [], left.join(" "));
    }
    const badName = await walD(["wal-fetch", "not-a-wal-name", "pg_wal/X"], {
      env: s.env,
      cwd: s.pgdata,
    });
    assert.equal(badName.code, 2);
    assert.match(badName.stderr, /is not the name of a WAL file/);
  } finally {
    await s.cleanup();
  }
});

Deno.test("wal-fetch: a process killed midway leaves no destination file", async () => {
  const s = await scratch();
  try {
    // 64 MiB that does not compress: the download takes long enough to be killed in the middle.
    await Deno.mkdir(join(s.store, "wal_005"), { recursive: true });
    await Deno.writeFile(
      join(s.store, "wal_005", `${SEG1}.lzo`),
      compressLzop(randomBytes(64 * 1024 * 1024, 7)),
    );
    let killedMidway = false;
    for (let attempt = 0; attempt < 5 && !killedMidway; attempt++) {
      const child = new Deno.Command(Deno.execPath(), {
        args: walDArgs(["wal-fetch", "-p", "0", SEG1, "pg_wal/RECOVERYXLOG"]),
        cwd: s.pgdata,
        env: { ...s.env, WALE_LOG_DESTINATION: "stderr" },
        stdout: "null",
        stderr: "null",
      }).spawn();
      // Kill it as soon as its temporary file exists: between creating it and renaming it.
      for (let i = 0; i < 4000; i++) {
        const names = [...Deno.readDirSync(s.walDir)].map((e) => e.name);
        if (names.some((n) => n.startsWith(".RECOVERYXLOG.tmp-"))) {
          try {
            child.kill("SIGKILL");
            killedMidway = true;
          } catch {
            // it finished first; try again
          }
          break;
        }
        await new Promise((r) => setTimeout(r, 2));
      }
      const status = await child.status;
      if (killedMidway) {
        assert.equal(status.signal, "SIGKILL");
        await assert.rejects(Deno.stat(join(s.walDir, "RECOVERYXLOG")), Deno.errors.NotFound);
      } else {
        await Deno.remove(join(s.walDir, "RECOVERYXLOG")).catch(() => {});
      }
    }
    assert.ok(killedMidway, "wal-fetch was killed while it was writing");
  } finally {
    await s.cleanup();
  }
});

Deno.test("wal-fetch --prefetch: next segments are fetched ahead and promoted; a partial one is never served", async () => {
  const s = await scratch();
  try {
    // A real PostgreSQL 17 control file with 1 MiB segments: wal-fetch reads the segment size.
    await Deno.mkdir(join(s.pgdata, "global"));
    await Deno.copyFile(
      new URL("../fixtures/pg_control/17-1-initdb.pg_control", import.meta.url),
      join(s.pgdata, "global", "pg_control"),
    );
    const size = 1024 * 1024;
    const names = [SEG1, SEG2, SEG3, SEG4];
    for (const [i, name] of names.entries()) {
      await Deno.writeFile(join(s.walDir, name), segmentBytes(i + 10, size));
      assert.equal(
        (await walD(["wal-push", "-p", "1", join(s.walDir, name)], { env: s.env })).code,
        0,
      );
      await Deno.remove(join(s.walDir, name));
    }
    const fetch = (name: string) =>
      walD(["wal-fetch", "--prefetch", "2", name, "pg_wal/RECOVERYXLOG"], {
        env: s.env,
        cwd: s.pgdata,
      });

    const first = await fetch(SEG1);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(await Deno.readFile(join(s.walDir, "RECOVERYXLOG")), segmentBytes(10, size));
    // Detached wal-prefetch processes bring SEG2 and SEG3 (1 MiB segments: the names follow
    // from the size in pg_control).
    const prefetchDir = join(s.walDir, ".wal-d", "prefetch");
    await poll(() => {
      const have = listNames(prefetchDir);
      return have.includes(SEG2) && have.includes(SEG3);
    }, 200);
    assert.equal((await Deno.stat(join(prefetchDir, SEG2))).size, size);

    const second = await fetch(SEG2);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /MSG: promoted prefetched wal segment/);
    assert.deepEqual(await Deno.readFile(join(s.walDir, "RECOVERYXLOG")), segmentBytes(11, size));

    // A truncated prefetched copy of SEG3 is not served: it is dropped and SEG3 downloaded.
    await poll(() => Deno.stat(join(prefetchDir, SEG3)).then(() => true, () => false), 200);
    await Deno.truncate(join(prefetchDir, SEG3), size / 2);
    const third = await fetch(SEG3);
    assert.equal(third.code, 0, third.stderr);
    assert.doesNotMatch(third.stderr, /promoted prefetched/);
    assert.deepEqual(await Deno.readFile(join(s.walDir, "RECOVERYXLOG")), segmentBytes(12, size));
    // Let the last detached prefetches finish before the scratch directory goes away.
    await poll(() => listNames(join(prefetchDir, "running")).length === 0, 100);
  } finally {
    await s.cleanup();
  }
});

interface WalFixture {
  variants: Record<string, {
    wal_objects: Record<string, { name: string; size: number; sha256: string }>;
    text_file_contents: Record<string, string>;
  }>;
}

Deno.test("wal-fetch: reads every WAL object of genuine WAL-E 1.1.1 archives to the exact bytes", async () => {
  const fixtures = new URL("../fixtures/wal-e-1.1.1/", import.meta.url);
  const expected: WalFixture = JSON.parse(await Deno.readTextFile(new URL("wal.json", fixtures)));
  for (const variant of ["plain", "gnutar"]) {
    const s = await scratch();
    try {
      const prefix = `file://localhost${new URL(variant, fixtures).pathname}`;
      const objects = Object.values(expected.variants[variant].wal_objects);
      assert.equal(objects.length, 8);
      for (const object of objects) {
        const result = await walD(["wal-fetch", "-p", "0", object.name, "pg_wal/RECOVERYXLOG"], {
          env: { WALE_FILE_PREFIX: prefix },
          cwd: s.pgdata,
        });
        assert.equal(result.code, 0, `${variant} ${object.name}: ${result.stderr}`);
        const bytes = await Deno.readFile(join(s.walDir, "RECOVERYXLOG"));
        assert.equal(bytes.length, object.size, `${variant} ${object.name}`);
        assert.equal(await sha256Hex(bytes), object.sha256, `${variant} ${object.name}`);
        const text = expected.variants[variant].text_file_contents[object.name];
        if (text !== undefined) assert.equal(new TextDecoder().decode(bytes), text);
      }
    } finally {
      await s.cleanup();
    }
  }
});
