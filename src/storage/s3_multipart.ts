/**
 * Streaming S3 uploads from a small fixed pool of reused part buffers, with the plain multipart
 * calls (`CreateMultipartUpload`, `UploadPart`, `CompleteMultipartUpload`,
 * `AbortMultipartUpload`).
 *
 * Why not `@aws-sdk/lib-storage`'s `Upload`: it copies every part into a freshly allocated
 * buffer, and those buffers become garbage faster than the collector reclaims them; a 512 MiB
 * upload peaked at 247 MiB RSS through it, against a target of 128 MiB. Reusing
 * {@linkcode S3_PART_BUFFERS} buffers keeps the part data a fixed
 * {@linkcode S3_PART_SIZE} × {@linkcode S3_PART_BUFFERS} whatever the object size, at the same
 * speed.
 *
 * A buffer handed to `UploadPart` is not written again until that call has resolved (the request
 * body is then fully sent); a buffer whose call failed is never reused (the upload is over).
 *
 * A byte stream (`type: "bytes"`) is read with a BYOB reader straight into the part buffers: its
 * producer writes where the part is sent from, and no chunk is allocated per read. Other streams
 * are copied chunk by chunk; their chunks are the producer's garbage, which V8 lets grow to about
 * 64 MiB before it collects it (its external-memory soft limit).
 *
 * @module
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  type PutObjectCommandInput,
  type S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { byobReader } from "../io/byob.ts";

/** Multipart part size: S3's 10,000 parts then allow objects up to 80 GB. */
export const S3_PART_SIZE = 8 * 1024 * 1024;
/** Parts uploaded concurrently by one upload. */
export const S3_PARTS_IN_FLIGHT = 3;
/** Part buffers of one upload: those in flight, plus the one being filled. */
export const S3_PART_BUFFERS = S3_PARTS_IN_FLIGHT + 1;
/** How long the best-effort `AbortMultipartUpload` after a failure may take. */
const ABORT_TIMEOUT_MS = 10_000;

/** Tuning of {@linkcode putStream} (tests use small parts). */
export interface MultipartTuning {
  partSize: number;
  partsInFlight: number;
}

const DEFAULT_TUNING: MultipartTuning = {
  partSize: S3_PART_SIZE,
  partsInFlight: S3_PARTS_IN_FLIGHT,
};

/**
 * Uploads `stream` to `params`' bucket and key: one PutObject when it ends within the first part,
 * else a multipart upload of `partSize` parts, `partsInFlight` at a time. On any failure or when
 * `signal` aborts, the multipart upload is aborted (best effort) and the error (or the signal's
 * reason) is thrown as the SDK or the stream gave it; nothing is left under the key.
 */
