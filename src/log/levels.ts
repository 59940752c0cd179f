/** Log levels with Python logging's numbers and syslog severities. */
import type { LogLevelName } from "../config/types.ts";

export type { LogLevelName };

/** Python logging's numeric level of each name. */
export const LEVEL_NUMBERS: Readonly<Record<LogLevelName, number>> = {
  DEBUG: 10,
  INFO: 20,
  WARNING: 30,
  ERROR: 40,
  CRITICAL: 50,
};

/** Syslog severity of each level (Python `SysLogHandler.mapPriority`). */
export const SYSLOG_SEVERITIES: Readonly<Record<LogLevelName, number>> = {
  DEBUG: 7,
  INFO: 6,
  WARNING: 4,
  ERROR: 3,
  CRITICAL: 2,
};

/** Whether a record at `level` passes a logger whose threshold is `threshold`. */
export function levelPasses(level: LogLevelName, threshold: LogLevelName): boolean {
  return LEVEL_NUMBERS[level] >= LEVEL_NUMBERS[threshold];
}
