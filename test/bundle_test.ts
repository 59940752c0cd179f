/**
 * `deno compile` cannot run on machines without access to Deno's download site, so the single
 * binary is checked by proxy: the entrypoint bundles into one file that runs with the launcher's
 * permission flags, and the codec (its WebAssembly module embedded as base64) survives bundling.
 */
import assert from "node:assert/strict";
import { denoRunArguments } from "../src/cli/reinvoke.ts";

const root = new URL("../", import.meta.url);
/** `run` with scripts/wal-d's flags and permissions (no config: the bundle needs none). */
const launcherRun = denoRunArguments();

async function deno(args: string[], cwd?: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("bundle: mod.ts bundles into one file that runs with the launcher's permissions", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wald-bundle-" });
  try {
    const bundled = await deno(
      ["bundle", "--quiet", "-o", `${dir}/wal-d.js`, "mod.ts"],
      root.pathname,
    );
    assert.equal(bundled.code, 0, bundled.stderr);
    const version = await deno([...launcherRun, `${dir}/wal-d.js`, "version"]);
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
    const usage = await deno([...launcherRun, `${dir}/wal-d.js`, "nope"]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /unknown subcommand "nope"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bundle: the lzop codec works from a bundle, with no file read for its wasm", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wald-bundle-" });
  try {
    await Deno.writeTextFile(
      `${dir}/entry.ts`,
      `import { compressLzop, decompressLzop } from "${new URL("src/codec/lzop.ts", root).href}";
const data = new TextEncoder().encode("wal-d ".repeat(100000));
const back = decompressLzop(compressLzop(data));
console.log(back.length === data.length && back.every((b, i) => b === data[i]) ? "round trip ok" : "mismatch");
`,
    );
    const bundled = await deno(["bundle", "--quiet", "-o", `${dir}/codec.js`, `${dir}/entry.ts`]);
    assert.equal(bundled.code, 0, bundled.stderr);
    // No permissions at all: the module must not need to read a .wasm file.
    const run = await deno(["run", "--no-prompt", `${dir}/codec.js`]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), "round trip ok");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
