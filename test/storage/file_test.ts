import assert from "node:assert/strict";
import { parseStoragePrefix } from "../../src/config/prefix.ts";
import { FileStore, isTemporaryName } from "../../src/storage/file.ts";
import { type ListOptions, type ObjectStore, StorageError } from "../../src/storage/types.ts";
import { randomBytes, readAll } from "../codec/_data.ts";
import { chownToPgUser, pgUser, runAsPgUser } from "../_pg/cluster.ts";

async function withRoot(run: (root: string, store: FileStore) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "wal-d-file-store-" });
  try {
    const root = `${dir}/archive`;
    await run(root, new FileStore(root));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function getBytes(store: ObjectStore, key: string): Promise<Uint8Array | null> {
  const stream = await store.get(key);
  return stream === null ? null : await readAll(stream);
}

function chunked(bytes: Uint8Array, chunkSize: number): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + chunkSize));
      offset += chunkSize;
    },
  });
}

async function names(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) found.push(entry.name);
  return found.sort();
}

/** Every file name below `dir`, recursively, relative to it. */
async function tree(dir: string, base = ""): Promise<string[]> {
  const found: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir + base)) {
      if (entry.isDirectory) found.push(...await tree(dir, `${base}/${entry.name}`));
      else found.push(`${base}/${entry.name}`.slice(1));
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return found.sort();
}

async function waitFor(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** All keys and common prefixes of a listing, page by page. */
async function listAll(
  store: ObjectStore,
  prefix: string,
  options: ListOptions = {},
): Promise<{ keys: string[]; prefixes: string[]; pages: number }> {
  const keys: string[] = [];
  const prefixes: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await store.list(prefix, { ...options, cursor });
    pages++;
    assert.ok(page.objects.length + page.prefixes.length <= (options.pageSize ?? 1000));
    keys.push(...page.objects.map((object) => object.key));
    prefixes.push(...page.prefixes);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return { keys, prefixes, pages };
}

const encoder = new TextEncoder();

Deno.test("file store: round trip of empty, small and multi-MiB objects, each body kind", async () => {
  await withRoot(async (root, store) => {
    const big = randomBytes(5 * 1024 * 1024 + 3);
    const small = encoder.encode("hello, archive");
    await store.put("wal_005/empty.lzo", new Uint8Array(0));
    await store.put("wal_005/small.lzo", small);
    await store.put("basebackups_005/base_1/tar_partitions/part_00000000.tar.lzo", big);
    await store.put("stream/one-shot", chunked(big, 100_000));
    await store.put("stream/factory", () => chunked(small, 3));
    await store.put("stream/empty", () => chunked(new Uint8Array(0), 1));
    assert.deepEqual(await getBytes(store, "wal_005/empty.lzo"), new Uint8Array(0));
    assert.deepEqual(await getBytes(store, "wal_005/small.lzo"), small);
    assert.deepEqual(
      await getBytes(store, "basebackups_005/base_1/tar_partitions/part_00000000.tar.lzo"),
      big,
    );
    assert.deepEqual(await getBytes(store, "stream/one-shot"), big);
    assert.deepEqual(await getBytes(store, "stream/factory"), small);
    assert.deepEqual(await getBytes(store, "stream/empty"), new Uint8Array(0));
    // The physical path is the root followed by the key; overwrite replaces.
    assert.deepEqual(await Deno.readFile(`${root}/wal_005/small.lzo`), small);
    await store.put("wal_005/small.lzo", encoder.encode("v2"));
    assert.deepEqual(await getBytes(store, "wal_005/small.lzo"), encoder.encode("v2"));
    assert.equal(store.url("wal_005/x.lzo"), `file://${root}/wal_005/x.lzo`);
  });
});

Deno.test("file store: a byte-stream body is read into the store's own buffer", async () => {
  await withRoot(async (_root, store) => {
    const big = randomBytes(3 * 1024 * 1024 + 5);
    const viewBuffers = new Set<number>();
    let sent = 0;
    const body = new ReadableStream({
      type: "bytes",
      pull(controller) {
        const request = controller.byobRequest;
        if (request === null || request.view === null) {
          controller.error(new Error("no view offered"));
          return;
        }
        viewBuffers.add(request.view.buffer.byteLength);
        if (sent === big.length) {
          controller.close();
          request.respond(0);
          return;
        }
        const view = request.view as Uint8Array;
        const n = Math.min(view.length, 300_000, big.length - sent);
        view.set(big.subarray(sent, sent + n));
        sent += n;
        request.respond(n);
      },
    });
    await store.put("stream/bytes", body);
    assert.deepEqual(await getBytes(store, "stream/bytes"), big);
    assert.deepEqual([...viewBuffers], [1024 * 1024], "one buffer size: the store's");
  });
});

Deno.test("file store: missing objects read as null; head reports size and mtime", async () => {
  await withRoot(async (root, store) => {
    assert.equal(await store.get("wal_005/none.lzo"), null);
    assert.equal(await store.head("wal_005/none.lzo"), null);
    await store.put("wal_005/a.lzo", encoder.encode("abc"));
    // A directory, or a path below a file, is not an object either.
    assert.equal(await store.get("wal_005"), null);
    assert.equal(await store.head("wal_005"), null);
    assert.equal(await store.get("wal_005/a.lzo/b"), null);
    const before = Date.now();
    const info = await store.head("wal_005/a.lzo");
    assert.ok(info !== null);
    assert.equal(info.key, "wal_005/a.lzo");
    assert.equal(info.size, 3);
    const mtime = (await Deno.stat(`${root}/wal_005/a.lzo`)).mtime!;
    assert.equal(info.lastModified.getTime(), mtime.getTime());
    assert.ok(Math.abs(info.lastModified.getTime() - before) < 60_000);
  });
});

Deno.test("file store: new directories are 0700 and files 0600", async () => {
  await withRoot(async (root, store) => {
    const umask = Deno.umask();
    await store.put("basebackups_005/base_1/extended_version.txt", encoder.encode("x"));
    for (const dir of [root, `${root}/basebackups_005`, `${root}/basebackups_005/base_1`]) {
      assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700 & ~umask, dir);
    }
    const file = `${root}/basebackups_005/base_1/extended_version.txt`;
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600 & ~umask);
  });
});

