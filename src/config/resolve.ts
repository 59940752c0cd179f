/**
 * Builds the {@link Config} from the global options and the effective environment (spec §1.1, §9).
 * CLI values win over the environment for the access key id, account name, prefix and GPG key id.
 */
import { UsageError, UserError } from "../cli/errors.ts";
import type { GlobalOptions } from "../cli/types.ts";
import type { EffectiveEnvironment } from "./environment.ts";
import { parseStoragePrefix, PREFIX_ENV_VARS, selectPrefixUrl } from "./prefix.ts";
import { Secret } from "./secret.ts";
import type {
  Config,
  LogDestination,
  LogSettings,
  SecretSettings,
  StoragePrefix,
  SwiftSettings,
} from "./types.ts";

/**
 * `Config.retries` when `WALE_RETRIES` is unset: WAL-E's default number of attempts. wal-d's storage
 * layer does not use it: without the variable it makes its own default number of attempts
 * (src/storage/mod.ts, src/storage/policy.ts).
 */
export const DEFAULT_RETRIES = 100;
/** Default of `WALE_LOG_DESTINATION`. */
export const DEFAULT_LOG_DESTINATIONS = "stderr,syslog";

/** The subset of {@link GlobalOptions} the configuration depends on. */
export type ConfigOptions = Pick<
  GlobalOptions,
  | "awsAccessKeyId"
  | "awsInstanceProfile"
  | "wabsAccountName"
  | "s3Prefix"
  | "wabsPrefix"
  | "gsPrefix"
  | "filePrefix"
  | "gpgKeyId"
  | "terse"
  | "logFormat"
>;

function nonEmpty(value: string | undefined): string | null {
  return value === undefined || value === "" ? null : value;
}

/**
 * `AWS_INSTANCE_PROFILE` truthiness (spec §9): `1`/`true` (any case) on; unset, empty, `0` and
 * `false` (any case) off; anything else is a {@link UsageError} (exit 2, as in WAL-E).
 */
export function parseInstanceProfileEnv(value: string | undefined): boolean {
  if (value === undefined) return false;
  const lowered = value.toLowerCase();
  if (lowered === "1" || lowered === "true") return true;
  if (lowered === "" || lowered === "0" || lowered === "false") return false;
  throw new UsageError(
    `AWS_INSTANCE_PROFILE must be 1 or true (on) or empty, 0 or false (off); got "${value}"`,
  );
}

/** `WALE_RETRIES`: an integer, default {@link DEFAULT_RETRIES}; empty counts as unset. */
export function parseRetriesEnv(value: string | undefined): number {
  if (value === undefined || value.trim() === "") return DEFAULT_RETRIES;
  if (!/^\s*[+-]?[0-9]+\s*$/.test(value)) {
    throw new UserError(`WALE_RETRIES must be an integer, got "${value}"`, {
      hint: "Set WALE_RETRIES to the maximum number of attempts per storage operation (1 = no " +
        "retry, 0 = no limit on the count; WALD_RETRY_BUDGET_SECONDS bounds the time either " +
        "way), or unset it for wal-d's default.",
    });
  }
  return Number.parseInt(value.trim(), 10);
}

/** `WALE_LOG_DESTINATION` tokens: comma-separated, not trimmed, unknown tokens ignored (spec §10). */
export function parseLogDestinations(value: string | undefined): LogDestination[] {
  const raw = value === undefined || value === "" ? DEFAULT_LOG_DESTINATIONS : value;
  const destinations: LogDestination[] = [];
  for (const token of raw.split(",")) {
    if ((token === "stderr" || token === "syslog") && !destinations.includes(token)) {
      destinations.push(token);
    }
  }
  return destinations;
}

/** Logging settings; needs no prefix, so the runner builds the logger from it first. */
export function resolveLogSettings(
  options: Pick<GlobalOptions, "terse" | "logFormat">,
  env: EffectiveEnvironment,
): LogSettings {
  return {
    level: options.terse ? "WARNING" : "INFO",
    format: options.logFormat ?? "text",
    destinations: parseLogDestinations(env.get("WALE_LOG_DESTINATION")),
    syslogFacility: env.get("WALE_SYSLOG_FACILITY") ?? "user",
    syslogSocketOverride: env.getNonEmpty("WALD_SYSLOG_SOCKET"),
  };
}

function secretFrom(env: EffectiveEnvironment, name: string): Secret | null {
  const value = env.getNonEmpty(name);
  return value === null ? null : new Secret(value);
}

