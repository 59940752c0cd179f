import assert from "node:assert/strict";
import { UserError } from "../../src/cli/errors.ts";
import { join } from "../../src/io/path.ts";
import {
  connect,
  type ConnectionSettings,
  connectionSettings,
  DEFAULT_CONNECT_TIMEOUT_SECONDS,
  describeTarget,
  type ServerNotice,
  socketPathFor,
} from "../../src/pg/connection.ts";
import { chownToPgUser, createCluster, ignoreUnlessPg, type PgMajor } from "../_pg/cluster.ts";

type Vars = Record<string, string>;

function env(vars: Vars): { get(name: string): string | undefined } {
  return { get: (name) => vars[name] };
}

/** A HOME without a .pgpass, so the runner's own file never interferes. */
const EMPTY_HOME = await Deno.makeTempDir({ prefix: "wald-conn-home-" });
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(EMPTY_HOME, { recursive: true });
  } catch { /* gone */ }
});

/** Asserts `error` is a UserError of one line matching `message`, without `secret` anywhere. */
function assertUserError(
  error: unknown,
  message: RegExp,
  hint?: RegExp,
  secret?: string,
): UserError {
  assert.ok(error instanceof UserError, `expected a UserError, got ${error}`);
  assert.match(error.message, message);
  assert.ok(!error.message.includes("\n"), `one line: ${JSON.stringify(error.message)}`);
  if (hint) assert.match(error.hint ?? "", hint);
  if (secret) {
    for (const text of [error.message, error.hint ?? "", error.detail ?? "", String(error)]) {
      assert.ok(!text.includes(secret), `the password leaked into ${JSON.stringify(text)}`);
    }
  }
  return error;
}

async function connectError(settings: ConnectionSettings): Promise<unknown> {
  try {
    const sql = await connect(settings);
    await sql.end();
  } catch (error) {
    return error;
  }
  throw new Error(`connected to ${describeTarget(settings)} unexpectedly`);
}

// -------------------------------------------------------------------------------------------
// Settings, no server

Deno.test("connectionSettings: libpq variables", () => {
  const s = connectionSettings(
    env({
      PGHOST: "/run/pg/",
      PGPORT: "6543",
      PGUSER: "backup",
      PGDATABASE: "app",
      PGSSLMODE: "require",
      PGCONNECT_TIMEOUT: "7",
      PGAPPNAME: "nightly",
      HOME: EMPTY_HOME,
    }),
  );
  assert.equal(s.host, "/run/pg");
  assert.equal(s.socketPath, "/run/pg/.s.PGSQL.6543");
  assert.equal(s.port, 6543);
  assert.equal(s.user, "backup");
  assert.equal(s.database, "app");
  assert.equal(s.sslMode, "require");
  assert.equal(s.connectTimeoutSeconds, 7);
  assert.equal(s.applicationName, "nightly");
  assert.equal(s.hostSource, "PGHOST");
  assert.equal(s.password, null);
  assert.equal(describeTarget(s), "socket /run/pg/.s.PGSQL.6543");
  const tcp = connectionSettings(env({ PGHOST: "db.example", USER: "me", HOME: EMPTY_HOME }));
  assert.equal(tcp.socketPath, null);
  assert.equal(describeTarget(tcp), "db.example:5432");
});

Deno.test("connectionSettings: defaults (port, database, user from USER/LOGNAME, app name, timeout)", () => {
  const noSockets = [join(EMPTY_HOME, "none")];
  const s = connectionSettings(env({ USER: "carol", HOME: EMPTY_HOME }), { socketDirs: noSockets });
  assert.equal(s.port, 5432);
  assert.equal(s.database, "postgres");
  assert.equal(s.user, "carol");
  assert.equal(s.applicationName, "wal-d");
  assert.equal(s.sslMode, "prefer");
  assert.equal(s.connectTimeoutSeconds, DEFAULT_CONNECT_TIMEOUT_SECONDS);
  assert.equal(s.host, "localhost");
  assert.equal(s.hostSource, "default host");
  assert.deepEqual(s.searchedSocketDirs, noSockets);
  const logname = connectionSettings(env({ LOGNAME: "dave", HOME: EMPTY_HOME }), {
    socketDirs: noSockets,
  });
  assert.equal(logname.user, "dave");
  // Without USER/LOGNAME: the password database's name for our uid.
  const fromUid = connectionSettings(env({ HOME: EMPTY_HOME }), { socketDirs: noSockets });
  assert.ok(fromUid.user.length > 0);
});

