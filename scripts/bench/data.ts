/**
 * Deterministic data generators for wal-d's benchmarks: a synthetic but realistic PostgreSQL 15 WAL
 * segment, and heap-table files made of 8 KiB pages. Everything comes from a seeded PRNG, so the
 * same seed gives the same bytes on every machine and every run.
 *
 * The layouts follow PostgreSQL 15's on-disk structures (little-endian, as on x86-64):
 *
 * - WAL: `XLogPageHeaderData` at every 8 KiB page (the long form on the segment's first page),
 *   `XLogRecord` headers, `XLogRecordBlockHeader`s with `RelFileNode` and block number, full-page
 *   images with or without their hole, main data; records 8-byte aligned and split across pages
 *   with `XLP_FIRST_IS_CONTRECORD` and `xlp_rem_len`, as the WAL writer does.
 * - Heap pages: `PageHeaderData`, the `ItemIdData` line-pointer array, free space (zeros) in the
 *   middle and `HeapTupleHeaderData` + row data packed from the end of the page downwards.
 *
 * @module
 */

import { prng } from "../../test/codec/_data.ts";

/** PostgreSQL's page size, for heap and WAL pages alike. */
export const BLCKSZ = 8192;
/** The default WAL segment size. */
export const WAL_SEGMENT_SIZE = 16 * 1024 * 1024;
/** `XLOG_PAGE_MAGIC` of PostgreSQL 15. */
export const XLOG_PAGE_MAGIC_PG15 = 0xd110;

/* ------------------------------------------------------------------------------------------ */
/* PRNG                                                                                       */
/* ------------------------------------------------------------------------------------------ */

/** The tests' seeded PRNG (mulberry32), with helpers for picking values. */
export class Prng {
  /** The next 32-bit unsigned value. */
  readonly next: () => number;

  constructor(seed: number) {
    this.next = prng(seed);
  }

  /** An integer in `0 .. n-1` (n at most 2^32). */
  below(n: number): number {
    return Math.floor((this.next() * n) / 4294967296);
  }

  /** An integer in `low .. high`, both included. */
  between(low: number, high: number): number {
    return low + this.below(high - low + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p * 4294967296;
  }

  /** One element of `items`, uniformly. */
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }

  /** Writes `length` pseudo-random bytes at `bytes[at..]`. */
  fill(bytes: Uint8Array, at: number, length: number): void {
    let i = 0;
    for (; i + 4 <= length; i += 4) {
      const v = this.next();
      bytes[at + i] = v;
      bytes[at + i + 1] = v >>> 8;
      bytes[at + i + 2] = v >>> 16;
      bytes[at + i + 3] = v >>> 24;
    }
    for (; i < length; i++) bytes[at + i] = this.next();
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Little-endian field writers                                                                */
/* ------------------------------------------------------------------------------------------ */

/** Writes a non-negative integer below 2^53 as a little-endian int64. */
export function setUint64(view: DataView, at: number, value: number): void {
  view.setUint32(at, value % 4294967296, true);
  view.setUint32(at + 4, Math.floor(value / 4294967296), true);
}

/** Rounds up to PostgreSQL's MAXALIGN (8 bytes). */
export function maxAlign(n: number): number {
  return (n + 7) & ~7;
}

/** Writes a short (1-byte header) varlena holding `payload`; returns the offset after it. */
function writeShortVarlena(bytes: Uint8Array, at: number, payload: Uint8Array): number {
  bytes[at] = ((payload.length + 1) << 1) | 1;
  bytes.set(payload, at + 1);
  return at + 1 + payload.length;
}

/**
 * Writes `cents / 100` as a short-format `numeric` varlena (base-10000 digits, display scale 2,
 * trailing zero digits stripped, as PostgreSQL stores it); returns the offset after it.
 */
function writeNumericCents(bytes: Uint8Array, view: DataView, at: number, cents: number): number {
  const whole = Math.floor(cents / 100);
  const fraction = (cents % 100) * 100;
  const digits: number[] = [];
  let weight = -1;
  if (whole >= 10000) {
    digits.push(Math.floor(whole / 10000), whole % 10000);
    weight = 1;
  } else if (whole > 0) {
    digits.push(whole);
    weight = 0;
  }
  if (fraction !== 0) digits.push(fraction);
  const NUMERIC_SHORT = 0x8000;
  const DSCALE_2 = 2 << 7;
  const weightBits = weight < 0 ? 0x40 | (weight & 0x3f) : weight;
  const length = 1 + 2 + 2 * digits.length;
  bytes[at] = (length << 1) | 1;
  view.setUint16(at + 1, NUMERIC_SHORT | DSCALE_2 | weightBits, true);
  for (let i = 0; i < digits.length; i++) view.setUint16(at + 3 + 2 * i, digits[i], true);
  return at + length;
}

/* ------------------------------------------------------------------------------------------ */
/* Rows of a typical table                                                                    */
/* ------------------------------------------------------------------------------------------ */

const ENCODER = new TextEncoder();
const encodeAll = (words: string[]) => words.map((word) => ENCODER.encode(word));
const STATUSES = encodeAll(["pending", "paid", "paid", "shipped", "shipped", "delivered"]);
const CURRENCIES = encodeAll(["EUR", "EUR", "EUR", "USD", "USD", "GBP", "CHF", "SEK"]);
const IN_STORE = ENCODER.encode("store");
const CHANNELS = [...encodeAll(["web", "web", "web", "mobile", "mobile", "api"]), IN_STORE];
const CITIES = encodeAll([
  "Berlin",
  "Hamburg",
  "Munich",
  "Cologne",
  "Frankfurt",
  "Paris",
  "Lyon",
  "Marseille",
  "London",
  "Manchester",
  "Amsterdam",
  "Rotterdam",
  "Brussels",
  "Vienna",
  "Zurich",
  "Geneva",
  "Madrid",
  "Barcelona",
  "Lisbon",
  "Milan",
  "Rome",
  "Stockholm",
  "Copenhagen",
  "Oslo",
  "Warsaw",
  "Prague",
]);
const VOCABULARY = [
  "gift",
  "wrap",
  "express",
  "fragile",
  "leave",
  "at",
  "door",
  "call",
  "before",
  "delivery",
  "second",
  "floor",
  "invoice",
  "requested",
  "back",
  "order",
];

/** Short notes made from the vocabulary, encoded once. */
function buildNotes(rng: Prng, count: number): Uint8Array[] {
  const notes: Uint8Array[] = [];
  while (notes.length < count) {
    const words: string[] = [];
    for (let n = rng.between(2, 6); n > 0; n--) words.push(rng.pick(VOCABULARY));
    notes.push(ENCODER.encode(words.join(" ")));
  }
  return notes;
}

const FIRST_NAMES = ["anna", "ben", "clara", "david", "emma", "felix", "greta", "hugo", "ida"];
const LAST_NAMES = ["schmidt", "meyer", "weber", "wagner", "becker", "hoffmann", "koch", "wolf"];
const MAIL_DOMAINS = ["example.com", "mail.example.org", "shop.example.net"];

/** Customers' e-mail addresses and cities, one per account id modulo the pool size. */
function buildCustomers(rng: Prng, count: number): { emails: Uint8Array[]; cities: Uint8Array[] } {
  const emails: Uint8Array[] = [];
  const cities: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const name = `${rng.pick(FIRST_NAMES)}.${rng.pick(LAST_NAMES)}${rng.below(100)}`;
    emails.push(ENCODER.encode(`${name}@${rng.pick(MAIL_DOMAINS)}`));
    cities.push(rng.pick(CITIES));
  }
  return { emails, cities };
}

/** Microseconds from 2000-01-01 (PostgreSQL's epoch) to 2024-05-01. */
export const PG_MICROS_2024 = 767_750_400_000_000;
/** `t_infomask2` of a row: its number of attributes. */
export const ORDER_ATTRIBUTES = 14;
/** Longest row data {@linkcode OrderRows.write} produces (without the tuple header). */
export const ORDER_ROW_MAX = 224;

/** {@linkcode OrderRows.nullBitmap} of a row without NULLs. */
export const ALL_ATTRIBUTES_PRESENT = (1 << ORDER_ATTRIBUTES) - 1;
const EXTERNAL_REF_ATTRIBUTE = 8;
const NOTE_ATTRIBUTE = 13;
const ACCOUNT_COUNT = 5000;
const CUSTOMER_POOL = 509;
const PRODUCT_COUNT = 800;

/**
 * Rows of a synthetic `orders` table, one after another: `id bigserial`, `account_id int`,
 * `product_id int` (popular products more often), `created_at`/`updated_at timestamptz`,
 * `quantity smallint`, `status text` (a short enum-like word), `amount numeric(10,2)` (the
 * product's price times the quantity), `external_ref uuid` (random), `currency`, `channel`
 * (`text` from small sets), the customer's `email` and `shipping_city` (`text`, repeating with
 * the account) and `note text` (a few words from a small vocabulary). `external_ref` is NULL for
 * in-store orders and `note` is often NULL: see {@linkcode OrderRows.nullBitmap}.
 */
export class OrderRows {
  readonly #rng: Prng;
  readonly #notes: Uint8Array[];
  readonly #emails: Uint8Array[];
  readonly #cities: Uint8Array[];
  readonly #pricesCents: number[] = [];
  /** `id` of the next row. */
  nextId: number;
  /** `created_at` of the latest row, in microseconds since 2000-01-01. */
  clockMicros: number;
  /**
   * The null bitmap (`t_bits`) of the last row written: bit i set when attribute i+1 is present;
   * {@linkcode ALL_ATTRIBUTES_PRESENT} when the row has no NULLs (and then no bitmap).
   */
  nullBitmap = ALL_ATTRIBUTES_PRESENT;

