/**
 * The split of a cluster's members into tar volumes, as WAL-E makes it (spec §3.5): members in walk
 * order, a new volume when the next member would bring the volume's payload to 1.5 GiB or the
 * volume already holds 6144 members.
 *
 * Differences from WAL-E: no volume is ever empty (WAL-E opened an empty volume 0 before a first
 * file of exactly 1.5 GiB), and a hard link whose target is in another volume is stored as a copy
 * of the file, so that every volume can be extracted on its own and in any order (WAL-E restores
 * volumes concurrently, and a link to a file not yet extracted fails).
 *
 * @module
 */

import { UserError } from "../cli/errors.ts";
import type { ClusterMember } from "./walk.ts";

/** Most payload bytes (member sizes, headers excluded) in a volume: 1.5 GiB, as WAL-E. */
export const PARTITION_MAX_BYTES = 1610612736;
/** Most members in a volume: 6144 (1.5 GiB / 256 KiB), as WAL-E. */
export const PARTITION_MAX_MEMBERS = 6144;

/** Options of {@linkcode partitionMembers}; smaller limits are for tests. */
export interface PartitionOptions {
  /** Default {@linkcode PARTITION_MAX_BYTES}. */
  maxBytes?: number;
  /** Default {@linkcode PARTITION_MAX_MEMBERS}. */
  maxMembers?: number;
}

/** One volume's members, and the sum of their sizes. */
export interface Partition {
  members: ClusterMember[];
  bytes: number;
}

/**
 * Splits `members` (in walk order) into volumes. Throws a UserError naming the file if one file is
 * larger than the byte limit.
 */
export function partitionMembers(
  members: readonly ClusterMember[],
  options: PartitionOptions = {},
): Partition[] {
  const maxBytes = options.maxBytes ?? PARTITION_MAX_BYTES;
  const maxMembers = options.maxMembers ?? PARTITION_MAX_MEMBERS;
  const files = new Map<string, ClusterMember>();
  for (const member of members) if (member.kind === "file") files.set(member.name, member);

  const partitions: Partition[] = [];
  let current: Partition = { members: [], bytes: 0 };
  /** Names of the current volume's files, to tell whether a hard link's target is in it. */
  let here = new Set<string>();
  /** Hard link targets in other volumes, to the copy stored in the current one. */
  let copies = new Map<string, string>();

  for (const member of members) {
    let item = localize(member, here, copies, files);
    if (item.size > maxBytes) {
      throw new UserError(
        `${item.path} is ${item.size} bytes, more than the ${maxBytes} bytes a volume holds`,
        {
          hint:
            "PostgreSQL splits relations into 1 GiB segments; move files that are not PostgreSQL's out of the data directory",
        },
      );
    }
    const full = current.bytes + item.size >= maxBytes || current.members.length >= maxMembers;
    if (full && current.members.length > 0) {
      partitions.push(current);
      current = { members: [], bytes: 0 };
      here = new Set();
      copies = new Map();
      item = localize(member, here, copies, files);
    }
    current.members.push(item);
    current.bytes += item.size;
    if (item.kind === "file") here.add(item.name);
    if (member.kind === "hardlink" && item.kind === "file") {
      copies.set(member.linkTarget ?? "", item.name);
    }
  }
  if (current.members.length > 0) partitions.push(current);
  return partitions;
}

/**
 * `member` as the current volume stores it: a hard link whose target is in another volume becomes
 * a link to an earlier copy in this volume, or else a copy of the file (with the target's size).
 */
function localize(
  member: ClusterMember,
  here: ReadonlySet<string>,
  copies: ReadonlyMap<string, string>,
  files: ReadonlyMap<string, ClusterMember>,
): ClusterMember {
  if (member.kind !== "hardlink") return member;
  const target = member.linkTarget ?? "";
  if (here.has(target)) return member;
  const copy = copies.get(target);
  if (copy !== undefined) return { ...member, linkTarget: copy };
  const size = files.get(target)?.size ?? 0;
  const { linkTarget: _, ...rest } = member;
  return { ...rest, kind: "file", size };
}
