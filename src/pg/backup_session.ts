/**
 * The PostgreSQL side of `backup-push`: a non-exclusive base backup on one server session,
 * PostgreSQL 13 to 18, on a primary or a hot standby.
 *
 * ```ts
 * const session = await BackupSession.open(connectionSettings(config.environment));
 * try {
 *   const info = await session.serverInfo(); // checks version and privileges
 *   await session.checkDataDirectory(pgdata);
 *   const start = await session.start("freeze_start_...", fast);
 *   // ... copy the data directory ...
 *   const stop = await session.stop(); // labelFile, tablespaceMap, stop LSN and timeline
 * } catch (error) {
 *   await session.abort(); // never throws: `error` stays the one reported
 *   throw error;
 * } finally {
 *   await session.close();
 * }
 * ```
 *
 * Functions: PostgreSQL 15+ `pg_backup_start(label, fast)` / `pg_backup_stop(wait_for_archive)`;
 * 13 and 14 `pg_start_backup(label, fast, false)` / `pg_stop_backup(false, wait_for_archive)`, the
 * non-exclusive forms (the exclusive mode, removed in 15, is never used).
 *
 * Why one session: a non-exclusive backup belongs to the session that started it. It must be
 * stopped on that session, and the server ends it by itself when the session ends (the backend
 * runs its abort handler, logging `aborting backup due to backend exiting before pg_backup_stop
 * was called`, before it closes the socket). So {@linkcode BackupSession.abort} only has to end
 * the session, and a lost connection can never leave a backup running on the server.
 *
 * Timelines and LSNs:
 *
 * - The start LSN and start timeline are, by construction, the REDO location and timeline of the
 *   checkpoint (primary) or restartpoint (standby) that the start function waited for: the server
 *   copies `ControlFile->checkPointCopy.redo` and `.ThisTimeLineID` under ControlFileLock, and
 *   `pg_control_checkpoint()` reads the same two fields. So {@linkcode BackupSession.start} reads
 *   `pg_control_checkpoint()` right after the start function: when its `redo_lsn` equals the start
 *   LSN, its `timeline_id` is the start timeline. (A later checkpoint may have completed in
 *   between; then the timeline is still that of the newer checkpoint, the same on a primary, and
 *   `verified` is false.) `pg_walfile_name()` is not used: it fails during recovery.
 * - The backup label returned by the stop function is authoritative (`START WAL LOCATION: X/Y
 *   (file ...)`, `START TIMELINE: n`): {@linkcode BackupSession.stop} parses it and fails loudly
 *   when it disagrees with what `start()` returned.
 * - Stop timeline. Primary: the start timeline, since a primary's timeline cannot change while it
 *   runs (the start checkpoint was forced, so it is on the current timeline even right after a
 *   promotion). Standby: the server returns its minimum recovery point as the stop LSN
 *   (`ControlFile->minRecoveryPoint`), and the stop timeline is `minRecoveryPointTLI`, which
 *   `pg_control_recovery()` reports as `min_recovery_end_timeline`; it can differ from the start
 *   timeline when the standby followed a timeline switch during the backup.
 *
 * Standbys: start and stop work during recovery in non-exclusive mode (with `hot_standby`). On a
 * standby the stop function waits for WAL archiving only when `archive_mode = always`; otherwise it
 * returns at once with the NOTICE `WAL archiving is not enabled; ...`, and the WAL up to the stop
 * LSN must reach the archive through the primary's archiver. A standby promoted during the backup
 * makes the stop function fail (`the standby was promoted during online backup`).
 *
 * @module
 */

import { UserError } from "../cli/errors.ts";
import { formatLsn, type Lsn, parseLsn } from "../layout/lsn.ts";
import { segmentNameOfLsn } from "../layout/segment.ts";
import {
  connect,
  connectionError,
  type ConnectionSettings,
  type ConnectOptions,
  describeTarget,
  isServerError,
  oneLine,
  type PgClient,
} from "./connection.ts";
import { errorMessage } from "../io/error_message.ts";

