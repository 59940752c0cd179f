/**
 * `backup-push`: a non-exclusive base backup of a running PostgreSQL 13–18 cluster (primary or
 * standby), or of a stopped one (`--while-offline`), in WAL-E's layout (spec §1.3, §2, §3):
 *
 * 1. Online: one reserved connection starts the backup (`pg_backup_start`, or
 *    `pg_start_backup(label, fast, false)` before 15). The backup's name comes from the start LSN,
 *    its timeline and the segment size, computed here (spec §3.3), not by server functions that
 *    fail during recovery. Offline: from the checkpoint in `global/pg_control`.
 * 2. The data directory and tablespaces are walked (src/backup/walk.ts) and split into volumes
 *    within WAL-E's limits (src/backup/partition.ts).
 * 3. `extended_version.txt` is uploaded first.
 * 4. Volumes stream file → tar → lzop (blocks compressed on every core) → store, `--pool-size` at
 *    a time, with no temporary files; one rate limit covers the whole backup. Each volume's size
 *    and SHA-256 are recorded as it is stored.
 * 5. The backup is stopped on the same connection; the `backup_label` and `tablespace_map` it
 *    returns, and a copy of `global/pg_control` read last, go into one final volume.
 * 6. The sentinel is uploaded last, with WAL-E's fields and wal-d's (LSNs, timeline, versions,
 *    times, and the volume list with sizes and SHA-256). A backup that fails before that has no
 *    sentinel: it is reported as failed, and what it uploaded is deleted (best effort).
 *
 * @module
 */

import { UserError } from "../cli/errors.ts";
import { LzopBlockPool } from "../codec/lzop_block_pool.ts";
import { basename, join, resolve } from "../io/path.ts";
import {
  type BackupName,
  backupName,
  backupSentinelKey,
  extendedVersionKey,
  formatLsn,
  formatSegmentOffset,
  type Lsn,
  pgWalfileNameOffset,
  volumeKey,
} from "../layout/mod.ts";
import type { Logger } from "../log/logger.ts";
import { ControlFileError, readControlFile } from "../pg/control.ts";
import type { ObjectStore } from "../storage/types.ts";
import { partitionMembers } from "./partition.ts";
import { BackupProgress, type ProgressOptions } from "./progress.ts";
import { RateLimiter } from "./rate_limit.ts";
import {
  type BackupSpec,
  encodeSentinel,
  type Sentinel,
  SENTINEL_CONTENT_TYPE,
  type SentinelVolume,
} from "./sentinel.ts";
import { walkCluster } from "./walk.ts";
import {
  type MemoryMember,
  TarVolumeReader,
  type TarVolumeReaderOptions,
  type VolumeMember,
} from "./tar_reader.ts";
import { lzopVolumeStream, type VolumeDigest } from "./volume.ts";
import { forEachLimited } from "../io/concurrency.ts";
import { lstatOrNull } from "../io/fs.ts";
import { WALD_VERSION } from "../version.ts";

/** The PostgreSQL side of an online backup (src/pg/backup_session.ts), as push uses it. */
export interface BackupServer {
  /** `version()`, for extended_version.txt. */
  readonly versionString: string;
  readonly versionNum: number;
  readonly systemIdentifier: string;
  readonly walSegmentSize: number;
  readonly inRecovery: boolean;
  start(label: string, fast: boolean): Promise<{ lsn: Lsn; timeline: number }>;
  stop(): Promise<{ lsn: Lsn; timeline: number; labelFile: string; tablespaceMap: string | null }>;
  /** Ends the backup on the server if it is still running, and the connection. */
  close(): Promise<void>;
}

/** What {@linkcode pushBackup} needs. */
export interface PushBackupOptions {
  /** The data directory, as given on the command line. */
  pgdata: string;
  store: ObjectStore;
  log: Logger;
  /** Volumes uploaded at once (`--pool-size`). */
  poolSize: number;
  /** `--cluster-read-rate-limit` in bytes per second, or null. */
  rateLimit: number | null;
  /** `--fast-checkpoint`. */
  fastCheckpoint: boolean;
  /** The server (online), or null for `--while-offline`. */
  server: BackupServer | null;
  /** Progress reporting. */
  progress?: ProgressOptions;
  /** Compression workers (default: one per core). */
  compressionWorkers?: number;
  /** Volume limits (tests use small ones). */
  partition?: { maxBytes?: number; maxMembers?: number };
}

/** What a finished backup is. */
export interface PushedBackup {
  name: BackupName;
  sentinel: Sentinel;
}

