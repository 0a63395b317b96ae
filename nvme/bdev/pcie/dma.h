/* DMA memory: pinned, mapped in the device's IOMMU domain. */
#ifndef NVMG_PCIE_DMA_H
#define NVMG_PCIE_DMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "nvme/bdev/pcie/vfio.h"

struct nvmg_dma {
	uint8_t *va;
	uint64_t iova;
	size_t len;
	bool huge;
};

/* Zeroed memory of at least len bytes. err names the likely cause
 * (RLIMIT_MEMLOCK) when mapping fails. */
int nvmg_dma_alloc(struct nvmg_vfio *v, size_t len, struct nvmg_dma *d, char *err, size_t errlen);
void nvmg_dma_free(struct nvmg_vfio *v, struct nvmg_dma *d);
/* 0 if this process may pin need more bytes (CAP_IPC_LOCK, or room under
 * RLIMIT_MEMLOCK beside what it pinned already); else -ENOMEM and err
 * says what is pinned and what the limit is. */
int nvmg_dma_can_pin(size_t need, char *err, size_t errlen);

static inline uint64_t nvmg_dma_iova(const struct nvmg_dma *d, const void *p)
{
	return d->iova + (uint64_t)((const uint8_t *)p - d->va);
}

#endif