/** The oldest major with the non-exclusive backup API this module uses. */
export const MIN_SUPPORTED_MAJOR = 13;

/** Facts about the server, from {@linkcode BackupSession.serverInfo}. */
export interface ServerInfo {
  /** `server_version_num`, e.g. 170010. */
  readonly versionNum: number;
  /** Major version, e.g. 17. */
  readonly major: number;
  /** `SELECT version()` (for `extended_version.txt`). */
  readonly version: string;
  /** `current_setting('data_directory')`, as the server spells it. */
  readonly dataDirectory: string;
  /** `pg_is_in_recovery()`: a standby (or a server still recovering). */
  readonly inRecovery: boolean;
  /** WAL segment size in bytes (`pg_control_init().bytes_per_wal_segment`). */
  readonly walSegmentSize: number;
  /**
   * The server's current timeline: a primary's WAL insert timeline (from
   * `pg_walfile_name(pg_current_wal_lsn())`, exact even just after a promotion); a standby's
   * minimum recovery point timeline (`pg_control_recovery()`, the timeline it has replayed to),
   * or its latest restartpoint's when that is not set.
   */
  readonly timeline: number;
  /** Timeline of the latest checkpoint or restartpoint (`pg_control_checkpoint()`). */
  readonly checkpointTimeline: number;
  /** `pg_control_system().system_identifier`. */
  readonly systemIdentifier: bigint;
  /** The session's role (`current_user`). */
  readonly role: string;
  readonly superuser: boolean;
  /** `pg_backend_pid()` of the session. */
  readonly backendPid: number;
}

/** What a backup label (`backup_label` contents) says. */
export interface BackupLabel {
  /** `START WAL LOCATION`. */
  readonly startLsn: Lsn;
  /** The segment named after `START WAL LOCATION` (`(file ...)`). */
  readonly startWalFile: string;
  /** `CHECKPOINT LOCATION`, or `null` when absent. */
  readonly checkpointLsn: Lsn | null;
  /** `BACKUP METHOD` (`streamed` for the SQL functions). */
  readonly backupMethod: string | null;
  /** `BACKUP FROM`: `primary` (PostgreSQL 13 and 14 write `master`) or `standby`. */
  readonly backupFrom: "primary" | "standby" | null;
  /** `START TIME`, as written (`2024-05-01 10:00:00 UTC`). */
  readonly startTime: string | null;
  /** `LABEL`. */
  readonly label: string | null;
  /** `START TIMELINE`. */
  readonly startTimeline: number;
}

/** The start of a backup. */
export interface BackupStart {
  /** The start LSN (the REDO location of the start checkpoint). */
  readonly lsn: Lsn;
  /** The start timeline. */
  readonly timeline: number;
  /** Whether `pg_control_checkpoint()` still showed the start checkpoint (see the module doc). */
  readonly verified: boolean;
  /** Whether the server was in recovery (a standby) at the start. */
  readonly inRecovery: boolean;
  readonly label: string;
  readonly fast: boolean;
}

/** The end of a backup. */
export interface BackupStop {
  /** The stop LSN: WAL up to here is needed to make the backup consistent. */
  readonly lsn: Lsn;
  /** The timeline of the stop LSN (see the module doc). */
  readonly timeline: number;
  /** The `backup_label` file's contents, to store with the backup. */
  readonly labelFile: string;
  /** The `tablespace_map` file's contents, or `null` when there are no tablespaces. */
  readonly tablespaceMap: string | null;
  /** The parsed label. */
  readonly label: BackupLabel;
  /** Whether the backup was taken on a standby. */
  readonly fromStandby: boolean;
}

/** Where a session is. */
export type BackupSessionState =
  | "ready"
  | "starting"
  | "started"
  | "stopping"
  | "stopped"
  | "failed"
  | "closed";

