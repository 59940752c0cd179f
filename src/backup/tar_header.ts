/**
 * Reading tar headers: POSIX ustar, PAX extended headers (`x`, and global `g` ones) and GNU tar's
 * (magic `ustar  \0`, long names in `L`/`K` members, base-256 numbers). These are what WAL-E wrote
 * (Python's tarfile: PAX on 3.8+, GNU before) and what wal-d writes (ustar + PAX).
 *
 * Only the header is decoded here; what a member may do to the file system is decided by the
 * extractor (src/backup/extract.ts).
 *
 * @module
 */

import { TAR_BLOCK_SIZE } from "./tar.ts";

/** A header that is not a valid tar header: the volume is corrupt or not a tar stream. */
export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TarFormatError";
  }
}

/** The type flags wal-d distinguishes (a member's kind). */
export type TarHeaderType =
  | "file"
  | "hardlink"
  | "symlink"
  | "character-device"
  | "block-device"
  | "directory"
  | "fifo"
  | "pax"
  | "pax-global"
  | "gnu-long-name"
  | "gnu-long-link"
  | "gnu-sparse"
  | "gnu-volume-label"
  | "other";

/** One decoded 512-byte header, before PAX or GNU long-name overrides are applied. */
export interface TarHeader {
  /** The name as stored: ustar's prefix joined to its name (GNU headers have no prefix). */
  name: string;
  type: TarHeaderType;
  /** The raw type flag character, for messages. */
  typeFlag: string;
  /** Permission bits (masked with 0o7777). */
  mode: number;
  /** Bytes of data following the header. */
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** A link's target (symlink) or linked member name (hard link). */
  linkName: string;
  /** "ustar" (POSIX, also under PAX), "gnu" or "v7" (no magic). */
  format: "ustar" | "gnu" | "v7";
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

const TYPES: Readonly<Record<string, TarHeaderType>> = {
  "0": "file",
  "\0": "file",
  "7": "file", // contiguous file: a regular file everywhere but on old real-time systems
  "1": "hardlink",
  "2": "symlink",
  "3": "character-device",
  "4": "block-device",
  "5": "directory",
  "6": "fifo",
  "x": "pax",
  "g": "pax-global",
  "L": "gnu-long-name",
  "K": "gnu-long-link",
  "S": "gnu-sparse",
  "V": "gnu-volume-label",
};

/** Whether a 512-byte block is all zeros (an end-of-archive block). */
export function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < TAR_BLOCK_SIZE; i++) if (block[i] !== 0) return false;
  return true;
}

/** Decodes a NUL-terminated text field; names must be UTF-8 (as PAX and wal-d write them). */
export function decodeField(bytes: Uint8Array, what: string): string {
  let end = bytes.indexOf(0);
  if (end < 0) end = bytes.length;
  try {
    return utf8.decode(bytes.subarray(0, end));
  } catch {
    throw new TarFormatError(`${what} is not valid UTF-8; wal-d cannot restore it`);
  }
}

/** Reads a numeric field: octal digits (space or NUL terminated), or GNU's base-256 form. */
function numberField(bytes: Uint8Array, what: string): number {
  if (bytes[0] & 0x80) {
    if (bytes[0] === 0xff) throw new TarFormatError(`negative ${what} in a tar header`);
    let value = bytes[0] & 0x7f;
    for (let i = 1; i < bytes.length; i++) value = value * 256 + bytes[i];
    if (!Number.isSafeInteger(value)) throw new TarFormatError(`${what} too large in a tar header`);
    return value;
  }
  let value = 0;
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0)) i++; // leading spaces
  let digits = 0;
  for (; i < bytes.length; i++) {
    const c = bytes[i];
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) {
      throw new TarFormatError(
        `${what} in a tar header is not an octal number; the volume is corrupt`,
      );
    }
    value = value * 8 + (c - 0x30);
    digits++;
  }
  return digits === 0 ? 0 : value;
}

/**
 * Decodes one header block. Throws {@linkcode TarFormatError} when its checksum is wrong (the
 * volume is corrupt or not tar): every header is checked before anything is done with it.
 */
