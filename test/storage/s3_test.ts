import assert from "node:assert/strict";
import { UserError } from "../../src/cli/errors.ts";
import { EffectiveEnvironment } from "../../src/config/environment.ts";
import { type ConfigOptions, resolveConfig } from "../../src/config/resolve.ts";
import type { Config } from "../../src/config/types.ts";
import { openStore, type StoragePolicy } from "../../src/storage/mod.ts";
import { DEFAULT_STORAGE_POLICY, withPolicy } from "../../src/storage/policy.ts";
import {
  parseS3Endpoint,
  resolveS3Settings,
  type S3StoreSettings,
} from "../../src/storage/s3_config.ts";
import { s3Error, S3Store } from "../../src/storage/s3.ts";
import { S3ServiceException } from "@aws-sdk/client-s3";
import { type ObjectStore, StorageError } from "../../src/storage/types.ts";
import { s3rverEnv, s3rverUnavailable, startS3rver } from "./_s3rver.ts";
import { segmentBytes, walD } from "../wal/_cli.ts";
import { readAll, sha256Hex } from "../codec/_data.ts";

Deno.env.set("AWS_EC2_METADATA_DISABLED", "true");

const NO_OPTIONS: ConfigOptions = { awsInstanceProfile: false, terse: false };
const unavailable = await s3rverUnavailable();
if (unavailable !== null) console.log(`SKIP s3rver tests: ${unavailable}`);
const s3rverTest = { ignore: unavailable !== null, sanitizeResources: false, sanitizeOps: false };

function config(vars: Record<string, string>): Config {
  return resolveConfig(NO_OPTIONS, new EffectiveEnvironment(vars));
}

/** The S3 settings of a configuration with an s3:// prefix. */
function s3Settings(config: Config): S3StoreSettings {
  return resolveS3Settings(config, config.prefix!);
}

/** An S3Store (no storage policy) for the environment `vars`. */
function s3Store(vars: Record<string, string>): S3Store {
  return new S3Store(s3Settings(config(vars)));
}

function s3Env(endpoint: string, prefix = "s3://wald-test/some/prefix"): Record<string, string> {
  return s3rverEnv(endpoint, prefix);
}

const FAST: Partial<StoragePolicy> = {
  maxAttempts: 3,
  callTimeoutMs: 2000,
  idleTimeoutMs: 2000,
  budgetMs: 4000,
  backoffBaseMs: 10,
  backoffCapMs: 50,
};

async function getBytes(store: ObjectStore, key: string): Promise<Uint8Array | null> {
  const stream = await store.get(key);
  return stream === null ? null : await readAll(stream);
}

/** A deterministic stream of `size` bytes in 1 MiB chunks, never held whole. */
function patternStream(size: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= size) return controller.close();
      const chunk = new Uint8Array(Math.min(1 << 20, size - sent));
      for (let i = 0; i < chunk.length; i += 4096) chunk[i] = ((sent + i) / 4096) & 0xff;
      sent += chunk.length;
      controller.enqueue(chunk);
    },
  });
}

/** `size` bytes in 1 MiB chunks, every 4-byte word its own offset: misplaced bytes show. */
function distinctStream(size: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= size) return controller.close();
      const length = Math.min(1 << 20, size - sent);
      const words = new Uint32Array(Math.ceil(length / 4));
      for (let i = 0; i < words.length; i++) words[i] = (sent / 4 + i) ^ 0x5a5a5a5a;
      controller.enqueue(new Uint8Array(words.buffer, 0, length));
      sent += length;
    },
  });
}

/**
 * `size` bytes as a byte stream (`type: "bytes"`), the same bytes as {@linkcode distinctStream},
 * written into the reader's views, at most `maxFill` bytes per pull. `pulls` counts the pulls and
 * `withoutView` those that had no BYOB view to fill.
 */
