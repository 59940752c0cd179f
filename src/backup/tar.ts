/**
 * Tar headers written straight into a caller's buffer: POSIX ustar (magic `ustar\0`, version
 * `00`), preceded by a PAX extended header (`x`, named `././@PaxHeader` as Python's tarfile names
 * it) when a field does not fit ustar: a name longer than ustar's 100-byte name + 155-byte prefix
 * split allows, a link target over 100 bytes, a non-ASCII name or link target, a size of 8 GiB or
 * more, a uid/gid over 7 octal digits, or an mtime before 1970 or past 2242.
 *
 * Python's tarfile (WAL-E's reader), GNU tar and npm's tar-stream read this output.
 *
 * @module
 */

/** Size of a tar block: headers and padded data are made of them. */
export const TAR_BLOCK_SIZE = 512;
/** Tar streams end padded to a multiple of this (20 blocks, as GNU tar and Python write). */
export const TAR_RECORD_SIZE = 10240;
/** Bytes of the end-of-archive marker: two zero blocks. */
export const TAR_END_BLOCKS_SIZE = 2 * TAR_BLOCK_SIZE;

/** What a tar header describes. */
export type TarEntryKind = "file" | "directory" | "symlink" | "hardlink";

/** The fields of one tar member's header. */
export interface TarEntry {
  /** Member name; directories end in `/`. */
  name: string;
  kind: TarEntryKind;
  /** Data bytes following the header (files only; ignored for other kinds). */
  size: number;
  /** Permission bits; masked with 0o7777. */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch; the ustar field holds whole seconds. */
  mtime: number;
  /** A symlink's target, or a hard link's member name. */
  linkTarget?: string;
  /** Owner name, left empty when absent. */
  uname?: string;
  /** Group name, left empty when absent. */
  gname?: string;
}

const NAME_SIZE = 100;
const PREFIX_SIZE = 155;
const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;
const PAX_HEADER_NAME = "././@PaxHeader";

const TYPE_FLAG: Readonly<Record<TarEntryKind, number>> = {
  file: 0x30, // '0'
  hardlink: 0x31, // '1'
  symlink: 0x32, // '2'
  directory: 0x35, // '5'
};
const TYPE_PAX = 0x78; // 'x'

const encoder = new TextEncoder();

/** How an entry is written: the ustar fields, and the PAX records, if any. */
interface HeaderPlan {
  name: string;
  prefix: string;
  link: string;
  size: number;
  uid: number;
  gid: number;
  mtime: number;
  /** The PAX extended header's data, or null when ustar holds everything. */
  pax: Uint8Array | null;
}

/** Bytes of NUL padding after `size` bytes of member data. */
export function tarPaddingLength(size: number): number {
  const rest = size % TAR_BLOCK_SIZE;
  return rest === 0 ? 0 : TAR_BLOCK_SIZE - rest;
}

/**
 * Bytes of the end of a tar stream that has `position` bytes so far (a multiple of 512): two zero
 * blocks, then zeros up to a multiple of {@linkcode TAR_RECORD_SIZE}.
 */
export function tarEndLength(position: number): number {
  const end = position + TAR_END_BLOCKS_SIZE;
  const rest = end % TAR_RECORD_SIZE;
  return TAR_END_BLOCKS_SIZE + (rest === 0 ? 0 : TAR_RECORD_SIZE - rest);
}

/** Bytes {@linkcode encodeTarHeader} writes for `entry`: 512, or more with a PAX header. */
export function tarHeaderLength(entry: TarEntry): number {
  return planLength(planHeader(entry));
}

function planLength({ pax }: HeaderPlan): number {
  return pax === null ? TAR_BLOCK_SIZE : 2 * TAR_BLOCK_SIZE + pax.length +
    tarPaddingLength(pax.length);
}

/**
 * Writes the header(s) of `entry` into `into` at `at` and returns the number of bytes written
 * ({@linkcode tarHeaderLength}). Throws a RangeError if they do not fit.
 */
export function encodeTarHeader(entry: TarEntry, into: Uint8Array, at: number): number {
  const plan = planHeader(entry);
  const total = planLength(plan);
  if (at < 0 || at + total > into.length) {
    throw new RangeError(`tar header of ${total} bytes does not fit at ${at} of ${into.length}`);
  }
  into.fill(0, at, at + total);
  let offset = at;
  if (plan.pax !== null) {
    writeUstar(into, offset, {
      name: PAX_HEADER_NAME,
      prefix: "",
      link: "",
      typeFlag: TYPE_PAX,
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: plan.pax.length,
      mtime: plan.mtime,
      uname: "",
      gname: "",
    });
    offset += TAR_BLOCK_SIZE;
    into.set(plan.pax, offset);
    offset += plan.pax.length + tarPaddingLength(plan.pax.length);
  }
  writeUstar(into, offset, {
    name: plan.name,
    prefix: plan.prefix,
    link: plan.link,
    typeFlag: TYPE_FLAG[entry.kind],
    mode: entry.mode & 0o7777,
    uid: plan.uid,
    gid: plan.gid,
    size: plan.size,
    mtime: plan.mtime,
    uname: entry.uname ?? "",
    gname: entry.gname ?? "",
  });
  return total;
}

