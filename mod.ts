/**
 * wal-d: a drop-in successor to WAL-E (PostgreSQL WAL archiving and base backups).
 *
 * Entry point. Imports only the argument parser and the dispatcher; everything else is loaded on
 * demand (see src/cli/commands.ts for how subcommands are added).
 */
import { main } from "./src/cli/main.ts";

export { main };
export type {
  ArgsByCommand,
  BackupFetchArgs,
  BackupListArgs,
  BackupPushArgs,
  CommandName,
  CommandSelection,
  DeleteArgs,
  DeleteTarget,
  GlobalOptions,
  Invocation,
  ParsedCommandLine,
  WalFetchArgs,
  WalPrefetchArgs,
  WalPushArgs,
} from "./src/cli/types.ts";
export type { CommandLoader, CommandModule } from "./src/cli/commands.ts";
export type { Config, StoragePrefix } from "./src/config/types.ts";
export type { LogFields, Logger } from "./src/log/logger.ts";
export { UsageError, UserError } from "./src/cli/errors.ts";
export { parseCommandLine } from "./src/cli/parse.ts";
export { WALD_VERSION } from "./src/version.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