Deno.test("file store: a put in progress is invisible; only a temporary name exists", async () => {
  await withRoot(async (root, store) => {
    await store.put("wal_005/other.lzo", encoder.encode("other"));
    let body!: ReadableStreamDefaultController<Uint8Array>;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        body = controller;
      },
    });
    const putting = store.put("wal_005/slow.lzo", stream);
    body.enqueue(encoder.encode("first half, "));
    await waitFor(async () => (await names(`${root}/wal_005`)).length === 2, "the temp file");
    const inProgress = await names(`${root}/wal_005`);
    const temp = inProgress.find((name) => name !== "other.lzo")!;
    assert.match(temp, /^\.slow\.lzo\.tmp-[0-9a-f]{12}$/);
    assert.ok(isTemporaryName(temp));
    assert.equal(await store.get("wal_005/slow.lzo"), null);
    assert.equal(await store.head("wal_005/slow.lzo"), null);
    assert.deepEqual((await store.list("")).objects.map((o) => o.key), ["wal_005/other.lzo"]);
    body.enqueue(encoder.encode("second half"));
    body.close();
    await putting;
    assert.deepEqual(await names(`${root}/wal_005`), ["other.lzo", "slow.lzo"]);
    assert.deepEqual(
      await getBytes(store, "wal_005/slow.lzo"),
      encoder.encode("first half, second half"),
    );
  });
});

Deno.test("file store: an aborted put leaves neither the key nor a temporary file", async () => {
  await withRoot(async (root, store) => {
    await store.put("wal_005/old.lzo", encoder.encode("old"));
    let body!: ReadableStreamDefaultController<Uint8Array>;
    let cancelled: unknown = null;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        body = controller;
      },
      cancel(reason) {
        cancelled = reason;
      },
    });
    const abort = new AbortController();
    const putting = store.put("wal_005/slow.lzo", stream, { signal: abort.signal });
    body.enqueue(encoder.encode("partial"));
    await waitFor(async () => (await names(`${root}/wal_005`)).length === 2, "the temp file");
    const reason = new Error("stop");
    abort.abort(reason);
    await assert.rejects(putting, (error) => error === reason);
    assert.equal(cancelled, reason, "the body is cancelled");
    assert.deepEqual(await names(`${root}/wal_005`), ["old.lzo"]);
    assert.equal(await store.head("wal_005/slow.lzo"), null);

    // An already aborted signal: nothing is created at all.
    await assert.rejects(
      store.put("new/key", encoder.encode("x"), { signal: abort.signal }),
      (error) => error === reason,
    );
    assert.deepEqual(await names(root), ["wal_005"]);
  });
});

