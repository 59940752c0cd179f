/**
 * Codec benchmark: wal-d's lzop writer and reader (LZO1X in WebAssembly behind web streams)
 * against the native `lzop` program, on the same bytes, in one run.
 *
 *   deno task bench:codec [--json PATH] [--table-mb N]
 *
 * Data sets: a synthetic busy WAL segment (16 MiB), the real PostgreSQL 15 segment from the test
 * fixtures (16 MiB, mostly zeros) and a heap-table file (200 MB). For each: compress and
 * decompress throughput of `lzop -1` (process wall time) and of ours (in-process wall time, file
 * stream to a byte-counting sink), both decompressors reading the same `lzop -1` output;
 * compressed sizes; a sha256 round trip; and a breakdown of our time by layer (codec only,
 * checksum only, sync encoder/decoder, file stream) so a miss can be traced to the codec or to
 * the stream plumbing.
 *
 * @module
 */

import { describeMachine, LZOP, type MachineInfo, probeLzop } from "./native.ts";
import { scanBenchArgs } from "./args.ts";
import { formatTable, MB, median, verdict } from "./report.ts";
import { createHash } from "node:crypto";
import { LZO_BLOCK_MAX, LzoCodec } from "../../src/codec/lzo.ts";
import {
  decompressLzop,
  LzopCompressStream,
  LzopDecoder,
  LzopDecompressStream,
  LzopEncoder,
  LzopFlag,
} from "../../src/codec/lzop.ts";
import { openFileReadable } from "../../src/io/file_stream.ts";
import { openLzopFileReadable } from "../../src/codec/lzop_file.ts";
import { generateWalSegment, tableChunks, WAL_SEGMENT_SIZE, writeChunks } from "./data.ts";

/** Throughput target: ours / native, both directions. */
export const SPEED_TARGET = 0.8;
/** Size target: our compressed size / `lzop -1`'s. */
export const SIZE_TARGET = 1.03;
/** Chunk size of `Deno.FsFile.readable`, used for the in-memory layers so they match it. */
const FILE_STREAM_CHUNK = 65536;
/** Read size of the "1 MiB reads" layer rows, to show what larger reads would gain. */
const BIG_READ = 1024 * 1024;

const REAL_WAL_FIXTURE = "test/fixtures/lzop/lzo/wal-segment-16MiB.1.lzo";
const REAL_WAL_FALLBACK = "/work/shared/fixtures/lzop/lzo/wal-segment-16MiB.1.lzo";

/* ------------------------------------------------------------------------------------------ */
/* Types                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/** Command-line options. */
export interface BenchOptions {
  /** Where to write the results as JSON, if anywhere. */
  jsonPath?: string;
  /** Size of the table data set in bytes (default 200 MB). */
  tableBytes: number;
}

/** Wall-clock timings of one measurement: warm-up excluded. */
export interface Timing {
  /** Uncompressed bytes processed per run. */
  bytes: number;
  /** Seconds of each measured run, in run order. */
  seconds: number[];
  medianSeconds: number;
  /** Uncompressed MB (10^6 bytes) per second, at the median. */
  mbPerSecond: number;
}

/** One data set, as a file in the temporary directory. */
export interface DataSet {
  name: string;
  description: string;
  /** Where the bytes came from (generator or fixture path). */
  source: string;
  path: string;
  bytes: number;
  /** Measured runs per measurement (after one warm-up). */
  runs: number;
}

/** Native and our timings for one direction. */
export interface DirectionResult {
  native: Timing | null;
  ours: Timing;
  /** ours / native throughput, or null without native lzop. */
  oursOverNative: number | null;
}

/** Compressed sizes of one data set. */
export interface SizeResult {
  input: number;
  native: number | null;
  ours: number;
  /** ours / native size, or null without native lzop. */
  oursOverNative: number | null;
}

/** Round-trip checks of one data set. */
export interface RoundTripResult {
  inputSha256: string;
  /** sha256 of our output decompressed by ours. */
  oursThroughOursSha256: string;
  /** sha256 of `lzop -1` output decompressed by ours, or null without native lzop. */
  nativeThroughOursSha256: string | null;
  /** Whether `lzop -t` accepts our output, or null without native lzop. */
  nativeAcceptsOurs: boolean | null;
  ok: boolean;
}

/** One layer of our implementation, timed alone. */
export interface LayerResult {
  direction: "read" | "compress" | "decompress";
  name: string;
  timing: Timing;
  /** This layer's time as a share of the full stream's time in the same direction. */
  shareOfStream: number | null;
}

