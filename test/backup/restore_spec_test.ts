/**
 * `--restore-spec` (src/backup/restore_spec.ts): the tablespace plan for no spec, SOURCE and a
 * file merged over the recorded spec; every refusal is a UserError with a hint.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { UserError } from "../../src/cli/errors.ts";
import {
  parseTablespaces,
  RESTORE_SPEC_SOURCE,
  tablespacePlan,
} from "../../src/backup/restore_spec.ts";
import type { BackupSpec } from "../../src/backup/sentinel.ts";
import { withCleanup } from "./_restore_scratch.ts";

const BACKUP = "base_000000010000000000000002_00000028";

const RECORDED: BackupSpec = {
  basePrefix: "/var/lib/postgresql/17/main/",
  tablespaces: [
    { name: "16385", loc: "/mnt/ts1/", link: "pg_tblspc/16385" },
    { name: "16386", loc: "/mnt/ts2/", link: "pg_tblspc/16386" },
  ],
};

interface Scratch {
  dir: string;
  dataDir: string;
  /** Writes a spec file (a string as it is, anything else as JSON) and returns its path. */
  spec(content: unknown): string;
  cleanup(): Promise<void>;
}

async function scratch(): Promise<Scratch> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "wald-restore-spec-" }));
  const dataDir = join(dir, "pgdata");
  Deno.mkdirSync(dataDir);
  let n = 0;
  return {
    dir,
    dataDir,
    spec(content: unknown) {
      const path = join(dir, `spec-${n++}.json`);
      Deno.writeTextFileSync(
        path,
        typeof content === "string" ? content : JSON.stringify(content),
      );
      return path;
    },
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
}

/** A test run in a fresh scratch directory, removed afterwards. */
const specTest = (name: string, body: (s: Scratch) => Promise<void>) =>
  Deno.test(name, () => withCleanup(scratch, body));

async function assertUserError(
  promise: Promise<unknown>,
  message: RegExp,
  hint: RegExp = /./,
): Promise<UserError> {
  let caught: unknown;
  await assert.rejects(promise, (error: unknown) => {
    caught = error;
    return true;
  });
  assert.ok(caught instanceof UserError, `expected a UserError, got ${caught}`);
  assert.match(caught.message, message);
  assert.ok(caught.hint !== undefined && caught.hint.length > 0, `no hint: ${caught.message}`);
  assert.match(caught.hint, hint);
  assert.equal(caught.exitCode, 1);
  return caught;
}

specTest("tablespacePlan: no restore spec: the recorded tablespaces, links not made", async (s) => {
  assert.deepEqual(await tablespacePlan(null, undefined, s.dataDir, BACKUP), {
    tablespaces: [],
    makeLinks: false,
  });
  assert.deepEqual(await tablespacePlan(null, RECORDED, s.dataDir, BACKUP), {
    tablespaces: RECORDED.tablespaces,
    makeLinks: false,
  });
});

specTest("tablespacePlan: SOURCE: the recorded locations, links made", async (s) => {
  assert.equal(RESTORE_SPEC_SOURCE, "SOURCE");
  assert.deepEqual(await tablespacePlan("SOURCE", RECORDED, s.dataDir, BACKUP), {
    tablespaces: RECORDED.tablespaces,
    makeLinks: true,
  });
  assert.deepEqual(
    await tablespacePlan("SOURCE", { basePrefix: "/x/", tablespaces: [] }, s.dataDir, BACKUP),
    { tablespaces: [], makeLinks: true },
  );
});

specTest("tablespacePlan: SOURCE without a recorded spec is a UserError", async (s) => {
  const error = await assertUserError(
    tablespacePlan("SOURCE", undefined, s.dataDir, BACKUP),
    new RegExp(`backup ${BACKUP} records no tablespace spec`),
    /restore-spec file|pg_tblspc/,
  );
  assert.match(error.detail ?? "", /WAL-E/);
});

specTest(
  "tablespacePlan: a file is merged over the recorded spec (a shallow update)",
  async (s) => {
    const cases: [string, unknown, BackupSpec | undefined, BackupSpec["tablespaces"]][] = [
      [
        "only one entry changed: the recorded list and the other entry stay",
        { "16386": { loc: "/new/ts2/", link: "pg_tblspc/16386" } },
        RECORDED,
        [
          { name: "16385", loc: "/mnt/ts1/", link: "pg_tblspc/16385" },
          { name: "16386", loc: "/new/ts2/", link: "pg_tblspc/16386" },
        ],
      ],
      [
        "a new list replaces the recorded one",
        { tablespaces: ["16386"], "16386": { loc: "/other/", link: "pg_tblspc/16386/" } },
        RECORDED,
        [{ name: "16386", loc: "/other/", link: "pg_tblspc/16386" }],
      ],
      [
        "WAL-E's documented example, with nothing recorded (WAL-E's file backend)",
        { tablespaces: ["16422"], "16422": { loc: "/ts/", link: "pg_tblspc/16422" } },
        undefined,
        [{ name: "16422", loc: "/ts/", link: "pg_tblspc/16422" }],
      ],
      ["an empty object keeps the recorded spec", {}, RECORDED, RECORDED.tablespaces],
      ["an empty list restores no tablespace", { tablespaces: [] }, RECORDED, []],
    ];
    for (const [what, content, recorded, tablespaces] of cases) {
      assert.deepEqual(
        await tablespacePlan(s.spec(content), recorded, s.dataDir, BACKUP),
        { tablespaces, makeLinks: true },
        what,
      );
    }
  },
);