Deno.test("connectionSettings: PGCONNECT_TIMEOUT as libpq (0 = forever, minimum 2)", () => {
  const timeout = (v: string) =>
    connectionSettings(env({ PGCONNECT_TIMEOUT: v, USER: "u", PGHOST: "h", HOME: EMPTY_HOME }))
      .connectTimeoutSeconds;
  assert.equal(timeout("0"), 0);
  assert.equal(timeout("-3"), 0);
  assert.equal(timeout("1"), 2);
  assert.equal(timeout("10"), 10);
});

Deno.test("connectionSettings: the first default socket directory holding the port's socket", async () => {
  const dirs = [join(EMPTY_HOME, "a"), join(EMPTY_HOME, "b"), join(EMPTY_HOME, "c")];
  for (const d of dirs) await Deno.mkdir(d, { recursive: true });
  const listeners = [1, 2].map((i) =>
    Deno.listen({ transport: "unix", path: socketPathFor(dirs[i], 7777) })
  );
  try {
    const s = connectionSettings(env({ PGPORT: "7777", USER: "u", HOME: EMPTY_HOME }), {
      socketDirs: dirs,
    });
    assert.equal(s.host, dirs[1]);
    assert.equal(s.hostSource, "default socket");
    assert.equal(s.socketPath, socketPathFor(dirs[1], 7777));
    // Another port has no socket there: TCP to localhost.
    const other = connectionSettings(env({ PGPORT: "7778", USER: "u", HOME: EMPTY_HOME }), {
      socketDirs: dirs,
    });
    assert.equal(other.host, "localhost");
  } finally {
    for (const l of listeners) l.close();
    for (const d of dirs) await Deno.remove(d, { recursive: true });
  }
});

Deno.test("connectionSettings: unusable values are one-line UserErrors", () => {
  const base = { USER: "u", HOME: EMPTY_HOME };
  const cases: [Vars, RegExp][] = [
    [{ PGPORT: "54x" }, /^PGPORT=54x is not a port number$/],
    [{ PGPORT: "70000" }, /^PGPORT=70000 is not a port number$/],
    [{ PGHOST: "a,b" }, /^PGHOST lists several hosts \(a,b\)/],
    [{ PGSSLMODE: "always" }, /^PGSSLMODE=always is not an SSL mode$/],
    [{ PGCONNECT_TIMEOUT: "soon" }, /^PGCONNECT_TIMEOUT=soon is not a number of seconds$/],
  ];
  for (const [vars, message] of cases) {
    assert.throws(
      () => connectionSettings(env({ ...base, PGHOST: "h", ...vars })),
      (e: unknown) => !!assertUserError(e, message, /./),
    );
  }
});

