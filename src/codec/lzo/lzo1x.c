/*
 * wal-d LZO1X codec, compiled to WebAssembly by scripts/build-wasm.sh.
 *
 * Written for wal-d from the LZO1X stream format (see README.md beside this file for the format
 * notes this code follows). It is a freestanding module: no libc, fixed static buffers, no
 * allocation. JavaScript copies a block into `in_buf`, calls one of the exported functions and
 * reads the result from `out_buf`.
 *
 *  - lzo1x_compress:   greedy single-pass LZ77 with a hashed dictionary (LZO1X-1 class).
 *  - lzo1x_decompress: checks every read against the input end, every write against the caller's
 *                      capacity and every match distance against the bytes already produced, so no
 *                      input can make it read or write outside its buffers or loop forever.
 *  - adler32, crc32:   the checksums lzop uses for headers and blocks.
 */

#include <wasm_simd128.h>

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef int i32;

#define EXPORT(name) __attribute__((export_name(#name)))

/* Largest block lzop writes or reads (its block size). */
#define BLOCK_MAX 262144u
/* Worst-case LZO1X expansion of a BLOCK_MAX input. */
#define COMPRESS_BOUND (BLOCK_MAX + BLOCK_MAX / 16u + 64u + 3u)
/* Room past the logical end of each buffer, so wide (16-byte) copies never leave the buffer. */
#define SLACK 64u

/*
 * Dictionary: 16384 16-bit entries (32 KiB, resident in L1 cache), holding offsets from the start
 * of the current window. The compressor clears it at the start of every window of WINDOW bytes,
 * so every entry points at most WINDOW - 1 bytes back (always encodable) and never ahead; a
 * candidate is verified by comparing bytes, so an aliased entry only costs a missed match.
 */
#define D_BITS 14u
#define D_SIZE (1u << D_BITS)

static u8 in_buf[COMPRESS_BOUND + SLACK] __attribute__((aligned(16)));
static u8 out_buf[COMPRESS_BOUND + SLACK] __attribute__((aligned(16)));
static u16 dict[D_SIZE];

/* Error codes returned (negated) by lzo1x_decompress. Keep in sync with src/codec/lzo.ts. */
#define E_INPUT_OVERRUN 1      /* the stream ends before its end-of-stream marker */
#define E_OUTPUT_OVERRUN 2     /* the stream decodes to more bytes than the caller allows */
#define E_LOOKBEHIND_OVERRUN 3 /* a match refers to bytes before the start of the output */
#define E_INPUT_NOT_CONSUMED 4 /* bytes follow the end-of-stream marker */
#define E_BAD_ARGUMENT 5       /* lengths beyond the module's buffers */

EXPORT(in_ptr) u8 *in_ptr(void) { return in_buf; }
EXPORT(out_ptr) u8 *out_ptr(void) { return out_buf; }
EXPORT(block_max) u32 block_max(void) { return BLOCK_MAX; }
EXPORT(compress_bound) u32 compress_bound(void) { return COMPRESS_BOUND; }

static inline u32 load32(const u8 *p) {
  u32 v;
  __builtin_memcpy(&v, p, 4);
  return v;
}

static inline u64 load64(const u8 *p) {
  u64 v;
  __builtin_memcpy(&v, p, 8);
  return v;
}

static inline void copy16(u8 *d, const u8 *s) { wasm_v128_store(d, wasm_v128_load(s)); }

/* Number of equal leading bytes of a and b, comparing at most `max` bytes. */
static inline u32 common_length(const u8 *a, const u8 *b, u32 max) {
  u32 n = 0;
  while (n + 16 <= max) {
    v128_t eq = wasm_i8x16_eq(wasm_v128_load(a + n), wasm_v128_load(b + n));
    u32 mask = wasm_i8x16_bitmask(eq);
    if (mask != 0xFFFFu) return n + (u32)__builtin_ctz(~mask);
    n += 16;
  }
  while (n + 8 <= max) {
    u64 x = load64(a + n) ^ load64(b + n);
    if (x) return n + (u32)(__builtin_ctzll(x) >> 3);
    n += 8;
  }
  while (n < max && a[n] == b[n]) n++;
  return n;
}