function distinctByteStream(
  size: number,
  maxFill: number,
): { stream: ReadableStream<Uint8Array>; pulls: number; withoutView: number } {
  const state = { stream: null as unknown as ReadableStream<Uint8Array>, pulls: 0, withoutView: 0 };
  let sent = 0;
  state.stream = new ReadableStream({
    type: "bytes",
    pull(controller) {
      state.pulls++;
      if (sent >= size) {
        controller.close();
        controller.byobRequest?.respond(0);
        return;
      }
      const request = controller.byobRequest;
      if (request === null || request.view === null) {
        state.withoutView++;
        controller.error(new Error("the uploader did not offer a view"));
        return;
      }
      const view = request.view as Uint8Array;
      // Whole 4-byte words only (distinctStream's pattern), so fills stay aligned.
      const length = Math.min(view.byteLength, maxFill, size - sent) & ~3 ||
        Math.min(view.byteLength, size - sent);
      for (let i = 0; i < length; i++) {
        const at = sent + i;
        view[i] = (((at >>> 2) ^ 0x5a5a5a5a) >>> ((at & 3) * 8)) & 0xff;
      }
      sent += length;
      request.respond(length);
    },
  });
  return state;
}

/** The names of the commands `store`'s client sends, as they are sent. */
function spyCommands(store: S3Store): string[] {
  const commands: string[] = [];
  store.client.middlewareStack.add(
    (next, context) => async (args) => {
      commands.push(context.commandName ?? "");
      return await next(args);
    },
    { step: "initialize", name: "spy" },
  );
  return commands;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return await promise.then(() => assert.fail("expected a rejection"), (e) => e);
}

// ---------------------------------------------------------------------------------------------
// Settings (no server)

Deno.test("WALE_S3_ENDPOINT: WAL-E's six forms parse; anything else is one clear UserError", () => {
  assert.deepEqual(parseS3Endpoint("http+path://127.0.0.1:9000"), {
    protocol: "http",
    format: "path",
    host: "127.0.0.1",
    port: 9000,
  });
  assert.deepEqual(parseS3Endpoint("https+virtualhost://S3.example.com"), {
    protocol: "https",
    format: "virtualhost",
    host: "s3.example.com",
    port: null,
  });
  assert.equal(parseS3Endpoint("https+subdomain://[::1]:443").host, "[::1]");
  for (
    const bad of [
      "s3.example.com",
      "https://s3.example.com",
      "ftp+path://h",
      "https+pathx://h",
      "https+path://user:secretpw@h",
      "https+path://h/some/path",
      "https+path://h/",
      "https+path://h?x=1",
      "https+path://h:99999",
      "https+path://",
    ]
  ) {
    const error = (() => {
      try {
        parseS3Endpoint(bad);
      } catch (e) {
        return e;
      }
    })();
    assert.ok(error instanceof UserError, bad);
    assert.match(error.message, /^WALE_S3_ENDPOINT /);
    assert.ok(error.message.includes("<http|https>+<virtualhost|path|subdomain>://host[:port]"));
    assert.ok(!error.message.includes("\n"));
    assert.ok(!error.message.includes("secretpw"), "userinfo is not echoed");
  }
});

Deno.test("S3 settings: WAL-E's errors for missing region/endpoint and keys", async () => {
  const prefix = "s3://bucket/p";
  const cases: [Record<string, string>, RegExp, RegExp][] = [
    [
      { WALE_S3_PREFIX: prefix, AWS_ACCESS_KEY_ID: "k", AWS_SECRET_ACCESS_KEY: "s" },
      /^must define one of AWS_REGION or WALE_S3_ENDPOINT$/,
      /AWS_REGION/,
    ],
    [
      { WALE_S3_PREFIX: prefix, AWS_REGION: "us-east-1", AWS_SECRET_ACCESS_KEY: "s" },
      /^AWS Access Key credential is required but not provided$/,
      /--aws-access-key-id.*AWS_ACCESS_KEY_ID/,
    ],
    [
      { WALE_S3_PREFIX: prefix, AWS_REGION: "us-east-1", AWS_ACCESS_KEY_ID: "k" },
      /^AWS Secret Key credential is required but not provided$/,
      /AWS_SECRET_ACCESS_KEY/,
    ],
    [
      { WALE_S3_PREFIX: prefix, WALE_S3_ENDPOINT: "https://h", AWS_ACCESS_KEY_ID: "k" },
      /^WALE_S3_ENDPOINT URI scheme is invalid/,
      /https\+path/,
    ],
  ];
  for (const [vars, message, hint] of cases) {
    const error = await rejection(openStore(config(vars)));
    assert.ok(error instanceof UserError, String(error));
    assert.equal(error.exitCode, 1);
    assert.match(error.message, message);
    assert.match(error.hint ?? "", hint);
  }
  // The instance profile needs no keys; a session token comes from either variable.
  const profile = resolveConfig(
    { ...NO_OPTIONS, awsInstanceProfile: true },
    new EffectiveEnvironment({ WALE_S3_PREFIX: prefix, AWS_REGION: "eu-west-1" }),
  );
  assert.equal(s3Settings(profile).credentials, "instance-profile");
  const withToken = config({
    WALE_S3_PREFIX: prefix,
    AWS_REGION: "eu-west-1",
    AWS_ACCESS_KEY_ID: "k",
    AWS_SECRET_ACCESS_KEY: "s",
    AWS_SESSION_TOKEN: "tok",
    WALE_S3_STORAGE_CLASS: "STANDARD_IA",
  });
  const settings = s3Settings(withToken);
  assert.deepEqual(settings.credentials, {
    accessKeyId: "k",
    secretAccessKey: "s",
    sessionToken: "tok",
  });
  assert.equal(settings.storageClass, "STANDARD_IA");
  assert.equal(settings.pathPrefix, "p/");
  assert.deepEqual(settings.encryption, { mode: "AES256" });
  const kms = config({
    WALE_S3_PREFIX: prefix,
    AWS_REGION: "eu-west-1",
    AWS_ACCESS_KEY_ID: "k",
    AWS_SECRET_ACCESS_KEY: "s",
    WALE_S3_SSE: "aws:kms",
    WALE_S3_SSE_KMS_ID: "alias/wal",
  });
  assert.deepEqual(s3Settings(kms).encryption, {
    mode: "aws:kms",
    kmsKeyId: "alias/wal",
  });
});