/** All results for one data set. */
export interface DataSetResult {
  name: string;
  description: string;
  source: string;
  bytes: number;
  runs: number;
  compress: DirectionResult;
  decompress: DirectionResult;
  sizes: SizeResult;
  roundTrip: RoundTripResult;
  layers: LayerResult[];
}

/** Everything one run of the benchmark produced (the `--json` output). */
export interface BenchReport {
  startedAt: string;
  machine: MachineInfo;
  /** Why native lzop was skipped, or null when it ran. */
  nativeSkipped: string | null;
  /** The native codec of the reference layer rows, or why they were skipped. */
  nativeCodec: string;
  targets: { speedOursOverNative: number; sizeOursOverNative: number };
  dataSets: DataSetResult[];
}

/* ------------------------------------------------------------------------------------------ */
/* Options and machine                                                                        */
/* ------------------------------------------------------------------------------------------ */

const USAGE = "usage: deno task bench:codec [--json PATH] [--table-mb N]\n" +
  "  --json PATH    also write the results as JSON to PATH\n" +
  "  --table-mb N   size of the table data set in MB (default 200; smaller for quick runs)";

/** Parses `--json PATH` and `--table-mb N` (for quick runs; the benchmark's size is 200). */
export function parseOptions(args: string[]): BenchOptions {
  const options: BenchOptions = { tableBytes: 200 * MB };
  scanBenchArgs(args, USAGE, (flag, value) => {
    if (flag === "--json") {
      options.jsonPath = value();
    } else if (flag === "--table-mb") {
      const mb = Number(value());
      if (!(mb > 0)) throw new Error(`--table-mb must be a positive number; ${USAGE}`);
      options.tableBytes = mb * MB;
    } else return false;
    return true;
  });
  return options;
}

/* ------------------------------------------------------------------------------------------ */
/* Data sets                                                                                  */
/* ------------------------------------------------------------------------------------------ */

function repoPath(relative: string): string {
  return new URL(`../../${relative}`, import.meta.url).pathname;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function syntheticWal(dir: string): Promise<DataSet> {
  const path = `${dir}/wal-synthetic`;
  await Deno.writeFile(path, generateWalSegment());
  return {
    name: "wal-synthetic",
    description: "synthetic busy PG15 WAL segment (OLTP records, full-page images)",
    source: "scripts/bench/data.ts generateWalSegment()",
    path,
    bytes: WAL_SEGMENT_SIZE,
    runs: 5,
  };
}

/** The real segment from the fixtures, or null (with a printed reason) when it is missing. */
async function realWal(dir: string): Promise<DataSet | null> {
  let fixture = repoPath(REAL_WAL_FIXTURE);
  if (!(await exists(fixture))) {
    if (!(await exists(REAL_WAL_FALLBACK))) {
      console.log(`note: ${REAL_WAL_FIXTURE} not found (nor ${REAL_WAL_FALLBACK}): skipped`);
      return null;
    }
    console.log(`note: ${REAL_WAL_FIXTURE} not found; using the fallback ${REAL_WAL_FALLBACK}`);
    fixture = REAL_WAL_FALLBACK;
  }
  const bytes = decompressLzop(await Deno.readFile(fixture));
  const path = `${dir}/wal-pg15-real`;
  await Deno.writeFile(path, bytes);
  return {
    name: "wal-pg15-real",
    description: "real PG15 segment, switched early: mostly zeros",
    source: fixture.startsWith(REAL_WAL_FALLBACK) ? fixture : REAL_WAL_FIXTURE,
    path,
    bytes: bytes.length,
    runs: 5,
  };
}

async function table(dir: string, bytes: number): Promise<DataSet> {
  const path = `${dir}/table-heap`;
  const written = await writeChunks(path, tableChunks({ bytes, chunkBytes: 4 * 1024 * 1024 }));
  return {
    name: "table-heap",
    description: "heap-table file: 8 KiB pages of a typical orders table",
    source: "scripts/bench/data.ts tableChunks()",
    path,
    bytes: written,
    runs: 3,
  };
}

/* ------------------------------------------------------------------------------------------ */
/* Measurement                                                                                */
/* ------------------------------------------------------------------------------------------ */

function timingOf(bytes: number, seconds: number[]): Timing {
  const medianSeconds = median(seconds);
  return { bytes, seconds, medianSeconds, mbPerSecond: bytes / MB / medianSeconds };
}

/** Runs `action` once to warm up, then `runs` times, timing each run's wall clock. */
async function measure(
  bytes: number,
  runs: number,
  action: () => Promise<unknown> | unknown,
): Promise<Timing> {
  await action();
  const seconds: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await action();
    seconds.push((performance.now() - start) / 1000);
  }
  return timingOf(bytes, seconds);
}

