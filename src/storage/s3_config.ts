/**
 * The S3 settings of a configuration, checked and resolved without loading the AWS SDK: the
 * `WALE_S3_ENDPOINT` form, the region, the credentials and the object options (spec §1.5, §9).
 * Every problem is a {@linkcode UserError} with WAL-E's message and a hint.
 *
 * @module
 */
import { UserError } from "../cli/errors.ts";
import type { Config, StoragePrefix } from "../config/types.ts";

/** The form `WALE_S3_ENDPOINT` must have. */
export const S3_ENDPOINT_FORM = "<http|https>+<virtualhost|path|subdomain>://host[:port]";

/** A parsed `WALE_S3_ENDPOINT`. */
export interface S3Endpoint {
  readonly protocol: "http" | "https";
  /**
   * `path`: `host/bucket/key`; `subdomain`: `bucket.host/key`; `virtualhost`: the bucket name IS
   * the host name (a CNAME), `bucket[:port]/key`, and the endpoint's host is not used.
   */
  readonly format: "virtualhost" | "path" | "subdomain";
  readonly host: string;
  readonly port: number | null;
}

function malformed(value: string, problem: string): UserError {
  return new UserError(
    `WALE_S3_ENDPOINT ${problem}: expected the form ${S3_ENDPOINT_FORM}, got "${
      redactUserinfo(value)
    }"`,
    { hint: "An example of a valid value is https+path://s3.example.com:9000." },
  );
}

