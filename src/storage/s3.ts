/**
 * The S3 backend (`s3://bucket/path`): AWS S3 and S3-compatible stores through
 * `@aws-sdk/client-s3`. Loaded only when the prefix is s3 (src/storage/mod.ts).
 *
 * - Physical name of a key = the prefix's path + key, no leading slash (spec §1.4).
 * - Puts send `x-amz-server-side-encryption: AES256` and `x-amz-storage-class` as WAL-E does
 *   (spec §1.5), or `aws:kms` with `WALE_S3_SSE=aws:kms` (extension).
 * - Stream uploads are multipart from a fixed pool of reused part buffers
 *   ({@linkcode S3_PART_SIZE} each, {@linkcode S3_PARTS_IN_FLIGHT} in flight; see
 *   s3_multipart.ts); a body that fits in one part is sent as one PUT. Byte bodies are one PUT.
 *   `@aws-sdk/lib-storage`'s `Upload`, which the project's stack named, is not used: it copies
 *   every part into a fresh buffer, and that garbage took a 512 MiB upload to 247 MiB peak RSS
 *   against the 128 MiB target (see s3_multipart.ts).
 * - The SDK makes one attempt per call (`maxAttempts: 1`): src/storage/policy.ts retries, with
 *   deadlines. Checksums are computed and validated only where an operation requires them
 *   (`WHEN_REQUIRED`): many S3-compatible stores reject the SDK's default flexible checksums.
 *
 * @module
 */
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type PutObjectCommandInput,
  S3Client,
  type S3ClientConfig,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import type { Config, StoragePrefix } from "../config/types.ts";
import { relayStream } from "../io/byob.ts";
import { toStorageError } from "./policy.ts";
import { putStream, S3_PART_SIZE, S3_PARTS_IN_FLIGHT } from "./s3_multipart.ts";
import { isSubdomainCompatible, resolveS3Settings, type S3StoreSettings } from "./s3_config.ts";
import type {
  CallOptions,
  DeleteResult,
  GetOptions,
  ListOptions,
  ListPage,
  ObjectInfo,
  ObjectStore,
  PutBody,
  PutOptions,
} from "./types.ts";
import { StorageError } from "./types.ts";

export { S3_PART_SIZE, S3_PARTS_IN_FLIGHT };
/** Largest page S3 returns, and the largest delete batch it accepts. */
const S3_BATCH = 1000;

/** Error codes retrying cannot cure, with the hint to give. */
function permanentHint(code: string, settings: S3StoreSettings): string | null {
  const bucket = `"${settings.bucket}"`;
  switch (code) {
    case "AccessDenied":
    case "Forbidden":
    case "AllAccessDisabled":
    case "AccountProblem":
      return `The credentials may not perform this operation on bucket ${bucket}. Grant ` +
        "s3:GetObject, s3:PutObject, s3:ListBucket and s3:DeleteObject on it, or use other keys.";
    case "InvalidAccessKeyId":
      return "The S3 service does not know this access key id. Check AWS_ACCESS_KEY_ID (or -k) " +
        "and WALE_S3_ENDPOINT.";
    case "SignatureDoesNotMatch":
      return "The secret key does not match the access key id. Check AWS_SECRET_ACCESS_KEY.";
    case "ExpiredToken":
    case "TokenRefreshRequired":
    case "InvalidToken":
      return "The session token has expired or is invalid. Renew the temporary credentials " +
        "(AWS_SECURITY_TOKEN or AWS_SESSION_TOKEN with their keys), or use " +
        "--aws-instance-profile, whose credentials are refreshed.";
    case "NoSuchBucket":
      return `The bucket ${bucket} does not exist${
        settings.endpoint === null ? "" : ` at ${settings.endpoint.host}`
      }. Create it, or correct the bucket of the prefix.`;
    case "PermanentRedirect":
    case "MovedPermanently":
    case "AuthorizationHeaderMalformed":
    case "IllegalLocationConstraintException":
      return `The bucket ${bucket} is not in region "${settings.region}". Set AWS_REGION ` +
        "to the bucket's region.";
    case "InvalidBucketName":
      return `${bucket} is not a valid bucket name. Correct the bucket of the prefix.`;
    case "InvalidObjectState":
      return "The object is archived (GLACIER or DEEP_ARCHIVE storage class) and must be " +
        "restored before it can be read.";
    case "InvalidStorageClass":
      return "Set WALE_S3_STORAGE_CLASS to a storage class the service accepts (e.g. STANDARD).";
    default:
      return null;
  }
}