/**
 * Like {@linkcode measure}, for actions that time their own critical section: `action` returns
 * the seconds to count (so setup inside it, such as copying blocks in, is excluded).
 */
async function measureSelfTimed(
  bytes: number,
  runs: number,
  action: () => number,
): Promise<Timing> {
  action();
  const seconds: number[] = [];
  for (let i = 0; i < runs; i++) {
    seconds.push(action());
    await Promise.resolve();
  }
  return timingOf(bytes, seconds);
}

/** A sink that only counts bytes. */
function countingSink(): { stream: WritableStream<Uint8Array>; bytes: () => number } {
  let total = 0;
  const stream = new WritableStream<Uint8Array>({
    write(chunk) {
      total += chunk.length;
    },
  });
  return { stream, bytes: () => total };
}

/** A sink that hashes what it receives with sha256. */
function hashingSink(): { stream: WritableStream<Uint8Array>; hex: () => string } {
  const hash = createHash("sha256");
  let digest = "";
  const stream = new WritableStream<Uint8Array>({
    write(chunk) {
      hash.update(chunk);
    },
    close() {
      digest = hash.digest("hex");
    },
  });
  return { stream, hex: () => digest };
}

async function fileSha256(path: string): Promise<string> {
  const sink = hashingSink();
  await (await Deno.open(path)).readable.pipeTo(sink.stream);
  return sink.hex();
}

async function fileSink(path: string): Promise<WritableStream<Uint8Array>> {
  return (await Deno.open(path, { write: true, create: true, truncate: true })).writable;
}

/* ------------------------------------------------------------------------------------------ */
/* Native lzop and our streams                                                                */
/* ------------------------------------------------------------------------------------------ */

/** Runs native lzop with stdout discarded; throws with its stderr if it fails. */
async function runLzop(args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(LZOP, { args, stdout: "null", stderr: "piped" })
    .output();
  if (code !== 0) {
    throw new Error(
      `${LZOP} ${args.join(" ")} failed (${code}): ${new TextDecoder().decode(stderr)}`,
    );
  }
}

/** Runs native lzop and reports whether it exited with status 0. */
async function lzopSucceeds(args: string[]): Promise<boolean> {
  const { code } = await new Deno.Command(LZOP, { args, stdout: "null", stderr: "null" }).output();
  return code === 0;
}

/** Ours as wal-push runs it: each 256 KiB block read straight into the codec's memory. */
async function oursCompress(input: string, sink: WritableStream<Uint8Array>): Promise<void> {
  await openLzopFileReadable(input).pipeTo(sink);
}

async function oursDecompress(input: string, sink: WritableStream<Uint8Array>): Promise<void> {
  await (await openFileReadable(input)).pipeThrough(new LzopDecompressStream()).pipeTo(sink);
}

/** Reads a file as a stream of `chunkSize` chunks (a fresh array each) instead of 64 KiB. */
async function readInChunks(path: string, chunkSize: number): Promise<ReadableStream<Uint8Array>> {
  const file = await Deno.open(path);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const chunk = new Uint8Array(chunkSize);
      const n = await file.read(chunk);
      if (n === null) {
        file.close();
        controller.close();
      } else {
        controller.enqueue(chunk.subarray(0, n));
      }
    },
    cancel() {
      file.close();
    },
  }, { highWaterMark: 0 });
}

/* ------------------------------------------------------------------------------------------ */
/* Layers: where our time goes                                                                */
/* ------------------------------------------------------------------------------------------ */

/** One block of an lzop file: where its data is and its two lengths. */
export interface LzopBlock {
  uncompressed: number;
  compressed: number;
  dataAt: number;
}

/** Lists the blocks of a single-stream lzop file (as lzop -1 writes it: no filter, no extra). */
export function lzopBlocks(file: Uint8Array): LzopBlock[] {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const version = view.getUint16(9);
  let at = version >= 0x0940 ? 17 : 15; // magic, versions, method (and level)
  const flags = view.getUint32(at);
  at += 4 + (flags & LzopFlag.H_FILTER ? 4 : 0) + 8 + (version >= 0x0940 ? 4 : 0);
  at += 1 + file[at] + 4; // name, header checksum
  if (flags & LzopFlag.H_EXTRA_FIELD) at += 4 + view.getUint32(at) + 4;
  const blocks: LzopBlock[] = [];
  for (;;) {
    const uncompressed = view.getUint32(at);
    if (uncompressed === 0) return blocks;
    const compressed = view.getUint32(at + 4);
    at += 8;
    if (flags & LzopFlag.ADLER32_D) at += 4;
    if (flags & LzopFlag.CRC32_D) at += 4;
    if (compressed < uncompressed) {
      if (flags & LzopFlag.ADLER32_C) at += 4;
      if (flags & LzopFlag.CRC32_C) at += 4;
    }
    blocks.push({ uncompressed, compressed, dataAt: at });
    at += compressed;
  }
}

