/**
 * What wal-push knows about PostgreSQL's WAL directory: the files PostgreSQL has marked ready for
 * archiving (`archive_status/<name>.ready`), and our own ledger of files pushed ahead of
 * PostgreSQL's request (`pg_wal/.wal-d/pushed/<name>`).
 *
 * A ledger entry is written only after the file is durably archived, and records the file's size,
 * mtime and inode. PostgreSQL never rewrites a completed segment before it has been archived, so
 * when it later asks for the same name and the file still matches, the archived copy is that file.
 *
 * @module
 */

import { join } from "node:path";
import { syncDirectory, writeFileAtomic } from "../io/atomic_file.ts";
import { classifyWalFileName } from "../layout/mod.ts";

/** Our directory inside pg_wal (WAL-E used `.wal-e`). */
export const WALD_DIRECTORY = ".wal-d";

/** Names of WAL files with an `archive_status/<name>.ready` marker, oldest first. */
export async function readyWalNames(walDir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(join(walDir, "archive_status"))) {
      if (!entry.name.endsWith(".ready")) continue;
      const name = entry.name.slice(0, -".ready".length);
      if (classifyWalFileName(name) !== null) names.push(name);
    }
  } catch (error) {
    // No archive_status directory (wal-push pointed at a copy, or an odd layout): nothing to add.
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return [];
    }
    throw error;
  }
  return names.sort();
}

/** One ledger entry. */
export interface PushedRecord {
  key: string;
  size: number;
  mtimeMs: number | null;
  ino: number | null;
  pushedAt: string;
}

/** The ledger of WAL files pushed ahead of PostgreSQL's request. */
export class PushLedger {
  readonly #walDir: string;
  readonly #dir: string;

  constructor(walDir: string) {
    this.#walDir = walDir;
    this.#dir = join(walDir, WALD_DIRECTORY, "pushed");
  }

  /** Whether `name` was pushed ahead and the file is unchanged since. */
  async matches(name: string, info: Deno.FileInfo): Promise<boolean> {
    let record: PushedRecord;
    try {
      record = JSON.parse(await Deno.readTextFile(join(this.#dir, name)));
    } catch {
      return false;
    }
    return record.size === info.size &&
      record.mtimeMs === (info.mtime?.getTime() ?? null) &&
      record.ino === (info.ino ?? null);
  }

  /** Records that `name` (as it was when `info` was taken) is durably archived under `key`. */
  async record(name: string, info: Deno.FileInfo, key: string): Promise<void> {
    const created = await ensureDirectory(this.#dir);
    const entry: PushedRecord = {
      key,
      size: info.size,
      mtimeMs: info.mtime?.getTime() ?? null,
      ino: info.ino ?? null,
      pushedAt: new Date().toISOString(),
    };
    const body = new TextEncoder().encode(JSON.stringify(entry) + "\n");
    await writeFileAtomic(join(this.#dir, name), ReadableStream.from([body]));
    if (created) await syncDirectory(join(this.#walDir, WALD_DIRECTORY));
  }

  /** Drops the entry for `name` (PostgreSQL has now been told it is archived). */
  async forget(name: string): Promise<void> {
    await Deno.remove(join(this.#dir, name)).catch(() => {});
  }

  /** Drops entries whose WAL file is gone (PostgreSQL removed or recycled it). */
  async prune(): Promise<void> {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(this.#dir));
    } catch {
      return;
    }
    for (const entry of entries) {
      try {
        await Deno.lstat(join(this.#walDir, entry.name));
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) await this.forget(entry.name);
      }
    }
  }
}

/** Creates `dir` (and parents) if needed; returns whether it had to. */
async function ensureDirectory(dir: string): Promise<boolean> {
  try {
    await Deno.stat(dir);
    return false;
  } catch {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    return true;
  }
}