Deno.test("connectionSettings: password from PGPASSWORD, else .pgpass; never printed", async () => {
  const home = await Deno.makeTempDir({ prefix: "wald-conn-pgpass-" });
  try {
    await Deno.writeTextFile(join(home, ".pgpass"), "dbhost:5432:postgres:alice:from-file\n", {
      mode: 0o600,
    });
    const vars = { PGHOST: "dbhost", PGUSER: "alice", HOME: home };
    const fromFile = connectionSettings(env(vars));
    assert.equal(fromFile.password?.reveal(), "from-file");
    assert.equal(fromFile.passwordSource, "password file");
    assert.equal(fromFile.passwordFileLine, 1);
    const fromEnv = connectionSettings(env({ ...vars, PGPASSWORD: "from-env" }));
    assert.equal(fromEnv.password?.reveal(), "from-env");
    assert.equal(fromEnv.passwordSource, "PGPASSWORD");
    // An empty PGPASSWORD is unset, as for libpq.
    assert.equal(
      connectionSettings(env({ ...vars, PGPASSWORD: "" })).passwordSource,
      "password file",
    );
    for (const s of [fromFile, fromEnv]) {
      const printed = JSON.stringify(s) + Deno.inspect(s) + String(s.password);
      assert.ok(!printed.includes("from-file") && !printed.includes("from-env"), printed);
    }
    // Group-readable: ignored, with a warning naming the file.
    await Deno.chmod(join(home, ".pgpass"), 0o644);
    const ignored = connectionSettings(env(vars));
    assert.equal(ignored.password, null);
    assert.equal(ignored.warnings.length, 1);
    assert.match(ignored.warnings[0], /\.pgpass has group or world access/);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

// -------------------------------------------------------------------------------------------
// A real server

const MAJOR: PgMajor = 17;
const name = `connect: socket, TCP with SCRAM passwords, and each failure as one clear line`;

Deno.test({
  name,
  ignore: await ignoreUnlessPg([MAJOR], name),
  async fn(t) {
    const pg = await createCluster({ major: MAJOR, settings: { listen_addresses: "127.0.0.1" } });
    const home = await Deno.makeTempDir({ prefix: "wald-conn-home-" });
    try {
      await pg.start();
      const pgEnv: Vars = { ...pg.pgEnv, HOME: EMPTY_HOME };

      await t.step("through the unix socket with the harness's PG* variables", async () => {
        // A database-wide statement_timeout is overridden by the session's startup parameter.
        await pg.exec("ALTER DATABASE postgres SET statement_timeout = '1500ms'");
        const settings = connectionSettings(env(pgEnv));
        assert.equal(settings.socketPath, socketPathFor(pg.socketDir, pg.port));
        const notices: ServerNotice[] = [];
        let closed = 0;
        const sql = await connect(settings, {
          onNotice: (n) => notices.push(n),
          onClose: () => closed++,
        });
        try {
          const [row] = await sql<
            { app: string; timeout: string; pid: number; user: string; db: string }[]
          >`SELECT current_setting('application_name') AS app,
                   current_setting('statement_timeout') AS timeout,
                   pg_backend_pid() AS pid, current_user::text AS user,
                   current_database()::text AS db`;
          assert.deepEqual(
            { ...row, pid: 0 },
            { app: "wal-d", timeout: "0", pid: 0, user: "postgres", db: "postgres" },
          );
          // One session: every query sees the same backend.
          for (let i = 0; i < 3; i++) {
            const [again] = await sql<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
            assert.equal(again.pid, row.pid);
          }
          await sql`DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$`;
          assert.equal(notices.length, 1);
          assert.equal(notices[0].severity, "NOTICE");
          assert.equal(notices[0].message, "hello 42");
        } finally {
          await sql.end();
          await pg.exec("ALTER DATABASE postgres RESET statement_timeout");
        }
        assert.equal(closed, 1);
      });

      await t.step("nonexistent role and database", async () => {
        assertUserError(
          await connectError(connectionSettings(env({ ...pgEnv, PGUSER: "nosuchrole" }))),
          /^role "nosuchrole" does not exist on the server at socket .*\.s\.PGSQL\.\d+$/,
          /PGUSER/,
        );
        assertUserError(
          await connectError(connectionSettings(env({ ...pgEnv, PGDATABASE: "nosuchdb" }))),
          /^database "nosuchdb" does not exist on the server at socket /,
          /PGDATABASE/,
        );
      });

      await t.step("nonexistent socket directory, wrong port", async () => {
        assertUserError(
          await connectError(connectionSettings(env({ ...pgEnv, PGHOST: "/nonexistent/sock" }))),
          /^the socket directory \/nonexistent\/sock does not exist \(socket \/nonexistent\/sock\/\.s\.PGSQL\.\d+\)$/,
          /PGHOST/,
        );
        const wrongPort = String(pg.port === 65535 ? 65534 : pg.port + 1);
        assertUserError(
          await connectError(connectionSettings(env({ ...pgEnv, PGPORT: wrongPort }))),
          new RegExp(
            `^no PostgreSQL server is listening on socket ${pg.socketDir}/\\.s\\.PGSQL\\.${wrongPort}$`,
          ),
          /PGHOST and PGPORT/,
        );
        assertUserError(
          await connectError(
            connectionSettings(env({ ...pgEnv, PGHOST: "127.0.0.1", PGPORT: wrongPort })),
          ),
          new RegExp(`^no PostgreSQL server is listening on 127\\.0\\.0\\.1:${wrongPort}$`),
          /PGHOST and PGPORT/,
        );
      });

      await t.step("password authentication over TCP (scram-sha-256)", async () => {
        const password = "Correct:Horse\\Battery";
        const wrong = "wrong-password-123";
        await pg.sql(`CREATE ROLE pwuser LOGIN PASSWORD '${password.replaceAll("'", "''")}'`);
        const hba = join(pg.dataDir, "pg_hba.conf");
        const text = await Deno.readTextFile(hba);
        await Deno.writeTextFile(hba, `host all pwuser 127.0.0.1/32 scram-sha-256\n${text}`);
        await chownToPgUser(hba);
        await pg.reload();
        const tcp: Vars = {
          PGHOST: "127.0.0.1",
          PGPORT: String(pg.port),
          PGUSER: "pwuser",
          PGDATABASE: "postgres",
          PGSSLMODE: "disable",
          HOME: home,
        };
        // Wrong PGPASSWORD.
        assertUserError(
          await connectError(connectionSettings(env({ ...tcp, PGPASSWORD: wrong }))),
          new RegExp(
            `^password authentication failed for role "pwuser" at 127\\.0\\.0\\.1:${pg.port}$`,
          ),
          /PGPASSWORD holds the wrong password/,
          wrong,
        );
        // None at all.
        assertUserError(
          await connectError(connectionSettings(env(tcp))),
          /^password authentication failed for role "pwuser"/,
          /none was given: set PGPASSWORD, or add a line 127\.0\.0\.1:\d+:postgres:pwuser:<password> to /,
        );
        // The right one from PGPASSWORD, then from .pgpass (escaped : and \).
        for (const vars of [{ ...tcp, PGPASSWORD: password }, tcp]) {
          if (!vars.PGPASSWORD) {
            const escaped = password.replaceAll("\\", "\\\\").replaceAll(":", "\\:");
            await Deno.writeTextFile(
              join(home, ".pgpass"),
              `# wal-d test\n127.0.0.1:${pg.port}:*:pwuser:${escaped}\n`,
              { mode: 0o600 },
            );
          }
          const settings = connectionSettings(env(vars));
          const sql = await connect(settings);
          const [row] = await sql<{ user: string }[]>`SELECT current_user::text AS user`;
          assert.equal(row.user, "pwuser");
          await sql.end();
        }
        // A wrong .pgpass line: the hint names the file and line, not the password.
        await Deno.writeTextFile(join(home, ".pgpass"), `*:*:*:pwuser:${wrong}\n`, { mode: 0o600 });
        assertUserError(
          await connectError(connectionSettings(env(tcp))),
          /^password authentication failed for role "pwuser"/,
          /the password on line 1 of .*\.pgpass is wrong/,
          wrong,
        );
        // SSL required, but the server has ssl = off.
        assertUserError(
          await connectError(connectionSettings(env({ ...tcp, PGSSLMODE: "require" }))),
          /^SSL connection to 127\.0\.0\.1:\d+ failed \(PGSSLMODE=require\)/,
          /ssl/,
          password,
        );
      });

      await t.step("a server that never answers: the connect timeout", async () => {
        const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        try {
          const port = (listener.addr as Deno.NetAddr).port;
          const started = Date.now();
          assertUserError(
            await connectError(
              connectionSettings(
                env({
                  ...pgEnv,
                  PGHOST: "127.0.0.1",
                  PGPORT: String(port),
                  PGCONNECT_TIMEOUT: "1",
                }),
              ),
            ),
            new RegExp(`^timed out after 2 s connecting to 127\\.0\\.0\\.1:${port}$`),
            /PGCONNECT_TIMEOUT/,
          );
          assert.ok(Date.now() - started < 10_000);
        } finally {
          listener.close();
        }
      });

      await t.step("server down", async () => {
        await pg.stop();
        assertUserError(
          await connectError(connectionSettings(env(pgEnv))),
          new RegExp(
            `^no PostgreSQL server is listening on socket ${pg.socketDir}/\\.s\\.PGSQL\\.${pg.port}$`,
          ),
          /start the server/,
        );
      });
    } finally {
      await pg.close();
      await Deno.remove(home, { recursive: true });
    }
  },
});