/* ------------------------------------------------------------------------------------------ */
/* Compressor                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/* Writes a length remainder in LZO's zero-run form: each 0 byte adds 255, the final byte is 1..255. */
static inline u8 *put_length_tail(u8 *op, u32 rest) {
  while (rest > 255) {
    *op++ = 0;
    rest -= 255;
  }
  *op++ = (u8)rest;
  return op;
}

/* Emits the `count` literals at `lit`. `first` says no instruction has been written yet. */
static inline u8 *put_literals(u8 *op, const u8 *lit, u32 count, int first) {
  if (first) {
    if (count <= 238) {
      *op++ = (u8)(17 + count);
    } else {
      *op++ = 0;
      op = put_length_tail(op, count - 18);
    }
  } else if (count <= 3) {
    /* Short runs ride in the low two bits of the previous match's last-but-one byte. */
    op[-2] |= (u8)count;
  } else if (count <= 18) {
    *op++ = (u8)(count - 3);
  } else {
    *op++ = 0;
    op = put_length_tail(op, count - 18);
  }
  /* 16-byte steps may run past both ends by up to 15 bytes: both buffers have SLACK for that. */
  for (u32 i = 0; i < count; i += 16) copy16(op + i, lit + i);
  return op + count;
}

/* Emits a match of `len` (>= 3) bytes at distance `dist` (1 .. 49151). */
static inline u8 *put_match(u8 *op, u32 dist, u32 len) {
  if (len <= 8 && dist <= 2048) {
    u32 d = dist - 1;
    *op++ = (u8)(((len - 1) << 5) | ((d & 7) << 2));
    *op++ = (u8)(d >> 3);
    return op;
  }
  u32 d;
  if (dist <= 16384) {
    d = dist - 1;
    if (len <= 33) {
      *op++ = (u8)(32 | (len - 2));
    } else {
      *op++ = 32;
      op = put_length_tail(op, len - 33);
    }
  } else {
    d = dist - 16384;
    u8 high = (u8)((d >> 11) & 8);
    if (len <= 9) {
      *op++ = (u8)(16 | high | (len - 2));
    } else {
      *op++ = (u8)(16 | high);
      op = put_length_tail(op, len - 9);
    }
  }
  *op++ = (u8)(d << 2);
  *op++ = (u8)(d >> 6);
  return op;
}

/* The longest distance LZO1X encodes (M4) is 49151, so a window is 49152 bytes. */
#define WINDOW 49152u
#define MIN_MATCH 4u

/* Multiplicative (Fibonacci) hashing of 4 bytes. */
static inline u32 hash4(u32 v) { return (v * 0x9E3779B1u) >> (32u - D_BITS); }