Deno.test("file store: a failing body leaves neither the key nor a temporary file", async () => {
  await withRoot(async (root, store) => {
    let sent = 0;
    const failing = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 3) controller.enqueue(new Uint8Array(1000));
        else controller.error(new Error("compression failed"));
      },
    });
    await assert.rejects(store.put("wal_005/bad.lzo", failing), /compression failed/);
    assert.deepEqual(await tree(root), []);
    assert.equal(await store.get("wal_005/bad.lzo"), null);
    // Overwriting an existing object with a failing body keeps the old one.
    await store.put("wal_005/bad.lzo", encoder.encode("good"));
    const failingAgain = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.error(new Error("again"));
      },
    });
    await assert.rejects(store.put("wal_005/bad.lzo", failingAgain), /again/);
    assert.deepEqual(await getBytes(store, "wal_005/bad.lzo"), encoder.encode("good"));
    assert.deepEqual(await tree(root), ["wal_005/bad.lzo"]);
  });
});

Deno.test("file store: concurrent puts of one key leave one complete object", async () => {
  await withRoot(async (root, store) => {
    const size = 1024 * 1024 + 17;
    const writers = Array.from({ length: 8 }, (_, i) => new Uint8Array(size).fill(i + 1));
    await Promise.all(writers.map((bytes) => store.put("wal_005/race.lzo", chunked(bytes, 65536))));
    const result = (await getBytes(store, "wal_005/race.lzo"))!;
    assert.equal(result.length, size);
    assert.ok(result.every((byte) => byte === result[0]), "bytes of exactly one writer");
    assert.ok(result[0] >= 1 && result[0] <= 8);
    assert.deepEqual(await names(`${root}/wal_005`), ["race.lzo"]);
  });
});

Deno.test("file store: a stream being read is not disturbed by an overwrite or an abort", async () => {
  await withRoot(async (_root, store) => {
    const original = randomBytes(3 * 1024 * 1024);
    await store.put("k", original);
    const reading = (await store.get("k"))!;
    await store.put("k", encoder.encode("replaced"));
    assert.deepEqual(await readAll(reading), original, "the reader keeps the old file");

    const abort = new AbortController();
    const stream = (await store.get("k", { signal: abort.signal }))!;
    const reason = new Error("enough");
    abort.abort(reason);
    await assert.rejects(readAll(stream), (error) => error === reason);
  });
});