function planHeader(entry: TarEntry): HeaderPlan {
  let records = "";
  const size = entry.kind === "file" ? entry.size : 0;
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`bad tar size ${size}`);

  let name = "";
  let prefix = "";
  const split = isAscii(entry.name) ? splitName(entry.name) : null;
  if (split !== null) [prefix, name] = split;
  else {
    records += paxRecord("path", entry.name);
    name = fallbackName(entry.name);
  }

  let link = entry.linkTarget ?? "";
  if (link.length > 0 && (!isAscii(link) || link.length > NAME_SIZE)) {
    records += paxRecord("linkpath", link);
    link = fallbackName(link);
  }

  let ustarSize = size;
  if (size > MAX_OCTAL_11) {
    records += paxRecord("size", String(size));
    ustarSize = 0;
  }
  let uid = entry.uid;
  if (uid < 0 || uid > MAX_OCTAL_7) {
    records += paxRecord("uid", String(uid));
    uid = 0;
  }
  let gid = entry.gid;
  if (gid < 0 || gid > MAX_OCTAL_7) {
    records += paxRecord("gid", String(gid));
    gid = 0;
  }
  let mtime = Math.floor(entry.mtime);
  if (!(mtime >= 0 && mtime <= MAX_OCTAL_11)) {
    records += paxRecord("mtime", String(Number.isFinite(entry.mtime) ? entry.mtime : 0));
    mtime = 0;
  }
  return {
    name,
    prefix,
    link,
    size: ustarSize,
    uid,
    gid,
    mtime,
    pax: records.length === 0 ? null : encoder.encode(records),
  };
}

function isAscii(value: string): boolean {
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) >= 0x80) return false;
  return true;
}

/** ustar's [prefix, name] for an ASCII name, or null when it does not fit. */
function splitName(name: string): [string, string] | null {
  if (name.length <= NAME_SIZE) return ["", name];
  if (name.length > PREFIX_SIZE + 1 + NAME_SIZE) return null;
  // The longest prefix that fits, cut at a '/' that is not a directory's trailing one.
  const slash = name.lastIndexOf("/", Math.min(PREFIX_SIZE, name.length - 2));
  if (slash <= 0 || name.length - slash - 1 > NAME_SIZE) return null;
  return [name.slice(0, slash), name.slice(slash + 1)];
}

/** What the ustar field says when PAX carries the real value: ASCII, cut to 100 bytes. */
function fallbackName(value: string): string {
  let ascii = "";
  for (const char of value) ascii += char.charCodeAt(0) < 0x80 ? char : "_";
  if (ascii.length <= NAME_SIZE) return ascii;
  return ascii.endsWith("/") ? `${ascii.slice(0, NAME_SIZE - 1)}/` : ascii.slice(0, NAME_SIZE);
}

/** One PAX record: `<length> <key>=<value>\n`, the length counting itself, in bytes. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyBytes = encoder.encode(body).length;
  let length = bodyBytes + 1;
  while (String(length).length + bodyBytes !== length) length = String(length).length + bodyBytes;
  return `${length}${body}`;
}

interface UstarFields {
  name: string;
  prefix: string;
  link: string;
  typeFlag: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  uname: string;
  gname: string;
}

/** Writes one 512-byte ustar header at `at` (already zeroed). Strings must be ASCII. */
function writeUstar(into: Uint8Array, at: number, f: UstarFields): void {
  writeAscii(into, at, f.name, 100);
  writeOctal(into, at + 100, f.mode, 8);
  writeOctal(into, at + 108, f.uid, 8);
  writeOctal(into, at + 116, f.gid, 8);
  writeOctal(into, at + 124, f.size, 12);
  writeOctal(into, at + 136, f.mtime, 12);
  into.fill(0x20, at + 148, at + 156); // the checksum counts its own field as spaces
  into[at + 156] = f.typeFlag;
  writeAscii(into, at + 157, f.link, 100);
  writeAscii(into, at + 257, "ustar\0", 6);
  writeAscii(into, at + 263, "00", 2);
  writeAscii(into, at + 265, f.uname, 32);
  writeAscii(into, at + 297, f.gname, 32);
  writeOctal(into, at + 329, 0, 8);
  writeOctal(into, at + 337, 0, 8);
  writeAscii(into, at + 345, f.prefix, 155);
  let sum = 0;
  for (let i = at; i < at + TAR_BLOCK_SIZE; i++) sum += into[i];
  writeOctal(into, at + 148, sum, 7); // six digits and a NUL; the space stays
}

function writeAscii(into: Uint8Array, at: number, value: string, width: number): void {
  const n = Math.min(value.length, width);
  for (let i = 0; i < n; i++) into[at + i] = value.charCodeAt(i) & 0x7f;
}

/** `width - 1` zero-padded octal digits and a NUL. */
function writeOctal(into: Uint8Array, at: number, value: number, width: number): void {
  let v = value;
  for (let i = width - 2; i >= 0; i--) {
    into[at + i] = 0x30 + (v % 8);
    v = Math.floor(v / 8);
  }
  into[at + width - 1] = 0;
}