/**
 * Parses a backup label. Throws an `Error` when `START WAL LOCATION` or `START TIMELINE` is
 * missing or malformed.
 */
export function parseBackupLabel(text: string): BackupLabel {
  const fields = new Map<string, string>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(": ");
    if (colon > 0 && !fields.has(line.slice(0, colon))) {
      fields.set(line.slice(0, colon), line.slice(colon + 2).replace(/\r$/, ""));
    }
  }
  const start = /^([0-9A-Fa-f]+\/[0-9A-Fa-f]+) \(file ([0-9A-F]{24})\)$/.exec(
    fields.get("START WAL LOCATION") ?? "",
  );
  const timelineText = fields.get("START TIMELINE") ?? "";
  if (start === null || !/^\d+$/.test(timelineText)) {
    throw new Error(
      `backup label without a valid START WAL LOCATION and START TIMELINE: ${JSON.stringify(text)}`,
    );
  }
  const checkpoint = fields.get("CHECKPOINT LOCATION");
  const from = fields.get("BACKUP FROM");
  return {
    startLsn: parseLsn(start[1]),
    startWalFile: start[2],
    checkpointLsn: checkpoint ? parseLsn(checkpoint) : null,
    backupMethod: fields.get("BACKUP METHOD") ?? null,
    backupFrom: from === "standby"
      ? "standby"
      : from === "primary" || from === "master"
      ? "primary"
      : null,
    startTime: fields.get("START TIME") ?? null,
    label: fields.get("LABEL") ?? null,
    startTimeline: Number(timelineText),
  };
}

/** The start and stop functions of a major, with their argument types (for GRANT). */
function backupFunctions(major: number): { start: string; stop: string } {
  return major >= 15
    ? { start: "pg_backup_start(text, boolean)", stop: "pg_backup_stop(boolean)" }
    : {
      start: "pg_start_backup(text, boolean, boolean)",
      stop: "pg_stop_backup(boolean, boolean)",
    };
}

/** postgres.js error codes of a connection that went away. */
const CONNECTION_LOST_CODES = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "ECONNRESET",
  "EPIPE",
]);

/** A backup over one server session. Create with {@linkcode BackupSession.open}. */
export class BackupSession {
  readonly #sql: PgClient;
  readonly #settings: ConnectionSettings;
  readonly #backendPid: number;
  readonly #versionNum: number;
  #info: ServerInfo | undefined;
  #state: BackupSessionState = "ready";
  #start: BackupStart | undefined;
  #ending = false;
  #lost = false;

  private constructor(
    sql: PgClient,
    settings: ConnectionSettings,
    backendPid: number,
    versionNum: number,
  ) {
    this.#sql = sql;
    this.#settings = settings;
    this.#backendPid = backendPid;
    this.#versionNum = versionNum;
  }

  /**
   * Connects (see `connect`) and prepares the session: no `idle_session_timeout` (PostgreSQL 14+;
   * a server-wide setting would otherwise end the session while files are copied). Throws
   * {@linkcode UserError} when the server cannot be reached or is older than 13.
   */
  static async open(
    settings: ConnectionSettings,
    options: ConnectOptions = {},
  ): Promise<BackupSession> {
    let session: BackupSession | undefined;
    const sql = await connect(settings, {
      onNotice: options.onNotice,
      onClose: () => {
        if (session) session.#closed();
        options.onClose?.();
      },
    });
    try {
      const [row] = await sql<{ pid: number; version_num: string }[]>`
        SELECT pg_backend_pid() AS pid, current_setting('server_version_num') AS version_num`;
      const versionNum = Number(row.version_num);
      if (Math.floor(versionNum / 10000) < MIN_SUPPORTED_MAJOR) {
        throw new UserError(
          `the server at ${describeTarget(settings)} runs PostgreSQL ${
            Math.floor(versionNum / 10000) || versionNum
          }; wal-d takes backups of PostgreSQL ${MIN_SUPPORTED_MAJOR} and later`,
          { hint: "upgrade the server, or use WAL-E for older versions" },
        );
      }
      if (versionNum >= 140000) {
        await sql`SELECT set_config('idle_session_timeout', '0', false)`;
      }
      session = new BackupSession(sql, settings, row.pid, versionNum);
      return session;
    } catch (error) {
      await sql.end({ timeout: 0 }).catch(() => {});
      throw connectionError(error, settings);
    }
  }