/** Calls `each` for every 256 KiB block of `data` and sums the milliseconds `each` reports. */
function sumOverBlocks(data: Uint8Array, each: (block: Uint8Array) => number): number {
  let ms = 0;
  for (let at = 0; at < data.length; at += LZO_BLOCK_MAX) {
    ms += each(data.subarray(at, at + LZO_BLOCK_MAX));
  }
  return ms / 1000;
}

/** Milliseconds `work` takes. */
function clock(work: () => unknown): number {
  const start = performance.now();
  work();
  return performance.now() - start;
}

/** Seconds `lzo1x_compress` takes over all blocks, each copied into wasm memory first. */
function timeWasmCompress(codec: LzoCodec, data: Uint8Array): number {
  return sumOverBlocks(data, (block) => {
    codec.input.set(block);
    return clock(() => codec.compressInput(block.length));
  });
}

/** Seconds Adler-32 takes over all blocks, each copied into wasm memory first. */
function timeWasmAdler32(codec: LzoCodec, data: Uint8Array): number {
  return sumOverBlocks(data, (block) => {
    codec.input.set(block);
    return clock(() => codec.adler32Input(block.length));
  });
}

/** Seconds `lzo1x_decompress` takes over the compressed blocks, each in wasm memory first. */
function timeWasmDecompress(codec: LzoCodec, file: Uint8Array, blocks: LzopBlock[]): number {
  let ms = 0;
  for (const block of blocks) {
    if (block.compressed === block.uncompressed) continue; // stored: nothing to decode
    codec.input.set(file.subarray(block.dataAt, block.dataAt + block.compressed));
    ms += clock(() => codec.decompressInput(block.compressed, block.uncompressed));
  }
  return ms / 1000;
}

/**
 * The native LZO library lzop itself uses (liblzo2), called through FFI on the same blocks: the
 * native codec without lzop's I/O, to compare codec with codec.
 */
interface NativeLzo {
  compress(data: Uint8Array): number;
  decompress(file: Uint8Array, blocks: LzopBlock[]): number;
}

const LIBLZO2 = "liblzo2.so.2";
/** How the native reference rows' names start. */
const NATIVE_ROW_PREFIX = "native liblzo2";

/** Opens liblzo2, or returns why it cannot. */
function openNativeLzo(): NativeLzo | string {
  let lib;
  try {
    lib = Deno.dlopen(
      LIBLZO2,
      {
        __lzo_init_v2: { parameters: Array<"i32">(10).fill("i32"), result: "i32" },
        lzo1x_1_compress: {
          parameters: ["buffer", "usize", "buffer", "buffer", "buffer"],
          result: "i32",
        },
        lzo1x_decompress_safe: {
          parameters: ["buffer", "usize", "buffer", "buffer", "buffer"],
          result: "i32",
        },
      } as const,
    );
  } catch (error) {
    return `cannot load ${LIBLZO2}: ${(error as Error).message}`;
  }
  const f = lib.symbols;
  // lzo_init(): LZO 2.10 and the sizes of short, int, long, u32, lzo_uint, dict entry, char *,
  // void * and lzo_callback_t on x86-64/aarch64 Linux.
  if (f.__lzo_init_v2(0x20a0, 2, 4, 8, 4, 8, 8, 8, 8, 48) !== 0) return "lzo_init() failed";
  const out = new Uint8Array(LZO_BLOCK_MAX * 2);
  const work = new Uint8Array(1 << 20);
  const length = new BigUint64Array(1);
  return {
    compress: (data) =>
      sumOverBlocks(
        data,
        (block) => clock(() => f.lzo1x_1_compress(block, BigInt(block.length), out, length, work)),
      ),
    decompress: (file, blocks) => {
      let ms = 0;
      for (const block of blocks) {
        if (block.compressed === block.uncompressed) continue;
        const input = file.subarray(block.dataAt, block.dataAt + block.compressed);
        length[0] = BigInt(out.length);
        ms += clock(() => f.lzo1x_decompress_safe(input, BigInt(input.length), out, length, null));
        if (Number(length[0]) !== block.uncompressed) throw new Error("liblzo2 decode mismatch");
      }
      return ms / 1000;
    },
  };
}

