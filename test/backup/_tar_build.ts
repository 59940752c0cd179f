/**
 * Tar streams built by hand for the reader and extractor tests: raw 512-byte headers with any
 * name, type flag, link name, magic or numeric field (and a correct checksum unless asked
 * otherwise), members with their data and padding, PAX and GNU long-name members.
 *
 * @module
 */

import { TAR_BLOCK_SIZE, tarEndLength, tarPaddingLength } from "../../src/backup/tar.ts";
import { concatBytes } from "../../src/io/bytes.ts";

const encoder = new TextEncoder();

/** A numeric field: a number (written as octal), raw text, or raw bytes (e.g. base-256). */
export type RawNumber = number | string | Uint8Array;

/** The fields of one raw header; everything has a default. */
export interface RawHeader {
  /** The name field (UTF-8, or raw bytes), cut to 100 bytes. */
  name?: string | Uint8Array;
  mode?: RawNumber;
  uid?: RawNumber;
  gid?: RawNumber;
  size?: RawNumber;
  mtime?: RawNumber;
  /** The type flag, one character ("0" by default; "\0" allowed). */
  type?: string;
  linkName?: string | Uint8Array;
  /** "ustar" (`ustar\0` `00`), "gnu" (`ustar  \0`) or "v7" (no magic). Default "ustar". */
  magic?: "ustar" | "gnu" | "v7";
  /** The ustar prefix field (bytes 345-500), written whatever the magic. */
  prefix?: string | Uint8Array;
  /** Overwrite bytes at an offset before the checksum is computed. */
  patch?: { at: number; bytes: Uint8Array }[];
  /** "good" (default), "bad" (off by one), "signed" (the signed sum) or a raw field. */
  checksum?: "good" | "bad" | "signed" | Uint8Array;
}

function bytesOf(value: string | Uint8Array): Uint8Array {
  return typeof value === "string" ? encoder.encode(value) : value;
}

function putBytes(block: Uint8Array, at: number, width: number, value: string | Uint8Array) {
  const bytes = bytesOf(value);
  block.set(bytes.subarray(0, width), at);
}

/** `width - 1` octal digits and a NUL, or the raw form given. */
function putNumber(block: Uint8Array, at: number, width: number, value: RawNumber): void {
  if (typeof value === "number") {
    putBytes(block, at, width, value.toString(8).padStart(width - 1, "0") + "\0");
  } else {
    putBytes(block, at, width, value);
  }
}

/** One 512-byte header block. */
export function rawHeader(h: RawHeader = {}): Uint8Array {
  const block = new Uint8Array(TAR_BLOCK_SIZE);
  putBytes(block, 0, 100, h.name ?? "member");
  putNumber(block, 100, 8, h.mode ?? 0o644);
  putNumber(block, 108, 8, h.uid ?? 1000);
  putNumber(block, 116, 8, h.gid ?? 1000);
  putNumber(block, 124, 12, h.size ?? 0);
  putNumber(block, 136, 12, h.mtime ?? 1_700_000_000);
  block[156] = (h.type ?? "0").charCodeAt(0);
  putBytes(block, 157, 100, h.linkName ?? "");
  switch (h.magic ?? "ustar") {
    case "ustar":
      putBytes(block, 257, 8, "ustar\x0000");
      break;
    case "gnu":
      putBytes(block, 257, 8, "ustar  \0");
      break;
    case "v7":
      break;
  }
  if ((h.magic ?? "ustar") !== "v7") {
    putBytes(block, 265, 32, "postgres");
    putBytes(block, 297, 32, "postgres");
  }
  if (h.prefix !== undefined) putBytes(block, 345, 155, h.prefix);
  for (const p of h.patch ?? []) block.set(p.bytes, p.at);
  block.fill(0x20, 148, 156);
  if (h.checksum instanceof Uint8Array) {
    block.fill(0, 148, 156);
    block.set(h.checksum.subarray(0, 8), 148);
    return block;
  }
  let unsigned = 0;
  let signed = 0;
  for (const b of block) {
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  const sum = h.checksum === "bad" ? unsigned + 1 : h.checksum === "signed" ? signed : unsigned;
  if (sum < 0) {
    throw new RangeError("a negative signed checksum cannot be written in octal");
  }
  putBytes(block, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return block;
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  return concatBytes(parts);
}

/** `data` followed by its NUL padding to a block boundary. */
export function padded(data: Uint8Array): Uint8Array {
  return concat(data, new Uint8Array(tarPaddingLength(data.length)));
}

/** A member: header (`size` defaults to the data's length), data and padding. */
export function member(h: RawHeader, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  return concat(rawHeader({ size: data.length, ...h }), padded(data));
}

/** A regular file member. */
export function fileMember(
  name: string,
  data: Uint8Array | string,
  h: RawHeader = {},
): Uint8Array {
  return member({ name, type: "0", mode: 0o600, ...h }, bytesOf(data));
}

/** A directory member. */
export function dirMember(name: string, h: RawHeader = {}): Uint8Array {
  return member({ name, type: "5", mode: 0o700, ...h });
}

/** A symlink member. */
export function symlinkMember(name: string, target: string, h: RawHeader = {}): Uint8Array {
  return member({ name, type: "2", mode: 0o777, linkName: target, ...h });
}

/** A hard link member. */
export function hardlinkMember(name: string, target: string, h: RawHeader = {}): Uint8Array {
  return member({ name, type: "1", mode: 0o600, linkName: target, ...h });
}

/** One PAX record, `<length> <key>=<value>\n`, the length in bytes counting itself. */
function paxRecord(key: string, value: string): Uint8Array {
  const body = encoder.encode(` ${key}=${value}\n`).length;
  let length = body + 1;
  while (String(length).length + body !== length) length = String(length).length + body;
  return encoder.encode(`${length} ${key}=${value}\n`);
}

/** The data of a PAX extended header: these records, in order. */
export function paxData(...records: [string, string][]): Uint8Array {
  return concat(...records.map(([k, v]) => paxRecord(k, v)));
}

/** A PAX extended header member (`x`, or `g` for a global one) with these records. */
export function paxMember(
  records: [string, string][] | Uint8Array,
  h: RawHeader = {},
): Uint8Array {
  const data = records instanceof Uint8Array ? records : paxData(...records);
  return member({ name: "././@PaxHeader", type: "x", ...h }, data);
}

/** A GNU long-name (`L`) or long-link (`K`) member: the value and a NUL, GNU magic. */
export function gnuLongMember(type: "L" | "K", value: string): Uint8Array {
  return member(
    { name: "././@LongLink", type, magic: "gnu", mode: 0o644 },
    concat(encoder.encode(value), new Uint8Array(1)),
  );
}

/** The end of an archive that has `position` bytes: two zero blocks and record padding. */
export function tarEnd(position: number): Uint8Array {
  return new Uint8Array(tarEndLength(position));
}

/** A complete archive: the members and the end-of-archive blocks. */
export function tarStream(...members: Uint8Array[]): Uint8Array {
  const body = concat(...members);
  return concat(body, tarEnd(body.length));
}

/** Deterministic bytes that compress poorly (xorshift), distinct per seed. */
export function noise(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}