function redactUserinfo(value: string): string {
  return value.replace(/^([^:/?#]*:\/\/)[^/?#]*@/, "$1<userinfo>@");
}

/**
 * Parses `WALE_S3_ENDPOINT` as WAL-E does (`calling_format._s3connection_opts_from_uri`), but
 * strictly: the whole scheme must be one of the six forms, and userinfo, a path, a query or a
 * fragment are refused. Throws a one-line {@linkcode UserError} naming the variable and the form.
 */
export function parseS3Endpoint(value: string): S3Endpoint {
  const match = /^([^:/?#]*):\/\/([^/?#]*)(.*)$/s.exec(value.trim());
  if (match === null) throw malformed(value, "is not a URL");
  const [, scheme, authority, rest] = match;
  const schemeMatch = /^(http|https)\+(virtualhost|path|subdomain)$/.exec(scheme.toLowerCase());
  if (schemeMatch === null) throw malformed(value, "URI scheme is invalid");
  if (authority.includes("@")) throw malformed(value, "does not support username or password");
  if (rest.startsWith("?")) throw malformed(value, "does not support query parameters");
  if (rest.startsWith("#")) throw malformed(value, "does not support a fragment");
  if (rest !== "") throw malformed(value, "does not support a URI path");
  const hostPort = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(authority);
  if (hostPort === null) throw malformed(value, "has no valid host");
  const port = hostPort[2] === undefined ? null : Number(hostPort[2]);
  if (port !== null && (port < 1 || port > 65535)) throw malformed(value, "has an invalid port");
  return {
    protocol: schemeMatch[1] as "http" | "https",
    format: schemeMatch[2] as "virtualhost" | "path" | "subdomain",
    host: hostPort[1].toLowerCase(),
    port,
  };
}

/**
 * WAL-E's `_is_mostly_subdomain_compatible`: bucket names that can be a DNS label of
 * `s3.amazonaws.com`. Other names (and names with dots, whose TLS certificates would not
 * match) are addressed path-style.
 */
export function isSubdomainCompatible(bucket: string): boolean {
  return bucket.toLowerCase() === bucket && bucket.length >= 3 && bucket.length <= 63 &&
    !bucket.includes("_") && !bucket.includes("..") && !bucket.includes("-.") &&
    !bucket.includes(".-") && !/^[-.]|[-.]$/.test(bucket) && !isIpv4Like(bucket);
}

function isIpv4Like(name: string): boolean {
  const parts = name.split(".");
  return parts.length === 4 && parts.every((part) => /^\s*[+-]?\d+\s*$/.test(part));
}

/** Static credentials from the environment (and `-k`). */
export interface S3StaticCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** Server-side encryption of uploads. */
export type S3Encryption =
  | { readonly mode: "AES256" }
  | { readonly mode: "aws:kms"; readonly kmsKeyId: string | null };

/** Everything the S3 backend needs, checked. */
export interface S3StoreSettings {
  readonly bucket: string;
  /** The prefix's path: `""` or ends with `/`; physical name = pathPrefix + key. */
  readonly pathPrefix: string;
  /** The signing region (`AWS_REGION`, else `us-east-1` with an endpoint). */
  readonly region: string;
  /** Whether `AWS_REGION` was set (WAL-E warns when it is set with an endpoint). */
  readonly regionSet: boolean;
  readonly endpoint: S3Endpoint | null;
  /** Static keys, or `"instance-profile"` for the instance metadata service. */
  readonly credentials: S3StaticCredentials | "instance-profile";
  readonly storageClass: string;
  readonly encryption: S3Encryption;
}

/** Environment variable of the encryption extension: `AES256` (default) or `aws:kms`. */
export const S3_SSE_ENV_VAR = "WALE_S3_SSE";
/** Environment variable of the KMS key of `WALE_S3_SSE=aws:kms` (default: the bucket's key). */
export const S3_SSE_KMS_ID_ENV_VAR = "WALE_S3_SSE_KMS_ID";

function nonEmpty(value: string | null | undefined): string | null {
  return value === null || value === undefined || value === "" ? null : value;
}

/** Checks and resolves the S3 settings of `config` for the s3 prefix `prefix`. */
export function resolveS3Settings(config: Config, prefix: StoragePrefix): S3StoreSettings {
  const endpointValue = nonEmpty(config.s3.endpoint);
  const region = nonEmpty(config.s3.region);
  if (endpointValue === null && region === null) {
    throw new UserError("must define one of AWS_REGION or WALE_S3_ENDPOINT", {
      hint: "AWS users will want to set AWS_REGION, those using alternative S3-compatible " +
        "systems will want to use WALE_S3_ENDPOINT.",
    });
  }
  const endpoint = endpointValue === null ? null : parseS3Endpoint(endpointValue);
  if (prefix.storeName === "") {
    throw new UserError(`the S3 prefix "${prefix.url}" names no bucket`, {
      hint: "Write the prefix as s3://bucket/path.",
    });
  }

  let credentials: S3StoreSettings["credentials"];
  if (config.s3.instanceProfile) {
    credentials = "instance-profile";
  } else {
    const accessKeyId = nonEmpty(config.s3.accessKeyId);
    if (accessKeyId === null) {
      throw new UserError("AWS Access Key credential is required but not provided", {
        hint: 'Pass "--aws-access-key-id" or set the environment variable "AWS_ACCESS_KEY_ID".',
      });
    }
    const secret = config.secrets.awsSecretAccessKey?.reveal() ?? "";
    if (secret === "") {
      throw new UserError("AWS Secret Key credential is required but not provided", {
        hint: "Set the environment variable AWS_SECRET_ACCESS_KEY.",
      });
    }
    const token = nonEmpty(config.secrets.awsSecurityToken?.reveal()) ??
      nonEmpty(config.secrets.awsSessionToken?.reveal());
    credentials = token === null
      ? { accessKeyId, secretAccessKey: secret }
      : { accessKeyId, secretAccessKey: secret, sessionToken: token };
  }

  const sse = nonEmpty(config.environment.get(S3_SSE_ENV_VAR)?.trim()) ?? "AES256";
  let encryption: S3Encryption;
  if (sse.toUpperCase() === "AES256") {
    encryption = { mode: "AES256" };
  } else if (sse.toLowerCase() === "aws:kms") {
    encryption = {
      mode: "aws:kms",
      kmsKeyId: nonEmpty(config.environment.get(S3_SSE_KMS_ID_ENV_VAR)?.trim()),
    };
  } else {
    throw new UserError(`${S3_SSE_ENV_VAR} must be AES256 or aws:kms, got "${sse}"`, {
      hint: `Unset ${S3_SSE_ENV_VAR} for WAL-E's AES256, or set it to aws:kms (with ` +
        `${S3_SSE_KMS_ID_ENV_VAR} naming the key, else the bucket's default KMS key is used).`,
    });
  }

  return {
    bucket: prefix.storeName,
    pathPrefix: prefix.pathPrefix,
    region: region ?? "us-east-1",
    regionSet: region !== null,
    endpoint,
    credentials,
    storageClass: nonEmpty(config.s3.storageClass) ?? "STANDARD",
    encryption,
  };
}
