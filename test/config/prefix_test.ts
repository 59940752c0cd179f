import assert from "node:assert/strict";
import { UserError } from "../../src/cli/errors.ts";
import { EffectiveEnvironment } from "../../src/config/environment.ts";
import {
  fileStorageRoot,
  objectUrl,
  parseStoragePrefix,
  selectPrefixUrl,
  splitUrl,
} from "../../src/config/prefix.ts";
import { resolveConfig } from "../../src/config/resolve.ts";

Deno.test("prefix: path prefix table of spec §1.1", () => {
  const table: [string, string, string][] = [
    ["s3://b/x", "b", "x/"],
    ["s3://b/x/", "b", "x/"],
    ["s3://b//x", "b", "x/"],
    ["s3://b", "b", ""],
    ["s3://b/", "b", ""],
    ["s3://b/a/b/c", "b", "a/b/c/"],
    ["s3://b/x?versionId=1#frag", "b", "x/"],
    ["s3://b/a%20b", "b", "a%20b/"],
    ["wabs://container/wal", "container", "wal/"],
    ["swift://c", "c", ""],
    ["gs://bucket//p/q", "bucket", "p/q/"],
  ];
  for (const [url, storeName, pathPrefix] of table) {
    const prefix = parseStoragePrefix(url);
    assert.equal(prefix.storeName, storeName, url);
    assert.equal(prefix.pathPrefix, pathPrefix, url);
    assert.equal(prefix.url, url);
  }
});

Deno.test("prefix: scheme is lower-cased and selects the backend", () => {
  assert.equal(parseStoragePrefix("S3://b/x").scheme, "s3");
  assert.equal(parseStoragePrefix("gs://b/x").scheme, "gs");
  assert.equal(parseStoragePrefix("swift://c/x").scheme, "swift");
  assert.equal(parseStoragePrefix("wabs://c/x").scheme, "wabs");
  assert.equal(parseStoragePrefix("file:///x").scheme, "file");
});

Deno.test("prefix: unsupported schemes are a UserError naming the source", () => {
  for (const url of ["http://b/x", "bucket/path", "s4://b", ""]) {
    assert.throws(() => parseStoragePrefix(url, "WALE_S3_PREFIX"), (error: unknown) => {
      assert.ok(error instanceof UserError);
      assert.equal(error.exitCode, 1);
      assert.match(error.message, /^unsupported storage prefix URL scheme/);
      assert.match(error.detail ?? "", /from WALE_S3_PREFIX/);
      assert.ok(error.hint);
      return true;
    });
  }
});

Deno.test("prefix: file URLs ignore the host (spec §1.4)", () => {
  assert.equal(fileStorageRoot(parseStoragePrefix("file:///backups/pg")), "/backups/pg/");
  assert.equal(fileStorageRoot(parseStoragePrefix("file://localhost/backups/pg")), "/backups/pg/");
  const hostish = parseStoragePrefix("file://backups/pg");
  assert.equal(hostish.storeName, "backups");
  assert.equal(fileStorageRoot(hostish), "/pg/");
  assert.equal(fileStorageRoot(parseStoragePrefix("file:///")), "/");
});

Deno.test("prefix: splitUrl follows Python urlsplit", () => {
  assert.deepEqual(splitUrl("  s3://b/p?q=1#f"), {
    scheme: "s3",
    netloc: "b",
    path: "/p",
    query: "q=1",
    fragment: "f",
  });
  assert.deepEqual(splitUrl("s3://b?x/y"), {
    scheme: "s3",
    netloc: "b",
    path: "",
    query: "x/y",
    fragment: "",
  });
  assert.deepEqual(splitUrl("s3:b/p"), {
    scheme: "s3",
    netloc: "",
    path: "b/p",
    query: "",
    fragment: "",
  });
  assert.equal(splitUrl("s3://b/p\n\tq").path, "/pq");
  assert.equal(splitUrl("1s3://b").scheme, "");
  assert.equal(splitUrl("s3://user@b:99/p").netloc, "user@b:99");
});

Deno.test("prefix: selection order is flags then WALE_* variables; empty counts as unset", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  const all = {
    WALE_FILE_PREFIX: "file:///f",
    WALE_GS_PREFIX: "gs://g",
    WALE_S3_PREFIX: "s3://s",
    WALE_SWIFT_PREFIX: "swift://w",
    WALE_WABS_PREFIX: "wabs://a",
  };
  assert.deepEqual(
    selectPrefixUrl(
      { filePrefix: "file:///F", gsPrefix: "gs://G", s3Prefix: "s3://S", wabsPrefix: "wabs://A" },
      env(all),
    ),
    { url: "file:///F", source: "--file-prefix" },
  );
  assert.deepEqual(
    selectPrefixUrl({ gsPrefix: "gs://G", s3Prefix: "s3://S", wabsPrefix: "wabs://A" }, env(all)),
    { url: "gs://G", source: "--gs-prefix" },
  );
  assert.deepEqual(selectPrefixUrl({ s3Prefix: "s3://S", wabsPrefix: "wabs://A" }, env(all)), {
    url: "s3://S",
    source: "--s3-prefix",
  });
  assert.deepEqual(selectPrefixUrl({ wabsPrefix: "wabs://A" }, env(all)), {
    url: "wabs://A",
    source: "--wabs-prefix",
  });
  assert.deepEqual(selectPrefixUrl({ filePrefix: "" }, env(all)), {
    url: "file:///f",
    source: "WALE_FILE_PREFIX",
  });
  const order = [
    "WALE_FILE_PREFIX",
    "WALE_GS_PREFIX",
    "WALE_S3_PREFIX",
    "WALE_SWIFT_PREFIX",
    "WALE_WABS_PREFIX",
  ] as const;
  for (let i = 0; i < order.length; i++) {
    const vars: Record<string, string> = { ...all };
    for (const earlier of order.slice(0, i)) vars[earlier] = "";
    assert.deepEqual(selectPrefixUrl({}, env(vars)), { url: all[order[i]], source: order[i] });
  }
  assert.equal(selectPrefixUrl({}, env({})), null);
});

Deno.test("prefix: objectUrl is the URL the prefix's store prints for a key", async () => {
  const { FileStore } = await import("../../src/storage/file.ts");
  const { S3Store } = await import("../../src/storage/s3.ts");
  const key = "wal_005/000000010000000000000003.lzo";
  for (const url of ["file:///backups/pg", "file://host/backups/pg/", "file:///"]) {
    const prefix = parseStoragePrefix(url);
    assert.equal(objectUrl(prefix, key), FileStore.fromPrefix(prefix).url(key), url);
  }
  assert.equal(
    objectUrl(parseStoragePrefix("file://host/backups/pg"), key),
    `file:///backups/pg/${key}`,
  );
  for (const url of ["s3://bucket/some/prefix", "s3://bucket"]) {
    const config = resolveConfig(
      { awsInstanceProfile: false, terse: false },
      new EffectiveEnvironment({
        WALE_S3_PREFIX: url,
        AWS_REGION: "us-east-1",
        AWS_ACCESS_KEY_ID: "AKIDEXAMPLE",
        AWS_SECRET_ACCESS_KEY: "not-a-real-secret",
      }),
    );
    const store = S3Store.fromConfig(config, config.prefix!);
    try {
      assert.equal(objectUrl(config.prefix!, key), store.url(key), url);
    } finally {
      store.close();
    }
  }
  assert.equal(
    objectUrl(parseStoragePrefix("s3://bucket/some/prefix"), key),
    `s3://bucket/some/prefix/${key}`,
  );
});
