/** The wal-d release version printed by `wal-d version`. */
export const WALD_VERSION = "0.1.0";
