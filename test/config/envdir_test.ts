import assert from "node:assert/strict";
import { UserError } from "../../src/cli/errors.ts";
import {
  envDirValueFromBytes,
  loadEffectiveEnvironment,
  overlayEnvironment,
  readEnvDir,
  selectEnvDir,
} from "../../src/config/envdir.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

function withEnvDir(files: Record<string, string>, body: (dir: string) => void): void {
  const dir = Deno.makeTempDirSync({ prefix: "wal-d-envdir-test-" });
  try {
    for (const [name, content] of Object.entries(files)) {
      Deno.writeTextFileSync(`${dir}/${name}`, content);
    }
    body(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("envdir: value is the first line, trailing spaces/tabs trimmed, NUL read as newline", () => {
  assert.equal(envDirValueFromBytes(bytes("value")), "value");
  assert.equal(envDirValueFromBytes(bytes("first\nsecond\n")), "first");
  assert.equal(envDirValueFromBytes(bytes("padded \t \t\nx")), "padded");
  assert.equal(envDirValueFromBytes(bytes("  leading kept")), "  leading kept");
  assert.equal(envDirValueFromBytes(bytes("a\0b\0")), "a\nb\n");
  assert.equal(envDirValueFromBytes(bytes("a\0 \n")), "a\n");
  assert.equal(envDirValueFromBytes(bytes("\r\n")), "\r");
});

Deno.test("envdir: an empty file unsets, a file with only a newline sets an empty value", () => {
  assert.equal(envDirValueFromBytes(new Uint8Array()), null);
  assert.equal(envDirValueFromBytes(bytes("\n")), "");
  assert.equal(envDirValueFromBytes(bytes("  \n")), "");
});

Deno.test("envdir: reading a directory (dot files and names with = skipped, like daemontools)", () => {
  withEnvDir(
    {
      WALE_S3_PREFIX: "s3://bucket/path\nignored second line\n",
      AWS_REGION: "eu-west-1  \n",
      UNSET_ME: "",
      ".hidden": "x",
      "A=B": "x",
      MULTI: "line1\0line2",
    },
    (dir) => {
      assert.deepEqual(
        readEnvDir(dir),
        new Map<string, string | null>([
          ["AWS_REGION", "eu-west-1"],
          ["MULTI", "line1\nline2"],
          ["UNSET_ME", null],
          ["WALE_S3_PREFIX", "s3://bucket/path"],
        ]),
      );
    },
  );
});

Deno.test("envdir: overlay sets and unsets variables of the process environment", () => {
  withEnvDir({ KEEP_OVERRIDDEN: "new", UNSET_ME: "" }, (dir) => {
    const env = loadEffectiveEnvironment(dir, {
      KEEP_OVERRIDDEN: "old",
      UNSET_ME: "present",
      UNTOUCHED: "same",
    });
    assert.equal(env.get("KEEP_OVERRIDDEN"), "new");
    assert.equal(env.get("UNSET_ME"), undefined);
    assert.equal(env.has("UNSET_ME"), false);
    assert.equal(env.get("UNTOUCHED"), "same");
  });
  const env = overlayEnvironment({ A: "1" }, new Map([["B", "2"]]));
  assert.deepEqual(env.toObject(), { A: "1", B: "2" });
});

Deno.test("envdir: --env-dir wins over WALD_ENV_DIR; empty values count as unset", () => {
  assert.equal(selectEnvDir("/flag", { WALD_ENV_DIR: "/env" }), "/flag");
  assert.equal(selectEnvDir(undefined, { WALD_ENV_DIR: "/env" }), "/env");
  assert.equal(selectEnvDir("", { WALD_ENV_DIR: "/env" }), "/env");
  assert.equal(selectEnvDir(undefined, { WALD_ENV_DIR: "" }), null);
  assert.equal(selectEnvDir(undefined, {}), null);
  withEnvDir({ FROM: "flag" }, (flagDir) => {
    withEnvDir({ FROM: "variable" }, (variableDir) => {
      assert.equal(
        loadEffectiveEnvironment(flagDir, { WALD_ENV_DIR: variableDir }).get("FROM"),
        "flag",
      );
      assert.equal(
        loadEffectiveEnvironment(undefined, { WALD_ENV_DIR: variableDir }).get("FROM"),
        "variable",
      );
    });
  });
});

Deno.test("envdir: a missing directory or an unreadable entry is a UserError (exit 1)", () => {
  assert.throws(() => readEnvDir("/nonexistent/wal-d-envdir"), (error: unknown) => {
    assert.ok(error instanceof UserError);
    assert.equal(error.exitCode, 1);
    assert.match(error.message, /^cannot read env dir "\/nonexistent\/wal-d-envdir": /);
    return true;
  });
  withEnvDir({}, (dir) => {
    Deno.mkdirSync(`${dir}/SUBDIR`);
    assert.throws(() => readEnvDir(dir), (error: unknown) => {
      assert.ok(error instanceof UserError);
      assert.match(error.message, /^cannot read env dir entry ".*\/SUBDIR": /);
      return true;
    });
  });
  withEnvDir({ REAL: "1" }, (dir) => {
    Deno.symlinkSync(`${dir}/missing-target`, `${dir}/DANGLING`);
    assert.deepEqual(readEnvDir(dir), new Map([["REAL", "1"]]));
  });
});
