/* VFIO plumbing for one PCI device: container + type1 IOMMU, BAR0,
 * bus mastering, IOVA allocation from the IOMMU's reported ranges, DMA
 * mapping and MSI-X eventfds. Nothing NVMe-specific lives here. */
#ifndef NVMG_PCIE_VFIO_H
#define NVMG_PCIE_VFIO_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define NVMG_VFIO_MAX_RANGES 16

struct nvmg_vfio {
	char bdf[16];
	int container, group, device;
	volatile uint8_t *bar0;
	size_t bar0_size;
	uint32_t msix_count;     /* vectors the device offers, 0 = none */
	pthread_mutex_t lock;    /* IOVA allocator */
	struct { uint64_t start, last; } ranges[NVMG_VFIO_MAX_RANGES];
	unsigned nr_ranges, cur_range;
	uint64_t next_iova;
};

/* "0000:01:00.0": the canonical sysfs form. */
int nvmg_vfio_valid_bdf(const char *bdf);
/* Opens everything; on failure err says why in user terms. */
int nvmg_vfio_open(struct nvmg_vfio *v, const char *bdf, char *err, size_t errlen);
void nvmg_vfio_close(struct nvmg_vfio *v);
/* Maps [vaddr, vaddr+len) for device reads and writes at a fresh IOVA. */
int nvmg_vfio_map(struct nvmg_vfio *v, void *vaddr, size_t len, uint64_t *iova);
int nvmg_vfio_unmap(struct nvmg_vfio *v, uint64_t iova, size_t len);
/* Routes MSI-X vectors 0..n-1 to fds (-1 leaves a vector unused); n = 0
 * turns MSI-X off. */
int nvmg_vfio_set_msix(struct nvmg_vfio *v, const int *fds, unsigned n);
/* The device-request eventfd: signalled when the kernel wants the device
 * back (hot unplug, sysfs remove); fd -1 unregisters. */
int nvmg_vfio_set_req(struct nvmg_vfio *v, int fd);
/* Gives the device up (the kernel's remove waits for this); the container
 * stays, so DMA mappings can still be torn down. */
void nvmg_vfio_release_device(struct nvmg_vfio *v);
/* Turns bus mastering off so the device can no longer DMA. */
void nvmg_vfio_bus_master(struct nvmg_vfio *v, int on);

static inline uint32_t nvmg_vfio_rd32(const struct nvmg_vfio *v, uint32_t off)
{
	return *(const volatile uint32_t *)(v->bar0 + off);
}

static inline uint64_t nvmg_vfio_rd64(const struct nvmg_vfio *v, uint32_t off)
{
	/* Two 32-bit reads: not every controller takes 64-bit accesses. */
	uint64_t lo = nvmg_vfio_rd32(v, off), hi = nvmg_vfio_rd32(v, off + 4);

	return lo | hi << 32;
}

static inline void nvmg_vfio_wr32(struct nvmg_vfio *v, uint32_t off, uint32_t val)
{
	*(volatile uint32_t *)(v->bar0 + off) = val;
}

static inline void nvmg_vfio_wr64(struct nvmg_vfio *v, uint32_t off, uint64_t val)
{
	nvmg_vfio_wr32(v, off, (uint32_t)val);
	nvmg_vfio_wr32(v, off + 4, (uint32_t)(val >> 32));
}

#endif
