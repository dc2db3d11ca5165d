/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the payload
 * checksum of the wire protocol. Uses the SSE4.2 crc32 instruction when the
 * CPU has it, else slicing-by-8 tables; both give identical results. */
#ifndef PSOD_CRC32C_H
#define PSOD_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: pass 0 to start. crc32c("123456789") == 0xE3069283. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* The CRC of A then B from crc1 = crc32c(0, A), crc2 = crc32c(0, B) and
 * B's length: how ranges checked on several threads make one CRC. */
uint32_t crc32c_combine(uint32_t crc1, uint32_t crc2, size_t len2);

/* The portable implementation, exposed so tests can compare the two. */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* 1 when crc32c() uses the hardware instruction. */
int crc32c_hw_available(void);

#endif
