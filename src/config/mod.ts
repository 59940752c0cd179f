/** Public API of the configuration layer. */
export type {
  Config,
  GsSettings,
  LogDestination,
  LogLevelName,
  LogSettings,
  PrefixSource,
  S3Settings,
  SecretSettings,
  StoragePrefix,
  StorageScheme,
  SwiftSettings,
  WabsSettings,
} from "./types.ts";
export { STORAGE_SCHEMES } from "./types.ts";
export { EffectiveEnvironment, MIN_REDACTABLE_SECRET_LENGTH } from "./environment.ts";
export {
  envDirValueFromBytes,
  loadEffectiveEnvironment,
  overlayEnvironment,
  readEnvDir,
  selectEnvDir,
} from "./envdir.ts";
export type { EnvDirOverlay } from "./envdir.ts";
export {
  fileStorageRoot,
  parseStoragePrefix,
  pathPrefixFromUrlPath,
  PREFIX_ENV_VARS,
  selectPrefixUrl,
  splitUrl,
} from "./prefix.ts";
export type { PrefixFlags, SplitUrl } from "./prefix.ts";
export {
  DEFAULT_LOG_DESTINATIONS,
  DEFAULT_RETRIES,
  NO_PREFIX_HINT,
  parseInstanceProfileEnv,
  parseLogDestinations,
  parseRetriesEnv,
  requirePrefix,
  resolveConfig,
  resolveLogSettings,
} from "./resolve.ts";
export type { ConfigOptions } from "./resolve.ts";
export { isSecretEnvVar, REDACTED, Secret, SECRET_ENV_VARS } from "./secret.ts";
export type { SecretEnvVar } from "./secret.ts";
