import assert from "node:assert/strict";
import { join } from "node:path";
import { fromFileUrl } from "../../src/io/path.ts";
import { commandForOthers, LAUNCHER_ENV_VAR, selfCommand } from "../../src/cli/reinvoke.ts";

function withLauncher<T>(value: string | undefined, fn: () => T): T {
  const previous = Deno.env.get(LAUNCHER_ENV_VAR);
  if (value === undefined) Deno.env.delete(LAUNCHER_ENV_VAR);
  else Deno.env.set(LAUNCHER_ENV_VAR, value);
  try {
    return fn();
  } finally {
    if (previous === undefined) Deno.env.delete(LAUNCHER_ENV_VAR);
    else Deno.env.set(LAUNCHER_ENV_VAR, previous);
  }
}

Deno.test("commandForOthers: the launcher scripts/wal-d named, when it exists", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const launcher = join(dir, "wal-d");
    await Deno.writeTextFile(launcher, "#!/bin/sh\n");
    assert.deepEqual(withLauncher(launcher, commandForOthers), [launcher]);
    // Not there any more, relative, or unset: this process's own command.
    assert.deepEqual(withLauncher(join(dir, "gone"), commandForOthers), selfCommand());
    assert.deepEqual(withLauncher("scripts/wal-d", commandForOthers), selfCommand());
    assert.deepEqual(withLauncher(undefined, commandForOthers), selfCommand());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("backup-fetch run through scripts/wal-d writes the launcher into restore_command", async () => {
  const launcher = fromFileUrl(new URL("../../scripts/wal-d", import.meta.url));
  const store = fromFileUrl(new URL("../fixtures/wal-e-1.1.1/plain", import.meta.url));
  const dir = await Deno.makeTempDir();
  try {
    const out = await new Deno.Command(launcher, {
      args: ["backup-fetch", join(dir, "data"), "LATEST", "--blind-restore", "--recover"],
      env: { WALE_FILE_PREFIX: `file://localhost${store}` },
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const conf = await Deno.readTextFile(join(dir, "data", "postgresql.auto.conf"));
    const command = /^restore_command = '(.*)'$/m.exec(conf)?.[1];
    assert.ok(command, conf);
    assert.ok(command.includes(` ${launcher} wal-fetch "%f" "%p"`), command);
    assert.ok(!command.includes("mod.ts"), command);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
