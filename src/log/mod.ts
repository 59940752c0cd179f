/** Public API of the logging layer. */
export type { LogFields, Logger, LoggerOptions } from "./logger.ts";
export {
  createLogger,
  DEFAULT_SYSLOG_SOCKETS,
  findSyslogSocket,
  MAIN_LOGGER_NAME,
  systemClockMicros,
} from "./logger.ts";
export type { LogRecord, StructuredFields, StructuredValue } from "./format.ts";
export {
  formatJsonRecord,
  formatMessageBody,
  formatStructured,
  formatTextRecord,
  formatUtcMicros,
} from "./format.ts";
export type { LogLevelName } from "./levels.ts";
export { LEVEL_NUMBERS, levelPasses, SYSLOG_SEVERITIES } from "./levels.ts";
export { createRedactor } from "./redact.ts";
export type { Redactor } from "./redact.ts";