const TRANSIENT_CODES = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "RequestThrottled",
  "RequestThrottledException",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "BandwidthLimitExceeded",
  "RequestTimeout",
  "RequestTimeoutException",
  "RequestTimeTooSkewed",
  "InternalError",
  "ServiceUnavailable",
  "PriorRequestNotComplete",
  "TimeoutError",
]);

/** An SDK error as a classified {@linkcode StorageError}. */
export function s3Error(error: unknown, context: string, settings: S3StoreSettings): StorageError {
  if (error instanceof StorageError) return error;
  if (error instanceof S3ServiceException) {
    const code = error.name;
    const status = error.$metadata?.httpStatusCode ?? 0;
    const detail = `${context}: ${code}${status ? ` (HTTP ${status})` : ""}${
      error.message && error.message !== code && error.message !== "UnknownError"
        ? `: ${error.message}`
        : ""
    }`;
    const hint = permanentHint(code, settings) ??
      (status === 403 ? permanentHint("AccessDenied", settings) : null) ??
      (status === 301 ? permanentHint("PermanentRedirect", settings) : null);
    if (hint !== null) return new StorageError("permanent", detail, { hint, cause: error });
    if (TRANSIENT_CODES.has(code) || status >= 500 || status === 429 || status === 408) {
      return new StorageError("transient", detail, { cause: error });
    }
    if (status >= 400 && status < 500) {
      return new StorageError("permanent", detail, { cause: error });
    }
  }
  const name = (error as { name?: unknown } | null)?.name;
  const errno = (error as { code?: unknown } | null)?.code;
  if (errno === "ENOTFOUND" || errno === "EAI_AGAIN") {
    // Usually a wrong AWS_REGION or WALE_S3_ENDPOINT, sometimes a DNS hiccup: retried, bounded.
    const where = settings.endpoint === null
      ? `AWS_REGION ("${settings.region}")`
      : `WALE_S3_ENDPOINT (host "${settings.endpoint.host}")`;
    return new StorageError("transient", `${context}: ${(error as Error).message}`, {
      hint: `The S3 host name cannot be resolved. Check ${where} and the DNS configuration.`,
      cause: error,
    });
  }
  if (name === "CredentialsProviderError") {
    return new StorageError("transient", `${context}: ${(error as Error).message}`, {
      hint: settings.credentials === "instance-profile"
        ? "The instance metadata service gave no credentials. Check that the instance has an " +
          "IAM role and that its metadata service is reachable, or use keys instead of " +
          "--aws-instance-profile."
        : undefined,
      cause: error,
    });
  }
  if (typeof name === "string" && TRANSIENT_CODES.has(name)) {
    return new StorageError("transient", `${context}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return toStorageError(error, context);
}

function isNotFound(error: unknown): boolean {
  if (!(error instanceof S3ServiceException)) return false;
  return error.name === "NoSuchKey" || error.name === "NotFound" ||
    (error.$metadata?.httpStatusCode === 404 && error.name !== "NoSuchBucket");
}

/**
 * Credentials from the EC2 instance metadata service, loaded only when used. The SDK caches
 * them and asks again before they expire, so a long backup outlives any one set.
 */
function instanceProfileCredentials(): NonNullable<S3ClientConfig["credentials"]> {
  type Provider = Awaited<
    ReturnType<typeof import("@smithy/credential-provider-imds").fromInstanceMetadata>
  >;
  let provider: Promise<Provider> | null = null;
  return async () => {
    provider ??= import("@smithy/credential-provider-imds").then(({ fromInstanceMetadata }) =>
      fromInstanceMetadata({ timeout: 5000, maxRetries: 3 })
    );
    return await (await provider)();
  };
}

/**
 * Adds `Content-MD5` to DeleteObjects requests. S3 requires an integrity header on them; the SDK
 * sends only a CRC32 checksum, which older MinIO, Ceph RGW and other S3-compatible stores
 * reject ("Missing required header for this request: Content-Md5").
 */
function addDeleteContentMd5(client: S3Client): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { body?: unknown; headers?: Record<string, string> };
      if (
        context.commandName === "DeleteObjectsCommand" && request.headers !== undefined &&
        (typeof request.body === "string" || request.body instanceof Uint8Array)
      ) {
        request.headers["content-md5"] = createHash("md5").update(request.body).digest("base64");
      }
      return await next(args);
    },
    { step: "build", name: "walDDeleteContentMd5", override: true },
  );
}

/** The URL of `host` at the endpoint's protocol and port. */
function endpointUrl(endpoint: NonNullable<S3StoreSettings["endpoint"]>, host: string): string {
  return `${endpoint.protocol}://${host}${endpoint.port === null ? "" : `:${endpoint.port}`}`;
}

/** The client configuration of `settings`. */
export function s3ClientConfig(settings: S3StoreSettings): S3ClientConfig {
  const config: S3ClientConfig = {
    region: settings.region,
    maxAttempts: 1,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    followRegionRedirects: false,
    expectContinueHeader: false,
    credentials: settings.credentials === "instance-profile"
      ? instanceProfileCredentials()
      : { ...settings.credentials },
  };
  const endpoint = settings.endpoint;
  if (endpoint !== null) {
    if (endpoint.format === "virtualhost") {
      // The bucket name is the host: every request names the bucket as a URL (see #bucket).
      config.bucketEndpoint = true;
      config.endpoint = endpointUrl(endpoint, settings.bucket);
    } else {
      config.endpoint = endpointUrl(endpoint, endpoint.host);
      config.forcePathStyle = endpoint.format === "path";
    }
  } else {
    // WAL-E: dotted or non-DNS bucket names are addressed path-style (TLS certificates).
    config.forcePathStyle = !isSubdomainCompatible(settings.bucket) ||
      settings.bucket.includes(".");
  }
  return config;
}

/** The S3 store of one `s3://bucket/path` prefix. */
export class S3Store implements ObjectStore {
  readonly scheme = "s3";
  readonly settings: S3StoreSettings;
  readonly client: S3Client;
  readonly #bucket: string;

  constructor(settings: S3StoreSettings, client?: S3Client) {
    this.settings = settings;
    this.client = client ?? new S3Client(s3ClientConfig(settings));
    addDeleteContentMd5(this.client);
    const endpoint = settings.endpoint;
    this.#bucket = endpoint?.format === "virtualhost"
      ? endpointUrl(endpoint, settings.bucket)
      : settings.bucket;
  }

  /** The store of an s3 prefix; throws a UserError for missing or malformed settings. */
  static fromConfig(config: Config, prefix: StoragePrefix): S3Store {
    return new S3Store(resolveS3Settings(config, prefix));
  }

  /** Closes the client's connections. */
  close(): void {
    this.client.destroy();
  }

  url(key: string): string {
    return `s3://${this.settings.bucket}/${this.settings.pathPrefix}${key}`;
  }

  #name(key: string): string {
    return this.settings.pathPrefix + key.replace(/^\/+/, "");
  }

  #objectParams(key: string, options: PutOptions): PutObjectCommandInput {
    const params: PutObjectCommandInput = {
      Bucket: this.#bucket,
      Key: this.#name(key),
      StorageClass: this.settings.storageClass as PutObjectCommandInput["StorageClass"],
    };
    const encryption = this.settings.encryption;
    params.ServerSideEncryption = encryption.mode;
    if (encryption.mode === "aws:kms" && encryption.kmsKeyId !== null) {
      params.SSEKMSKeyId = encryption.kmsKeyId;
    }
    if (options.contentType !== undefined) params.ContentType = options.contentType;
    return params;
  }

  async put(key: string, body: PutBody, options: PutOptions = {}): Promise<void> {
    const context = `put "${this.url(key)}"`;
    const params = this.#objectParams(key, options);
    const signal = options.signal;
    try {
      signal?.throwIfAborted();
      if (body instanceof Uint8Array) {
        await this.client.send(
          new PutObjectCommand({ ...params, Body: body, ContentLength: body.byteLength }),
          { abortSignal: signal },
        );
        return;
      }
      const stream = typeof body === "function" ? body() : body;
      await putStream(this.client, params, stream, signal);
      signal?.throwIfAborted();
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw s3Error(error, context, this.settings);
    }
  }

  async get(key: string, options: GetOptions = {}): Promise<ReadableStream<Uint8Array> | null> {
    const context = `get "${this.url(key)}"`;
    const signal = options.signal;
    let output;
    try {
      output = await this.client.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: this.#name(key) }),
        { abortSignal: signal },
      );
    } catch (error) {
      if (isNotFound(error)) return null;
      if (signal?.aborted) throw signal.reason;
      throw s3Error(error, context, this.settings);
    }
    const body = output.Body;
    if (body === undefined) return new ReadableStream({ start: (c) => c.close() });
    const settings = this.settings;
    const onAbort = () => {
      relay.abort(signal?.reason);
      (body as { destroy?: (e?: unknown) => void }).destroy?.();
    };
    const done = () => signal?.removeEventListener("abort", onAbort);
    const relay = relayStream(body.transformToWebStream() as ReadableStream<Uint8Array>, {
      async read(next) {
        try {
          const result = await next();
          if (result.done) done();
          return result;
        } catch (error) {
          done();
          throw signal?.aborted ? signal.reason : s3Error(error, `${context} (reading)`, settings);
        }
      },
      onCancel: done,
    });
    signal?.addEventListener("abort", onAbort, { once: true });
    return relay.stream;
  }

  async head(key: string, options: CallOptions = {}): Promise<ObjectInfo | null> {
    try {
      const output = await this.client.send(
        new HeadObjectCommand({ Bucket: this.#bucket, Key: this.#name(key) }),
        { abortSignal: options.signal },
      );
      return {
        key,
        size: output.ContentLength ?? 0,
        lastModified: output.LastModified ?? new Date(0),
      };
    } catch (error) {
      if (isNotFound(error)) return null;
      if (options.signal?.aborted) throw options.signal.reason;
      throw s3Error(error, `head "${this.url(key)}"`, this.settings);
    }
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    const base = this.settings.pathPrefix;
    const pageSize = Math.max(1, Math.min(options.pageSize ?? S3_BATCH, S3_BATCH));
    try {
      const output = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.#bucket,
          Prefix: base + prefix,
          Delimiter: options.delimiter,
          ContinuationToken: options.cursor,
          MaxKeys: pageSize,
        }),
        { abortSignal: options.signal },
      );
      const strip = (name: string) => name.startsWith(base) ? name.slice(base.length) : name;
      const page: ListPage = {
        objects: (output.Contents ?? []).filter((o) => o.Key !== undefined).map((o) => ({
          key: strip(o.Key!),
          size: o.Size ?? 0,
          lastModified: o.LastModified ?? new Date(0),
        })),
        prefixes: (output.CommonPrefixes ?? []).filter((p) => p.Prefix !== undefined).map((p) =>
          strip(p.Prefix!)
        ),
      };
      if (output.IsTruncated && output.NextContinuationToken) {
        page.cursor = output.NextContinuationToken;
      }
      return page;
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw s3Error(error, `list "${this.url(prefix)}"`, this.settings);
    }
  }

  async delete(keys: readonly string[], options: CallOptions = {}): Promise<DeleteResult> {
    const result: DeleteResult = { deleted: [], errors: [] };
    for (let at = 0; at < keys.length; at += S3_BATCH) {
      const batch = keys.slice(at, at + S3_BATCH);
      const byName = new Map(batch.map((key) => [this.#name(key), key]));
      let output;
      try {
        output = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.#bucket,
            Delete: { Objects: [...byName.keys()].map((Key) => ({ Key })), Quiet: true },
          }),
          { abortSignal: options.signal },
        );
      } catch (error) {
        if (options.signal?.aborted) throw options.signal.reason;
        const context = `delete ${batch.length} objects under "${this.url("")}"`;
        throw s3Error(error, context, this.settings);
      }
      const failed = new Set<string>();
      for (const entry of output.Errors ?? []) {
        const key = byName.get(entry.Key ?? "") ?? entry.Key ?? "";
        failed.add(key);
        result.errors.push({
          key,
          message: `${entry.Code ?? "Error"}${entry.Message ? `: ${entry.Message}` : ""}`,
        });
      }
      for (const key of batch) if (!failed.has(key)) result.deleted.push(key);
    }
    return result;
  }
}
