/** Cross-checks with the genuine lzop program: it reads our output, we read its output. */
import assert from "node:assert/strict";
import { compressLzop, decompressLzop, LzopCompressStream } from "../../src/codec/lzop.ts";
import { LZO_BLOCK_MAX } from "../../src/codec/lzo.ts";
import {
  concatBytes,
  randomBytes,
  sha256Hex,
  textBytes,
  throughStream,
  walLikeBytes,
} from "./_data.ts";

function findLzop(): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/lzop`).isFile) return `${dir}/lzop`;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

const lzop = findLzop();
if (!lzop) {
  console.warn("SKIP lzop cross-checks: the lzop program is not installed (apt-get install lzop)");
}

async function run(args: string[], stdin?: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command(lzop!, {
    args,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Collect the output while writing the input, or a full stdout pipe stalls both sides.
  const output = child.output();
  if (stdin) {
    const writer = child.stdin.getWriter();
    await writer.write(stdin);
    await writer.close();
  }
  const { code, stdout, stderr } = await output;
  assert.equal(code, 0, `lzop ${args.join(" ")}: ${new TextDecoder().decode(stderr)}`);
  return stdout;
}

const inputs: [string, Uint8Array][] = [
  ["empty", new Uint8Array(0)],
  ["one byte", new Uint8Array([65])],
  ["zeros 16 MiB", new Uint8Array(16 * 1024 * 1024)],
  ["text", textBytes(3 * LZO_BLOCK_MAX + 17)],
  ["random", randomBytes(LZO_BLOCK_MAX + 1)],
  ["wal-like", walLikeBytes(16 * 1024 * 1024)],
];

Deno.test({
  name: "lzop native: genuine lzop tests and decompresses our output to the exact bytes",
  ignore: !lzop,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "wald-lzop-" });
    try {
      for (const [name, data] of inputs) {
        const file = `${dir}/ours.lzo`;
        await Deno.writeFile(file, compressLzop(data, { mode: 0o100600, mtimeSeconds: 1e9 }));
        await run(["-t", "-q", file]);
        const back = await run(["-dc", file]);
        assert.equal(back.length, data.length, name);
        assert.equal(await sha256Hex(back), await sha256Hex(data), name);
      }
      // The streaming writer's output, too.
      const data = walLikeBytes(2 * 1024 * 1024 + 5);
      const ours = await throughStream([data], new LzopCompressStream());
      assert.deepEqual(await run(["-dc"], ours), data);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "lzop native: we read every variant lzop writes (levels, --crc32, -F, filters, names, pipes)",
  ignore: !lzop,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "wald-lzop-" });
    try {
      for (const [name, data] of inputs) {
        const file = `${dir}/input.bin`;
        await Deno.writeFile(file, data);
        const variants: string[][] = [
          ["-1", "-c", file],
          ["-9", "-c", file],
          ["--crc32", "-c", file],
          ["-c", file],
          ["-c", "--no-name", file],
        ];
        for (const args of variants) {
          const compressed = await run(args);
          assert.deepEqual(decompressLzop(compressed), data, `${name}: lzop ${args.join(" ")}`);
        }
        const piped = await run(["-c"], data);
        assert.deepEqual(decompressLzop(piped), data, `${name}: piped`);
      }
      // Concatenated lzop files, as `cat a.lzo b.lzo` makes, which lzop -d also accepts.
      const a = await run(["-c"], textBytes(1000, 1));
      const b = await run(["-9", "-c"], textBytes(2000, 2));
      assert.deepEqual(
        decompressLzop(concatBytes([a, b])),
        concatBytes([textBytes(1000, 1), textBytes(2000, 2)]),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