Deno.test("S3 errors: credentials, bucket and region problems are permanent; 5xx and throttling transient", () => {
  const settings = s3Settings(config(s3Env("http+path://127.0.0.1:1")));
  const make = (name: string, status: number) =>
    new S3ServiceException({
      name,
      $fault: status >= 500 ? "server" : "client",
      $metadata: { httpStatusCode: status },
      message: `${name} happened`,
    });
  const cases: [string, number, "permanent" | "transient", RegExp | null][] = [
    ["SignatureDoesNotMatch", 403, "permanent", /AWS_SECRET_ACCESS_KEY/],
    ["InvalidAccessKeyId", 403, "permanent", /AWS_ACCESS_KEY_ID/],
    ["AccessDenied", 403, "permanent", /s3:GetObject/],
    ["Forbidden", 403, "permanent", /s3:GetObject/],
    ["ExpiredToken", 400, "permanent", /AWS_SECURITY_TOKEN/],
    ["NoSuchBucket", 404, "permanent", /does not exist at 127\.0\.0\.1/],
    ["PermanentRedirect", 301, "permanent", /AWS_REGION/],
    ["AuthorizationHeaderMalformed", 400, "permanent", /AWS_REGION/],
    ["InvalidRequest", 400, "permanent", null],
    ["SlowDown", 503, "transient", null],
    ["InternalError", 500, "transient", null],
    ["ServiceUnavailable", 503, "transient", null],
    ["Unknown", 502, "transient", null],
    ["RequestTimeout", 400, "transient", null],
    ["TooManyRequestsException", 429, "transient", null],
  ];
  for (const [name, status, kind, hint] of cases) {
    const error = s3Error(make(name, status), 'put "s3://b/k"', settings);
    assert.equal(error.kind, kind, name);
    assert.match(error.message, new RegExp(`^put "s3://b/k": ${name} \\(HTTP ${status}\\)`));
    if (hint === null) assert.equal(error.hint, undefined, name);
    else assert.match(error.hint ?? "", hint, name);
  }
  const reset = Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
  assert.equal(s3Error(reset, "get", settings).kind, "transient");
  const timeout = Object.assign(new Error("timed out"), { name: "TimeoutError" });
  assert.equal(s3Error(timeout, "get", settings).kind, "transient");
  const dns = Object.assign(new Error("getaddrinfo ENOTFOUND s3.x"), { code: "ENOTFOUND" });
  assert.equal(s3Error(dns, "get", settings).kind, "transient");
  assert.match(
    s3Error(dns, "get", settings).hint ?? "",
    /WALE_S3_ENDPOINT \(host "127\.0\.0\.1"\)/,
  );
});

// ---------------------------------------------------------------------------------------------
// Against s3rver