/** Runs a base backup; resolves once its sentinel is stored. */
export async function pushBackup(options: PushBackupOptions): Promise<PushedBackup> {
  const { store, log, server } = options;
  const uploadLog = log.getLogger("wal_e.worker.upload");
  const pgdata = resolve(options.pgdata);
  const startTime = new Date();
  const written: string[] = [];
  const blocks = new LzopBlockPool(options.compressionWorkers);
  try {
    // 1. Start.
    let startLsn: Lsn;
    let timeline: number;
    let walSegmentSize: number;
    let versionString: string;
    let versionNum: number | undefined;
    let systemIdentifier: string;
    if (server !== null) {
      const label = `freeze_start_${startTime.toISOString().replace("Z", "000+00:00")}`;
      ({ lsn: startLsn, timeline } = await server.start(label, options.fastCheckpoint));
      ({ walSegmentSize, versionString, versionNum, systemIdentifier } = server);
    } else {
      const offline = await offlineStart(pgdata);
      ({ startLsn, timeline, walSegmentSize, versionString, versionNum, systemIdentifier } =
        offline);
    }
    const position = pgWalfileNameOffset(startLsn, timeline, walSegmentSize);
    const name = backupName(position.segment, position.offset);
    log.info(`starting base backup "${name}"`, {
      detail: `start LSN ${formatLsn(startLsn)} on timeline ${timeline}` +
        (server?.inRecovery ? " (a standby)" : ""),
      structured: { backup: name },
    });

    // 2. Walk and partition.
    const walk = await walkCluster(pgdata);
    for (const skipped of walk.skipped) {
      uploadLog.warning(`not archived: ${skipped.path}`, { detail: skipped.reason });
    }
    const volumes = partitionMembers(walk.members, options.partition);
    const total = walk.members.reduce((sum, m) => sum + m.size, 0);

    // 3. extended_version.txt first.
    const versionKey = extendedVersionKey(name);
    written.push(versionKey);
    await store.put(versionKey, new TextEncoder().encode(versionString), {
      contentType: "text/plain",
    });

    // 4. Volumes, poolSize at a time.
    const progress = new BackupProgress(total, uploadLog, options.progress);
    const limiter = options.rateLimit === null ? null : new RateLimiter(options.rateLimit);
    progress.start();
    const records: SentinelVolume[] = new Array(volumes.length + 1);
    /** Bytes of file data the current attempt of each volume has counted. */
    const counted = new Map<number, number>();
    const readerOptions = (index: number): TarVolumeReaderOptions => ({
      onBytes: (n) => {
        progress.add(n);
        counted.set(index, (counted.get(index) ?? 0) + n);
      },
      beforeRead: limiter === null ? undefined : (n) => limiter.take(n),
      onMemberSkipped: (member: { name: string }, reason: string) =>
        uploadLog.info(`not archived: "${member.name}"`, { detail: reason }),
      onMemberShrank: (member: { name: string }, recorded: number, read: number) =>
        uploadLog.info(`"${member.name}" shrank during the backup`, {
          detail: `${recorded} bytes when it was opened, ${read} read; the rest is stored as ` +
            "zeros, and WAL replay from the backup's start restores it.",
        }),
    });
    const upload = async (index: number, members: readonly VolumeMember[]) => {
      const key = volumeKey(name, index);
      written.push(key);
      uploadLog.info("begin uploading a base backup volume", {
        detail: `Uploading to "${store.url(key)}".`,
      });
      const began = performance.now();
      let attempt: { reader: TarVolumeReader; digest: Promise<VolumeDigest> };
      await store.put(key, () => {
        // A retried upload reads the volume again: the bytes of the failed attempt are uncounted.
        progress.subtract(counted.get(index) ?? 0);
        counted.set(index, 0);
        const reader = new TarVolumeReader(members, readerOptions(index));
        const volume = lzopVolumeStream(reader, blocks, { mode: 0o600 });
        attempt = { reader, digest: volume.digest };
        return volume.stream;
      });
      const digest = await attempt!.digest;
      const seconds = (performance.now() - began) / 1000;
      uploadLog.info("finish uploading a base backup volume", {
        detail: `Uploading to "${store.url(key)}" complete at ` +
          `${(digest.size / 1024 / Math.max(seconds, 0.001)).toFixed(2)}KiB/s.`,
      });
      records[index] = {
        name: basename(key),
        size: digest.size,
        sha256: digest.sha256,
        expandedSizeBytes: attempt!.reader.expandedBytes,
        members: attempt!.reader.membersWritten,
      };
    };
    await forEachLimited(
      volumes,
      options.poolSize,
      (volume, index) => upload(index, volume.members),
    );
    progress.stop();

    // 5. Stop, then the final volume: backup_label, tablespace_map, pg_control.
    let stopLsn: Lsn;
    let stopTimeline: number;
    const finalMembers: MemoryMember[] = [];
    const now = Date.now() / 1000;
    if (server !== null) {
      const stopped = await server.stop();
      ({ lsn: stopLsn, timeline: stopTimeline } = stopped);
      finalMembers.push(inMemory("backup_label", stopped.labelFile, now));
      if (stopped.tablespaceMap !== null && stopped.tablespaceMap !== "") {
        finalMembers.push(inMemory("tablespace_map", stopped.tablespaceMap, now));
      }
    } else {
      stopLsn = startLsn;
      stopTimeline = timeline;
    }
    const control = await Deno.readFile(join(pgdata, "global", "pg_control"));
    finalMembers.push(inMemory("global/pg_control", control, now));
    await upload(volumes.length, finalMembers);

    // 6. The sentinel, last.
    const stop = pgWalfileNameOffset(stopLsn, stopTimeline, walSegmentSize);
    const spec: BackupSpec = {
      basePrefix: options.pgdata.endsWith("/") ? options.pgdata : `${options.pgdata}/`,
      tablespaces: walk.tablespaces,
    };
    const sentinel: Sentinel = {
      walSegmentBackupStop: stop.segment,
      walSegmentOffsetBackupStop: formatSegmentOffset(stop.offset, "backup stop offset"),
      expandedSizeBytes: records.reduce((sum, v) => sum + v.expandedSizeBytes, 0),
      spec,
      walDVersion: WALD_VERSION,
      format: 1,
      backupStartLsn: startLsn,
      backupStopLsn: stopLsn,
      timeline,
      stopTimeline,
      walSegmentSize,
      serverVersionNum: versionNum,
      serverVersion: versionString,
      systemIdentifier,
      startTime,
      finishTime: new Date(),
      compression: "lzop",
      encryption: null,
      volumes: records,
    };
    await store.put(backupSentinelKey(name), new TextEncoder().encode(encodeSentinel(sentinel)), {
      contentType: SENTINEL_CONTENT_TYPE,
    });
    log.info(`base backup "${name}" complete`, {
      detail: `${records.length} volumes, ${sentinel.expandedSizeBytes} bytes of files; stop ` +
        `LSN ${formatLsn(stopLsn)}.`,
    });
    return { name, sentinel };
  } catch (error) {
    if (written.length > 0) {
      await store.delete(written).catch((cleanup) => {
        uploadLog.warning("could not delete the failed backup's objects", {
          detail: String(cleanup),
        });
      });
    }
    throw error;
  } finally {
    blocks.close();
    await server?.close().catch(() => {});
  }
}

