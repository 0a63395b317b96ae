/* CRC32C for NVMe/TCP header and data digests (ISA-L's crc32_iscsi). */
#ifndef NVMG_CRC32C_H
#define NVMG_CRC32C_H

#include <stddef.h>
#include <stdint.h>
#include <isa-l/crc.h>

#define NVMG_CRC32C_INIT 0xffffffffu

static inline uint32_t nvmg_crc32c_update(uint32_t crc, const void *buf, size_t len)
{
	return crc32_iscsi((unsigned char *)buf, (int)len, crc);
}

static inline uint32_t nvmg_crc32c_final(uint32_t crc)
{
	return crc ^ 0xffffffffu;
}

static inline uint32_t nvmg_crc32c(const void *buf, size_t len)
{
	return nvmg_crc32c_final(nvmg_crc32c_update(NVMG_CRC32C_INIT, buf, len));
}

#endif