Deno.test({
  name: "S3 store against s3rver: round trip, multipart, paging, errors, stopped server",
  ...s3rverTest,
  async fn(t) {
    const server = await startS3rver(["wald-test"]);
    try {
      const env = s3Env(server.endpoint);
      const store = await openStore(config(env), undefined, { policy: FAST });

      await t.step("put/get/head/list/delete round trip", async () => {
        assert.equal(store.scheme, "s3");
        assert.equal(store.url("wal_005/a.lzo"), "s3://wald-test/some/prefix/wal_005/a.lzo");
        await store.put("wal_005/a.lzo", new Uint8Array([1, 2, 3]));
        await store.put(
          "wal_005/b.lzo",
          () => ReadableStream.from([new Uint8Array([4, 5]), new Uint8Array([6])]),
        );
        await store.put("basebackups_005/sentinel.json", new TextEncoder().encode("{}"), {
          contentType: "application/json",
        });
        assert.deepEqual(await getBytes(store, "wal_005/a.lzo"), new Uint8Array([1, 2, 3]));
        assert.deepEqual(await getBytes(store, "wal_005/b.lzo"), new Uint8Array([4, 5, 6]));
        assert.equal(await store.get("wal_005/missing.lzo"), null);
        assert.equal(await store.head("wal_005/missing.lzo"), null);
        const head = await store.head("wal_005/b.lzo");
        assert.equal(head?.size, 3);
        assert.equal(head?.key, "wal_005/b.lzo");
        assert.ok(head!.lastModified.getTime() > Date.now() - 600_000);
        const all = await store.list("");
        assert.deepEqual(all.objects.map((o) => o.key).sort(), [
          "basebackups_005/sentinel.json",
          "wal_005/a.lzo",
          "wal_005/b.lzo",
        ]);
        const top = await store.list("", { delimiter: "/" });
        assert.deepEqual(top.objects, []);
        assert.deepEqual(top.prefixes.sort(), ["basebackups_005/", "wal_005/"]);
        assert.deepEqual(
          await store.delete(["wal_005/a.lzo", "wal_005/never.lzo"]),
          { deleted: ["wal_005/a.lzo", "wal_005/never.lzo"], errors: [] },
        );
        assert.equal(await store.head("wal_005/a.lzo"), null);
        // Physical names: the prefix's path + key, no leading slash (spec §1.4).
        const bare = await openStore(config(s3Env(server.endpoint, "s3://wald-test")));
        const names = (await bare.list("some/")).objects.map((o) => o.key).sort();
        assert.deepEqual(names, [
          "some/prefix/basebackups_005/sentinel.json",
          "some/prefix/wal_005/b.lzo",
        ]);
        // One key per call: s3rver races when one batch empties a directory (see _s3rver.ts).
        await store.delete(["wal_005/b.lzo"]);
        await store.delete(["basebackups_005/sentinel.json"]);
      });

      await t.step("puts carry WAL-E's headers; DeleteObjects carries Content-MD5", async () => {
        const direct = s3Store({ ...env, WALE_S3_STORAGE_CLASS: "STANDARD_IA" });
        const seen: [string, Record<string, string>][] = [];
        direct.client.middlewareStack.add(
          (next, context) => async (args) => {
            const request = args.request as { headers: Record<string, string> };
            seen.push([context.commandName ?? "", { ...request.headers }]);
            return await next(args);
          },
          { step: "finalizeRequest", name: "spy" },
        );
        try {
          await direct.put("basebackups_005/x/sentinel.json", new Uint8Array([1]), {
            contentType: "application/json",
          });
          await direct.put("basebackups_005/x/y", () => ReadableStream.from([new Uint8Array(9)]));
          await direct.delete(["basebackups_005/x/sentinel.json"]);
          await direct.delete(["basebackups_005/x/y"]);
        } finally {
          direct.close();
        }
        const puts = seen.filter(([name]) => name === "PutObjectCommand").map(([, h]) => h);
        assert.equal(puts.length, 2);
        for (const headers of puts) {
          assert.equal(headers["x-amz-server-side-encryption"], "AES256");
          assert.equal(headers["x-amz-storage-class"], "STANDARD_IA");
          assert.equal(headers["x-amz-checksum-crc32"], undefined, "no flexible checksums");
        }
        assert.equal(puts[0]["content-type"], "application/json");
        const deletes = seen.filter(([name]) => name === "DeleteObjectsCommand");
        assert.equal(deletes.length, 2);
        for (const [, headers] of deletes) {
          assert.match(headers["content-md5"], /^[A-Za-z0-9+/]{22}==$/);
        }
      });

      await t.step("a 20 MiB stream goes up in parts and comes back intact", async () => {
        const size = 20 * 1024 * 1024 + 12345;
        const expected = await sha256Hex(await readAll(patternStream(size)));
        const direct = s3Store(env);
        const commands = spyCommands(direct);
        try {
          await direct.put("basebackups_005/big/part_00000000.tar.lzo", patternStream(size));
        } finally {
          direct.close();
        }
        assert.equal(commands[0], "CreateMultipartUploadCommand");
        assert.equal(commands.filter((c) => c === "UploadPartCommand").length, 3, "8 MiB parts");
        assert.equal(commands.at(-1), "CompleteMultipartUploadCommand");
        const head = await store.head("basebackups_005/big/part_00000000.tar.lzo");
        assert.equal(head?.size, size);
        const back = await getBytes(store, "basebackups_005/big/part_00000000.tar.lzo");
        assert.equal(back?.length, size);
        assert.equal(await sha256Hex(back!), expected);
        await store.delete(["basebackups_005/big/part_00000000.tar.lzo"]);
      });

      await t.step("a 50 MiB stream of distinct data: parts in order, bytes intact", async () => {
        const size = 50 * 1024 * 1024 + 777;
        const expected = await sha256Hex(await readAll(distinctStream(size)));
        const direct = s3Store(env);
        const parts: [number, number][] = [];
        let completed: number[] = [];
        direct.client.middlewareStack.add(
          (next, context) => async (args) => {
            const input = args.input as {
              PartNumber?: number;
              ContentLength?: number;
              MultipartUpload?: { Parts?: { PartNumber?: number }[] };
            };
            if (context.commandName === "UploadPartCommand") {
              parts.push([input.PartNumber!, input.ContentLength!]);
            }
            if (context.commandName === "CompleteMultipartUploadCommand") {
              completed = input.MultipartUpload!.Parts!.map((p) => p.PartNumber!);
            }
            return await next(args);
          },
          { step: "initialize", name: "spy" },
        );
        const key = "basebackups_005/big/part_00000001.tar.lzo";
        try {
          await direct.put(key, distinctStream(size));
        } finally {
          direct.close();
        }
        const part = 8 * 1024 * 1024;
        assert.deepEqual(parts.map(([n]) => n).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7]);
        for (const [n, length] of parts) {
          assert.equal(length, n < 7 ? part : size - 6 * part, `part ${n}`);
        }
        assert.deepEqual(completed, [1, 2, 3, 4, 5, 6, 7]);
        const back = await getBytes(store, key);
        assert.equal(back?.length, size);
        assert.equal(await sha256Hex(back!), expected);
        await store.delete([key]);
      });

      await t.step("a byte stream is read straight into the part buffers", async () => {
        const direct = s3Store(env);
        const commands = spyCommands(direct);
        const part = 8 * 1024 * 1024;
        try {
          for (
            const [size, maxFill, parts] of [
              [0, 1 << 20, 0],
              [1000, 1 << 20, 0],
              [part, 3 << 20, 0], // exactly one part: one PUT
              [part + 1, 1 << 30, 2],
              [3 * part + 4097, 777_777, 4],
            ]
          ) {
            commands.length = 0;
            const key = `basebackups_005/bytes/${size}`;
            const source = distinctByteStream(size, maxFill);
            // Through the storage policy, as commands put: its idle watch keeps the byte stream.
            await withPolicy(direct, { ...DEFAULT_STORAGE_POLICY, ...FAST }).put(
              key,
              source.stream,
            );
            assert.equal(source.withoutView, 0, `${size}: every pull filled a view`);
            const sent = commands.filter((c) => c === "UploadPartCommand").length;
            assert.equal(sent, parts, `${size}: parts`);
            assert.equal(commands.includes("PutObjectCommand"), parts === 0, `${size}: one PUT`);
            const back = await getBytes(store, key);
            assert.equal(back?.length, size, `${size}: length`);
            assert.equal(
              await sha256Hex(back!),
              await sha256Hex(await readAll(distinctStream(size))),
              `${size}: bytes`,
            );
            await store.delete([key]);
          }
        } finally {
          direct.close();
        }
      });

      await t.step(
        "a failed or aborted multipart upload is aborted and leaves no object",
        async () => {
          // s3rver 3.7.1 implements neither ListMultipartUploads nor AbortMultipartUpload (it answers
          // NotImplemented / MethodNotAllowed), so the test checks that AbortMultipartUpload is sent
          // for the upload that was created, that nothing is completed, and that no object exists.
          const direct = s3Store(env);
          const commands: string[] = [];
          const uploadIds: { created: string[]; aborted: string[] } = { created: [], aborted: [] };
          direct.client.middlewareStack.add(
            (next, context) => async (args) => {
              commands.push(context.commandName ?? "");
              if (context.commandName === "AbortMultipartUploadCommand") {
                uploadIds.aborted.push((args.input as { UploadId: string }).UploadId);
              }
              const result = await next(args);
              if (context.commandName === "CreateMultipartUploadCommand") {
                uploadIds.created.push((result.output as { UploadId: string }).UploadId);
              }
              return result;
            },
            { step: "initialize", name: "spy" },
          );
          const key = "basebackups_005/big/failed.tar.lzo";
          const check = async (what: string) => {
            assert.ok(commands.includes("UploadPartCommand"), `${what}: parts were sent`);
            assert.ok(!commands.includes("CompleteMultipartUploadCommand"), what);
            assert.equal(commands.at(-1), "AbortMultipartUploadCommand", what);
            assert.equal(uploadIds.created.length, 1, what);
            assert.deepEqual(uploadIds.aborted, uploadIds.created, what);
            assert.equal(await store.head(key), null, `${what}: no object`);
            commands.length = 0;
            uploadIds.created.length = 0;
            uploadIds.aborted.length = 0;
          };
          try {
            // The body fails after 20 MiB.
            const boom = new Error("source failed");
            const failing = distinctStream(20 * 1024 * 1024).pipeThrough(
              new TransformStream<Uint8Array, Uint8Array>({
                flush: () => {
                  throw boom;
                },
              }),
            );
            const failed = await rejection(direct.put(key, failing));
            assert.ok(failed instanceof StorageError, String(failed));
            assert.equal(failed.cause, boom, "the body's error, not the aborts of the parts");
            await check("failing body");
            // The caller aborts after 20 MiB of an endless body.
            const controller = new AbortController();
            let sent = 0;
            const endless = new ReadableStream<Uint8Array>({
              pull(c) {
                sent += 1 << 20;
                if (sent === 20 * 1024 * 1024) controller.abort(new Error("stop"));
                c.enqueue(new Uint8Array(1 << 20).fill(sent >> 20));
              },
            });
            const error = await rejection(direct.put(key, endless, { signal: controller.signal }));
            assert.equal((error as Error).message, "stop");
            await check("aborted");
          } finally {
            direct.close();
          }
        },
      );

      await t.step("more than 1000 keys: listing pages, deletes in batches", async () => {
        const keys = Array.from(
          { length: 1203 },
          (_, i) => `wal_005/1${i.toString(16).padStart(23, "0")}.lzo`,
        );
        const tiny = new Uint8Array([7]);
        // Keeps the directory non-empty while the batch is deleted (s3rver race, _s3rver.ts).
        await store.put("wal_005/keep", tiny);
        for (let i = 0; i < keys.length; i += 50) {
          await Promise.all(keys.slice(i, i + 50).map((key) => store.put(key, tiny)));
        }
        const listed: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await store.list("wal_005/1", { cursor });
          assert.ok(page.objects.length <= 1000);
          listed.push(...page.objects.map((o) => o.key));
          cursor = page.cursor;
          pages++;
        } while (cursor !== undefined);
        assert.equal(pages, 2);
        assert.deepEqual(listed.sort(), keys);
        const small = await store.list("wal_005/1", { pageSize: 500 });
        assert.equal(small.objects.length, 500);
        assert.ok(small.cursor !== undefined);
        const result = await store.delete(keys);
        assert.equal(result.deleted.length, keys.length);
        assert.deepEqual(result.errors, []);
        assert.deepEqual((await store.list("wal_005/")).objects.map((o) => o.key), [
          "wal_005/keep",
        ]);
        await store.delete(["wal_005/keep"]);
      });

      await t.step("an unknown access key id is a permanent error", async () => {
        // s3rver does not verify SigV4 signatures, so a wrong SECRET cannot be produced here;
        // its classification (SignatureDoesNotMatch) is tested without a server below.
        const unknownKey = await openStore(
          config({ ...env, AWS_ACCESS_KEY_ID: "NOBODY", AWS_SECRET_ACCESS_KEY: "not-the-secret" }),
          undefined,
          { policy: FAST },
        );
        for (
          const call of [
            () => unknownKey.put("wal_005/x.lzo", new Uint8Array([1])),
            () => unknownKey.list(""),
          ]
        ) {
          const error = await rejection(call());
          assert.ok(error instanceof StorageError, String(error));
          assert.equal(error.kind, "permanent");
          assert.match(error.message, /InvalidAccessKeyId/);
          assert.match(error.hint ?? "", /AWS_ACCESS_KEY_ID/);
          assert.ok(!error.message.includes("not-the-secret"));
        }
      });

      await t.step("a missing bucket is a permanent error with a hint", async () => {
        const missing = await openStore(
          config(s3Env(server.endpoint, "s3://no-such-bucket/p")),
          undefined,
          { policy: FAST },
        );
        for (
          const call of [
            () => missing.put("wal_005/x.lzo", new Uint8Array([1])),
            () => missing.list(""),
            () => missing.get("wal_005/x.lzo"),
          ]
        ) {
          const error = await rejection(call());
          assert.ok(error instanceof StorageError, String(error));
          assert.equal(error.kind, "permanent");
          assert.match(error.message, /NoSuchBucket/);
          assert.match(error.hint ?? "", /bucket "no-such-bucket" does not exist/);
        }
      });

      await t.step("a stopped server is transient, and the policy gives up in time", async () => {
        await server.stop();
        const started = performance.now();
        const error = await rejection(store.head("wal_005/x.lzo"));
        const elapsed = performance.now() - started;
        assert.ok(error instanceof StorageError, String(error));
        assert.equal(error.kind, "transient");
        assert.ok(elapsed < FAST.budgetMs! + 2000, `gave up after ${elapsed} ms`);
      });
    } finally {
      await server.stop();
    }
  },
});