export async function putStream(
  client: S3Client,
  params: PutObjectCommandInput,
  stream: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
  tuning: MultipartTuning = DEFAULT_TUNING,
): Promise<void> {
  const { partSize, partsInFlight } = tuning;
  const poolSize = partsInFlight + 1;
  const { Bucket, Key } = params;
  // Aborts the calls in flight on a failure of any of them, or of the stream, or of `signal`.
  const halt = new AbortController();
  const callSignal = signal === undefined ? halt.signal : AbortSignal.any([halt.signal, signal]);
  const byob = byobReader(stream);
  const plain = byob === null ? stream.getReader() : null;
  const reader = byob ?? plain!;
  const onAbort = () => {
    halt.abort(signal?.reason);
    reader.cancel(signal?.reason).catch(() => {});
  };
  signal?.addEventListener("abort", onAbort, { once: true });

  const free: Uint8Array[] = [];
  let allocated = 0;
  const running = new Set<Promise<void>>();
  const etags: string[] = [];
  let failure: { error: unknown } | null = null;
  let uploadId: string | undefined;

  const check = () => {
    signal?.throwIfAborted();
    if (failure !== null) throw failure.error;
  };

  /** A free part buffer: a reused one, a new one while the pool is not full, else the next freed. */
  const takeBuffer = async (): Promise<Uint8Array> => {
    for (;;) {
      check();
      const buffer = free.pop();
      if (buffer !== undefined) return buffer;
      if (allocated < poolSize || running.size === 0) {
        allocated++;
        return new Uint8Array(partSize);
      }
      await Promise.race(running); // part tasks never reject
    }
  };

  const sendPart = async (buffer: Uint8Array, length: number) => {
    while (running.size >= partsInFlight) {
      await Promise.race(running);
      check();
    }
    check();
    if (uploadId === undefined) {
      const created = await client.send(
        new CreateMultipartUploadCommand({ ...params }),
        { abortSignal: callSignal },
      );
      if (!created.UploadId) throw new Error("CreateMultipartUpload returned no UploadId");
      uploadId = created.UploadId;
    }
    const partNumber = etags.length + 1;
    etags.push("");
    const body = buffer.subarray(0, length);
    const task = (async () => {
      try {
        const output = await client.send(
          new UploadPartCommand({
            Bucket,
            Key,
            UploadId: uploadId,
            PartNumber: partNumber,
            Body: body,
            ContentLength: length,
          }),
          { abortSignal: callSignal },
        );
        if (!output.ETag) throw new Error(`UploadPart ${partNumber} returned no ETag`);
        etags[partNumber - 1] = output.ETag;
        free.push(buffer); // only now: the call has resolved, its body is sent
      } catch (error) {
        // After a halt, a part's failure is only its abort: the cause is reported instead.
        if (!halt.signal.aborted) {
          failure = { error };
          halt.abort(error);
        }
      }
    })();
    running.add(task);
    task.then(() => running.delete(task));
  };

  try {
    let buffer = await takeBuffer();
    let filled = 0;
    while (byob !== null) {
      if (filled < partSize) {
        const { value, done } = await byob.read(buffer.subarray(filled));
        check(); // a cancelled read (abort) ends as `done`
        if (value === undefined) break;
        buffer = new Uint8Array(value.buffer); // the read transferred it; same memory
        if (done) break;
        filled += value.length;
        continue;
      }
      // A full buffer is a part only if more bytes follow: read them into the next buffer.
      const { value, done } = await byob.read(await takeBuffer());
      check();
      if (value === undefined) break;
      if (done) {
        free.push(new Uint8Array(value.buffer));
        break;
      }
      await sendPart(buffer, filled);
      buffer = new Uint8Array(value.buffer);
      filled = value.length;
    }
    while (plain !== null) {
      const { value, done } = await plain.read();
      check(); // a cancelled read (abort) ends as `done`
      if (done) break;
      let at = 0;
      while (at < value.length) {
        if (filled === partSize) {
          // More bytes after a full buffer: it is a part, not the whole object.
          await sendPart(buffer, filled);
          buffer = await takeBuffer();
          filled = 0;
        }
        const n = Math.min(partSize - filled, value.length - at);
        buffer.set(value.subarray(at, at + n), filled);
        filled += n;
        at += n;
      }
    }
    if (uploadId === undefined && running.size === 0) {
      await client.send(
        new PutObjectCommand({
          ...params,
          Body: buffer.subarray(0, filled),
          ContentLength: filled,
        }),
        { abortSignal: callSignal },
      );
      return;
    }
    if (filled > 0) await sendPart(buffer, filled);
    while (running.size > 0) await Promise.race(running);
    check();
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket,
        Key,
        UploadId: uploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
      { abortSignal: callSignal },
    );
    uploadId = undefined;
  } catch (error) {
    halt.abort(error);
    reader.cancel(error).catch(() => {});
    await Promise.allSettled(running);
    if (uploadId !== undefined) {
      await client.send(
        new AbortMultipartUploadCommand({ Bucket, Key, UploadId: uploadId }),
        { abortSignal: AbortSignal.timeout(ABORT_TIMEOUT_MS) },
      ).catch(() => {});
    }
    // A failed part's error rather than the aborts it caused (`failure` is set by the part tasks).
    const first = failure as { error: unknown } | null;
    throw signal?.aborted ? signal.reason : first !== null ? first.error : error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}
