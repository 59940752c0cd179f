import assert from "node:assert/strict";
import { BackupProgress, formatBytes, formatDuration } from "../../src/backup/progress.ts";
import { captureLogger } from "../log/_capture.ts";

Deno.test("progress: units and durations", () => {
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(3 * 1024 ** 3), "3.0 GiB");
  assert.equal(formatDuration(5), "0:05");
  assert.equal(formatDuration(3725), "1:02:05");
});

Deno.test("progress: done of total, rate and time left; logged without a terminal", async () => {
  const { log, text: lines } = await captureLogger();
  let now = 0;
  const progress = new BackupProgress(1024 ** 3, log, { now: () => now, logSeconds: 0 });
  progress.start();
  now = 2000;
  progress.add(256 * 1024 ** 2);
  assert.equal(progress.line(), "256.0 MiB of 1.0 GiB (25%), 128.0 MiB/s, 0:06 left");
  progress.report();
  assert.match(lines(), /INFO +MSG: backup progress\n +DETAIL: 256\.0 MiB of 1\.0 GiB \(25%\)/);
  progress.subtract(56 * 1024 ** 2);
  assert.equal(progress.done, 200 * 1024 ** 2);
  progress.stop();
});

Deno.test("progress: on a terminal the line is redrawn in place and kept at the end", async () => {
  const { log, text: lines } = await captureLogger();
  let written = "";
  const decoder = new TextDecoder();
  const terminal = { write: (bytes: Uint8Array) => written += decoder.decode(bytes) };
  let now = 0;
  const progress = new BackupProgress(100, log, { terminal, now: () => now });
  progress.start();
  now = 1000;
  progress.add(100);
  progress.stop();
  assert.equal(written, "\r100 B of 100 B (100%), 100 B/s, 0:00 left\x1b[K\n");
  assert.equal(lines(), "", "nothing logged on a terminal");
});
