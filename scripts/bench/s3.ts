/**
 * S3 benchmark against s3rver on loopback (the test server, `deno install` puts it in
 * node_modules):
 *
 *   deno task bench:s3 [--size-mib N] [--runs N] [--json PATH]
 *
 * 1. Upload and download of an N MiB stream (default 512) through our storage layer
 *    (`openStore`: policy + S3Store, multipart from reused 8 MiB part buffers, 3 in flight)
 *    against the raw SDK doing the same transfer (`@aws-sdk/lib-storage` Upload with its
 *    defaults, the bench's only use of lib-storage; GetObject read as a web stream), each in a
 *    fresh process so that its peak RSS is its own (sampled every 20 ms).
 *    - `up-store` uploads a byte stream whose producer writes into the views it is offered (as
 *      wal-d's own producers do): the uploader reads straight into its part buffers.
 *    - `up-store-chunks` and `up-sdk` upload a stream of fresh 1 MiB chunks (lib-storage cannot
 *      read a byte stream); `source` only reads that stream to nowhere: the peak RSS that the
 *      chunks' own garbage reaches before any upload (V8 collects external memory at about
 *      64 MiB of growth).
 * 2. wal-push latency of a 16 MiB segment (one fresh process per push, as PostgreSQL runs it)
 *    to s3rver against the file store, in the same rounds.
 *
 * s3rver writes every object to its own directory on disk and is single-threaded Node.js: its
 * speed bounds both columns alike, so the ratio is the figure to read, not the absolute MB/s.
 *
 * @module
 */
import { S3Client } from "@aws-sdk/client-s3";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { scanBenchArgs } from "./args.ts";
import { median } from "./report.ts";
import { EffectiveEnvironment } from "../../src/config/environment.ts";
import { resolveConfig } from "../../src/config/resolve.ts";
import { openStore } from "../../src/storage/mod.ts";
import {
  S3RVER_KEY,
  s3rverEnv,
  s3rverUnavailable,
  startS3rver,
} from "../../test/storage/_s3rver.ts";
import { segmentBytes, walD } from "../../test/wal/_cli.ts";

const USAGE = "usage: deno task bench:s3 [--size-mib N] [--runs N] [--json PATH]";
const BUCKET = "wald-bench";

function env(endpoint: string): Record<string, string> {
  return s3rverEnv(endpoint, `s3://${BUCKET}/bench`);
}

/** N bytes in 1 MiB chunks, generated as they are read. */
function source(size: number): ReadableStream<Uint8Array> {
  let sent = 0;
  const chunk = new Uint8Array(1 << 20);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31) & 0xff;
  return new ReadableStream({
    pull(controller) {
      if (sent >= size) return controller.close();
      const n = Math.min(chunk.length, size - sent);
      controller.enqueue(chunk.slice(0, n));
      sent += n;
    },
  }, { highWaterMark: 0 });
}

/** N bytes as a byte stream, written into the reader's views (the same pattern). */
function byteSource(size: number): ReadableStream<Uint8Array> {
  let sent = 0;
  const pattern = new Uint8Array((1 << 20) + 256);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 31) & 0xff;
  return new ReadableStream({
    type: "bytes",
    pull(controller) {
      const request = controller.byobRequest!;
      if (sent >= size) {
        controller.close();
        request.respond(0);
        return;
      }
      const view = request.view as Uint8Array;
      const n = Math.min(view.length, 1 << 20, size - sent);
      view.set(pattern.subarray(sent & 255, (sent & 255) + n));
      request.respond(n);
      sent += n;
    },
  });
}

async function drain(stream: ReadableStream<Uint8Array>): Promise<number> {
  let total = 0;
  for await (const chunk of stream) total += chunk.length;
  return total;
}

