/** A logger for tests: WAL-E text format, INFO and up, into a string. @module */

import { createLogger, type Logger } from "../../src/log/logger.ts";

/** A logger whose stderr lines are collected; `text()` returns them so far. */
export async function captureLogger(): Promise<{ log: Logger; text: () => string }> {
  let text = "";
  const log = await createLogger({
    settings: {
      level: "INFO",
      format: "text",
      destinations: ["stderr"],
      syslogFacility: "user",
      syslogSocketOverride: null,
    },
    clock: () => 0,
    pid: 1,
    writeStderr: (chunk) => text += chunk,
  });
  return { log, text: () => text };
}
