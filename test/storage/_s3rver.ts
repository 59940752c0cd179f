/**
 * A real S3 server on loopback for the tests: `s3rver` (npm, installed into node_modules by
 * `deno install` from deno.json's imports) run by Node.js with `--openssl-legacy-provider`
 * (s3rver's paged listings fail without it). No network is needed at test time.
 *
 * s3rver 3.7.1 quirks the tests work around: it does not verify SigV4 signatures (a wrong secret
 * key is accepted; an unknown access key id is refused), and a DeleteObjects batch that empties
 * a directory of its file store can fail with a 500 (its per-key deletes run concurrently and
 * each removes empty parent directories), so tests keep one object in such a directory.
 */

const root = new URL("../../", import.meta.url).pathname;
const S3RVER_BIN = `${root}node_modules/s3rver/bin/s3rver.js`;

/** s3rver's default credentials. */
export const S3RVER_KEY = "S3RVER";

/**
 * wal-d's environment for the store `prefix` (`s3://bucket/path`) behind `endpoint`
 * (`WALE_S3_ENDPOINT`), with s3rver's credentials.
 */
export function s3rverEnv(endpoint: string, prefix: string): Record<string, string> {
  return {
    WALE_S3_PREFIX: prefix,
    WALE_S3_ENDPOINT: endpoint,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: S3RVER_KEY,
    AWS_SECRET_ACCESS_KEY: S3RVER_KEY,
    AWS_EC2_METADATA_DISABLED: "true",
  };
}

/** Why s3rver cannot run here, or `null` when it can. */
export async function s3rverUnavailable(): Promise<string | null> {
  try {
    await Deno.stat(S3RVER_BIN);
  } catch {
    return `${S3RVER_BIN} is missing (run "deno install")`;
  }
  try {
    // Without a `node` on PATH, Deno runs itself in its place; s3rver's paged listings fail there.
    const out = await new Deno.Command("node", {
      args: ["-e", "process.stdout.write(typeof Deno)"],
      stderr: "null",
    }).output();
    if (!out.success) return "node -e failed";
    if (new TextDecoder().decode(out.stdout) !== "undefined") {
      return "Node.js (node) is not installed (Deno's stand-in for it cannot run s3rver)";
    }
  } catch {
    return "Node.js (node) is not installed";
  }
  return null;
}

/** A running s3rver. */
export interface S3rver {
  readonly port: number;
  /** `WALE_S3_ENDPOINT` for it. */
  readonly endpoint: string;
  /** Stops the server (idempotent); `keepData` keeps its directory for a restart. */
  stop(): Promise<void>;
}

/** Starts s3rver on 127.0.0.1 with a free port and the given buckets, in a temporary directory. */
export async function startS3rver(buckets: string[], port = 0): Promise<S3rver> {
  const dir = await Deno.makeTempDir({ prefix: "wald-s3rver-" });
  const args = ["--openssl-legacy-provider", S3RVER_BIN, "-d", dir, "-a", "127.0.0.1"];
  args.push("-p", String(port), "-s");
  for (const bucket of buckets) args.push("--configure-bucket", bucket);
  const child = new Deno.Command("node", {
    args,
    stdout: "piped",
    stderr: "piped",
    env: { AWS_EC2_METADATA_DISABLED: "true" },
  }).spawn();
  const stderrText = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  let bound: number | null = null;
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  try {
    while (bound === null) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(seen);
      if (match) bound = Number(match[1]);
    }
  } finally {
    clearTimeout(timer);
  }
  // Keep draining stdout so the server never blocks on a full pipe.
  const drained = (async () => {
    try {
      while (!(await reader.read()).done) { /* discard */ }
    } catch { /* closed */ }
  })();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
    await drained;
    await stderrText;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  if (bound === null) {
    await stop();
    throw new Error(`s3rver did not start: ${seen}\n${await stderrText}`);
  }
  return { port: bound, endpoint: `http+path://127.0.0.1:${bound}`, stop };
}