/** Child mode: one transfer, printing `{"seconds":…,"peakRss":…}`. */
async function child(mode: string, endpoint: string, size: number): Promise<void> {
  let peak = Deno.memoryUsage().rss;
  const sampler = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 20);
  const vars = env(endpoint);
  const port = Number(new URL(endpoint.replace(/^http\+path/, "http")).port);
  const raw = new S3Client({
    region: "us-east-1",
    endpoint: `http://127.0.0.1:${port}`,
    forcePathStyle: true,
    credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  const store = await openStore(resolveConfig(
    { awsInstanceProfile: false, terse: false },
    new EffectiveEnvironment(vars),
  ));
  const baseRss = Deno.memoryUsage().rss;
  const started = performance.now();
  let bytes = size;
  switch (mode) {
    case "up-store":
      await store.put("big-store", () => byteSource(size));
      break;
    case "up-store-chunks":
      await store.put("big-store", () => source(size));
      break;
    case "up-sdk":
      await new Upload({
        client: raw,
        params: { Bucket: BUCKET, Key: "bench/big-sdk", Body: source(size) },
      }).done();
      break;
    case "source":
      bytes = await drain(source(size));
      break;
    case "down-store":
      bytes = await drain((await store.get("big-store"))!);
      break;
    case "down-sdk": {
      const out = await raw.send(new GetObjectCommand({ Bucket: BUCKET, Key: "bench/big-sdk" }));
      bytes = await drain(out.Body!.transformToWebStream() as ReadableStream<Uint8Array>);
      break;
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  peak = Math.max(peak, Deno.memoryUsage().rss);
  if (bytes !== size) throw new Error(`${mode}: moved ${bytes} bytes, expected ${size}`);
  console.log(JSON.stringify({ seconds, peakRss: peak, baseRss }));
  Deno.exit(0);
}

async function runChild(
  mode: string,
  endpoint: string,
  size: number,
): Promise<{ seconds: number; peakRss: number; baseRss: number }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-net",
      import.meta.filename!,
      "--child",
      mode,
      endpoint,
      `${size}`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`${mode} failed`);
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
}

async function main(): Promise<void> {
  if (Deno.args[0] === "--child") {
    return await child(Deno.args[1], Deno.args[2], Number(Deno.args[3]));
  }
  let sizeMiB = 512;
  let runs = 3;
  let jsonPath: string | null = null;
  scanBenchArgs(Deno.args, USAGE, (flag, value) => {
    if (flag === "--size-mib") sizeMiB = Number(value());
    else if (flag === "--runs") runs = Number(value());
    else if (flag === "--json") jsonPath = value();
    else return false;
    return true;
  });
  const missing = await s3rverUnavailable();
  if (missing !== null) {
    console.log(`SKIP: ${missing}`);
    return;
  }
  const size = sizeMiB * 1024 * 1024;
  const server = await startS3rver([BUCKET]);
  const results: Record<string, unknown> = { sizeMiB, runs };
  try {
    const rows: Record<string, { mbps: number[]; rss: number[]; base: number[] }> = {};
    for (let run = 0; run < runs; run++) {
      for (
        const mode of [
          "source",
          "up-store",
          "up-store-chunks",
          "up-sdk",
          "down-store",
          "down-sdk",
        ]
      ) {
        const { seconds, peakRss, baseRss } = await runChild(mode, server.endpoint, size);
        rows[mode] ??= { mbps: [], rss: [], base: [] };
        rows[mode].base.push(baseRss / 1048576);
        rows[mode].mbps.push(sizeMiB / seconds);
        rows[mode].rss.push(peakRss / 1048576);
      }
    }
    console.log(`${sizeMiB} MiB through s3rver, median of ${runs} runs:`);
    for (const [mode, row] of Object.entries(rows)) {
      const mbps = median(row.mbps);
      const rss = Math.max(...row.rss);
      const base = Math.max(...row.base);
      console.log(
        `  ${mode.padEnd(11)} ${mbps.toFixed(1).padStart(7)} MiB/s  peak RSS ${rss.toFixed(0)} ` +
          `MiB (${base.toFixed(0)} MiB before the transfer)`,
      );
      results[mode] = { mibPerSecond: mbps, peakRssMiB: rss, rssBeforeMiB: base };
    }
    const ratio = (a: string, b: string) => median(rows[a].mbps) / median(rows[b].mbps);
    console.log(
      `  store/SDK speed: upload ${ratio("up-store", "up-sdk").toFixed(2)}, ` +
        `download ${ratio("down-store", "down-sdk").toFixed(2)}`,
    );

    // wal-push latency: s3 vs file, same rounds.
    const dir = await Deno.makeTempDir({ prefix: "wald-bench-s3-" });
    try {
      await Deno.mkdir(`${dir}/pg_wal/archive_status`, { recursive: true });
      const latency: Record<string, number[]> = { s3: [], file: [] };
      const pushes = Math.max(5, runs * 3);
      for (let i = 1; i <= pushes; i++) {
        const seg = `00000001000000000000${i.toString(16).toUpperCase().padStart(4, "0")}`;
        await Deno.writeFile(`${dir}/pg_wal/${seg}`, segmentBytes(i));
        for (
          const [name, vars] of [
            ["s3", env(server.endpoint)],
            ["file", { WALE_FILE_PREFIX: `file://localhost${dir}/store` }],
          ] as const
        ) {
          const started = performance.now();
          const result = await walD(["wal-push", `pg_wal/${seg}`], { env: vars, cwd: dir });
          if (result.code !== 0) throw new Error(`wal-push to ${name}: ${result.stderr}`);
          latency[name].push(performance.now() - started);
        }
      }
      console.log(
        `wal-push of a 16 MiB segment, median of ${pushes}: s3rver ${
          median(latency.s3).toFixed(0)
        } ms, file ${median(latency.file).toFixed(0)} ms`,
      );
      results.walPushMs = { s3: median(latency.s3), file: median(latency.file) };
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  } finally {
    await server.stop();
  }
  if (jsonPath !== null) await Deno.writeTextFile(jsonPath, JSON.stringify(results, null, 2));
}

await main();