/* Compresses in_buf[0..n) into out_buf; returns the compressed length (<= COMPRESS_BOUND). */
EXPORT(lzo1x_compress) u32 lzo1x_compress(u32 n) {
  if (n > BLOCK_MAX) return 0;
  const u8 *const in = in_buf;
  const u8 *const in_end = in + n;
  u8 *op = out_buf;
  int first = 1;
  const u8 *ii = in; /* start of the literals not yet written */

  if (n > 20) {
    /* Stop searching a little before the end: every load below stays inside the input. */
    const u8 *const ip_limit = in_end - 12;
    const u8 *ip = in + 1;
    const u8 *window = in;
    while (ip < ip_limit) {
      __builtin_memset(dict, 0, sizeof dict);
      const u8 *const window_limit = window + WINDOW < ip_limit ? window + WINDOW : ip_limit;
      while (ip < window_limit) {
        u32 seq = load32(ip);
        u32 h = hash4(seq);
        const u8 *ref = window + dict[h];
        dict[h] = (u16)(ip - window);
        if (ref == ip || load32(ref) != seq) {
          /* No match: step faster the longer the current literal run gets. */
          ip += 1 + ((u32)(ip - ii) >> 5);
          continue;
        }
        u32 len = MIN_MATCH + common_length(ip + MIN_MATCH, ref + MIN_MATCH,
                                            (u32)(in_end - ip) - MIN_MATCH);
        if (ip > ii) op = put_literals(op, ii, (u32)(ip - ii), first);
        op = put_match(op, (u32)(ip - ref), len);
        first = 0;
        ip += len;
        ii = ip;
      }
      window = ip;
    }
  }
  if (in_end > ii) op = put_literals(op, ii, (u32)(in_end - ii), first);
  /* End-of-stream marker: an M4 match with distance 0. */
  *op++ = 16 | 1;
  *op++ = 0;
  *op++ = 0;
  return (u32)(op - out_buf);
}

/* ------------------------------------------------------------------------------------------ */
/* Decompressor                                                                               */
/* ------------------------------------------------------------------------------------------ */

/* Copies a match of `len` bytes from `dist` bytes back; the destination has SLACK spare bytes. */
static inline void copy_match(u8 *op, u32 dist, u32 len) {
  const u8 *m = op - dist;
  if (dist >= 16) {
    if (len <= 64 || dist < len) {
      /* Chunks of 16 never overlap their source, since dist >= 16. */
      for (u32 i = 0; i < len; i += 16) copy16(op + i, m + i);
    } else {
      __builtin_memcpy(op, m, len);
    }
    return;
  }
  if (len <= 24) {
    for (u32 i = 0; i < len; i++) op[i] = m[i];
    return;
  }
  /* Short distance, long run: the copied region is periodic, so copy it in doubling steps. */
  while (len) {
    u32 step = (u32)(op - m);
    if (step > len) step = len;
    __builtin_memcpy(op, m, step);
    op += step;
    len -= step;
  }
}

static inline void copy_literals(u8 *op, const u8 *ip, u32 len) {
  if (len <= 32) {
    copy16(op, ip);
    if (len > 16) copy16(op + 16, ip + 16);
  } else {
    __builtin_memcpy(op, ip, len);
  }
}

#define NEED_IP(x)                                                                                 \
  do {                                                                                             \
    if ((u32)(ip_end - ip) < (u32)(x)) return -E_INPUT_OVERRUN;                                     \
  } while (0)
#define NEED_OP(x)                                                                                 \
  do {                                                                                             \
    if ((u32)(op_end - op) < (u32)(x)) return -E_OUTPUT_OVERRUN;                                    \
  } while (0)
#define NEED_LB(d)                                                                                 \
  do {                                                                                             \
    if ((u32)(op - out) < (u32)(d)) return -E_LOOKBEHIND_OVERRUN;                                   \
  } while (0)
/* Reads a zero-run length extension: each 0 adds 255, the first non-zero byte ends it. */
#define READ_LENGTH_TAIL(t, base)                                                                  \
  do {                                                                                             \
    for (;;) {                                                                                     \
      NEED_IP(1);                                                                                  \
      if (*ip != 0) break;                                                                         \
      t += 255;                                                                                    \
      ip++;                                                                                        \
    }                                                                                              \
    t += (base) + *ip++;                                                                           \
  } while (0)

/*
 * Decompresses in_buf[0..in_len) into out_buf, producing at most out_cap bytes. Returns the number
 * of bytes produced, or a negative E_* code. Every iteration consumes input, so it always ends.
 */