const SEG = "000000010000000000000003";

Deno.test({
  name: "wal-push and wal-fetch through the CLI against s3rver",
  ...s3rverTest,
  async fn() {
    const server = await startS3rver(["wald-test"]);
    const dir = await Deno.makeTempDir({ prefix: "wald-s3-cli-" });
    try {
      await Deno.mkdir(`${dir}/pg_wal/archive_status`, { recursive: true });
      const segment = segmentBytes(3);
      await Deno.writeFile(`${dir}/pg_wal/${SEG}`, segment);
      const env = s3Env(server.endpoint, "s3://wald-test/p");
      const pushed = await walD(["wal-push", `pg_wal/${SEG}`], { env, cwd: dir });
      assert.equal(pushed.code, 0, pushed.stderr);
      assert.match(pushed.stderr, /s3:\/\/wald-test\/p\/wal_005\/000000010000000000000003\.lzo/);
      const store = await openStore(config(env));
      assert.ok((await store.head(`wal_005/${SEG}.lzo`))!.size > 0);

      // WAL-E warns when both are set; so does wal-d (which signs for AWS_REGION).
      assert.match(pushed.stderr, /WARNING .*both AWS_REGION and WALE_S3_ENDPOINT are set/);
      assert.match(
        pushed.stderr,
        /signs requests to the endpoint "127\.0\.0\.1" for region "us-east-1"/,
      );

      const fetched = await walD(["wal-fetch", SEG, `${dir}/restored`], {
        env: { ...env, AWS_REGION: "" },
        cwd: dir,
      });
      assert.equal(fetched.code, 0, fetched.stderr);
      assert.doesNotMatch(fetched.stderr, /AWS_REGION/, "no warning with the endpoint alone");
      assert.equal(
        await sha256Hex(await Deno.readFile(`${dir}/restored`)),
        await sha256Hex(segment),
      );

      const absent = await walD(
        ["wal-fetch", "000000010000000000000009", `${dir}/absent`],
        { env, cwd: dir },
      );
      assert.equal(absent.code, 1, absent.stderr);

      const noRegion = await walD(["wal-push", `pg_wal/${SEG}`], {
        env: { ...env, WALE_S3_ENDPOINT: "", AWS_REGION: "" },
        cwd: dir,
      });
      assert.equal(noRegion.code, 1);
      assert.match(noRegion.stderr, /must define one of AWS_REGION or WALE_S3_ENDPOINT/);
    } finally {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// ---------------------------------------------------------------------------------------------
// A server that stalls: no call may hang past its deadline

/** A TCP server on loopback that reads requests and answers GETs with a body it never finishes. */
function stallingServer(): { port: number; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const connections: Deno.Conn[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      connections.push(conn);
      (async () => {
        const buffer = new Uint8Array(65536);
        const n = await conn.read(buffer).catch(() => null);
        if (n === null) return;
        const head = new TextDecoder().decode(buffer.subarray(0, n));
        if (head.startsWith("GET ")) {
          await conn.write(new TextEncoder().encode(
            "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nContent-Type: binary/octet-stream\r\n\r\n",
          )).catch(() => {});
          await conn.write(new Uint8Array(1000)).catch(() => {});
        }
        // Then silence: read and discard whatever else comes.
        while ((await conn.read(buffer).catch(() => null)) !== null) { /* discard */ }
      })();
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      for (const conn of connections) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
      await serving.catch(() => {});
    },
  };
}

Deno.test({
  name: "S3 against a server that stalls: every call ends by its deadline, as transient",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = stallingServer();
    const policy: Partial<StoragePolicy> = {
      maxAttempts: 2,
      callTimeoutMs: 400,
      idleTimeoutMs: 400,
      budgetMs: 1500,
      backoffBaseMs: 10,
      backoffCapMs: 20,
    };
    try {
      const store = await openStore(
        config(s3Env(`http+path://127.0.0.1:${server.port}`)),
        undefined,
        { policy },
      );
      const calls: [string, () => Promise<unknown>][] = [
        ["head", () => store.head("wal_005/x.lzo")],
        ["list", () => store.list("")],
        ["put bytes", () => store.put("wal_005/x.lzo", new Uint8Array(10))],
        ["put stream", () => store.put("wal_005/x.lzo", () => patternStream(1 << 20))],
        ["get body", async () => await readAll((await store.get("wal_005/x.lzo"))!)],
      ];
      for (const [what, call] of calls) {
        const started = performance.now();
        const error = await rejection(call());
        const elapsed = performance.now() - started;
        assert.ok(error instanceof StorageError, `${what}: ${error}`);
        assert.equal(error.kind, "transient", what);
        assert.match(error.message, /timed out/, what);
        assert.ok(elapsed < 3000, `${what} ended after ${elapsed.toFixed(0)} ms`);
      }
    } finally {
      await server.close();
    }
  },
});

Deno.test("S3 addressing: path, subdomain and virtualhost endpoints, and AWS by bucket name", async () => {
  const cases: [Record<string, string>, string, string][] = [
    [{ WALE_S3_ENDPOINT: "https+path://s3.example.com:9000" }, "s3.example.com", "/bkt/p/k"],
    [{ WALE_S3_ENDPOINT: "https+subdomain://s3.example.com" }, "bkt.s3.example.com", "/p/k"],
    [{ WALE_S3_ENDPOINT: "http+virtualhost://ignored.example.com:81" }, "bkt", "/p/k"],
    [{ AWS_REGION: "eu-west-1" }, "bkt.s3.eu-west-1.amazonaws.com", "/p/k"],
  ];
  for (const [vars, hostname, path] of cases) {
    const store = s3Store({
      WALE_S3_PREFIX: "s3://bkt/p",
      AWS_ACCESS_KEY_ID: "k",
      AWS_SECRET_ACCESS_KEY: "s",
      ...vars,
    });
    let seen: { hostname: string; path: string } | null = null;
    store.client.middlewareStack.add(
      () => (args) => {
        const request = args.request as { hostname: string; path: string };
        seen = { hostname: request.hostname, path: request.path };
        return Promise.reject(new Error("not sent"));
      },
      { step: "finalizeRequest", name: "capture" },
    );
    await rejection(store.head("k"));
    store.close();
    assert.deepEqual(seen, { hostname, path }, JSON.stringify(vars));
  }
  // A dotted bucket on AWS is addressed path-style, as WAL-E does (TLS certificates).
  const store = s3Store({
    WALE_S3_PREFIX: "s3://my.bucket/p",
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "k",
    AWS_SECRET_ACCESS_KEY: "s",
  });
  assert.equal(await store.client.config.forcePathStyle, true);
  store.close();
});
