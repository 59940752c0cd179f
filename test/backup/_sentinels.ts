/** Sentinels the backup tests share. @module */

import type { Sentinel } from "../../src/backup/sentinel.ts";

/** What the sentinel of the genuine WAL-E 1.1.1 fixture `variant` (plain, gnutar) holds. */
export function walEFixtureSentinel(variant: string): Sentinel {
  return {
    walSegmentBackupStop: "000000010000000000000003",
    walSegmentOffsetBackupStop: "00000256",
    expandedSizeBytes: 39727137,
    spec: {
      basePrefix: `/var/lib/postgresql/wal-d-fixtures/${variant}/pgdata/`,
      tablespaces: [{
        name: "16422",
        loc: `/var/lib/postgresql/wal-d-fixtures/${variant}/tblspc/`,
        link: "pg_tblspc/16422",
      }],
    },
  };
}

/** wal-d's extension fields of a sample backup of PostgreSQL 17 (volumes and encryption aside). */
export const SAMPLE_EXTENSION = {
  walDVersion: "0.1.0",
  format: 1,
  backupStartLsn: 0x2000028n,
  backupStopLsn: 0x2000138n,
  timeline: 1,
  stopTimeline: 1,
  walSegmentSize: 16 * 1024 * 1024,
  serverVersionNum: 170000,
  serverVersion: "PostgreSQL 17.0",
  systemIdentifier: "7442385906046398476",
  startTime: new Date("2026-01-01T00:00:00.000Z"),
  finishTime: new Date("2026-01-01T00:00:05.000Z"),
  compression: "lzop",
} as const satisfies Partial<Sentinel>;
