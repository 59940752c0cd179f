import assert from "node:assert/strict";
import { join } from "node:path";
import { rewriteTablespaceMap } from "../../src/backup/fetch.ts";
import { captureLogger } from "../log/_capture.ts";
import { withTempDir } from "./_tree.ts";

/** A test run in a fresh temporary directory (the data directory), removed afterwards. */
const mapTest = (name: string, body: (dir: string) => Promise<void>) =>
  Deno.test(name, () => withTempDir("wald-tablespace-map-", body));

mapTest(
  "tablespace_map: restored locations replace the source's, escapes kept as PostgreSQL reads them",
  async (dir) => {
    await Deno.writeTextFile(
      join(dir, "tablespace_map"),
      "16422 /var/lib/postgresql/ts1\n16500 /odd\\\npath\n",
    );
    const { log: logger, text } = await captureLogger();
    await rewriteTablespaceMap(
      dir,
      new Map([["16422", "/restore/ts1"], ["16500", "/restore/new\nline\\x"]]),
      undefined,
      logger,
    );
    assert.equal(
      await Deno.readTextFile(join(dir, "tablespace_map")),
      "16422 /restore/ts1\n16500 /restore/new\\\nline\\\\x\n",
    );
    assert.equal((await Deno.stat(join(dir, "tablespace_map"))).mode! & 0o777, 0o600);
    assert.doesNotMatch(text(), /WARNING/);
  },
);

mapTest(
  "tablespace_map: a tablespace restored inside pg_tblspc loses its line, with a warning",
  async (dir) => {
    await Deno.writeTextFile(join(dir, "tablespace_map"), "16422 /a\n16423 /b\n");
    const { log: logger, text } = await captureLogger();
    await rewriteTablespaceMap(dir, new Map([["16423", "/new/b"]]), undefined, logger);
    assert.equal(await Deno.readTextFile(join(dir, "tablespace_map")), "16423 /new/b\n");
    assert.match(text(), /WARNING.*tablespace 16422 was restored inside pg_tblspc/);
  },
);

mapTest("tablespace_map: nothing happens without one", async (dir) => {
  const { log: logger } = await captureLogger();
  await rewriteTablespaceMap(dir, new Map([["1", "/x"]]), undefined, logger);
  assert.deepEqual([...Deno.readDirSync(dir)], []);
});