/** Fills the codec's input from `file` (up to one block); returns the bytes read. */
async function readBlock(file: Deno.FsFile, codec: LzoCodec, sync: boolean): Promise<number> {
  let fill = 0;
  while (fill < LZO_BLOCK_MAX) {
    const view = codec.input.subarray(fill, LZO_BLOCK_MAX);
    const n = sync ? file.readSync(view) : await file.read(view);
    if (n === null) break;
    fill += n;
  }
  return fill;
}

/**
 * What the compress path costs with no streams and no copies: each 256 KiB block read from the
 * file straight into wasm memory, then Adler-32 and compression (the output stays in wasm
 * memory). A lower bound for the plumbing, to judge API changes by.
 */
async function compressFileDirect(path: string, codec: LzoCodec, sync: boolean): Promise<void> {
  using file = await Deno.open(path);
  for (;;) {
    const n = await readBlock(file, codec, sync);
    if (n === 0) return;
    codec.adler32Input(n);
    codec.compressInput(n);
    if (n < LZO_BLOCK_MAX) return;
  }
}

/** Feeds `data` to a sync encoder in file-stream-sized chunks. */
function encodeInMemory(data: Uint8Array): number {
  return clock(() => {
    const encoder = new LzopEncoder();
    for (let at = 0; at < data.length; at += FILE_STREAM_CHUNK) {
      encoder.push(data.subarray(at, at + FILE_STREAM_CHUNK));
    }
    encoder.finish();
  }) / 1000;
}

/** Feeds an lzop file to a sync decoder in file-stream-sized chunks. */
function decodeInMemory(file: Uint8Array): number {
  return clock(() => {
    const decoder = new LzopDecoder();
    for (let at = 0; at < file.length; at += FILE_STREAM_CHUNK) {
      decoder.push(file.subarray(at, at + FILE_STREAM_CHUNK));
    }
    decoder.finish();
  }) / 1000;
}

/** Feeds in-memory data to a stream in file-stream-sized chunks, to a counting sink. */
async function streamInMemory(
  data: Uint8Array,
  transform: TransformStream<Uint8Array, Uint8Array>,
): Promise<void> {
  const chunks = function* () {
    for (let at = 0; at < data.length; at += FILE_STREAM_CHUNK) {
      yield data.subarray(at, at + FILE_STREAM_CHUNK);
    }
  };
  await ReadableStream.from(chunks()).pipeThrough(transform).pipeTo(countingSink().stream);
}

/** What the layers are measured on. */
interface LayerInputs {
  set: DataSet;
  /** The common lzop input of the decompress measurements, and its blocks. */
  lzoPath: string;
  /** Our full-stream timings, to express each layer as a share of them. */
  streams: { compress: Timing; decompress: Timing };
  native: NativeLzo | null;
}

