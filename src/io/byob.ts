/**
 * Byte streams read into the reader's own buffers.
 *
 * @module
 */

/**
 * A BYOB reader of `stream` if it is a byte stream (`type: "bytes"`), else null: the caller then
 * reads its chunks with a default reader.
 */
export function byobReader(stream: ReadableStream<Uint8Array>): ReadableStreamBYOBReader | null {
  try {
    return stream.getReader({ mode: "byob" });
  } catch (error) {
    if (error instanceof TypeError) return null; // not a byte stream
    throw error;
  }
}