async function writeKeys(root: string, keys: string[]): Promise<void> {
  for (const key of keys) {
    const path = `${root}/${key}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(path, encoder.encode(key));
  }
}

const LAYOUT = [
  "basebackups_005/base_000000010000000000000002_00000040/extended_version.txt",
  "basebackups_005/base_000000010000000000000002_00000040/tar_partitions/part_00000000.tar.lzo",
  "basebackups_005/base_000000010000000000000002_00000040/tar_partitions/part_00000001.tar.lzo",
  "basebackups_005/base_000000010000000000000002_00000040_backup_stop_sentinel.json",
  "basebackups_005/base_000000010000000000000004_00000040/extended_version.txt",
  "wal_005/000000010000000000000001.lzo",
  "wal_005/000000010000000000000002.00000028.backup.lzo",
  "wal_005/000000010000000000000002.lzo",
  "wal_005/000000010000000000000003.lzo",
  "wal_005/00000002.history.lzo",
  "wal_005/000000020000000000000003.lzo",
];

Deno.test("file store: list without a delimiter is recursive, sorted and prefix-filtered", async () => {
  await withRoot(async (root, store) => {
    await writeKeys(root, [...LAYOUT].reverse());
    // Things that are not objects: temporary files, empty directories, a directory of temps.
    await Deno.writeFile(
      `${root}/wal_005/.000000010000000000000009.lzo.tmp-0123456789ab`,
      new Uint8Array(1),
    );
    await Deno.mkdir(`${root}/basebackups_005/empty/deeper`, { recursive: true });
    await Deno.mkdir(`${root}/only_temp`);
    await Deno.writeFile(`${root}/only_temp/.x.tmp-0123456789ab`, new Uint8Array(1));

    const all = await store.list("");
    assert.deepEqual(all.objects.map((o) => o.key), LAYOUT);
    assert.deepEqual(all.prefixes, []);
    assert.equal(all.cursor, undefined);
    const info = all.objects.find((o) => o.key === LAYOUT[0])!;
    assert.equal(info.size, encoder.encode(LAYOUT[0]).length);
    assert.ok(info.lastModified instanceof Date);

    assert.deepEqual(
      (await store.list("wal_005/0000000100")).objects.map((o) => o.key),
      LAYOUT.filter((key) => key.startsWith("wal_005/0000000100")),
    );
    assert.deepEqual(
      (await store.list("basebackups_005/base_000000010000000000000002_00000040")).objects
        .map((o) => o.key),
      LAYOUT.slice(0, 4),
    );
    assert.deepEqual((await store.list("wal_005/Z")).objects, []);
    assert.deepEqual((await store.list("nothing/here/")).objects, []);
  });
});

Deno.test("file store: list with a delimiter groups common prefixes", async () => {
  await withRoot(async (root, store) => {
    await writeKeys(root, LAYOUT);
    await Deno.mkdir(`${root}/basebackups_005/empty_dir`);
    await Deno.mkdir(`${root}/only_temp`);
    await Deno.writeFile(`${root}/only_temp/.x.tmp-0123456789ab`, new Uint8Array(1));

    const top = await store.list("", { delimiter: "/" });
    assert.deepEqual(top.objects, []);
    assert.deepEqual(top.prefixes, ["basebackups_005/", "wal_005/"]);

    const backups = await store.list("basebackups_005/", { delimiter: "/" });
    assert.deepEqual(backups.objects.map((o) => o.key), [
      "basebackups_005/base_000000010000000000000002_00000040_backup_stop_sentinel.json",
    ]);
    assert.deepEqual(backups.prefixes, [
      "basebackups_005/base_000000010000000000000002_00000040/",
      "basebackups_005/base_000000010000000000000004_00000040/",
    ]);

    const partial = await store.list("basebackups_005/base_0000000100000000000000", {
      delimiter: "/",
    });
    assert.equal(partial.objects.length, 1);
    assert.equal(partial.prefixes.length, 2);

    // Another delimiter groups inside names.
    const byDot = await store.list("wal_005/", { delimiter: "." });
    assert.deepEqual(byDot.objects, []);
    assert.deepEqual(byDot.prefixes, [
      "wal_005/000000010000000000000001.",
      "wal_005/000000010000000000000002.",
      "wal_005/000000010000000000000003.",
      "wal_005/00000002.",
      "wal_005/000000020000000000000003.",
    ]);
  });
});

Deno.test("file store: paging across more than 2500 keys with a small page size", async () => {
  await withRoot(async (root, store) => {
    const keys: string[] = [];
    for (let i = 0; i < 2300; i++) {
      keys.push(`wal_005/${i.toString(16).toUpperCase().padStart(24, "0")}.lzo`);
    }
    for (let b = 0; b < 4; b++) {
      keys.push(`basebackups_005/base_${b}/extended_version.txt`);
      for (let p = 0; p < 60; p++) {
        keys.push(`basebackups_005/base_${b}/tar_partitions/part_${String(p).padStart(8, "0")}`);
      }
      keys.push(`basebackups_005/base_${b}_backup_stop_sentinel.json`);
    }
    keys.push("a", "a.b", "a-c", "z/y/x/w");
    assert.ok(keys.length > 2500);
    await writeKeys(root, keys);
    await Deno.writeFile(`${root}/wal_005/.tmpfile.lzo.tmp-0123456789ab`, new Uint8Array(1));
    const sorted = [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

    const whole = await listAll(store, "");
    assert.deepEqual(whole.keys, sorted);
    assert.equal(whole.pages, 3);

    const paged = await listAll(store, "", { pageSize: 7 });
    assert.deepEqual(paged.keys, sorted);
    assert.equal(paged.pages, Math.ceil(sorted.length / 7));

    const walPaged = await listAll(store, "wal_005/0000000000000000000001", { pageSize: 13 });
    assert.deepEqual(
      walPaged.keys,
      sorted.filter((key) => key.startsWith("wal_005/0000000000000000000001")),
    );

    const grouped = await listAll(store, "basebackups_005/", { delimiter: "/", pageSize: 3 });
    assert.deepEqual(grouped.prefixes, [0, 1, 2, 3].map((b) => `basebackups_005/base_${b}/`));
    assert.deepEqual(
      grouped.keys,
      [0, 1, 2, 3].map((b) => `basebackups_005/base_${b}_backup_stop_sentinel.json`),
    );
    assert.equal(grouped.pages, 3);

    // A listing from the start sees changes at once (continuation pages may reuse a directory).
    await store.put("wal_005/000000010000000000000000.lzo", encoder.encode("new"));
    await store.delete(["wal_005/000000000000000000000000.lzo"]);
    const fresh = await store.list("wal_005/", { pageSize: 1 });
    assert.deepEqual(fresh.objects.map((o) => o.key), ["wal_005/000000000000000000000001.lzo"]);
    const after = await listAll(store, "wal_005/", { pageSize: 500 });
    assert.ok(after.keys.includes("wal_005/000000010000000000000000.lzo"));
    assert.equal(after.keys.length, 2300);

    const top = await listAll(store, "", { delimiter: "/", pageSize: 1 });
    assert.deepEqual(top.prefixes, ["basebackups_005/", "wal_005/", "z/"]);
    assert.deepEqual(top.keys, ["a", "a-c", "a.b"]);
  });
});

Deno.test("file store: a missing root lists nothing; an exact page has no cursor", async () => {
  await withRoot(async (root, store) => {
    assert.deepEqual(await store.list(""), { objects: [], prefixes: [] });
    assert.deepEqual(await store.list("wal_005/", { delimiter: "/" }), {
      objects: [],
      prefixes: [],
    });
    await writeKeys(root, ["a", "b"]);
    const page = await store.list("", { pageSize: 2 });
    assert.equal(page.objects.length, 2);
    assert.equal(page.cursor, undefined);
    const first = await store.list("", { pageSize: 1 });
    assert.equal(first.cursor, "a");
    assert.deepEqual(
      (await store.list("", { pageSize: 1, cursor: "a" })).objects.map((o) => o.key),
      ["b"],
    );
  });
});

Deno.test("file store: delete removes files, counts missing keys, prunes empty directories", async () => {
  await withRoot(async (root, store) => {
    await writeKeys(root, LAYOUT);
    const backup = LAYOUT.slice(0, 4);
    const result = await store.delete([...backup, "wal_005/missing.lzo", "no/such/dir/key"]);
    assert.deepEqual(result.errors, []);
    assert.deepEqual(result.deleted, [...backup, "wal_005/missing.lzo", "no/such/dir/key"]);
    assert.deepEqual(await tree(root), LAYOUT.slice(4));
    // base_..02 and its tar_partitions are gone; basebackups_005 still holds base_..04.
    assert.deepEqual(await names(`${root}/basebackups_005`), [
      "base_000000010000000000000004_00000040",
    ]);

    const rest = LAYOUT.slice(4);
    assert.deepEqual((await store.delete(rest)).deleted, rest);
    assert.deepEqual(await names(root), [], "every directory below the root is pruned");
    assert.ok((await Deno.stat(root)).isDirectory, "the root itself stays");
    assert.deepEqual(await store.delete([]), { deleted: [], errors: [] });
  });
});

Deno.test("file store: a directory that still holds other files is not pruned", async () => {
  await withRoot(async (root, store) => {
    await writeKeys(root, ["a/b/c", "a/d"]);
    await Deno.writeFile(`${root}/a/b/.c.tmp-0123456789ab`, new Uint8Array(1));
    await store.delete(["a/b/c"]);
    assert.ok((await Deno.stat(`${root}/a/b`)).isDirectory, "an upload in progress keeps it");
    await store.delete(["a/d"]);
    assert.ok((await Deno.stat(`${root}/a`)).isDirectory);
  });
});

Deno.test("file store: invalid keys are permanent errors", async () => {
  await withRoot(async (_root, store) => {
    for (const key of ["", "../escape", "a/../b", "/abs", "a//b", "a/./b", "dir/", "nul\0"]) {
      await assert.rejects(store.put(key, new Uint8Array(1)), (error: unknown) => {
        assert.ok(error instanceof StorageError, key);
        assert.equal(error.kind, "permanent");
        assert.match(error.message, /invalid object key/);
        return true;
      });
    }
    await assert.rejects(store.get(".x.tmp-0123456789ab"), /reserves names/);
    await assert.rejects(store.list("../"), /invalid list prefix/);
    const result = await store.delete(["../x", "ok"]);
    assert.deepEqual(result.deleted, ["ok"]);
    assert.equal(result.errors[0].key, "../x");
  });
});

Deno.test("file store: the host part of file://host/path is ignored (spec §1.4)", async () => {
  await withRoot(async (root, _store) => {
    const viaLocalhost = FileStore.fromPrefix(parseStoragePrefix(`file://localhost${root}`));
    const viaEmpty = FileStore.fromPrefix(parseStoragePrefix(`file://${root}/`));
    assert.equal(viaLocalhost.root, `${root}/`);
    assert.equal(viaEmpty.root, `${root}/`);
    await viaLocalhost.put("wal_005/x.lzo", encoder.encode("x"));
    assert.deepEqual(await getBytes(viaEmpty, "wal_005/x.lzo"), encoder.encode("x"));
    assert.deepEqual(await Deno.readFile(`${root}/wal_005/x.lzo`), encoder.encode("x"));
    // The first path component after // is the host: file://backups/pg stores under /pg/.
    assert.equal(FileStore.fromPrefix(parseStoragePrefix("file://backups/pg")).root, "/pg/");
    assert.equal(FileStore.fromPrefix(parseStoragePrefix("file:///")).root, "/");
  });
});

