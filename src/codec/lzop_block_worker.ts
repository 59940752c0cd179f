/**
 * Worker side of {@linkcode LzopBlockPool}: compresses single lzop blocks with its own codec.
 *
 * Protocol: the main thread sends `{ id, input, length, output }` with both buffers transferred;
 * the worker writes the encoded block (12-byte block header, then the LZO1X data, or the input
 * stored as is when it does not shrink) into `output` and sends `{ id, input, output, size }`
 * back, both buffers transferred again, or `{ id, input, output, error }`. No buffer is allocated
 * per block on either side.
 *
 * @module
 */

/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />

import { encodeLzopBlock } from "./lzop_block.ts";
import { LzoCodec } from "./lzo.ts";
import { errorMessage } from "../io/error_message.ts";

/** A block to compress. */
export interface BlockRequest {
  id: number;
  input: ArrayBuffer;
  length: number;
  output: ArrayBuffer;
}

/** The answer: the same buffers, and the encoded size or an error message. */
export interface BlockReply {
  id: number;
  input: ArrayBuffer;
  output: ArrayBuffer;
  size?: number;
  error?: string;
}

const codec = new LzoCodec();

self.onmessage = (event: MessageEvent<BlockRequest>) => {
  const { id, input, length, output } = event.data;
  let reply: BlockReply;
  try {
    const size = encodeLzopBlock(codec, new Uint8Array(input, 0, length), new Uint8Array(output));
    reply = { id, input, output, size };
  } catch (error) {
    reply = { id, input, output, error: errorMessage(error) };
  }
  self.postMessage(reply, [input, output]);
};