export function parseTarHeader(block: Uint8Array): TarHeader {
  const stored = numberField(block.subarray(148, 156), "header checksum");
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < TAR_BLOCK_SIZE; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  if (stored !== unsigned && stored !== signed) {
    throw new TarFormatError(
      "tar header checksum mismatch; the volume is corrupt or not a tar stream",
    );
  }
  const magic = block.subarray(257, 265);
  const isGnu = magic[0] === 0x75 && magic[5] === 0x20 && magic[6] === 0x20; // "ustar  \0"
  const isUstar = !isGnu && magic[0] === 0x75 && magic[5] === 0; // "ustar\0"
  let name = decodeField(block.subarray(0, 100), "a tar member name");
  if (isUstar) {
    const prefix = decodeField(block.subarray(345, 500), "a tar member name prefix");
    if (prefix) name = `${prefix}/${name}`;
  }
  const typeFlag = String.fromCharCode(block[156]);
  return {
    name,
    type: TYPES[typeFlag] ?? "other",
    typeFlag: typeFlag === "\0" ? "\\0" : typeFlag,
    mode: numberField(block.subarray(100, 108), "mode") & 0o7777,
    size: numberField(block.subarray(124, 136), "size"),
    mtime: numberField(block.subarray(136, 148), "mtime"),
    linkName: decodeField(block.subarray(157, 257), "a tar link name"),
    format: isGnu ? "gnu" : isUstar ? "ustar" : "v7",
  };
}

/** The PAX records wal-d uses; other keys (atime, uid, uname, SCHILY.*, ...) are ignored. */
export interface PaxRecords {
  path?: string;
  linkpath?: string;
  size?: number;
  mtime?: number;
  /** A GNU sparse-file record was present: such members cannot be restored. */
  sparse?: boolean;
}

/** Parses the data of a PAX extended header: `"<length> <key>=<value>\n"` records. */
export function parsePaxRecords(data: Uint8Array): PaxRecords {
  const records: PaxRecords = {};
  let at = 0;
  while (at < data.length) {
    if (data[at] === 0) break; // padding some writers leave
    const space = data.indexOf(0x20, at);
    if (space < 0) {
      throw new TarFormatError("malformed PAX record (no length); the volume is corrupt");
    }
    const length = Number(new TextDecoder().decode(data.subarray(at, space)));
    if (!Number.isSafeInteger(length) || length <= space - at + 1 || at + length > data.length) {
      throw new TarFormatError("malformed PAX record length; the volume is corrupt");
    }
    const record = data.subarray(space + 1, at + length);
    if (record[record.length - 1] !== 0x0a) {
      throw new TarFormatError("malformed PAX record (no newline); the volume is corrupt");
    }
    const equals = record.indexOf(0x3d);
    if (equals < 0) {
      throw new TarFormatError("malformed PAX record (no '='); the volume is corrupt");
    }
    const key = decodeField(record.subarray(0, equals), "a PAX key");
    const value = decodeField(record.subarray(equals + 1, record.length - 1), `PAX ${key}`);
    switch (key) {
      case "path":
        records.path = value;
        break;
      case "linkpath":
        records.linkpath = value;
        break;
      case "size":
        if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value))) {
          throw new TarFormatError(`PAX size ${JSON.stringify(value)} is not a byte count`);
        }
        records.size = Number(value);
        break;
      case "mtime": {
        // Seconds, possibly negative (before 1970) and fractional: whole seconds towards minus
        // infinity, from the text (a float would round 9 fractional digits up).
        const match = /^(-?)([0-9]+)(?:\.([0-9]*))?$/.exec(value);
        if (match === null || !Number.isSafeInteger(Number(match[2]))) {
          throw new TarFormatError(`PAX mtime ${JSON.stringify(value)} is not a number`);
        }
        const whole = Number(match[2]);
        const fraction = /[1-9]/.test(match[3] ?? "");
        records.mtime = match[1] === "-" ? -whole - (fraction ? 1 : 0) : whole;
        break;
      }
      default:
        if (key.startsWith("GNU.sparse.")) records.sparse = true;
    }
    at += length;
  }
  return records;
}