/** Times each layer of our implementation alone, and the native codec for reference. */
async function measureLayers(inputs: LayerInputs): Promise<LayerResult[]> {
  const { set, lzoPath, streams, native } = inputs;
  const data = await Deno.readFile(set.path);
  const lzo = await Deno.readFile(lzoPath);
  const blocks = lzopBlocks(lzo);
  const decoded = blocks.reduce(
    (n, b) => n + (b.compressed < b.uncompressed ? b.uncompressed : 0),
    0,
  );
  const codec = new LzoCodec();
  const { bytes, runs } = set;
  const results: LayerResult[] = [];
  /** Records a layer; `reference` rows (native, read-only) get no share of our stream time. */
  const add = (direction: LayerResult["direction"], name: string, timing: Timing) => {
    const reference = direction === "read" || name.startsWith(NATIVE_ROW_PREFIX);
    const stream = reference ? null : streams[direction];
    const share = stream
      ? (timing.medianSeconds * bytes / timing.bytes) / stream.medianSeconds
      : null;
    results.push({ direction, name, timing, shareOfStream: share });
  };
  const fileThrough = async (path: string, transform: TransformStream<Uint8Array, Uint8Array>) => {
    await (await readInChunks(path, BIG_READ)).pipeThrough(transform).pipeTo(countingSink().stream);
  };

  add(
    "read",
    "file readable (64 KiB chunks) -> sink, no codec",
    await measure(bytes, runs, async () => {
      await (await Deno.open(set.path)).readable.pipeTo(countingSink().stream);
    }),
  );
  add(
    "read",
    "file read in 1 MiB chunks -> sink, no codec",
    await measure(bytes, runs, async () => {
      await (await readInChunks(set.path, BIG_READ)).pipeTo(countingSink().stream);
    }),
  );

  if (native) {
    add(
      "compress",
      `${NATIVE_ROW_PREFIX} lzo1x_1_compress only (FFI, same blocks)`,
      await measureSelfTimed(bytes, runs, () => native.compress(data)),
    );
  }
  add(
    "compress",
    "wasm lzo1x_compress only, 256 KiB blocks in wasm memory",
    await measureSelfTimed(bytes, runs, () => timeWasmCompress(codec, data)),
  );
  add(
    "compress",
    "wasm adler32 only, 256 KiB blocks in wasm memory",
    await measureSelfTimed(bytes, runs, () => timeWasmAdler32(codec, data)),
  );
  add(
    "compress",
    "LzopEncoder push/finish, in memory, 64 KiB chunks",
    await measureSelfTimed(bytes, runs, () => encodeInMemory(data)),
  );
  add(
    "compress",
    "LzopCompressStream, in memory -> sink, 64 KiB chunks",
    await measure(bytes, runs, () => streamInMemory(data, new LzopCompressStream())),
  );
  add(
    "compress",
    "LzopCompressStream, file read in 1 MiB chunks -> sink",
    await measure(bytes, runs, () => fileThrough(set.path, new LzopCompressStream())),
  );
  add(
    "compress",
    "no streams: file.read() 256 KiB into wasm memory, adler32 + compress",
    await measure(bytes, runs, () => compressFileDirect(set.path, codec, false)),
  );
  add(
    "compress",
    "no streams: file.readSync() 256 KiB into wasm memory, adler32 + compress",
    await measure(bytes, runs, () => compressFileDirect(set.path, codec, true)),
  );

  const blockCount = `${blocks.length} blocks`;
  if (native) {
    add(
      "decompress",
      `${NATIVE_ROW_PREFIX} lzo1x_decompress_safe only (FFI, ${blockCount})`,
      await measureSelfTimed(decoded, runs, () => native.decompress(lzo, blocks)),
    );
  }
  add(
    "decompress",
    `wasm lzo1x_decompress only, blocks in wasm memory (${blockCount})`,
    await measureSelfTimed(decoded, runs, () => timeWasmDecompress(codec, lzo, blocks)),
  );
  add(
    "decompress",
    "LzopDecoder push/finish, in memory, 64 KiB chunks",
    await measureSelfTimed(bytes, runs, () => decodeInMemory(lzo)),
  );
  add(
    "decompress",
    "LzopDecompressStream, in memory -> sink, 64 KiB chunks",
    await measure(bytes, runs, () => streamInMemory(lzo, new LzopDecompressStream())),
  );
  add(
    "decompress",
    "LzopDecompressStream, file read in 1 MiB chunks -> sink",
    await measure(bytes, runs, () => fileThrough(lzoPath, new LzopDecompressStream())),
  );
  return results;
}

/* ------------------------------------------------------------------------------------------ */
/* One data set                                                                               */
/* ------------------------------------------------------------------------------------------ */

function ratio(ours: number, native: number | null): number | null {
  return native === null ? null : ours / native;
}

/** What every data set's measurement needs. */
interface BenchContext {
  /** The temporary directory. */
  dir: string;
  /** Whether the native lzop program runs. */
  lzop: boolean;
  /** liblzo2 through FFI, for the codec-only reference rows, or null. */
  nativeCodec: NativeLzo | null;
}