function resolveSecrets(env: EffectiveEnvironment): SecretSettings {
  return {
    awsSecretAccessKey: secretFrom(env, "AWS_SECRET_ACCESS_KEY"),
    awsSecurityToken: secretFrom(env, "AWS_SECURITY_TOKEN"),
    awsSessionToken: secretFrom(env, "AWS_SESSION_TOKEN"),
    wabsAccessKey: secretFrom(env, "WABS_ACCESS_KEY"),
    wabsSasToken: secretFrom(env, "WABS_SAS_TOKEN"),
    swiftPassword: secretFrom(env, "SWIFT_PASSWORD"),
  };
}

function resolveSwift(env: EffectiveEnvironment): SwiftSettings {
  const get = (name: string) => env.getNonEmpty(name);
  return {
    authUrl: get("SWIFT_AUTHURL"),
    user: get("SWIFT_USER"),
    tenant: get("SWIFT_TENANT"),
    region: get("SWIFT_REGION"),
    endpointType: get("SWIFT_ENDPOINT_TYPE") ?? "publicURL",
    authVersion: get("SWIFT_AUTH_VERSION") ?? "2",
    domainId: get("SWIFT_DOMAIN_ID"),
    domainName: get("SWIFT_DOMAIN_NAME"),
    tenantId: get("SWIFT_TENANT_ID"),
    userId: get("SWIFT_USER_ID"),
    userDomainId: get("SWIFT_USER_DOMAIN_ID"),
    userDomainName: get("SWIFT_USER_DOMAIN_NAME"),
    projectId: get("SWIFT_PROJECT_ID"),
    projectName: get("SWIFT_PROJECT_NAME"),
    projectDomainId: get("SWIFT_PROJECT_DOMAIN_ID"),
    projectDomainName: get("SWIFT_PROJECT_DOMAIN_NAME"),
  };
}

/**
 * Resolves the configuration. Throws {@link UserError} (exit 1) for an unsupported prefix scheme or
 * a bad `WALE_RETRIES`, {@link UsageError} (exit 2) for a bad `AWS_INSTANCE_PROFILE`.
 * A missing prefix is not an error here; see {@link requirePrefix}.
 */
export function resolveConfig(options: ConfigOptions, env: EffectiveEnvironment): Config {
  const selected = selectPrefixUrl(options, (name) => env.get(name));
  const prefix = selected === null ? null : parseStoragePrefix(selected.url, selected.source);
  const instanceProfileFromEnv = parseInstanceProfileEnv(env.get("AWS_INSTANCE_PROFILE"));
  const fields: Omit<Config, "toJSON"> = {
    prefix,
    prefixSource: selected?.source ?? null,
    s3: {
      accessKeyId: nonEmpty(options.awsAccessKeyId) ?? env.getNonEmpty("AWS_ACCESS_KEY_ID"),
      instanceProfile: options.awsInstanceProfile || instanceProfileFromEnv,
      region: env.getNonEmpty("AWS_REGION"),
      endpoint: env.getNonEmpty("WALE_S3_ENDPOINT"),
      storageClass: env.getNonEmpty("WALE_S3_STORAGE_CLASS") ?? "STANDARD",
    },
    wabs: {
      accountName: nonEmpty(options.wabsAccountName) ?? env.getNonEmpty("WABS_ACCOUNT_NAME"),
    },
    gs: { applicationCredentials: env.getNonEmpty("GOOGLE_APPLICATION_CREDENTIALS") },
    swift: resolveSwift(env),
    secrets: resolveSecrets(env),
    gpgKeyId: nonEmpty(options.gpgKeyId) ?? env.getNonEmpty("WALE_GPG_KEY_ID"),
    retries: parseRetriesEnv(env.get("WALE_RETRIES")),
    tmpDir: env.getNonEmpty("TMPDIR"),
    log: resolveLogSettings(options, env),
    environment: env,
  };
  return {
    ...fields,
    // Secrets serialise as "<redacted>" and the environment as its variable names only.
    toJSON: (): Record<string, unknown> => JSON.parse(JSON.stringify(fields)),
  };
}

/** Hint naming every way to configure a prefix. */
export const NO_PREFIX_HINT = "Either set one of the --file-prefix, --gs-prefix, --s3-prefix or " +
  `--wabs-prefix options, or define one of the ${PREFIX_ENV_VARS.join(", ")} ` +
  "environment variables (for example in an --env-dir).";

/** The prefix, or a {@link UserError} `no storage prefix defined` (exit 1). */
export function requirePrefix(config: Pick<Config, "prefix">): StoragePrefix {
  if (config.prefix === null) {
    throw new UserError("no storage prefix defined", { hint: NO_PREFIX_HINT });
  }
  return config.prefix;
}