function inMemory(name: string, content: string | Uint8Array, mtime: number): MemoryMember {
  const data = typeof content === "string" ? new TextEncoder().encode(content) : content;
  return { name, kind: "data", data, mode: 0o600, uid: 0, gid: 0, mtime };
}

/** The start of a backup of a stopped cluster, from its control file. */
async function offlineStart(pgdata: string) {
  if (lstatOrNull(join(pgdata, "postmaster.pid")) !== null) {
    throw new UserError(`the cluster in "${pgdata}" is running (postmaster.pid exists)`, {
      hint: "Stop the server first for --while-offline, or run backup-push without it for an " +
        "online backup.",
    });
  }
  let control;
  try {
    control = await readControlFile(pgdata);
  } catch (error) {
    if (!(error instanceof ControlFileError)) throw error;
    throw new UserError(`cannot back up "${pgdata}" offline: ${error.message}`, {
      hint: "Give the data directory of a stopped PostgreSQL 13-18 cluster.",
      cause: error,
    });
  }
  if (control.state !== "shut down" && control.state !== "shut down in recovery") {
    throw new UserError(
      `the cluster in "${pgdata}" was not shut down cleanly (state "${control.state}")`,
      {
        hint: "Start it and stop it cleanly (pg_ctl stop -m fast), or take an online backup.",
      },
    );
  }
  const major = (await Deno.readTextFile(join(pgdata, "PG_VERSION"))).trim();
  return {
    startLsn: control.redoLsn,
    timeline: control.timeline,
    walSegmentSize: control.walSegmentSize,
    versionString: `PostgreSQL ${major}`,
    versionNum: undefined, // PG_VERSION holds the major only: no server_version_num to record
    systemIdentifier: control.systemIdentifier.toString(),
  };
}