  /** The session's state. */
  get state(): BackupSessionState {
    return this.#state;
  }

  /** `pg_backend_pid()` of the session. */
  get backendPid(): number {
    return this.#backendPid;
  }

  /** The settings the session was opened with. */
  get settings(): ConnectionSettings {
    return this.#settings;
  }

  /** The major version of the server. */
  get major(): number {
    return Math.floor(this.#versionNum / 10000);
  }

  /** Whether the session ended under us (server restart, `pg_terminate_backend`, network). */
  get lost(): boolean {
    return this.#lost;
  }

  /** The start of the running (or stopped) backup, if any. */
  get started(): BackupStart | undefined {
    return this.#start;
  }

  #closed(): void {
    if (!this.#ending) this.#lost = true;
  }

  /** Throws when the session is gone: postgres.js would silently open a new one. */
  #assertAlive(what: string): void {
    if (this.#state === "closed") throw new Error(`BackupSession: ${what} on a closed session`);
    if (this.#lost) {
      if (this.#state === "started" || this.#state === "stopping") this.#state = "failed";
      throw this.#failure(what, new Error("connection closed"));
    }
  }

  #target(): string {
    return describeTarget(this.#settings);
  }

  /** A server or connection failure during `what`, as a UserError when it is one. */
  #failure(what: string, error: unknown): unknown {
    if (error instanceof UserError) return error;
    const code = String((error as { code?: unknown } | null)?.code ?? "");
    // A FATAL error (e.g. pg_terminate_backend's 57P01) ends the session, and the backup with it.
    const fatal = isServerError(error) &&
      (error.severity === "FATAL" || error.severity === "PANIC" || code.startsWith("57P"));
    if (fatal) this.#lost = true;
    if (isServerError(error) && !fatal) {
      if (code === "42501") {
        return new UserError(
          `${what} failed: ${oneLine(error.message)}`,
          { hint: this.#grantHint(null), cause: error },
        );
      }
      return new UserError(`${what} failed: ${oneLine(error.message)}`, {
        ...(error.detail ? { detail: oneLine(error.detail) } : {}),
        hint: error.hint ? oneLine(error.hint) : `see the server log of ${this.#target()}`,
        cause: error,
      });
    }
    // postgres.js fails queries without a server error only when the connection broke
    // (CONNECTION_CLOSED, ECONNRESET, EPIPE, ...).
    if (this.#lost || CONNECTION_LOST_CODES.has(code) || /^E[A-Z]+$/.test(code)) {
      this.#lost = true;
      return new UserError(
        `lost the connection to the server at ${this.#target()} while ${what}`,
        {
          ...(fatal ? { detail: `the server said: ${oneLine((error as Error).message)}` } : {}),
          hint: "the server ends a backup whose session ends; check the server log and take " +
            "the backup again",
          cause: error,
        },
      );
    }
    return error;
  }

  /** The GRANTs a role lacking backup privileges needs, as one hint line. */
  #grantHint(
    missing: { start: boolean; stop: boolean; settings: boolean; role: string } | null,
  ): string {
    const fns = backupFunctions(this.major);
    const role = missing?.role ?? `"${this.#settings.user.replaceAll('"', '""')}"`;
    const grants: string[] = [];
    if (!missing || missing.start) grants.push(`GRANT EXECUTE ON FUNCTION ${fns.start} TO ${role}`);
    if (!missing || missing.stop) grants.push(`GRANT EXECUTE ON FUNCTION ${fns.stop} TO ${role}`);
    if (!missing || missing.settings) grants.push(`GRANT pg_read_all_settings TO ${role}`);
    return `as a superuser, run: ${grants.join("; ")}; (or connect as a superuser: PGUSER)`;
  }

  /**
   * Facts about the server (cached after the first call). Throws {@linkcode UserError} when the
   * role may not take backups, naming the GRANTs to run: a backup needs EXECUTE on the start and
   * stop functions and the privileges of `pg_read_all_settings` (to read `data_directory`), or
   * superuser.
   */
  async serverInfo(): Promise<ServerInfo> {
    if (this.#info) return this.#info;
    this.#assertAlive("reading the server's settings");
    const fns = backupFunctions(this.major);
    let access: {
      role: string;
      role_ident: string;
      superuser: boolean;
      can_start: boolean | null;
      can_stop: boolean | null;
      read_settings: boolean;
      version: string;
      in_recovery: boolean;
    };
    try {
      [access] = await this.#sql<typeof access[]>`
        SELECT current_user::text AS role,
               quote_ident(current_user) AS role_ident,
               current_setting('is_superuser') = 'on' AS superuser,
               has_function_privilege(to_regprocedure(${fns.start}), 'EXECUTE') AS can_start,
               has_function_privilege(to_regprocedure(${fns.stop}), 'EXECUTE') AS can_stop,
               pg_has_role('pg_read_all_settings', 'USAGE') AS read_settings,
               version() AS version,
               pg_is_in_recovery() AS in_recovery`;
    } catch (error) {
      throw this.#failure("reading the server's privileges", error);
    }
    const missing = {
      start: access.can_start !== true,
      stop: access.can_stop !== true,
      settings: !access.read_settings,
      role: access.role_ident,
    };
    if (!access.superuser && (missing.start || missing.stop || missing.settings)) {
      throw new UserError(
        `role "${access.role}" may not take base backups on the server at ${this.#target()}`,
        { hint: this.#grantHint(missing) },
      );
    }
    let row: {
      data_directory: string;
      in_recovery: boolean;
      wal_segment_size: number;
      system_identifier: string;
      checkpoint_timeline: number;
      recovery_timeline: number;
      insert_wal_file: string | null;
    };
    try {
      [row] = await this.#sql<typeof row[]>`
        SELECT current_setting('data_directory') AS data_directory,
               pg_is_in_recovery() AS in_recovery,
               i.bytes_per_wal_segment AS wal_segment_size,
               s.system_identifier::text AS system_identifier,
               c.timeline_id AS checkpoint_timeline,
               r.min_recovery_end_timeline AS recovery_timeline,
               CASE WHEN pg_is_in_recovery() THEN NULL
                    ELSE pg_walfile_name(pg_current_wal_lsn()) END AS insert_wal_file
        FROM pg_control_init() i, pg_control_system() s, pg_control_checkpoint() c,
             pg_control_recovery() r`;
    } catch (error) {
      throw this.#failure("reading the server's settings", error);
    }
    const timeline = row.insert_wal_file !== null
      ? parseInt(row.insert_wal_file.slice(0, 8), 16)
      : row.recovery_timeline > 0
      ? row.recovery_timeline
      : row.checkpoint_timeline;
    this.#info = {
      versionNum: this.#versionNum,
      major: this.major,
      version: access.version,
      dataDirectory: row.data_directory,
      inRecovery: row.in_recovery,
      walSegmentSize: Number(row.wal_segment_size),
      timeline,
      checkpointTimeline: row.checkpoint_timeline,
      systemIdentifier: BigInt(row.system_identifier),
      role: access.role,
      superuser: access.superuser,
      backendPid: this.#backendPid,
    };
    return this.#info;
  }

  /**
   * Checks that `pgdata` is the server's data directory: both real paths (symlinks resolved) must
   * be the same. Returns that real path. Throws {@linkcode UserError} otherwise, naming both.
   */
  async checkDataDirectory(pgdata: string): Promise<string> {
    const info = await this.serverInfo();
    let given: string;
    try {
      given = await Deno.realPath(pgdata);
    } catch (error) {
      throw new UserError(`cannot resolve the data directory ${pgdata}: ${errorMessage(error)}`, {
        hint: `pass the data directory of the server at ${this.#target()} (${info.dataDirectory})`,
        cause: error,
      });
    }
    let served: string;
    try {
      served = await Deno.realPath(info.dataDirectory);
    } catch (error) {
      throw new UserError(
        `the data directory of the server at ${this.#target()}, ${info.dataDirectory}, is not ` +
          `visible here (${errorMessage(error)})`,
        {
          hint: "run wal-d on the database host, as a user that can read the data directory",
          cause: error,
        },
      );
    }
    if (given !== served) {
      throw new UserError(
        `${pgdata} is not the data directory of the server at ${this.#target()}, which uses ` +
          `${info.dataDirectory}`,
        {
          hint: `pass ${info.dataDirectory} to backup-push, or set PGHOST/PGPORT to the server ` +
            `that uses ${pgdata}`,
        },
      );
    }
    return served;
  }

  /**
   * Starts a non-exclusive backup: waits for a checkpoint (an immediate one when `fast`, else a
   * spread one, as `checkpoint_completion_target` paces it). Returns the start LSN and timeline.
   * A failure is reported as itself (a {@linkcode UserError} carrying the server's message).
   */
  async start(label: string, fast: boolean): Promise<BackupStart> {
    if (this.#state !== "ready") {
      throw new Error(`BackupSession.start: the session is ${this.#state}, not ready`);
    }
    const info = await this.serverInfo();
    this.#assertAlive("starting the backup");
    this.#state = "starting";
    let lsnText: string;
    try {
      const rows = this.major >= 15
        ? await this.#sql<{ lsn: string }[]>`SELECT pg_backup_start(${label}, ${fast})::text AS lsn`
        : await this.#sql<
          { lsn: string }[]
        >`SELECT pg_start_backup(${label}, ${fast}, false)::text AS lsn`;
      lsnText = rows[0].lsn;
    } catch (error) {
      // The server undoes a start that fails; a lost session ends the backup anyway.
      this.#state = this.#lost ? "failed" : "ready";
      throw this.#failure(`starting the backup (${backupFunctions(this.major).start})`, error);
    }
    this.#state = "started";
    const lsn = parseLsn(lsnText);
    let checkpoint: { redo_lsn: string; timeline_id: number; in_recovery: boolean };
    try {
      [checkpoint] = await this.#sql<typeof checkpoint[]>`
        SELECT redo_lsn::text AS redo_lsn, timeline_id, pg_is_in_recovery() AS in_recovery
        FROM pg_control_checkpoint()`;
    } catch (error) {
      throw this.#failure("reading the start checkpoint", error);
    }
    this.#start = {
      lsn,
      timeline: checkpoint.timeline_id,
      verified: parseLsn(checkpoint.redo_lsn) === lsn,
      inRecovery: checkpoint.in_recovery || info.inRecovery,
      label,
      fast,
    };
    return this.#start;
  }

  /**
   * Stops the backup started on this session. With `waitForArchive` (the default) the server
   * waits until the WAL up to the stop LSN is archived (on a standby only with
   * `archive_mode = always`); progress warnings arrive as notices. Checks the returned label
   * against {@linkcode BackupSession.start}'s result and throws when they disagree.
   */
  async stop(waitForArchive = true): Promise<BackupStop> {
    const start = this.#start;
    if (this.#state !== "started" || start === undefined) {
      throw new Error(`BackupSession.stop: the session is ${this.#state}, no backup is running`);
    }
    this.#assertAlive("the backup was running");
    this.#state = "stopping";
    let row: { lsn: string; labelfile: string; spcmapfile: string | null };
    try {
      [row] = this.major >= 15
        ? await this.#sql<typeof row[]>`
          SELECT lsn::text AS lsn, labelfile, spcmapfile FROM pg_backup_stop(${waitForArchive})`
        : await this.#sql<typeof row[]>`
          SELECT lsn::text AS lsn, labelfile, spcmapfile
          FROM pg_stop_backup(false, ${waitForArchive})`;
    } catch (error) {
      this.#state = "failed";
      throw this.#failure(`stopping the backup (${backupFunctions(this.major).stop})`, error);
    }
    const lsn = parseLsn(row.lsn);
    const label = parseBackupLabel(row.labelfile);
    const info = await this.serverInfo();
    const problems: string[] = [];
    if (label.startLsn !== start.lsn) {
      problems.push(
        `START WAL LOCATION ${formatLsn(label.startLsn)}, but the start returned ${
          formatLsn(start.lsn)
        }`,
      );
    }
    if (label.startTimeline !== start.timeline) {
      problems.push(
        `START TIMELINE ${label.startTimeline}, but the start checkpoint was on timeline ${start.timeline}`,
      );
    }
    const expectedFile = segmentNameOfLsn(label.startLsn, label.startTimeline, info.walSegmentSize);
    if (label.startWalFile !== expectedFile) {
      problems.push(`start WAL file ${label.startWalFile}, expected ${expectedFile}`);
    }
    if (label.label !== null && label.label !== start.label) {
      problems.push(
        `LABEL ${JSON.stringify(label.label)}, expected ${JSON.stringify(start.label)}`,
      );
    }
    if (lsn < label.startLsn) {
      problems.push(`stop LSN ${formatLsn(lsn)} before the start ${formatLsn(label.startLsn)}`);
    }
    const fromStandby = label.backupFrom === "standby" ||
      (label.backupFrom === null && start.inRecovery);
    let timeline = start.timeline;
    if (fromStandby) {
      try {
        const [recovery] = await this.#sql<{ lsn: string; timeline: number }[]>`
          SELECT min_recovery_end_lsn::text AS lsn, min_recovery_end_timeline AS timeline
          FROM pg_control_recovery()`;
        // 0 after a promotion that followed the stop; the start timeline is the best left then.
        if (recovery.timeline > 0) timeline = recovery.timeline;
      } catch (error) {
        this.#state = "failed";
        throw this.#failure("reading the stop timeline", error);
      }
    }
    if (problems.length > 0) {
      this.#state = "failed";
      throw new UserError(
        `the backup label from ${this.#target()} contradicts the backup's start: ${
          problems.join("; ")
        }`,
        {
          detail: oneLine(row.labelfile),
          hint: "do not use this backup; take it again (and report this if it recurs)",
          critical: true,
        },
      );
    }
    this.#state = "stopped";
    return {
      lsn,
      timeline,
      labelFile: row.labelfile,
      tablespaceMap: row.spcmapfile ? row.spcmapfile : null,
      label,
      fromStandby,
    };
  }

  /**
   * Makes sure the server is left without this session's backup: ends the session, which makes
   * the server abort a backup that is running on it (the backend does so before it closes the
   * socket, so once a clean close returns the server is done). Never throws; safe to call in any
   * state, also after a failed start or stop, so that the original error is the one reported.
   * When a query is still running it is cut off after `graceSeconds` (default 5).
   */
  async abort(graceSeconds = 5): Promise<void> {
    if (this.#state === "closed") return;
    this.#ending = true;
    try {
      // A lost session has nothing left to wait for (and postgres.js may never settle its end).
      await this.#sql.end({ timeout: this.#lost ? 0 : graceSeconds });
    } catch { /* best effort: the session is gone either way */ }
    this.#state = "closed";
  }

  /**
   * Ends the session. A backup still running is aborted by the server (see
   * {@linkcode BackupSession.abort}, which this is).
   */
  async close(): Promise<void> {
    await this.abort();
  }

  /** `await using session = await BackupSession.open(...)` closes it. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