Deno.test("file store: a file where a directory should be is a permanent error", async () => {
  await withRoot(async (root, store) => {
    await writeKeys(root, ["wal_005"]);
    await assert.rejects(store.put("wal_005/x.lzo", new Uint8Array(1)), (error: unknown) => {
      assert.ok(error instanceof StorageError);
      assert.equal(error.kind, "permanent");
      assert.match(error.message, /not a directory/);
      return true;
    });
    assert.equal(await store.head("wal_005/x.lzo"), null);
  });
});

Deno.test("file store: permission denied is a permanent error naming the path and the user", async () => {
  // Root may do anything: the store runs as the harness's unprivileged PostgreSQL user then.
  const user = await pgUser().catch((error: Error) => error);
  if (user instanceof Error) {
    console.log(`skipped: no unprivileged user to run the store as: ${user.message}`);
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "wal-d-file-perm-" });
  try {
    await Deno.chmod(dir, 0o755);
    const root = `${dir}/archive`;
    await Deno.mkdir(`${root}/wal_005`, { recursive: true });
    await Deno.writeFile(`${root}/wal_005/secret.lzo`, encoder.encode("s"));
    // Unreadable to its owner too (as the tests run when they are not root).
    await Deno.chmod(`${root}/wal_005/secret.lzo`, 0o000);
    await Deno.chmod(`${root}/wal_005`, 0o500);
    await chownToPgUser(`${root}/wal_005`);
    const moduleUrl = new URL("../../src/storage/file.ts", import.meta.url).href;
    const script = `
      import { FileStore } from ${JSON.stringify(moduleUrl)};
      const store = new FileStore(${JSON.stringify(root)});
      const outcome = async (promise) => {
        try { await promise; return { ok: true }; }
        catch (e) { return { name: e.name, kind: e.kind, message: e.message, hint: e.hint }; }
      };
      console.log(JSON.stringify({
        put: await outcome(store.put("wal_005/new.lzo", new Uint8Array(1))),
        get: await outcome(store.get("wal_005/secret.lzo")),
      }));
    `;
    await Deno.writeTextFile(`${dir}/script.ts`, script);
    const run = await runAsPgUser([
      "deno",
      "run",
      "--no-config",
      "--no-lock",
      "-A",
      `${dir}/script.ts`,
    ]);
    assert.equal(run.code, 0, `child failed: ${run.stderr}`);
    type Outcome = { name?: string; kind?: string; message?: string; hint?: string };
    const result: { put: Outcome; get: Outcome } = JSON.parse(run.stdout);
    assert.equal(result.put.name, "StorageError");
    assert.equal(result.put.kind, "permanent");
    assert.match(
      result.put.message!,
      /^permission denied: cannot write ".*\/archive\/wal_005\/new\.lzo" in the file store$/,
    );
    assert.match(
      result.put.hint!,
      /wal-d runs as "[\w-]+" \(uid \d+\), who must be able to write to/,
    );
    assert.ok(result.put.hint!.includes(`${root}/wal_005`));
    assert.equal(result.get.kind, "permanent");
    assert.match(
      result.get.message!,
      /permission denied: cannot read ".*\/archive\/wal_005\/secret\.lzo"/,
    );
    assert.deepEqual(await names(`${root}/wal_005`), ["secret.lzo"], "no temporary file is left");
  } finally {
    await Deno.chmod(`${dir}/archive/wal_005`, 0o700).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
