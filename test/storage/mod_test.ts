import assert from "node:assert/strict";
import { UserError } from "../../src/cli/errors.ts";
import { EffectiveEnvironment } from "../../src/config/environment.ts";
import { type ConfigOptions, resolveConfig } from "../../src/config/resolve.ts";
import type { Config } from "../../src/config/types.ts";
import {
  DEFAULT_STORAGE_POLICY,
  openStore,
  RETRY_BUDGET_ENV_VAR,
  storagePolicyFromConfig,
} from "../../src/storage/mod.ts";
import { DEFAULT_MAX_ATTEMPTS } from "../../src/storage/policy.ts";
import { readAll } from "../codec/_data.ts";

const NO_OPTIONS: ConfigOptions = { awsInstanceProfile: false, terse: false };

function config(vars: Record<string, string>): Config {
  return resolveConfig(NO_OPTIONS, new EffectiveEnvironment(vars));
}

Deno.test("openStore: a file prefix opens the file store behind the policy", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wal-d-open-store-" });
  try {
    const store = await openStore(config({ WALE_FILE_PREFIX: `file://localhost${dir}/pg` }));
    assert.equal(store.scheme, "file");
    assert.equal(store.url("wal_005/x.lzo"), `file://${dir}/pg/wal_005/x.lzo`);
    await store.put("wal_005/x.lzo", () => ReadableStream.from([new Uint8Array([1, 2, 3])]));
    assert.deepEqual(await Deno.readFile(`${dir}/pg/wal_005/x.lzo`), new Uint8Array([1, 2, 3]));
    assert.deepEqual(await readAll((await store.get("wal_005/x.lzo"))!), new Uint8Array([1, 2, 3]));
    assert.equal((await store.head("wal_005/x.lzo"))?.size, 3);
    assert.equal(await store.get("wal_005/y.lzo"), null);
    assert.deepEqual((await store.list("wal_005/")).objects.map((o) => o.key), ["wal_005/x.lzo"]);
    assert.deepEqual(await store.delete(["wal_005/x.lzo"]), {
      deleted: ["wal_005/x.lzo"],
      errors: [],
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openStore: schemes without a backend yet are refused with one clear line", async () => {
  for (
    const [variable, url, scheme] of [
      ["WALE_WABS_PREFIX", "wabs://container/pg", "wabs"],
      ["WALE_GS_PREFIX", "gs://bucket/pg", "gs"],
      ["WALE_SWIFT_PREFIX", "swift://container/pg", "swift"],
    ]
  ) {
    const error = await openStore(config({ [variable]: url })).then(() => null, (e) => e);
    assert.ok(error instanceof UserError, scheme);
    assert.equal(error.exitCode, 1);
    assert.equal(
      error.message,
      `the "${scheme}" storage backend of prefix "${url}" (from ${variable}) is not supported ` +
        "yet by this build; only file:// and s3:// prefixes work so far",
    );
    assert.ok(!error.message.includes("\n"));
    assert.equal(error.detail, undefined);
  }
});

Deno.test("openStore: no prefix is WAL-E's 'no storage prefix defined'", async () => {
  await assert.rejects(openStore(config({})), (error: unknown) => {
    assert.ok(error instanceof UserError);
    assert.equal(error.message, "no storage prefix defined");
    return true;
  });
});

Deno.test("storage policy from the configuration: WALE_RETRIES and the time budget", () => {
  const unset = storagePolicyFromConfig(config({}));
  assert.equal(unset.maxAttempts, DEFAULT_MAX_ATTEMPTS, "WAL-E's 100 is not the default");
  assert.equal(unset.budgetMs, 600_000);
  assert.deepEqual(unset, DEFAULT_STORAGE_POLICY);
  assert.equal(storagePolicyFromConfig(config({ WALE_RETRIES: "" })).maxAttempts, 8);
  assert.equal(storagePolicyFromConfig(config({ WALE_RETRIES: "1" })).maxAttempts, 1);
  assert.equal(storagePolicyFromConfig(config({ WALE_RETRIES: "100" })).maxAttempts, 100);
  assert.equal(storagePolicyFromConfig(config({ WALE_RETRIES: "0" })).maxAttempts, 0);
  assert.equal(storagePolicyFromConfig(config({ WALE_RETRIES: "-3" })).maxAttempts, -3);
  assert.equal(
    storagePolicyFromConfig(config({ [RETRY_BUDGET_ENV_VAR]: "90" })).budgetMs,
    90_000,
  );
  assert.equal(
    storagePolicyFromConfig(config({ [RETRY_BUDGET_ENV_VAR]: "0.5" })).budgetMs,
    500,
  );
  for (const bad of ["0", "-1", "soon", "Infinity"]) {
    assert.throws(
      () => storagePolicyFromConfig(config({ [RETRY_BUDGET_ENV_VAR]: bad })),
      (error: unknown) => error instanceof UserError && error.message.includes(bad),
    );
  }
});

Deno.test("openStore: the policy applies (WALE_RETRIES=1, overrides)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wal-d-open-store-" });
  try {
    await Deno.writeFile(`${dir}/pg`, new Uint8Array(0)); // a file where the root should be
    const store = await openStore(
      config({ WALE_FILE_PREFIX: `file://${dir}/pg`, WALE_RETRIES: "1" }),
      undefined,
      { policy: { callTimeoutMs: 5_000 } },
    );
    await assert.rejects(store.put("wal_005/x.lzo", new Uint8Array(1)), /not a directory/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("storage/mod.ts loads backends lazily, with literal import paths", async () => {
  const source = await Deno.readTextFile(new URL("../../src/storage/mod.ts", import.meta.url));
  assert.match(source, /await import\("\.\/file\.ts"\)/);
  assert.doesNotMatch(source, /^import[^\n]*\.\/file\.ts/m, "no static import of a backend");
});
