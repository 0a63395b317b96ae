/* Hugepages when the system has them (fewer IOMMU entries, no THP
 * migration), else locked anonymous memory. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>
#include "nvme/bdev/pcie/dma.h"

#define HUGE_2M (2ul << 20)

int nvmg_dma_alloc(struct nvmg_vfio *v, size_t len, struct nvmg_dma *d, char *err, size_t errlen)
{
	struct rlimit rl;
	int ret;

	memset(d, 0, sizeof(*d));
	d->len = (len + HUGE_2M - 1) & ~(HUGE_2M - 1);
	d->va = mmap(NULL, d->len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
	if (d->va != MAP_FAILED) {
		d->huge = true;
	} else {
		d->len = (len + 4095) & ~(size_t)4095;
		d->va = mmap(NULL, d->len, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (d->va == MAP_FAILED) {
			d->va = NULL;
			snprintf(err, errlen, "cannot allocate %zu bytes of DMA memory", len);
			return -ENOMEM;
		}
		/* No fork() may share these pages copy-on-write with us. */
		madvise(d->va, d->len, MADV_DONTFORK);
	}
	/* MAP_DMA pins the pages itself (and counts them against
	 * RLIMIT_MEMLOCK); it fails with ENOMEM when the limit is too low. */
	ret = nvmg_vfio_map(v, d->va, d->len, &d->iova);
	if (ret) {
		if (ret == -ENOMEM && !getrlimit(RLIMIT_MEMLOCK, &rl) && rl.rlim_cur != RLIM_INFINITY)
			snprintf(err, errlen,
				 "VFIO_IOMMU_MAP_DMA of %zu KiB: locked-memory limit too low "
				 "(RLIMIT_MEMLOCK %llu KiB; raise it, e.g. ulimit -l unlimited or "
				 "LimitMEMLOCK=infinity)", d->len >> 10, (unsigned long long)rl.rlim_cur >> 10);
		else
			snprintf(err, errlen, "VFIO_IOMMU_MAP_DMA of %zu KiB: %s", d->len >> 10,
				 strerror(-ret));
		munmap(d->va, d->len);
		d->va = NULL;
		return ret;
	}
	return 0;
}

void nvmg_dma_free(struct nvmg_vfio *v, struct nvmg_dma *d)
{
	if (!d->va)
		return;
	nvmg_vfio_unmap(v, d->iova, d->len);
	munmap(d->va, d->len);
	d->va = NULL;
}

static bool has_ipc_lock(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &h, d))
		return false;
	return d[CAP_TO_INDEX(CAP_IPC_LOCK)].effective & CAP_TO_MASK(CAP_IPC_LOCK);
}

/* VFIO counts pinned pages in the process's locked_vm: VmLck. */
static unsigned long long locked_kib(void)
{
	unsigned long long kib = 0;
	char line[128];
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %llu kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

int nvmg_dma_can_pin(size_t need, char *err, size_t errlen)
{
	unsigned long long lim, used;
	struct rlimit rl;

	if (has_ipc_lock() || getrlimit(RLIMIT_MEMLOCK, &rl) || rl.rlim_cur == RLIM_INFINITY)
		return 0;
	need = (need + HUGE_2M - 1) & ~(HUGE_2M - 1); /* as nvmg_dma_alloc on hugepages */
	lim = rl.rlim_cur >> 10;
	used = locked_kib();
	if (used + (need >> 10) <= lim)
		return 0;
	snprintf(err, errlen,
		 "locked-memory limit too low: an I/O queue pins %zu KiB of DMA memory, "
		 "RLIMIT_MEMLOCK is %llu KiB with %llu KiB pinned already; raise it, e.g. "
		 "ulimit -l unlimited or LimitMEMLOCK=infinity", need >> 10, lim, used);
	return -ENOMEM;
}
