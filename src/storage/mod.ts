/**
 * Opens the configured store: picks the backend by the prefix's URL scheme and wraps it with the
 * retry and deadline policy (src/storage/policy.ts).
 *
 * Backends are loaded lazily (`await import(...)`, with literal paths so that `deno compile` and
 * bundling still see them): wal-push runs once per WAL segment, so it must not pay for loading
 * the S3 or Azure code when the archive is a directory.
 *
 * @module
 */
import { UserError } from "../cli/errors.ts";
import { requirePrefix } from "../config/resolve.ts";
import type { Config, StoragePrefix } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import type { PolicyRuntime, StoragePolicy } from "./policy.ts";
import { DEFAULT_STORAGE_POLICY, withPolicy } from "./policy.ts";
import type { ObjectStore } from "./types.ts";

export type { PolicyRuntime, StoragePolicy } from "./policy.ts";
export { classifyError, DEFAULT_STORAGE_POLICY, withPolicy } from "./policy.ts";
export * from "./types.ts";

/** Environment variable: the time budget of one storage operation, in seconds. */
export const RETRY_BUDGET_ENV_VAR = "WALD_RETRY_BUDGET_SECONDS";

/** Options of {@linkcode openStore}. */
export interface OpenStoreOptions {
  /** Overrides of the policy derived from the configuration. */
  readonly policy?: Partial<StoragePolicy>;
  /** Clock, timers and randomness of the policy (tests). */
  readonly runtime?: PolicyRuntime;
}

/**
 * The policy for `config`: `WALE_RETRIES` as the maximum number of attempts when it is set
 * (≤ 0: no count limit), else the default; the time budget from `WALD_RETRY_BUDGET_SECONDS` when
 * it is set, else the default (10 min).
 */
export function storagePolicyFromConfig(
  config: Pick<Config, "retries" | "environment">,
): StoragePolicy {
  const retries = config.environment.get("WALE_RETRIES");
  const retriesSet = retries !== undefined && retries.trim() !== "";
  const budget = config.environment.get(RETRY_BUDGET_ENV_VAR);
  let budgetMs = DEFAULT_STORAGE_POLICY.budgetMs;
  if (budget !== undefined && budget.trim() !== "") {
    const budgetSeconds = Number(budget.trim());
    if (!Number.isFinite(budgetSeconds) || budgetSeconds <= 0) {
      throw new UserError(`${RETRY_BUDGET_ENV_VAR} must be a positive number, got "${budget}"`, {
        hint: `Set ${RETRY_BUDGET_ENV_VAR} to the seconds one storage operation may take, ` +
          `retries included, or unset it for the default of ${
            DEFAULT_STORAGE_POLICY.budgetMs / 1000
          }.`,
      });
    }
    budgetMs = budgetSeconds * 1000;
  }
  return {
    ...DEFAULT_STORAGE_POLICY,
    maxAttempts: retriesSet ? config.retries : DEFAULT_STORAGE_POLICY.maxAttempts,
    budgetMs,
  };
}

/** The backend of `prefix`, without the policy. */
async function openBackend(
  config: Config,
  prefix: StoragePrefix,
  source: string | null,
  log?: Logger,
): Promise<ObjectStore> {
  switch (prefix.scheme) {
    case "file": {
      const { FileStore } = await import("./file.ts");
      return FileStore.fromPrefix(prefix);
    }
    case "s3": {
      // Settings are checked before the SDK is loaded: a configuration error costs no SDK start.
      const { resolveS3Settings } = await import("./s3_config.ts");
      const settings = resolveS3Settings(config, prefix);
      if (settings.endpoint !== null && settings.regionSet) {
        log?.warning("both AWS_REGION and WALE_S3_ENDPOINT are set", {
          detail: `WAL-E ignores AWS_REGION then; wal-d signs requests to the endpoint ` +
            `"${settings.endpoint.host}" for region "${settings.region}".`,
          hint: "Unset AWS_REGION if the endpoint does not expect that region (requests are " +
            "then signed for us-east-1).",
        });
      }
      const { S3Store } = await import("./s3.ts");
      return new S3Store(settings);
    }
    default: {
      const from = source === null ? "" : ` (from ${source})`;
      throw new UserError(
        `the "${prefix.scheme}" storage backend of prefix "${prefix.url}"${from} is not ` +
          "supported yet by this build; only file:// and s3:// prefixes work so far",
      );
    }
  }
}

/**
 * Opens the store of the configured prefix, wrapped with the retry and deadline policy. Throws a
 * {@linkcode UserError} when no prefix is configured or its backend is not in this build.
 */
export async function openStore(
  config: Config,
  log?: Logger,
  options: OpenStoreOptions = {},
): Promise<ObjectStore> {
  const prefix = requirePrefix(config);
  const policy = { ...storagePolicyFromConfig(config), ...options.policy };
  const backend = await openBackend(config, prefix, config.prefixSource, log);
  return withPolicy(backend, policy, log, options.runtime);
}
