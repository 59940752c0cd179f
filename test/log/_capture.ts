/** Logging helpers for tests: settings, a captured logger, a syslog daemon. @module */

import type { LogSettings } from "../../src/config/types.ts";
import { createLogger, type Logger } from "../../src/log/logger.ts";

/** 2018-11-05T20:21:58.171324 UTC in microseconds, the time of the example in spec §10. */
export const SPEC_TIME = Date.UTC(2018, 10, 5, 20, 21, 58) * 1000 + 171324;

/** WAL-E text format, INFO and up, to stderr only; `overrides` replace any of these. */
export function logSettings(overrides: Partial<LogSettings> = {}): LogSettings {
  return {
    level: "INFO",
    format: "text",
    destinations: ["stderr"],
    syslogFacility: "user",
    syslogSocketOverride: null,
    ...overrides,
  };
}

/** A logger whose stderr lines are collected; `text()` returns them so far. */
export async function captureLogger(): Promise<{ log: Logger; text: () => string }> {
  let text = "";
  const log = await createLogger({
    settings: logSettings(),
    clock: () => 0,
    pid: 1,
    writeStderr: (chunk) => text += chunk,
  });
  return { log, text: () => text };
}

/**
 * Runs `body` with a unix datagram "syslog daemon" at `socketPath` (log.sock in the temporary
 * directory `tmpDir`); `received()` is the next datagram, or a failure after 5 s (a hanging test
 * would hide the problem).
 */
export async function withSyslogServer(
  body: (socketPath: string, received: () => Promise<string>, tmpDir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "wal-d-syslog-test-" });
  const socketPath = `${dir}/log.sock`;
  const server = Deno.listenDatagram({ transport: "unixpacket", path: socketPath });
  try {
    const received = async () => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("no datagram within 5 s")), 5000);
      });
      try {
        return new TextDecoder().decode((await Promise.race([server.receive(), timeout]))[0]);
      } finally {
        clearTimeout(timer);
      }
    };
    await body(socketPath, received, dir);
  } finally {
    server.close();
    await Deno.remove(dir, { recursive: true });
  }
}