async function benchDataSet(set: DataSet, context: BenchContext): Promise<DataSetResult> {
  const { dir, lzop: native } = context;
  const nativeLzo = `${dir}/${set.name}.lzop1.lzo`;
  const oursLzo = `${dir}/${set.name}.ours.lzo`;
  const inputSha256 = await fileSha256(set.path);

  // Compress. The outputs are written once, then the timed runs discard them.
  let nativeCompress: Timing | null = null;
  if (native) {
    await runLzop(["-1", "-f", "-o", nativeLzo, set.path]);
    nativeCompress = await measure(set.bytes, set.runs, () => runLzop(["-1", "-c", set.path]));
  }
  await oursCompress(set.path, await fileSink(oursLzo));
  const oursCompressTiming = await measure(
    set.bytes,
    set.runs,
    () => oursCompress(set.path, countingSink().stream),
  );

  // Decompress: both read the same bytes, lzop -1's output (ours when there is no lzop).
  const commonLzo = native ? nativeLzo : oursLzo;
  let nativeDecompress: Timing | null = null;
  if (native) {
    nativeDecompress = await measure(set.bytes, set.runs, () => runLzop(["-dc", commonLzo]));
  }
  const nativeThroughOurs = hashingSink();
  await oursDecompress(commonLzo, nativeThroughOurs.stream);
  const oursDecompressTiming = await measure(
    set.bytes,
    set.runs,
    () => oursDecompress(commonLzo, countingSink().stream),
  );

  // Round trip of our own output, and whether native lzop accepts it.
  const oursThroughOurs = hashingSink();
  await oursDecompress(oursLzo, oursThroughOurs.stream);
  const nativeAcceptsOurs = native ? await lzopSucceeds(["-t", oursLzo]) : null;
  const roundTrip: RoundTripResult = {
    inputSha256,
    oursThroughOursSha256: oursThroughOurs.hex(),
    nativeThroughOursSha256: native ? nativeThroughOurs.hex() : null,
    nativeAcceptsOurs,
    ok: oursThroughOurs.hex() === inputSha256 &&
      (!native || (nativeThroughOurs.hex() === inputSha256 && nativeAcceptsOurs === true)),
  };

  const nativeSize = native ? (await Deno.stat(nativeLzo)).size : null;
  const oursSize = (await Deno.stat(oursLzo)).size;
  const layers = await measureLayers({
    set,
    lzoPath: commonLzo,
    streams: { compress: oursCompressTiming, decompress: oursDecompressTiming },
    native: context.nativeCodec,
  });
  return {
    name: set.name,
    description: set.description,
    source: set.source,
    bytes: set.bytes,
    runs: set.runs,
    compress: {
      native: nativeCompress,
      ours: oursCompressTiming,
      oursOverNative: ratio(oursCompressTiming.mbPerSecond, nativeCompress?.mbPerSecond ?? null),
    },
    decompress: {
      native: nativeDecompress,
      ours: oursDecompressTiming,
      oursOverNative: ratio(
        oursDecompressTiming.mbPerSecond,
        nativeDecompress?.mbPerSecond ?? null,
      ),
    },
    sizes: {
      input: set.bytes,
      native: nativeSize,
      ours: oursSize,
      oursOverNative: ratio(oursSize, nativeSize),
    },
    roundTrip,
    layers,
  };
}

/* ------------------------------------------------------------------------------------------ */
/* Report                                                                                     */
/* ------------------------------------------------------------------------------------------ */

const fixed = (n: number | null, digits: number) => n === null ? "-" : n.toFixed(digits);
const mbps = (t: Timing | null) => t === null ? "-" : t.mbPerSecond.toFixed(1);
const megabytes = (n: number) => `${(n / MB).toFixed(1)} MB`;
const spread = (t: Timing | null) => {
  if (t === null) return "-";
  const rates = t.seconds.map((s) => t.bytes / MB / s);
  return `${Math.min(...rates).toFixed(0)}-${Math.max(...rates).toFixed(0)}`;
};

function throughputTable(results: DataSetResult[]): string {
  const rows: string[][] = [];
  for (const r of results) {
    for (
      const [direction, d] of [["compress", r.compress], ["decompress", r.decompress]] as const
    ) {
      const speed = d.oursOverNative;
      rows.push([
        r.name,
        megabytes(r.bytes),
        direction,
        mbps(d.native),
        spread(d.native),
        mbps(d.ours),
        spread(d.ours),
        fixed(speed, 2),
        verdict(speed === null ? null : speed >= SPEED_TARGET),
      ]);
    }
  }
  return formatTable(
    [
      "data set",
      ">size",
      "direction",
      ">lzop MB/s",
      ">lzop range",
      ">ours MB/s",
      ">ours range",
      ">ours/lzop",
      `>>=${SPEED_TARGET}`,
    ],
    rows,
  );
}

function sizeTable(results: DataSetResult[]): string {
  const rows = results.map((r) => {
    const s = r.sizes;
    return [
      r.name,
      String(s.input),
      s.native === null ? "-" : String(s.native),
      String(s.ours),
      fixed(s.oursOverNative, 4),
      verdict(s.oursOverNative === null ? null : s.oursOverNative <= SIZE_TARGET),
      s.native === null ? "-" : `${(s.input / s.native).toFixed(2)}x`,
      `${(s.input / s.ours).toFixed(2)}x`,
      r.roundTrip.ok ? "ok (sha256)" : "FAILED",
    ];
  });
  return formatTable(
    [
      "data set",
      ">input bytes",
      ">lzop -1 bytes",
      ">ours bytes",
      ">ours/lzop",
      `><=${SIZE_TARGET}`,
      ">lzop ratio",
      ">ours ratio",
      "round trip",
    ],
    rows,
  );
}

const STREAM_ROW_NAMES = {
  compress: "openLzopFileReadable (file blocks read into wasm) -> sink = ours above",
  decompress: "LzopDecompressStream, openFileReadable (1 MiB) -> sink = ours above",
};

function layerRow(set: string, layer: LayerResult): string[] {
  const share = layer.shareOfStream === null ? "-" : `${(layer.shareOfStream * 100).toFixed(0)}%`;
  return [set, layer.direction, layer.name, mbps(layer.timing), share];
}