  constructor(rng: Prng, firstId = 1, clockMicros = PG_MICROS_2024) {
    this.#rng = rng;
    const setup = new Prng(rng.next());
    this.#notes = buildNotes(setup, 48);
    const customers = buildCustomers(setup, CUSTOMER_POOL);
    this.#emails = customers.emails;
    this.#cities = customers.cities;
    for (let i = 0; i < PRODUCT_COUNT; i++) {
      this.#pricesCents.push(
        setup.chance(0.5) ? setup.between(1, 99) * 100 : setup.between(99, 25_000),
      );
    }
    this.nextId = firstId;
    this.clockMicros = clockMicros;
  }

  /**
   * Writes the data of the next row at `at` (which must be 8-byte aligned, as tuple data is) and
   * returns its length. The columns follow PostgreSQL's alignment rules.
   */
  write(bytes: Uint8Array, view: DataView, at: number): number {
    const rng = this.#rng;
    this.clockMicros += rng.below(40_000);
    const account = 1 + rng.below(ACCOUNT_COUNT);
    // Squaring a uniform value makes low product ids (the popular ones) more frequent.
    const product = Math.floor(PRODUCT_COUNT * (rng.next() / 4294967296) ** 2);
    const quantity = rng.chance(0.7) ? 1 : rng.between(2, 12);
    setUint64(view, at, this.nextId++);
    view.setUint32(at + 8, account, true);
    view.setUint32(at + 12, 1 + product, true);
    setUint64(view, at + 16, this.clockMicros);
    setUint64(view, at + 24, this.clockMicros + (rng.chance(0.3) ? rng.below(3_600_000_000) : 0));
    view.setUint16(at + 32, quantity, true);
    let p = writeShortVarlena(bytes, at + 34, rng.pick(STATUSES));
    p = writeNumericCents(bytes, view, p, this.#pricesCents[product] * quantity);
    const channel = rng.pick(CHANNELS);
    let nulls = ALL_ATTRIBUTES_PRESENT;
    if (channel === IN_STORE) {
      nulls &= ~(1 << EXTERNAL_REF_ATTRIBUTE);
    } else {
      rng.fill(bytes, p, 16);
      p += 16;
    }
    p = writeShortVarlena(bytes, p, rng.pick(CURRENCIES));
    p = writeShortVarlena(bytes, p, channel);
    p = writeShortVarlena(bytes, p, this.#emails[account % CUSTOMER_POOL]);
    p = writeShortVarlena(bytes, p, this.#cities[account % CUSTOMER_POOL]);
    if (rng.chance(0.4)) {
      nulls &= ~(1 << NOTE_ATTRIBUTE);
    } else {
      p = writeShortVarlena(bytes, p, rng.pick(this.#notes));
    }
    this.nullBitmap = nulls;
    return p - at;
  }

  /** Writes new values for the columns an order-status update changes; returns their length. */
  writeStatusChange(bytes: Uint8Array, view: DataView, at: number): number {
    const rng = this.#rng;
    setUint64(view, at, this.clockMicros + rng.below(1_000_000));
    view.setUint16(at + 8, rng.chance(0.7) ? 1 : rng.between(2, 12), true);
    return writeShortVarlena(bytes, at + 10, rng.pick(STATUSES)) - at;
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Heap and B-tree pages                                                                      */
/* ------------------------------------------------------------------------------------------ */

/** Size of `PageHeaderData`. */
export const PAGE_HEADER_SIZE = 24;
/** Size of `HeapTupleHeaderData` with no null bitmap, MAXALIGNed (`t_hoff`). */
export const HEAP_TUPLE_HEADER_SIZE = 24;
/** Offset of `t_bits`, the null bitmap, in `HeapTupleHeaderData`. */
const T_BITS_OFFSET = 23;
const HEAP_HASNULL = 0x0001;
const LP_NORMAL = 1;
const PD_ALL_VISIBLE = 0x0004;
const PAGE_SIZE_VERSION = BLCKSZ | 4;
const HEAP_HASVARWIDTH = 0x0002;
const HEAP_XMIN_COMMITTED = 0x0100;
const HEAP_XMIN_FROZEN = 0x0300;
const HEAP_XMAX_INVALID = 0x0800;

/** Where a page sits and what its header says. */
export interface PageStamp {
  /** Block number of the page in its relation. */
  block: number;
  /** `pd_lsn`: the LSN of the last WAL record that changed the page. */
  lsn: number;
}

/** Writes `PageHeaderData`. */
function writePageHeader(
  view: DataView,
  base: number,
  stamp: PageStamp,
  lower: number,
  upper: number,
  special: number,
  flags: number,
): void {
  view.setUint32(base, Math.floor(stamp.lsn / 4294967296), true);
  view.setUint32(base + 4, stamp.lsn % 4294967296, true);
  view.setUint16(base + 8, 0, true); // pd_checksum: data checksums off (initdb's default)
  view.setUint16(base + 10, flags, true);
  view.setUint16(base + 12, lower, true);
  view.setUint16(base + 14, upper, true);
  view.setUint16(base + 16, special, true);
  view.setUint16(base + 18, PAGE_SIZE_VERSION, true);
  view.setUint32(base + 20, 0, true); // pd_prune_xid
}

/** Writes an `ItemIdData` (LP_NORMAL) for a tuple at page offset `offset` of `length` bytes. */
function writeLinePointer(view: DataView, at: number, offset: number, length: number): void {
  view.setUint32(at, (offset | (LP_NORMAL << 15) | (length << 17)) >>> 0, true);
}

/** `t_hoff` of an `orders` tuple: the header, the null bitmap if any, MAXALIGNed. */
export function orderTupleHeaderSize(nullBitmap: number): number {
  if (nullBitmap === ALL_ATTRIBUTES_PRESENT) return HEAP_TUPLE_HEADER_SIZE;
  return maxAlign(T_BITS_OFFSET + Math.ceil(ORDER_ATTRIBUTES / 8));
}

/** `t_infomask` of a live `orders` tuple whose inserting transaction is known committed. */
function orderInfomask(nullBitmap: number, frozen: boolean): number {
  const committed = frozen ? HEAP_XMIN_FROZEN : HEAP_XMIN_COMMITTED;
  const hasNull = nullBitmap === ALL_ATTRIBUTES_PRESENT ? 0 : HEAP_HASNULL;
  return HEAP_HASVARWIDTH | hasNull | committed | HEAP_XMAX_INVALID;
}

/** Writes the null bitmap at `t_bits`, if the row has NULLs. */
function writeNullBitmap(bytes: Uint8Array, tBits: number, nullBitmap: number): void {
  if (nullBitmap === ALL_ATTRIBUTES_PRESENT) return;
  bytes[tBits] = nullBitmap & 0xff;
  bytes[tBits + 1] = nullBitmap >>> 8;
}

/** Tuple identity and visibility for {@linkcode writeHeapTupleHeader}. */
interface TupleStamp {
  xmin: number;
  block: number;
  offset: number;
  frozen: boolean;
  nullBitmap: number;
}

/** Writes `HeapTupleHeaderData` for a committed, live tuple at (block, offset). */
function writeHeapTupleHeader(
  bytes: Uint8Array,
  view: DataView,
  at: number,
  { xmin, block, offset, frozen, nullBitmap }: TupleStamp,
): void {
  view.setUint32(at, xmin, true); // t_xmin
  view.setUint32(at + 4, 0, true); // t_xmax
  view.setUint32(at + 8, 0, true); // t_cid
  view.setUint16(at + 12, block >>> 16, true); // t_ctid: points at itself
  view.setUint16(at + 14, block & 0xffff, true);
  view.setUint16(at + 16, offset, true);
  view.setUint16(at + 18, ORDER_ATTRIBUTES, true); // t_infomask2
  view.setUint16(at + 20, orderInfomask(nullBitmap, frozen), true);
  bytes[at + 22] = orderTupleHeaderSize(nullBitmap); // t_hoff
  writeNullBitmap(bytes, at + T_BITS_OFFSET, nullBitmap);
}

/** Options for {@linkcode HeapPageWriter.write}. */
export interface HeapPageOptions extends PageStamp {
  /** Free bytes to leave between the line pointers and the tuples, beyond what is left over. */
  reserve: number;
  /** `t_xmin` of the page's first tuple; later tuples get the same or slightly later ids. */
  xmin: number;
  /** Whether the tuples are frozen and the page is all-visible (old data). */
  frozen: boolean;
}

/**
 * Fills heap pages with consecutive rows. A row that does not fit on a page is kept and starts the
 * next page, so ids run on without gaps.
 */
export class HeapPageWriter {
  readonly #rows: OrderRows;
  readonly #rng: Prng;
  readonly #row = new Uint8Array(ORDER_ROW_MAX + 8);
  readonly #rowView = new DataView(this.#row.buffer);
  #pendingLength = 0;
  #pendingNulls = ALL_ATTRIBUTES_PRESENT;

  constructor(rows: OrderRows, rng: Prng) {
    this.#rows = rows;
    this.#rng = rng;
  }

  /**
   * Writes a heap page at `bytes[base..base+8192)`, which must be zero-filled. Returns
   * `pd_lower` and `pd_upper`: the hole between them is free space.
   */
  write(
    bytes: Uint8Array,
    view: DataView,
    base: number,
    page: HeapPageOptions,
  ): { lower: number; upper: number } {
    let lower = PAGE_HEADER_SIZE;
    let upper = BLCKSZ;
    let xmin = page.xmin;
    for (let offset = 1;; offset++) {
      if (this.#pendingLength === 0) {
        this.#pendingLength = this.#rows.write(this.#row, this.#rowView, 0);
        this.#pendingNulls = this.#rows.nullBitmap;
      }
      const nullBitmap = this.#pendingNulls;
      const headerSize = orderTupleHeaderSize(nullBitmap);
      const tupleLength = headerSize + this.#pendingLength;
      const start = upper - maxAlign(tupleLength);
      if (start < lower + 4 + page.reserve) break;
      const { block, frozen } = page;
      writeHeapTupleHeader(bytes, view, base + start, { xmin, block, offset, frozen, nullBitmap });
      bytes.set(this.#row.subarray(0, this.#pendingLength), base + start + headerSize);
      writeLinePointer(view, base + lower, start, tupleLength);
      this.#pendingLength = 0;
      lower += 4;
      upper = start;
      if (this.#rng.chance(0.3)) xmin++;
    }
    writePageHeader(view, base, page, lower, upper, BLCKSZ, page.frozen ? PD_ALL_VISIBLE : 0);
    return { lower, upper };
  }
}

/** Size of `BTPageOpaqueData`, the B-tree special space at the end of each index page. */
const BTREE_SPECIAL_SIZE = 16;
const BTP_LEAF = 1;
/** An index tuple with an int8 key: `IndexTupleData` (8 bytes) + the key. */
const BTREE_INT8_TUPLE_SIZE = 16;

/** Options for {@linkcode writeBtreeLeafPage}. */
export interface BtreeLeafOptions extends PageStamp {
  /** Key of the first tuple; the keys ascend from it. */
  firstKey: number;
  /** Fraction of the page the tuples fill, 0.5 .. 1 for a B-tree after splits. */
  fill: number;
}

/**
 * Writes a B-tree leaf page of an int8 index at `view[base..base+8192)` (zero-filled): sorted
 * keys pointing at heap tuples, free space, and the special space. Returns `pd_lower`/`pd_upper`.
 */
export function writeBtreeLeafPage(
  view: DataView,
  base: number,
  rng: Prng,
  page: BtreeLeafOptions,
): { lower: number; upper: number } {
  const special = BLCKSZ - BTREE_SPECIAL_SIZE;
  const capacity = Math.floor((special - PAGE_HEADER_SIZE) / (BTREE_INT8_TUPLE_SIZE + 4));
  const count = Math.floor(capacity * page.fill);
  let lower = PAGE_HEADER_SIZE;
  let upper = special;
  let key = page.firstKey;
  let heapBlock = Math.floor(key / 60);
  for (let i = 0; i < count; i++) {
    upper -= BTREE_INT8_TUPLE_SIZE;
    const at = base + upper;
    if (rng.chance(0.05)) heapBlock += 1 + rng.below(3);
    view.setUint16(at, heapBlock >>> 16, true);
    view.setUint16(at + 2, heapBlock & 0xffff, true);
    view.setUint16(at + 4, 1 + rng.below(60), true);
    view.setUint16(at + 6, BTREE_INT8_TUPLE_SIZE, true); // t_info: size, no nulls
    setUint64(view, at + 8, key);
    key += 1 + (rng.chance(0.1) ? rng.below(20) : 0);
    writeLinePointer(view, base + lower, upper, BTREE_INT8_TUPLE_SIZE);
    lower += 4;
  }
  view.setUint32(base + special, page.block > 0 ? page.block - 1 : 0, true); // btpo_prev
  view.setUint32(base + special + 4, page.block + 1, true); // btpo_next
  view.setUint32(base + special + 8, 0, true); // btpo_level: leaf
  view.setUint16(base + special + 12, BTP_LEAF, true);
  writePageHeader(view, base, page, lower, upper, special, 0);
  return { lower, upper };
}

/* ------------------------------------------------------------------------------------------ */
/* Table files                                                                                */
/* ------------------------------------------------------------------------------------------ */

/** Options for {@linkcode tableChunks}. */
export interface TableOptions {
  /** Total size; rounded down to whole 8 KiB pages. */
  bytes: number;
  /** Size of each yielded chunk; rounded down to whole pages. Default 4 MiB. */
  chunkBytes?: number;
  /** PRNG seed. */
  seed?: number;
}

/**
 * Yields the pages of a heap table file (a typical `orders` table: see {@linkcode OrderRows}) in
 * chunks. Most pages are full; about a quarter keep 0-40% free space (deleted rows, fillfactor).
 * Older pages are frozen and all-visible. The chunk array is reused: consume each chunk (write
 * it) before asking for the next.
 */
export function* tableChunks(options: TableOptions): Generator<Uint8Array> {
  const pages = Math.floor(options.bytes / BLCKSZ);
  const pagesPerChunk = Math.max(1, Math.floor((options.chunkBytes ?? 4 * 1024 * 1024) / BLCKSZ));
  const rng = new Prng(options.seed ?? 0x7ab1e);
  const writer = new HeapPageWriter(new OrderRows(rng), rng);
  const chunk = new Uint8Array(pagesPerChunk * BLCKSZ);
  const view = new DataView(chunk.buffer);
  let lsn = 0x5_3a00_0000;
  let xmin = 10_000;
  for (let block = 0; block < pages;) {
    const count = Math.min(pagesPerChunk, pages - block);
    chunk.fill(0);
    for (let i = 0; i < count; i++, block++) {
      lsn += 8 * rng.between(1, 4000);
      xmin += rng.below(60);
      writer.write(chunk, view, i * BLCKSZ, {
        block,
        lsn,
        xmin,
        frozen: block < pages * 0.7,
        reserve: rng.chance(0.25) ? rng.below(BLCKSZ * 0.4) : 0,
      });
    }
    yield chunk.subarray(0, count * BLCKSZ);
  }
}

/** Writes chunks to a new file at `path` (replacing any file there). */
export async function writeChunks(path: string, chunks: Iterable<Uint8Array>): Promise<number> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  let total = 0;
  for (const chunk of chunks) {
    for (let at = 0; at < chunk.length;) at += await file.write(chunk.subarray(at));
    total += chunk.length;
  }
  return total;
}

/* ------------------------------------------------------------------------------------------ */
/* WAL segment                                                                                */
/* ------------------------------------------------------------------------------------------ */

const SIZE_OF_SHORT_PAGE_HEADER = 24;
const SIZE_OF_LONG_PAGE_HEADER = 40;
const XLP_FIRST_IS_CONTRECORD = 0x0001;
const XLP_LONG_HEADER = 0x0002;
const SIZE_OF_XLOG_RECORD = 24;

/** Resource managers (`RmgrId`). */
const RM_XACT = 1;
const RM_STANDBY = 8;
const RM_HEAP = 10;
const RM_BTREE = 11;
/** `xl_info` values. */
const XLOG_XACT_COMMIT = 0x00;
const XLOG_RUNNING_XACTS = 0x10;
const XLOG_HEAP_INSERT = 0x00;
const XLOG_HEAP_DELETE = 0x10;
const XLOG_HEAP_HOT_UPDATE = 0x40;
const XLOG_HEAP_INIT_PAGE = 0x80;
const XLOG_BTREE_INSERT_LEAF = 0x00;
/** `XLogRecordBlockHeader.fork_flags` bits. */
const BKPBLOCK_HAS_IMAGE = 0x10;
const BKPBLOCK_HAS_DATA = 0x20;
const BKPBLOCK_WILL_INIT = 0x40;
/** `XLogRecordBlockImageHeader.bimg_info` bits. */
const BKPIMAGE_HAS_HOLE = 0x01;
const BKPIMAGE_APPLY = 0x02;
const XLR_BLOCK_ID_DATA_SHORT = 255;
const XLR_BLOCK_ID_DATA_LONG = 254;
/** `xl_heap_update.flags`: the new tuple shares a prefix and a suffix with the old one. */
const XLH_UPDATE_PREFIX_AND_SUFFIX_FROM_OLD = 0x20 | 0x40;

/** A relation's `RelFileNode`: tablespace, database and relation file numbers. */
export type RelFileNode = readonly [spcNode: number, dbNode: number, relNode: number];

/** Options for {@linkcode generateWalSegment}. */
export interface WalSegmentOptions {
  /** PRNG seed. */
  seed?: number;
  /** LSN of the segment's first byte (a multiple of 16 MiB). */
  segmentLsn?: number;
  /** Timeline. */
  timeline?: number;
  /** Chance that the first change of a block in the segment carries a full-page image. */
  fullPageImageChance?: number;
  /**
   * Share of full-page images logged whole, free space included (as for pages registered without
   * the standard layout); the others have their hole removed, as PostgreSQL does for heap and
   * B-tree pages.
   */
  wholePageImageShare?: number;
}

/** One block reference of a WAL record. */
interface BlockReference {
  rel: RelFileNode;
  block: number;
  /** `BKPBLOCK_WILL_INIT`: the record re-initialises the page (first insert into a new page). */
  willInit: boolean;
  /** The full-page image, with its hole already removed when `holeLength` > 0. */
  image?: { bytes: Uint8Array; holeOffset: number; holeLength: number };
  /** Block data (omitted by PostgreSQL when an image is present). */
  data: Uint8Array;
}

/**
 * Lays WAL records out in a segment: 8-byte aligned, with a page header at every 8 KiB and
 * records continued across page boundaries.
 */
class WalSegmentWriter {
  readonly bytes = new Uint8Array(WAL_SEGMENT_SIZE);
  readonly #view = new DataView(this.bytes.buffer);
  readonly #segmentLsn: number;
  readonly #timeline: number;
  readonly #systemId: number;
  #pos = 0;
  /** LSN of the last record written: the next record's `xl_prev`. */
  prevLsn: number;

  constructor(segmentLsn: number, timeline: number, systemId: number) {
    this.#segmentLsn = segmentLsn;
    this.#timeline = timeline;
    this.#systemId = systemId;
    this.prevLsn = segmentLsn - 0x1a8;
  }

  /** LSN where the next record starts. */
  get nextLsn(): number {
    return this.#segmentLsn + this.#startOfNextRecord();
  }

  /** True once the segment is full. */
  get full(): boolean {
    return this.#pos >= WAL_SEGMENT_SIZE;
  }

  #startOfNextRecord(): number {
    const at = maxAlign(this.#pos);
    return at % BLCKSZ === 0 ? at + this.#pageHeaderSize(at) : at;
  }

  #pageHeaderSize(at: number): number {
    return at === 0 ? SIZE_OF_LONG_PAGE_HEADER : SIZE_OF_SHORT_PAGE_HEADER;
  }

  #writePageHeader(at: number, remaining: number): void {
    const view = this.#view;
    const info = (remaining > 0 ? XLP_FIRST_IS_CONTRECORD : 0) | (at === 0 ? XLP_LONG_HEADER : 0);
    view.setUint16(at, XLOG_PAGE_MAGIC_PG15, true);
    view.setUint16(at + 2, info, true);
    view.setUint32(at + 4, this.#timeline, true);
    setUint64(view, at + 8, this.#segmentLsn + at);
    view.setUint32(at + 16, remaining, true);
    if (at === 0) {
      setUint64(view, 24, this.#systemId);
      view.setUint32(32, WAL_SEGMENT_SIZE, true);
      view.setUint32(36, BLCKSZ, true);
    }
  }

  /** Appends a complete record (its `xl_prev` already set); the last one may run off the end. */
  append(record: Uint8Array): void {
    this.#pos = maxAlign(this.#pos);
    if (this.#pos % BLCKSZ === 0 && this.#pos < WAL_SEGMENT_SIZE) {
      this.#writePageHeader(this.#pos, 0);
      this.#pos += this.#pageHeaderSize(this.#pos);
    }
    this.prevLsn = this.#segmentLsn + this.#pos;
    let done = 0;
    while (done < record.length && this.#pos < WAL_SEGMENT_SIZE) {
      const pageEnd = (Math.floor(this.#pos / BLCKSZ) + 1) * BLCKSZ;
      const n = Math.min(record.length - done, pageEnd - this.#pos);
      this.bytes.set(record.subarray(done, done + n), this.#pos);
      this.#pos += n;
      done += n;
      if (done < record.length && this.#pos < WAL_SEGMENT_SIZE) {
        this.#writePageHeader(this.#pos, record.length - done);
        this.#pos += SIZE_OF_SHORT_PAGE_HEADER;
      }
    }
  }
}

/** Builds WAL records (header, block headers, images, block data, main data) in a scratch buffer. */
class WalRecordBuilder {
  readonly #bytes = new Uint8Array(4 * BLCKSZ);
  readonly #view = new DataView(this.#bytes.buffer);
  readonly #rng: Prng;

  constructor(rng: Prng) {
    this.#rng = rng;
  }

  /**
   * Assembles a record; the returned array aliases the scratch buffer and is valid until the
   * next call.
   */
  build(
    rmid: number,
    info: number,
    xid: number,
    prevLsn: number,
    blocks: BlockReference[],
    mainData: Uint8Array,
  ): Uint8Array {
    const bytes = this.#bytes;
    const view = this.#view;
    let at = SIZE_OF_XLOG_RECORD;
    blocks.forEach((ref, id) => {
      at = this.#blockHeader(at, id, ref);
    });
    if (mainData.length > 0 && mainData.length < 256) {
      bytes[at++] = XLR_BLOCK_ID_DATA_SHORT;
      bytes[at++] = mainData.length;
    } else if (mainData.length > 0) {
      bytes[at++] = XLR_BLOCK_ID_DATA_LONG;
      view.setUint32(at, mainData.length, true);
      at += 4;
    }
    for (const ref of blocks) {
      if (ref.image) {
        bytes.set(ref.image.bytes, at);
        at += ref.image.bytes.length;
      } else {
        bytes.set(ref.data, at);
        at += ref.data.length;
      }
    }
    bytes.set(mainData, at);
    at += mainData.length;
    view.setUint32(0, at, true); // xl_tot_len
    view.setUint32(4, xid, true);
    setUint64(view, 8, prevLsn);
    bytes[16] = info;
    bytes[17] = rmid;
    bytes[18] = 0;
    bytes[19] = 0;
    view.setUint32(20, this.#rng.next(), true); // xl_crc: stands in for the CRC-32C
    return bytes.subarray(0, at);
  }

  #blockHeader(at: number, id: number, ref: BlockReference): number {
    const bytes = this.#bytes;
    const view = this.#view;
    const hasData = !ref.image && ref.data.length > 0;
    let flags = 0; // fork 0: the main fork
    if (ref.image) flags |= BKPBLOCK_HAS_IMAGE;
    if (hasData) flags |= BKPBLOCK_HAS_DATA;
    if (ref.willInit) flags |= BKPBLOCK_WILL_INIT;
    bytes[at] = id;
    bytes[at + 1] = flags;
    view.setUint16(at + 2, hasData ? ref.data.length : 0, true);
    at += 4;
    if (ref.image) {
      const hasHole = ref.image.holeLength > 0;
      view.setUint16(at, ref.image.bytes.length, true);
      view.setUint16(at + 2, hasHole ? ref.image.holeOffset : 0, true);
      bytes[at + 4] = BKPIMAGE_APPLY | (hasHole ? BKPIMAGE_HAS_HOLE : 0);
      at += 5;
    }
    // Each of our records references one block, so the RelFileNode is always written
    // (BKPBLOCK_SAME_REL only applies to a record's second and later blocks).
    view.setUint32(at, ref.rel[0], true);
    view.setUint32(at + 4, ref.rel[1], true);
    view.setUint32(at + 8, ref.rel[2], true);
    view.setUint32(at + 12, ref.block, true);
    return at + 16;
  }
}

const DATABASE = 16384;
const TABLESPACE = 1663;
const ORDERS: RelFileNode = [TABLESPACE, DATABASE, 16437];
const ORDERS_PKEY: RelFileNode = [TABLESPACE, DATABASE, 16444];
const ORDERS_ACCOUNT_INDEX: RelFileNode = [TABLESPACE, DATABASE, 16446];
const ACCOUNTS: RelFileNode = [TABLESPACE, DATABASE, 16421];
const RELATIONS = [ORDERS, ORDERS_PKEY, ORDERS_ACCOUNT_INDEX, ACCOUNTS];

const ACCOUNT_BLOCKS = 1500;
const ACCOUNT_INDEX_LEAVES = 420;
const ROWS_PER_ORDERS_PAGE = 48;
const KEYS_PER_PKEY_LEAF = 367;
const CONCURRENT_BACKENDS = 12;

/** A record waiting to be written by one backend. */
type PendingRecord = () => void;

/**
 * A small OLTP workload on an `orders` table (with a primary key and an index on `account_id`)
 * and an `accounts` table, as WAL records: new orders (heap insert, two B-tree inserts, a HOT
 * update of the account, commit), order status changes (HOT updates of recent rows) and purges
 * of the oldest orders (deletes), from concurrent backends whose records interleave.
 */
class OltpWalWorkload {
  readonly #rng: Prng;
  readonly #segment: WalSegmentWriter;
  readonly #records: WalRecordBuilder;
  readonly #rows: OrderRows;
  /** Rows of the pages in full-page images. */
  readonly #pageRows: OrderRows;
  readonly #pages: HeapPageWriter;
  readonly #imageChance: number;
  readonly #wholePageImageShare: number;
  /** Blocks changed so far in the segment (after the first change, no more full-page images). */
  readonly #touched = new Set<number>();
  readonly #page = new Uint8Array(BLCKSZ);
  readonly #pageView = new DataView(this.#page.buffer);
  readonly #image = new Uint8Array(BLCKSZ);
  readonly #data = new Uint8Array(2 * BLCKSZ);
  readonly #dataView = new DataView(this.#data.buffer);
  readonly #main = new Uint8Array(256);
  readonly #mainView = new DataView(this.#main.buffer);
  readonly #backends: PendingRecord[][] = [];
  #nextXid = 5_000_000;
  #ordersTail = 4_000;
  #ordersTailOffset = 17;
  #ordersOldest = 120;
  #ordersOldestOffset = 1;
  #pkeyLeaf = 2_600;
  #pkeyLeafKeys = 100;

  constructor(segment: WalSegmentWriter, rng: Prng, imageChance: number, wholeShare: number) {
    this.#segment = segment;
    this.#rng = rng;
    this.#records = new WalRecordBuilder(rng);
    this.#rows = new OrderRows(rng, 4_000 * ROWS_PER_ORDERS_PAGE + 17);
    this.#pageRows = new OrderRows(new Prng(rng.next()), 1);
    this.#pages = new HeapPageWriter(this.#pageRows, rng);
    this.#imageChance = imageChance;
    this.#wholePageImageShare = wholeShare;
    for (let i = 0; i < CONCURRENT_BACKENDS; i++) this.#backends.push([]);
  }

  /** Writes records until the segment is full. */
  run(): void {
    let sinceRunningXacts = 0;
    while (!this.#segment.full) {
      const backend = this.#backends[this.#rng.below(CONCURRENT_BACKENDS)];
      if (backend.length === 0) backend.push(...this.#planTransaction());
      backend.shift()!();
      if (++sinceRunningXacts === 3000) {
        sinceRunningXacts = 0;
        this.#runningXacts();
      }
    }
  }

  /** The records of one transaction; each gets the transaction's xid when it is written. */
  #planTransaction(): PendingRecord[] {
    const xid = this.#nextXid++;
    const roll = this.#rng.below(100);
    const records: PendingRecord[] = [];
    if (roll < 70) {
      records.push(
        () => this.#insertOrder(xid),
        () => this.#insertAccountIndex(xid),
        () => this.#updateRow(xid, ACCOUNTS, this.#rng.below(ACCOUNT_BLOCKS)),
      );
    } else if (roll < 95) {
      const block = this.#ordersTail - this.#rng.below(300);
      records.push(() => this.#updateRow(xid, ORDERS, block));
    } else {
      records.push(() => this.#deleteOldestOrder(xid));
    }
    records.push(() => this.#commit(xid));
    return records;
  }

  #emit(rmid: number, info: number, xid: number, blocks: BlockReference[], main: Uint8Array) {
    const record = this.#records.build(rmid, info, xid, this.#segment.prevLsn, blocks, main);
    this.#segment.append(record);
  }

  /** A block reference, with a full-page image if this is the block's first change. */
  #reference(rel: RelFileNode, block: number, data: Uint8Array, willInit = false): BlockReference {
    const key = RELATIONS.indexOf(rel) * 2 ** 32 + block;
    const first = !this.#touched.has(key);
    this.#touched.add(key);
    const ref: BlockReference = { rel, block, willInit, data };
    if (first && !willInit && this.#rng.chance(this.#imageChance)) {
      ref.image = this.#fullPageImage(rel, block);
    }
    return ref;
  }

  #fullPageImage(rel: RelFileNode, block: number): BlockReference["image"] {
    const page = this.#page;
    page.fill(0);
    const stamp = { block, lsn: this.#segment.nextLsn - 8 * this.#rng.between(1_000, 2_000_000) };
    const isIndex = rel === ORDERS_PKEY || rel === ORDERS_ACCOUNT_INDEX;
    const { lower, upper } = isIndex
      ? writeBtreeLeafPage(this.#pageView, 0, this.#rng, {
        ...stamp,
        firstKey: block * 200,
        fill: 0.5 + 0.5 * (this.#rng.next() / 4294967296),
      })
      : this.#heapPageImage(page, this.#pageView, 0, {
        ...stamp,
        xmin: this.#nextXid - this.#rng.between(1_000, 900_000),
        frozen: false,
        reserve: this.#rng.below(BLCKSZ * 0.3),
      });
    if (this.#rng.chance(this.#wholePageImageShare)) {
      return { bytes: page, holeOffset: 0, holeLength: 0 };
    }
    this.#image.set(page.subarray(0, lower), 0);
    this.#image.set(page.subarray(upper), lower);
    return {
      bytes: this.#image.subarray(0, lower + BLCKSZ - upper),
      holeOffset: lower,
      holeLength: upper - lower,
    };
  }

  #heapPageImage(page: Uint8Array, view: DataView, base: number, options: HeapPageOptions) {
    this.#pageRows.nextId = options.block * ROWS_PER_ORDERS_PAGE + 1;
    return this.#pages.write(page, view, base, options);
  }

  /** `xl_heap_header` (t_infomask2, t_infomask, t_hoff) at `at`; returns the offset after it. */
  #heapHeader(at: number, nullBitmap: number): number {
    const infomask = orderInfomask(nullBitmap, false) & ~HEAP_XMIN_COMMITTED;
    this.#dataView.setUint16(at, ORDER_ATTRIBUTES, true);
    this.#dataView.setUint16(at + 2, infomask, true);
    this.#data[at + 4] = orderTupleHeaderSize(nullBitmap);
    return at + 5;
  }

  #insertOrder(xid: number): void {
    let newPage = false;
    if (++this.#ordersTailOffset > ROWS_PER_ORDERS_PAGE + this.#rng.below(3)) {
      this.#ordersTail++;
      this.#ordersTailOffset = 1;
      newPage = true;
    }
    // The tuple as logged: xl_heap_header, then the tuple from t_bits (offset 23) on: the null
    // bitmap if any and padding up to t_hoff, then the row.
    const scratch = 64;
    const length = this.#rows.write(this.#data, this.#dataView, scratch);
    const nullBitmap = this.#rows.nullBitmap;
    const tBits = this.#heapHeader(0, nullBitmap);
    const rowAt = tBits + orderTupleHeaderSize(nullBitmap) - T_BITS_OFFSET;
    this.#data.fill(0, tBits, rowAt);
    writeNullBitmap(this.#data, tBits, nullBitmap);
    this.#data.copyWithin(rowAt, scratch, scratch + length);
    const data = this.#data.subarray(0, rowAt + length);
    const ref = this.#reference(ORDERS, this.#ordersTail, data, newPage);
    this.#mainView.setUint16(0, this.#ordersTailOffset, true); // xl_heap_insert.offnum
    this.#main[2] = 0; // flags
    const info = XLOG_HEAP_INSERT | (newPage ? XLOG_HEAP_INIT_PAGE : 0);
    this.#emit(RM_HEAP, info, xid, [ref], this.#main.subarray(0, 3));
    this.#insertPrimaryKey(xid, this.#rows.nextId - 1);
  }

  #insertPrimaryKey(xid: number, id: number): void {
    if (++this.#pkeyLeafKeys > KEYS_PER_PKEY_LEAF) {
      this.#pkeyLeaf++;
      this.#pkeyLeafKeys = 1;
    }
    this.#indexRecord(xid, ORDERS_PKEY, this.#pkeyLeaf, id, this.#pkeyLeafKeys);
  }

  #insertAccountIndex(xid: number): void {
    const leaf = 1 + this.#rng.below(ACCOUNT_INDEX_LEAVES);
    const key = leaf * 12 + this.#rng.below(12);
    this.#indexRecord(xid, ORDERS_ACCOUNT_INDEX, leaf, key, 1 + this.#rng.below(300));
  }

  /** XLOG_BTREE_INSERT_LEAF: the index tuple as block data, the offset as main data. */
  #indexRecord(xid: number, rel: RelFileNode, leaf: number, key: number, offset: number): void {
    const view = this.#dataView;
    view.setUint16(0, this.#ordersTail >>> 16, true);
    view.setUint16(2, this.#ordersTail & 0xffff, true);
    view.setUint16(4, this.#ordersTailOffset, true);
    view.setUint16(6, BTREE_INT8_TUPLE_SIZE, true);
    setUint64(view, 8, key);
    const ref = this.#reference(rel, leaf, this.#data.subarray(0, BTREE_INT8_TUPLE_SIZE));
    this.#mainView.setUint16(0, offset, true);
    this.#emit(RM_BTREE, XLOG_BTREE_INSERT_LEAF, xid, [ref], this.#main.subarray(0, 2));
  }

  /** XLOG_HEAP_HOT_UPDATE of a row's status and timestamps, logged with prefix/suffix compression. */
  #updateRow(xid: number, rel: RelFileNode, block: number): void {
    const view = this.#dataView;
    view.setUint16(0, 1 + 24, true); // prefix length: padding byte and id .. created_at
    view.setUint16(2, 16 + this.#rng.below(40), true); // suffix: amount, uuid, note
    let at = this.#heapHeader(4, ALL_ATTRIBUTES_PRESENT);
    at += this.#rows.writeStatusChange(this.#data, view, at);
    const ref = this.#reference(rel, block, this.#data.subarray(0, at));
    const main = this.#mainView;
    const oldOffset = 1 + this.#rng.below(ROWS_PER_ORDERS_PAGE);
    main.setUint32(0, xid, true); // old_xmax
    main.setUint16(4, oldOffset, true); // old_offnum
    this.#main[6] = 0; // old_infobits_set
    this.#main[7] = XLH_UPDATE_PREFIX_AND_SUFFIX_FROM_OLD;
    main.setUint32(8, 0, true); // new_xmax
    main.setUint16(12, ROWS_PER_ORDERS_PAGE + this.#rng.between(1, 20), true); // new_offnum
    this.#emit(RM_HEAP, XLOG_HEAP_HOT_UPDATE, xid, [ref], this.#main.subarray(0, 14));
  }

  #deleteOldestOrder(xid: number): void {
    if (++this.#ordersOldestOffset > ROWS_PER_ORDERS_PAGE) {
      this.#ordersOldest++;
      this.#ordersOldestOffset = 1;
    }
    const ref = this.#reference(ORDERS, this.#ordersOldest, this.#data.subarray(0, 0));
    const main = this.#mainView;
    main.setUint32(0, xid, true); // xmax
    main.setUint16(4, this.#ordersOldestOffset, true);
    this.#main[6] = 0x10; // infobits_set: XLHL_KEYS_UPDATED
    this.#main[7] = 0; // flags
    this.#emit(RM_HEAP, XLOG_HEAP_DELETE, xid, [ref], this.#main.subarray(0, 8));
  }

  #commit(xid: number): void {
    this.#rows.clockMicros += this.#rng.below(2_000);
    setUint64(this.#mainView, 0, this.#rows.clockMicros); // xl_xact_commit.xact_time
    this.#emit(RM_XACT, XLOG_XACT_COMMIT, xid, [], this.#main.subarray(0, 8));
  }

  /** XLOG_RUNNING_XACTS, as the checkpointer and bgwriter log every few seconds. */
  #runningXacts(): void {
    const main = this.#mainView;
    const running = Math.min(CONCURRENT_BACKENDS, 1 + this.#rng.below(CONCURRENT_BACKENDS));
    main.setUint32(0, running, true); // xcnt
    main.setUint32(4, 0, true); // subxcnt
    main.setUint32(8, 0, true); // subxid_overflow (bool, padded)
    main.setUint32(12, this.#nextXid, true); // nextXid
    main.setUint32(16, this.#nextXid - running, true); // oldestRunningXid
    main.setUint32(20, this.#nextXid - 1, true); // latestCompletedXid
    for (let i = 0; i < running; i++) main.setUint32(24 + 4 * i, this.#nextXid - running + i, true);
    const length = 24 + 4 * running;
    this.#emit(RM_STANDBY, XLOG_RUNNING_XACTS, 0, [], this.#main.subarray(0, length));
  }
}

/**
 * Generates a 16 MiB PostgreSQL 15 WAL segment full of records from a busy OLTP workload (see
 * {@linkcode OltpWalWorkload}): heap inserts, HOT updates and deletes, B-tree leaf inserts,
 * commits, and full-page images of heap and B-tree pages on the first change of a block. The
 * last record runs past the end of the segment, as it usually does.
 */
export function generateWalSegment(options: WalSegmentOptions = {}): Uint8Array {
  const rng = new Prng(options.seed ?? 0x3a1);
  const segment = new WalSegmentWriter(
    options.segmentLsn ?? 0x5_3a00_0000,
    options.timeline ?? 1,
    7_345_678_901_234_567,
  );
  const workload = new OltpWalWorkload(
    segment,
    rng,
    options.fullPageImageChance ?? 0.35,
    options.wholePageImageShare ?? 0.25,
  );
  workload.run();
  return segment.bytes;
}