specTest("tablespacePlan: a base_prefix naming the data directory is accepted", async (s) => {
  const link = join(s.dir, "link-to-pgdata");
  Deno.symlinkSync(s.dataDir, link);
  for (const basePrefix of [s.dataDir, `${s.dataDir}/`, `${s.dataDir}/.`, link, ""]) {
    const path = s.spec({ base_prefix: basePrefix });
    const plan = await tablespacePlan(path, RECORDED, s.dataDir, BACKUP);
    assert.deepEqual(plan.tablespaces, RECORDED.tablespaces, basePrefix);
  }
});

specTest("tablespacePlan: a base_prefix naming another directory is refused", async (s) => {
  for (const basePrefix of [RECORDED.basePrefix, "/", join(s.dir, "elsewhere"), s.dir, 5, true]) {
    const path = s.spec({ base_prefix: basePrefix });
    await assertUserError(
      tablespacePlan(path, RECORDED, s.dataDir, BACKUP),
      /sets base_prefix .*which is not the directory being restored/,
      /base_prefix/,
    );
  }
});

specTest("tablespacePlan: links other than pg_tblspc/<oid> are refused", async (s) => {
  for (const link of ["../../etc", "pg_tblspc/16386", "pg_tblspc", "/pg_tblspc/16385", "", 7]) {
    const path = s.spec({ tablespaces: ["16385"], "16385": { loc: "/ts/", link } });
    await assertUserError(
      tablespacePlan(path, undefined, s.dataDir, BACKUP),
      /tablespace 16385: "link" must be "pg_tblspc\/16385"/,
      /"link": "pg_tblspc\/16422"/,
    );
  }
});

specTest("tablespacePlan: locations must be absolute", async (s) => {
  for (const loc of ["ts/", "./ts", "../ts", "", null, 3]) {
    const path = s.spec({ tablespaces: ["16385"], "16385": { loc, link: "pg_tblspc/16385" } });
    await assertUserError(
      tablespacePlan(path, undefined, s.dataDir, BACKUP),
      /tablespace 16385: "loc" must be an absolute path/,
    );
  }
  // A recorded entry merged in is checked too.
  const path = s.spec({ "16385": { link: "pg_tblspc/16385" } });
  await assertUserError(
    tablespacePlan(path, RECORDED, s.dataDir, BACKUP),
    /"loc" must be an absolute path/,
  );
});

specTest("tablespacePlan: malformed tablespace lists and entries", async (s) => {
  const cases: [unknown, RegExp][] = [
    [{ tablespaces: "16385" }, /"tablespaces" must be a list of names/],
    [{ tablespaces: [16385] }, /"tablespaces" must be a list of names/],
    [{ tablespaces: ["../x"] }, /tablespace "\.\.\/x" must be a distinct OID/],
    [{ tablespaces: ["pg_tblspc/1"] }, /must be a distinct OID/],
    [{ tablespaces: [""] }, /must be a distinct OID/],
    [
      {
        tablespaces: ["16385", "16385"],
        "16385": { loc: "/a/", link: "pg_tblspc/16385" },
      },
      /tablespace "16385" must be a distinct OID/,
    ],
    [
      { tablespaces: ["16390"] },
      /tablespace 16390 has no \{"loc": \.\.\., "link": \.\.\.\} entry/,
    ],
    [{ tablespaces: ["16390"], "16390": "/ts/" }, /tablespace 16390 has no/],
    [{ tablespaces: ["16390"], "16390": null }, /tablespace 16390 has no/],
  ];
  for (const [content, message] of cases) {
    await assertUserError(
      tablespacePlan(s.spec(content), undefined, s.dataDir, BACKUP),
      message,
      /"tablespaces": \["16422"\]/,
    );
  }
});

specTest("tablespacePlan: a file that is not a JSON object is refused", async (s) => {
  for (
    const [content, message] of [
      ["{not json", /is not JSON/],
      ["", /is not JSON/],
      ['{"tablespaces": ["16385"],}', /is not JSON/],
      ["[]", /must be a JSON object/],
      ["null", /must be a JSON object/],
      ['"SOURCE"', /must be a JSON object/],
      ["42", /must be a JSON object/],
    ] as const
  ) {
    const path = s.spec(content);
    const error = await assertUserError(
      tablespacePlan(path, RECORDED, s.dataDir, BACKUP),
      message,
    );
    assert.ok(error.message.includes(JSON.stringify(path)), error.message);
  }
});

specTest("tablespacePlan: a missing, unreadable or oversized file is refused", async (s) => {
  const missing = join(s.dir, "no-such-spec.json");
  await assertUserError(
    tablespacePlan(missing, RECORDED, s.dataDir, BACKUP),
    new RegExp(`cannot read restore spec "${missing}"`),
    /readable JSON file, or SOURCE/,
  );
  await assertUserError(
    tablespacePlan(s.dir, RECORDED, s.dataDir, BACKUP),
    /it is not a file/,
  );
  const big = join(s.dir, "big.json");
  Deno.writeTextFileSync(big, `{"pad": "${"x".repeat(1024 * 1024)}"}`);
  await assertUserError(
    tablespacePlan(big, RECORDED, s.dataDir, BACKUP),
    /larger than 1 MiB/,
  );
  // "source" in lower case is a file name, not SOURCE.
  await assertUserError(
    tablespacePlan("source", RECORDED, s.dataDir, BACKUP),
    /cannot read restore spec "source"/,
  );
});

Deno.test("parseTablespaces: a checked spec object", () => {
  assert.deepEqual(parseTablespaces({}, "x"), []);
  assert.deepEqual(
    parseTablespaces({ tablespaces: ["1"], "1": { loc: "/l", link: "pg_tblspc/1//" } }, "x"),
    [{ name: "1", loc: "/l", link: "pg_tblspc/1" }],
  );
  assert.throws(
    () => parseTablespaces({ tablespaces: ["1"], "1": { loc: "/l", link: "pg_tblspc/1/.." } }, "x"),
    UserError,
  );
});