function layerTable(results: DataSetResult[]): string {
  const rows: string[][] = [];
  for (const r of results) {
    for (const direction of ["read", "compress", "decompress"] as const) {
      for (const l of r.layers) if (l.direction === direction) rows.push(layerRow(r.name, l));
      if (direction === "read") continue;
      const ours = r[direction].ours;
      rows.push([r.name, direction, STREAM_ROW_NAMES[direction], mbps(ours), "100%"]);
    }
  }
  return formatTable(["data set", "direction", "layer", ">MB/s", ">of stream time"], rows);
}

function header(report: BenchReport): string {
  const m = report.machine;
  return [
    "wal-d codec benchmark: lzop container, LZO1X-1 - ours (wasm + web streams) vs native lzop",
    `machine  ${m.cpuModel}, nproc ${m.nproc}, ${m.os}`,
    `runtime  Deno ${m.deno}, V8 ${m.v8}`,
    `native   ${m.lzop === null ? `SKIPPED: ${report.nativeSkipped}` : `${LZOP}: ${m.lzop}`}`,
    `         codec-only reference rows: ${report.nativeCodec}`,
    "method   1 warm-up, then the median of 5 runs (16 MiB) or 3 runs (200 MB); wall clock;",
    "         MB = 10^6 bytes of uncompressed data. lzop: process spawn to exit, output to",
    "         /dev/null. ours: in-process; compress: openLzopFileReadable -> counting sink;",
    "         decompress: openFileReadable (1 MiB reads) -> LzopDecompressStream -> counting sink.",
    m.lzop === null
      ? "         Our decompressor reads our own output (no lzop to produce `lzop -1` output)."
      : "         Both decompressors read the same `lzop -1` output.",
  ].join("\n");
}

/** The whole report as printed. */
export function formatReport(report: BenchReport): string {
  const results = report.dataSets;
  return [
    header(report),
    "",
    "Throughput (MB/s, median; range = slowest-fastest measured run)",
    throughputTable(results),
    "",
    "Compressed size (ours vs lzop -1) and round trip",
    sizeTable(results),
    "",
    "Where our time goes: each layer alone, on the same bytes. Codec-only rows time just the",
    "codec call per 256 KiB block (copying blocks into wasm memory excluded); wasm decompress",
    "counts only blocks lzop stored compressed. 'of stream time' = the layer's time / the time",
    "of our full file stream in that direction (the last row of each group).",
    layerTable(results),
  ].join("\n");
}

/* ------------------------------------------------------------------------------------------ */
/* Main                                                                                       */
/* ------------------------------------------------------------------------------------------ */

/** Runs the whole benchmark and returns its report. */
export async function runBenchmark(options: BenchOptions): Promise<BenchReport> {
  const probe = await probeLzop();
  const native = "version" in probe;
  if (!native) console.log(`native lzop skipped: ${probe.skipped}; reporting ours only`);
  const codec = openNativeLzo();
  const nativeCodec = typeof codec === "string" ? null : codec;
  const report: BenchReport = {
    startedAt: new Date().toISOString(),
    machine: await describeMachine(native ? probe.version : null),
    nativeSkipped: native ? null : probe.skipped,
    nativeCodec: typeof codec === "string" ? `skipped: ${codec}` : `${LIBLZO2} via FFI`,
    targets: { speedOursOverNative: SPEED_TARGET, sizeOursOverNative: SIZE_TARGET },
    dataSets: [],
  };
  const dir = await Deno.makeTempDir({ prefix: "wal-d-bench-codec-" });
  try {
    const makers = [
      () => syntheticWal(dir),
      () => realWal(dir),
      () => table(dir, options.tableBytes),
    ];
    for (const make of makers) {
      const started = performance.now();
      const set = await make();
      if (set === null) continue;
      const generated = ((performance.now() - started) / 1000).toFixed(2);
      console.error(`${set.name}: ${megabytes(set.bytes)} ready in ${generated} s, measuring...`);
      report.dataSets.push(await benchDataSet(set, { dir, lzop: native, nativeCodec }));
      await Deno.remove(set.path);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return report;
}

if (import.meta.main) {
  const options = parseOptions(Deno.args);
  const report = await runBenchmark(options);
  console.log(formatReport(report));
  if (options.jsonPath) {
    await Deno.writeTextFile(options.jsonPath, JSON.stringify(report, null, 2) + "\n");
    console.log(`\nresults written to ${options.jsonPath}`);
  }
  if (report.dataSets.some((r) => !r.roundTrip.ok)) Deno.exit(1);
}
