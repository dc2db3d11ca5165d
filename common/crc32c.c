/* CRC-32C: see crc32c.h. The hardware path runs three independent crc32
 * streams over thirds of each large block and merges them with the
 * shift operator crc32c_shift(), because one stream is bound by the
 * instruction's 3-cycle latency. */
#include "common/crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82F63B78u

static uint32_t s_table[8][256];
static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static int s_hw;

static void s_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        s_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int k = 1; k < 8; k++)
            s_table[k][n] = (s_table[k - 1][n] >> 8) ^ s_table[0][s_table[k - 1][n] & 0xff];
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    s_hw = __builtin_cpu_supports("sse4.2");
#endif
}

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&s_once, s_init);
    const unsigned char *p = buf;
    crc = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        crc = (crc >> 8) ^ s_table[0][(crc ^ *p++) & 0xff];
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= crc; /* little-endian hosts only; see the static check below */
        crc = s_table[7][w & 0xff] ^ s_table[6][(w >> 8) & 0xff] ^ s_table[5][(w >> 16) & 0xff] ^
              s_table[4][(w >> 24) & 0xff] ^ s_table[3][(w >> 32) & 0xff] ^
              s_table[2][(w >> 40) & 0xff] ^ s_table[1][(w >> 48) & 0xff] ^ s_table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ s_table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "psod assumes a little-endian host (the wire format is little-endian)");

/* Multiply a and b modulo the CRC polynomial (bit-reflected). */
static uint32_t s_gf2_mul(uint32_t a, uint32_t b)
{
    uint32_t prod = 0;
    for (int i = 0; i < 32; i++) {
        if (a & 0x80000000u)
            prod ^= b;
        a <<= 1;
        b = b & 1 ? (b >> 1) ^ POLY : b >> 1;
    }
    return prod;
}

/* x^(8*len) mod P, the factor that moves a CRC state forward over len zero
 * bytes. Computed by square-and-multiply on x^8. */
static uint32_t s_shift_factor(size_t len)
{
    uint32_t result = 0x80000000u; /* x^0 */
    uint32_t sq = 0x00800000u;     /* x^8 */
    while (len) {
        if (len & 1)
            result = s_gf2_mul(result, sq);
        sq = s_gf2_mul(sq, sq);
        len >>= 1;
    }
    return result;
}

uint32_t crc32c_combine(uint32_t crc1, uint32_t crc2, size_t len2)
{
    return s_gf2_mul(s_shift_factor(len2), crc1) ^ crc2;
}

#if defined(__x86_64__) && defined(__GNUC__)
#define BLOCK 8192 /* bytes per stream in a 3-way block */

__attribute__((target("sse4.2"))) static uint32_t s_hw_crc(uint32_t crc, const void *buf,
                                                           size_t len)
{
    static uint32_t shift_block; /* x^(8*BLOCK) mod P, computed once */
    const unsigned char *p = buf;
    uint64_t c0 = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        c0 = __builtin_ia32_crc32qi((uint32_t)c0, *p++);
        len--;
    }
    if (len >= 3 * BLOCK && !shift_block)
        shift_block = s_shift_factor(BLOCK);
    while (len >= 3 * BLOCK) {
        uint64_t c1 = 0, c2 = 0;
        for (size_t i = 0; i < BLOCK; i += 8) {
            uint64_t a, b, d;
            memcpy(&a, p + i, 8);
            memcpy(&b, p + BLOCK + i, 8);
            memcpy(&d, p + 2 * BLOCK + i, 8);
            c0 = __builtin_ia32_crc32di(c0, a);
            c1 = __builtin_ia32_crc32di(c1, b);
            c2 = __builtin_ia32_crc32di(c2, d);
        }
        c0 = s_gf2_mul((uint32_t)c0, shift_block) ^ c1;
        c0 = s_gf2_mul((uint32_t)c0, shift_block) ^ c2;
        p += 3 * BLOCK;
        len -= 3 * BLOCK;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c0 = __builtin_ia32_crc32di(c0, w);
        p += 8;
        len -= 8;
    }
    while (len--)
        c0 = __builtin_ia32_crc32qi((uint32_t)c0, *p++);
    return ~(uint32_t)c0;
}
#endif

int crc32c_hw_available(void)
{
    pthread_once(&s_once, s_init);
    return s_hw;
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (crc32c_hw_available())
        return s_hw_crc(crc, buf, len);
#endif
    return crc32c_sw(crc, buf, len);
}