EXPORT(lzo1x_decompress) i32 lzo1x_decompress(u32 in_len, u32 out_cap) {
  if (in_len > COMPRESS_BOUND || out_cap > BLOCK_MAX) return -E_BAD_ARGUMENT;
  const u8 *ip = in_buf;
  const u8 *const ip_end = in_buf + in_len;
  u8 *const out = out_buf;
  u8 *op = out;
  u8 *const op_end = out + out_cap;
  u32 t, dist, len;

  NEED_IP(1);
  if (*ip > 17) {
    t = (u32)(*ip++) - 17;
    if (t < 4) goto match_next;
    NEED_OP(t);
    NEED_IP(t + 1);
    copy_literals(op, ip, t);
    op += t;
    ip += t;
    goto first_literal_run;
  }

  for (;;) {
    NEED_IP(1);
    t = *ip++;
    if (t >= 16) goto match;
    /* A literal run of t + 3 bytes. */
    if (t == 0) READ_LENGTH_TAIL(t, 15);
    t += 3;
    NEED_OP(t);
    NEED_IP(t + 1);
    copy_literals(op, ip, t);
    op += t;
    ip += t;

  first_literal_run:
    t = *ip++;
    if (t >= 16) goto match;
    /* After a literal run, a code below 16 is a 3-byte match 2049..3072 bytes back. */
    NEED_IP(1);
    dist = 1 + 0x0800 + (t >> 2) + ((u32)(*ip++) << 2);
    NEED_LB(dist);
    NEED_OP(3);
    op[0] = op[-(i32)dist];
    op[1] = op[1 - (i32)dist];
    op[2] = op[2 - (i32)dist];
    op += 3;
    goto match_done;

    for (;;) {
    match:
      if (t >= 64) {
        /* M2: 3..8 bytes, 1..2048 back. */
        NEED_IP(1);
        dist = 1 + ((t >> 2) & 7) + ((u32)(*ip++) << 3);
        len = (t >> 5) + 1;
      } else if (t >= 32) {
        /* M3: 1..16384 back. */
        t &= 31;
        if (t == 0) READ_LENGTH_TAIL(t, 31);
        NEED_IP(2);
        dist = 1 + (((u32)ip[0] | ((u32)ip[1] << 8)) >> 2);
        ip += 2;
        len = t + 2;
      } else if (t >= 16) {
        /* M4: 16385..49151 back; distance 16384 with no offset bits marks the end. */
        dist = (t & 8) << 11;
        t &= 7;
        if (t == 0) READ_LENGTH_TAIL(t, 7);
        NEED_IP(2);
        dist += ((u32)ip[0] | ((u32)ip[1] << 8)) >> 2;
        ip += 2;
        if (dist == 0) goto eof_found;
        dist += 0x4000;
        len = t + 2;
      } else {
        /* M1 after a match's trailing literals: 2 bytes, 1..1024 back. */
        NEED_IP(1);
        dist = 1 + (t >> 2) + ((u32)(*ip++) << 2);
        len = 2;
      }
      NEED_LB(dist);
      NEED_OP(len);
      copy_match(op, dist, len);
      op += len;

    match_done:
      t = ip[-2] & 3;
      if (t == 0) break;
    match_next:
      /* 1..3 literals follow the match, then another match. */
      NEED_OP(t);
      NEED_IP(t + 1);
      op[0] = ip[0];
      if (t > 1) op[1] = ip[1];
      if (t > 2) op[2] = ip[2];
      op += t;
      ip += t;
      t = *ip++;
    }
  }

eof_found:
  if (ip != ip_end) return -E_INPUT_NOT_CONSUMED;
  return (i32)(op - out);
}

/* ------------------------------------------------------------------------------------------ */
/* Checksums                                                                                  */
/* ------------------------------------------------------------------------------------------ */

#define ADLER_BASE 65521u
/* Bytes per reduction: keeps the 32-bit lane sums below 2^32 (see the bound in README.md). */
#define ADLER_CHUNK 4096u

