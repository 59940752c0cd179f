/**
 * The typed configuration every command receives (built by resolve.ts from the global options and
 * the effective environment). Values that are absent or empty in the environment are `null`.
 */
import type { EffectiveEnvironment } from "./environment.ts";
import type { Secret } from "./secret.ts";

/** Storage backends, named by their URL scheme (spec §1.1). */
export const STORAGE_SCHEMES = ["s3", "wabs", "swift", "gs", "file"] as const;

/** A storage URL scheme. */
export type StorageScheme = typeof STORAGE_SCHEMES[number];

/** A parsed storage prefix URL (spec §1.1). */
export interface StoragePrefix {
  /** Backend, from the URL scheme (lower-cased), not from the variable that supplied the URL. */
  readonly scheme: StorageScheme;
  /** The URL exactly as configured. */
  readonly url: string;
  /** The URL's netloc: S3/GCS bucket, WABS/Swift container. Ignored for `file` (spec §1.4). */
  readonly storeName: string;
  /** URL path without leading slashes, plus `/` if non-empty; percent escapes NOT decoded. */
  readonly pathPrefix: string;
}

/** Where the prefix came from: a flag (`--s3-prefix`) or a variable (`WALE_S3_PREFIX`). */
export type PrefixSource =
  | "--file-prefix"
  | "--gs-prefix"
  | "--s3-prefix"
  | "--wabs-prefix"
  | "WALE_FILE_PREFIX"
  | "WALE_GS_PREFIX"
  | "WALE_S3_PREFIX"
  | "WALE_SWIFT_PREFIX"
  | "WALE_WABS_PREFIX";

/** S3 settings. Validation (endpoint format, region, credentials present) is the backend's job. */
export interface S3Settings {
  /** `-k/--aws-access-key-id`, else `AWS_ACCESS_KEY_ID`. */
  readonly accessKeyId: string | null;
  /** `--aws-instance-profile`, or `AWS_INSTANCE_PROFILE` truthy (`1`/`true`, any case). */
  readonly instanceProfile: boolean;
  /** `AWS_REGION`. */
  readonly region: string | null;
  /** `WALE_S3_ENDPOINT`, unvalidated (`<http|https>+<virtualhost|path|subdomain>://host[:port]`). */
  readonly endpoint: string | null;
  /** `WALE_S3_STORAGE_CLASS`, default `STANDARD`, unvalidated. */
  readonly storageClass: string;
}

/** Azure Blob Storage settings. */
export interface WabsSettings {
  /** `-a/--wabs-account-name`, else `WABS_ACCOUNT_NAME`. */
  readonly accountName: string | null;
}

/** Google Cloud Storage settings. */
export interface GsSettings {
  /** `GOOGLE_APPLICATION_CREDENTIALS` (a file path, not a secret). */
  readonly applicationCredentials: string | null;
}

/** OpenStack Swift settings (`SWIFT_*`, spec §9). */
export interface SwiftSettings {
  readonly authUrl: string | null;
  readonly user: string | null;
  readonly tenant: string | null;
  readonly region: string | null;
  /** `SWIFT_ENDPOINT_TYPE`, default `publicURL`. */
  readonly endpointType: string;
  /** `SWIFT_AUTH_VERSION`, default `2`. */
  readonly authVersion: string;
  readonly domainId: string | null;
  readonly domainName: string | null;
  readonly tenantId: string | null;
  readonly userId: string | null;
  readonly userDomainId: string | null;
  readonly userDomainName: string | null;
  readonly projectId: string | null;
  readonly projectName: string | null;
  readonly projectDomainId: string | null;
  readonly projectDomainName: string | null;
}

/**
 * Secrets, accepted only from the environment (spec §9). Each is a {@link Secret} whose printed
 * forms are `<redacted>`; call `.reveal()` where the value is really needed.
 */
export interface SecretSettings {
  /** `AWS_SECRET_ACCESS_KEY`. */
  readonly awsSecretAccessKey: Secret | null;
  /** `AWS_SECURITY_TOKEN` (WAL-E's STS token variable). */
  readonly awsSecurityToken: Secret | null;
  /** `AWS_SESSION_TOKEN` (not read by WAL-E; carried for the S3 backend to decide). */
  readonly awsSessionToken: Secret | null;
  /** `WABS_ACCESS_KEY`. */
  readonly wabsAccessKey: Secret | null;
  /** `WABS_SAS_TOKEN`. */
  readonly wabsSasToken: Secret | null;
  /** `SWIFT_PASSWORD`. */
  readonly swiftPassword: Secret | null;
}

/** Log levels, as WAL-E (Python logging) names them. */
export type LogLevelName = "DEBUG" | "INFO" | "WARNING" | "ERROR" | "CRITICAL";

/** A log destination token of `WALE_LOG_DESTINATION`. */
export type LogDestination = "stderr" | "syslog";

/** Logging settings (spec §10). */
export interface LogSettings {
  /** INFO, or WARNING with `--terse`. */
  readonly level: LogLevelName;
  /** `--log-format`, default `text`. */
  readonly format: "text" | "json";
  /** From `WALE_LOG_DESTINATION` (default `stderr,syslog`); unknown tokens are ignored. */
  readonly destinations: readonly LogDestination[];
  /** `WALE_SYSLOG_FACILITY` as given, default `user`; validated when syslog is set up. */
  readonly syslogFacility: string;
  /** `WALD_SYSLOG_SOCKET`: use this socket instead of /dev/log etc. (tests, odd systems). */
  readonly syslogSocketOverride: string | null;
}

/** The resolved configuration. Safe to print: `toJSON` and inspect never show secret values. */
export interface Config {
  /** The storage prefix, or `null` when none is configured (see `requirePrefix`). */
  readonly prefix: StoragePrefix | null;
  /** Which flag or variable supplied `prefix`. */
  readonly prefixSource: PrefixSource | null;
  readonly s3: S3Settings;
  readonly wabs: WabsSettings;
  readonly gs: GsSettings;
  readonly swift: SwiftSettings;
  readonly secrets: SecretSettings;
  /** `--gpg-key-id`, else `WALE_GPG_KEY_ID`; `null` = no encryption. */
  readonly gpgKeyId: string | null;
  /**
   * `WALE_RETRIES`: the maximum number of attempts per storage operation; 1 means no retry, ≤ 0 no
   * limit on the count (the time budget still holds). 100 (WAL-E's default) when unset, which the
   * storage layer ignores: it then makes its own default number of attempts.
   */
  readonly retries: number;
  /** `TMPDIR` (spool location); `null` = system default. */
  readonly tmpDir: string | null;
  readonly log: LogSettings;
  /** The effective environment (process env + envdir), e.g. for child processes. */
  readonly environment: EffectiveEnvironment;
  /** A JSON form with secrets redacted and environment values omitted. */
  toJSON(): Record<string, unknown>;
}
