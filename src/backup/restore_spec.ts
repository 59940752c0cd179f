/**
 * Where a restore puts tablespaces: WAL-E's `--restore-spec` (spec §4), without its surprises.
 *
 * - No `--restore-spec`: the backup's tablespaces must already be linked (`pg_tblspc/<oid>`
 *   symlinks to directories, made beforehand), unless `--blind-restore`.
 * - `--restore-spec SOURCE`: the locations the backup recorded; wal-d makes the directories and
 *   links.
 * - `--restore-spec FILE`: WAL-E's JSON (`{"tablespaces": ["16422"], "16422": {"loc": "/ts/",
 *   "link": "pg_tblspc/16422"}}`) merged over the recorded spec as WAL-E merged it (a shallow
 *   update); wal-d makes the directories and links.
 *
 * Unlike WAL-E, the data always goes to PG_CLUSTER_DIRECTORY: the recorded `base_prefix` (the
 * source's data directory) is never used, and a `base_prefix` in the file must name the same
 * directory. Every link must be `pg_tblspc/<oid>` and every location an absolute path.
 *
 * @module
 */

import { UserError } from "../cli/errors.ts";
import { resolve } from "../io/path.ts";
import type { BackupSpec, TablespaceSpec } from "./sentinel.ts";

/** The `--restore-spec` value that means "the locations the backup recorded". */
export const RESTORE_SPEC_SOURCE = "SOURCE";

/** What the restore does with tablespaces. */
export interface TablespacePlan {
  /** The tablespaces the backup (or the restore spec) names. */
  tablespaces: TablespaceSpec[];
  /** Make each location and its `pg_tblspc/<oid>` link (a restore spec was given). */
  makeLinks: boolean;
}

/** Largest restore-spec file read. */
const MAX_SPEC_BYTES = 1024 * 1024;

function specError(source: string, problem: string): UserError {
  return new UserError(`invalid restore spec ${source}: ${problem}`, {
    hint: 'Write it as WAL-E did: {"tablespaces": ["16422"], "16422": {"loc": "/new/location/", ' +
      '"link": "pg_tblspc/16422"}}',
  });
}

/** The recorded spec as WAL-E's JSON object (the shape a restore-spec file is merged into). */
function specObject(spec: BackupSpec | undefined): Record<string, unknown> {
  if (spec === undefined) return {};
  const object: Record<string, unknown> = {
    base_prefix: spec.basePrefix,
    tablespaces: spec.tablespaces.map((t) => t.name),
  };
  for (const t of spec.tablespaces) object[t.name] = { loc: t.loc, link: t.link };
  return object;
}

/** Checks a merged spec object and returns its tablespaces. */
export function parseTablespaces(
  object: Record<string, unknown>,
  source: string,
): TablespaceSpec[] {
  const names = object.tablespaces ?? [];
  if (!Array.isArray(names) || !names.every((n) => typeof n === "string")) {
    throw specError(source, '"tablespaces" must be a list of names');
  }
  const seen = new Set<string>();
  return names.map((name: string) => {
    if (!/^[0-9]+$/.test(name) || seen.has(name)) {
      throw specError(source, `tablespace ${JSON.stringify(name)} must be a distinct OID`);
    }
    seen.add(name);
    const entry = object[name];
    if (typeof entry !== "object" || entry === null) {
      throw specError(source, `tablespace ${name} has no {"loc": ..., "link": ...} entry`);
    }
    const { loc, link } = entry as Record<string, unknown>;
    if (typeof loc !== "string" || !loc.startsWith("/")) {
      throw specError(source, `tablespace ${name}: "loc" must be an absolute path`);
    }
    if (typeof link !== "string" || link.replace(/\/+$/, "") !== `pg_tblspc/${name}`) {
      throw specError(
        source,
        `tablespace ${name}: "link" must be "pg_tblspc/${name}", got ${JSON.stringify(link)}`,
      );
    }
    return { name, loc, link: `pg_tblspc/${name}` };
  });
}

/**
 * The tablespace plan for `restoreSpec` (`null`, {@linkcode RESTORE_SPEC_SOURCE} or a file path)
 * and the backup's recorded spec. `dataDir` is the restore's data directory (a real path).
 */
export async function tablespacePlan(
  restoreSpec: string | null,
  recorded: BackupSpec | undefined,
  dataDir: string,
  backupName: string,
): Promise<TablespacePlan> {
  if (restoreSpec === null) {
    return { tablespaces: recorded?.tablespaces ?? [], makeLinks: false };
  }
  if (restoreSpec === RESTORE_SPEC_SOURCE) {
    if (recorded === undefined) {
      throw new UserError(
        `backup ${backupName} records no tablespace spec, so --restore-spec SOURCE has nothing to use`,
        {
          detail: "WAL-E's file backend never stored one.",
          hint: "Give a restore-spec file naming each tablespace's location, or make the " +
            "pg_tblspc/<oid> links yourself and leave --restore-spec out.",
        },
      );
    }
    return { tablespaces: recorded.tablespaces, makeLinks: true };
  }
  const source = JSON.stringify(restoreSpec);
  let text: string;
  try {
    const info = await Deno.stat(restoreSpec);
    if (!info.isFile) throw specError(source, "it is not a file");
    if (info.size > MAX_SPEC_BYTES) throw specError(source, "it is larger than 1 MiB");
    text = await Deno.readTextFile(restoreSpec);
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new UserError(`cannot read restore spec ${source}: ${(error as Error).message}`, {
      hint: `Give the path of a readable JSON file, or ${RESTORE_SPEC_SOURCE}.`,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw specError(source, `it is not JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw specError(source, "it must be a JSON object");
  }
  const merged = { ...specObject(recorded), ...parsed as Record<string, unknown> };
  const basePrefix = (parsed as Record<string, unknown>).base_prefix;
  if (basePrefix !== undefined && basePrefix !== "") {
    if (typeof basePrefix !== "string" || resolveReal(basePrefix) !== dataDir) {
      throw new UserError(
        `restore spec ${source} sets base_prefix ${
          JSON.stringify(basePrefix)
        }, which is not the directory being restored (${dataDir})`,
        {
          hint: "wal-d restores into PG_CLUSTER_DIRECTORY; remove base_prefix from the spec or " +
            "make it name that directory.",
        },
      );
    }
  }
  return { tablespaces: parseTablespaces(merged, source), makeLinks: true };
}

function resolveReal(path: string): string {
  try {
    return Deno.realPathSync(path);
  } catch {
    return resolve(path);
  }
}