EXPORT(adler32) u32 adler32(u32 adler, const u8 *p, u32 len) {
  u32 s1 = adler & 0xFFFFu;
  u32 s2 = adler >> 16;
  const v128_t weights_lo = wasm_i16x8_make(16, 15, 14, 13, 12, 11, 10, 9);
  const v128_t weights_hi = wasm_i16x8_make(8, 7, 6, 5, 4, 3, 2, 1);
  while (len >= 16) {
    u32 n = len < ADLER_CHUNK ? (len & ~15u) : ADLER_CHUNK;
    len -= n;
    v128_t v_s1 = wasm_i32x4_splat(0);
    v128_t v_prefix = wasm_i32x4_splat(0);
    v128_t v_s2 = wasm_i32x4_splat(0);
    u64 blocks = n / 16;
    const u8 *end = p + n;
    while (p < end) {
      v128_t bytes = wasm_v128_load(p);
      v_prefix = wasm_i32x4_add(v_prefix, v_s1);
      v128_t lo = wasm_u16x8_extend_low_u8x16(bytes);
      v128_t hi = wasm_u16x8_extend_high_u8x16(bytes);
      v_s1 = wasm_i32x4_add(v_s1, wasm_u32x4_extadd_pairwise_u16x8(wasm_i16x8_add(lo, hi)));
      v_s2 = wasm_i32x4_add(v_s2, wasm_i32x4_dot_i16x8(lo, weights_lo));
      v_s2 = wasm_i32x4_add(v_s2, wasm_i32x4_dot_i16x8(hi, weights_hi));
      p += 16;
    }
    u64 sum1 = (u64)wasm_u32x4_extract_lane(v_s1, 0) + wasm_u32x4_extract_lane(v_s1, 1) +
               wasm_u32x4_extract_lane(v_s1, 2) + wasm_u32x4_extract_lane(v_s1, 3);
    u64 prefix = (u64)wasm_u32x4_extract_lane(v_prefix, 0) + wasm_u32x4_extract_lane(v_prefix, 1) +
                 wasm_u32x4_extract_lane(v_prefix, 2) + wasm_u32x4_extract_lane(v_prefix, 3);
    u64 weighted = (u64)wasm_u32x4_extract_lane(v_s2, 0) + wasm_u32x4_extract_lane(v_s2, 1) +
                   wasm_u32x4_extract_lane(v_s2, 2) + wasm_u32x4_extract_lane(v_s2, 3);
    u64 new_s2 = (u64)s2 + blocks * 16 * (u64)s1 + 16 * prefix + weighted;
    s1 = (u32)(((u64)s1 + sum1) % ADLER_BASE);
    s2 = (u32)(new_s2 % ADLER_BASE);
  }
  while (len--) {
    s1 += *p++;
    s2 += s1;
  }
  s1 %= ADLER_BASE;
  s2 %= ADLER_BASE;
  return (s2 << 16) | s1;
}

static u32 crc_table[4][256];
static int crc_ready = 0;

static void crc_init(void) {
  for (u32 i = 0; i < 256; i++) {
    u32 c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    crc_table[0][i] = c;
  }
  for (u32 i = 0; i < 256; i++) {
    u32 c = crc_table[0][i];
    for (int k = 1; k < 4; k++) {
      c = crc_table[0][c & 0xFF] ^ (c >> 8);
      crc_table[k][i] = c;
    }
  }
  crc_ready = 1;
}

/* CRC-32 (ISO-HDLC, as zlib and lzop compute it); `crc` is the running value, 0 to start. */
EXPORT(crc32) u32 crc32(u32 crc, const u8 *p, u32 len) {
  if (!crc_ready) crc_init();
  u32 c = ~crc;
  while (len >= 4) {
    c ^= load32(p);
    c = crc_table[3][c & 0xFF] ^ crc_table[2][(c >> 8) & 0xFF] ^ crc_table[1][(c >> 16) & 0xFF] ^
        crc_table[0][c >> 24];
    p += 4;
    len -= 4;
  }
  while (len--) c = crc_table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
  return ~c;
}
