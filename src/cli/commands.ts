/**
 * The one place that maps subcommands to their implementations.
 *
 * Each entry is a lazy loader, so a module is read and compiled only when its subcommand runs
 * (`wal-d version` stays at bare Deno start-up time). A subcommand without an entry fails with
 * "wal-d: <command> is not implemented yet in this version" (exit 1).
 *
 * To add a command, e.g. wal-push:
 *  1. create `src/commands/wal_push.ts` exporting
 *       `export async function run(inv: Invocation<"wal-push">, log: Logger): Promise<number>`
 *     where `inv.args` holds the typed arguments (`WalPushArgs`), `inv.config` the resolved
 *     `Config` (credentials, GPG key, retries, environment…), `inv.prefix` the checked storage
 *     prefix, and `log` is the `wal_e.main` logger (use `log.getLogger("wal_e.worker.upload")`
 *     for WAL-E's other logger names). Return the exit code; throw `UserError` (exit 1) for
 *     problems the user can fix; anything else thrown becomes exit 2;
 *  2. add one line below: `"wal-push": () => import("../commands/wal_push.ts"),`. Keep the
 *     specifier a string literal: `deno compile` embeds only statically analysable imports.
 * `version` is handled by the runner itself (it needs no configuration) and is not listed here.
 */
import type { Logger } from "../log/logger.ts";
import type { CommandName, Invocation } from "./types.ts";

/** What a command module exports. */
export interface CommandModule<K extends CommandName = CommandName> {
  run(inv: Invocation<K>, log: Logger): Promise<number>;
}

/** Loads the module of a subcommand. */
export type CommandLoader<K extends CommandName> = () => Promise<CommandModule<K>>;

/** Subcommands that run with a configuration (all except `version`). */
export type ConfiguredCommandName = Exclude<CommandName, "version">;

/** Lazy loaders of the implemented subcommands. */
export const COMMAND_LOADERS: { readonly [K in ConfiguredCommandName]?: CommandLoader<K> } = {
  "wal-push": () => import("../commands/wal_push.ts"),
  "wal-fetch": () => import("../commands/wal_fetch.ts"),
  "wal-prefetch": () => import("../commands/wal_prefetch.ts"),
  "wal-push-ahead": () => import("../commands/wal_push_ahead.ts"),
  "backup-push": () => import("../commands/backup_push.ts"),
  "backup-list": () => import("../commands/backup_list.ts"),
  "backup-fetch": () => import("../commands/backup_fetch.ts"),
};
