/*
 * log_crc32c.c: CRC-32C (Castagnoli), the checksum of RecordBatch v2.
 *
 * Parameters (the "CRC-32C" of RFC 3720 and of Kafka's Crc32C): reflected
 * polynomial 0x82F63B78, initial value 0xFFFFFFFF, final xor 0xFFFFFFFF.
 * Check value: CRC-32C("123456789") = 0xE3069283.
 *
 * Two implementations with the same results:
 *
 *   - hardware: the SSE4.2 `crc32` instruction (8 bytes per instruction),
 *     compiled for that one function with a target attribute, so the rest
 *     of the binary keeps running on CPUs without SSE4.2 (no global
 *     -msse4.2 flag);
 *   - software: slicing-by-8 over eight 256-entry tables (8 bytes per
 *     step), the fallback and the reference the tests compare against.
 *
 * The choice is made once, on first use, under pthread_once (which also
 * builds the tables), so any thread may call these functions at any time.
 *
 * Chaining: log__crc32c(log__crc32c(0, a, n), b, m) equals the CRC of a
 * followed by b. The pre- and post-inversion happen inside each call.
 */
#include "log_int.h"

#include <pthread.h>
#include <string.h>

#define LOG__CRC32C_POLY 0x82F63B78u /* 0x1EDC6F41, bit-reflected */

static uint32_t log__crc32c_table[8][256];
static uint32_t (*log__crc32c_impl)(uint32_t, const void *, size_t);
static pthread_once_t log__crc32c_once = PTHREAD_ONCE_INIT;

static void log__crc32c_build_tables(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
      c = (c & 1) ? (c >> 1) ^ LOG__CRC32C_POLY : c >> 1;
    log__crc32c_table[0][i] = c;
  }
  /* table[k][i]: the CRC of byte i followed by k zero bytes, so that eight
   * lookups advance the CRC over eight bytes at once. */
  for (int k = 1; k < 8; k++)
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = log__crc32c_table[k - 1][i];
      log__crc32c_table[k][i] = (c >> 8) ^ log__crc32c_table[0][c & 0xff];
    }
}

static uint32_t log__crc32c_sw_nolock(uint32_t crc, const void *buf, size_t len) {
  const uint8_t *p = buf;
  const uint32_t(*t)[256] = (const uint32_t(*)[256])log__crc32c_table;
  uint32_t c = ~crc;

  while (len >= 8) {
    /* Bytes are combined explicitly in little-endian order, so the result
     * does not depend on the host's byte order. */
    uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
                       (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
    uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 |
                  (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
    c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^
        t[4][lo >> 24] ^ t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^
        t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    p += 8;
    len -= 8;
  }
  while (len-- > 0)
    c = (c >> 8) ^ t[0][(c ^ *p++) & 0xff];
  return ~c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LOG__CRC32C_HAVE_HW 1

__attribute__((target("sse4.2")))
static uint32_t log__crc32c_hw(uint32_t crc, const void *buf, size_t len) {
  const uint8_t *p = buf;
  uint32_t c = ~crc;

  /* Byte steps up to an 8-byte boundary: the 8-byte loads below are then
   * aligned (memcpy keeps them free of alignment UB either way). */
  while (len > 0 && ((uintptr_t)p & 7) != 0) {
    c = __builtin_ia32_crc32qi(c, *p++);
    len--;
  }
  uint64_t c64 = c;
  while (len >= 8) {
    uint64_t v;
    memcpy(&v, p, 8); /* x86 is little-endian, as the CRC wants */
    c64 = __builtin_ia32_crc32di(c64, v);
    p += 8;
    len -= 8;
  }
  c = (uint32_t)c64;
  while (len-- > 0)
    c = __builtin_ia32_crc32qi(c, *p++);
  return ~c;
}
#endif

static void log__crc32c_init(void) {
  log__crc32c_build_tables();
  log__crc32c_impl = log__crc32c_sw_nolock;
#ifdef LOG__CRC32C_HAVE_HW
  __builtin_cpu_init();
  if (__builtin_cpu_supports("sse4.2"))
    log__crc32c_impl = log__crc32c_hw;
#endif
}

uint32_t log__crc32c(uint32_t crc, const void *buf, size_t len) {
  pthread_once(&log__crc32c_once, log__crc32c_init);
  return log__crc32c_impl(crc, buf, len);
}

uint32_t log__crc32c_sw(uint32_t crc, const void *buf, size_t len) {
  pthread_once(&log__crc32c_once, log__crc32c_init);
  return log__crc32c_sw_nolock(crc, buf, len);
}
