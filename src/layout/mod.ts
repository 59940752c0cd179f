/**
 * WAL-E's names and PostgreSQL's WAL arithmetic: LSNs, segment names for every segment size, and
 * the storage keys of `wal_005/` and `basebackups_005/`. Pure functions, no I/O.
 *
 * @module
 */

export * from "./errors.ts";
export * from "./lsn.ts";
export * from "./segment.ts";
export * from "./keys.ts";
