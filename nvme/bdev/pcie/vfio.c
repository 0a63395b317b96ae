/* VFIO type1 access to one PCI device. */
#include <dirent.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include "nvme/bdev/pcie/vfio.h"

/* x86's interrupt window: a DMA write there is an MSI, never data. */
#define MSI_START 0xfee00000ull
#define MSI_LAST 0xfeefffffull
#define IOVA_ALIGN (2ull << 20)

int nvmg_vfio_valid_bdf(const char *bdf)
{
	unsigned dom, bus, dev, fn;
	char tail;

	if (!bdf || strlen(bdf) != 12 ||
	    sscanf(bdf, "%4x:%2x:%2x.%1x%c", &dom, &bus, &dev, &fn, &tail) != 4)
		return 0;
	return dev < 32 && fn < 8 && bdf[4] == ':' && bdf[7] == ':' && bdf[10] == '.';
}

static int sysfs_link_name(const char *bdf, const char *what, char *out, size_t len)
{
	char path[256], target[256];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, what);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	snprintf(out, len, "%s", basename(target));
	return 0;
}

/* "0000:00:1f.2 (ahci), 0000:00:1f.3 (no driver)" for a group's others. */
static void group_members(const char *group, const char *self, char *out, size_t len)
{
	char path[128];
	struct dirent *de;
	size_t used = 0;
	DIR *d;

	out[0] = '\0';
	snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%s/devices", group);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char drv[64];

		if (de->d_name[0] == '.' || !strcmp(de->d_name, self))
			continue;
		if (sysfs_link_name(de->d_name, "driver", drv, sizeof(drv)))
			snprintf(drv, sizeof(drv), "no driver");
		used += (size_t)snprintf(out + used, used < len ? len - used : 0, "%s%s (%s)",
					 used ? ", " : "", de->d_name, drv);
		if (used >= len)
			break;
	}
	closedir(d);
}

static int read_iova_ranges(struct nvmg_vfio *v)
{
	struct vfio_iommu_type1_info *info;
	size_t sz = sizeof(*info);
	int ret = 0;

	for (int pass = 0; pass < 2; pass++) {
		info = calloc(1, sz);
		if (!info)
			return -ENOMEM;
		info->argsz = (uint32_t)sz;
		if (ioctl(v->container, VFIO_IOMMU_GET_INFO, info)) {
			ret = -errno;
			free(info);
			return ret;
		}
		if (info->argsz <= sz)
			break;
		sz = info->argsz; /* the capability chain needs more room */
		free(info);
		info = NULL;
	}
	v->nr_ranges = 0;
	if (info && (info->flags & VFIO_IOMMU_INFO_CAPS) && info->cap_offset) {
		uint32_t off = info->cap_offset;

		/* The kernel packs capabilities at 4-byte offsets: copy fields
		 * out rather than casting to the 8-byte aligned structs. */
		while (off && off + sizeof(struct vfio_info_cap_header) <= sz) {
			const uint8_t *p = (const uint8_t *)info + off;
			struct vfio_info_cap_header h;

			memcpy(&h, p, sizeof(h));
			if (h.id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
				size_t base = offsetof(struct vfio_iommu_type1_info_cap_iova_range, iova_ranges);
				uint32_t nr;

				memcpy(&nr, p + offsetof(struct vfio_iommu_type1_info_cap_iova_range, nr_iovas),
				       sizeof(nr));
				for (uint32_t i = 0; i < nr && v->nr_ranges < NVMG_VFIO_MAX_RANGES &&
						     off + base + (i + 1) * 16 <= sz; i++) {
					memcpy(&v->ranges[v->nr_ranges].start, p + base + i * 16, 8);
					memcpy(&v->ranges[v->nr_ranges].last, p + base + i * 16 + 8, 8);
					v->nr_ranges++;
				}
			}
			if (h.next <= off)
				break;
			off = h.next;
		}
	}
	free(info);
	if (!v->nr_ranges) {
		/* Pre-5.4 kernels do not report ranges: assume the smallest
		 * common IOMMU width (39 bits) below the MSI window. */
		v->ranges[0].start = 0;
		v->ranges[0].last = MSI_START - 1;
		v->ranges[1].start = MSI_LAST + 1;
		v->ranges[1].last = (1ull << 39) - 1;
		v->nr_ranges = 2;
	}
	v->cur_range = 0;
	v->next_iova = 0;
	return 0;
}

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return ret;
}

void nvmg_vfio_bus_master(struct nvmg_vfio *v, int on)
{
	struct vfio_region_info reg = { .argsz = sizeof(reg), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	uint16_t cmd;

	if (v->device < 0 || ioctl(v->device, VFIO_DEVICE_GET_REGION_INFO, &reg))
		return;
	if (pread(v->device, &cmd, sizeof(cmd), (off_t)(reg.offset + PCI_COMMAND)) != sizeof(cmd))
		return;
	if (on)
		cmd |= PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY;
	else
		cmd &= (uint16_t)~PCI_COMMAND_MASTER;
	if (pwrite(v->device, &cmd, sizeof(cmd), (off_t)(reg.offset + PCI_COMMAND)) != sizeof(cmd))
		return;
}

int nvmg_vfio_open(struct nvmg_vfio *v, const char *bdf, char *err, size_t errlen)
{
	struct vfio_group_status gs = { .argsz = sizeof(gs) };
	struct vfio_region_info reg = { .argsz = sizeof(reg), .index = VFIO_PCI_BAR0_REGION_INDEX };
	struct vfio_irq_info irq = { .argsz = sizeof(irq), .index = VFIO_PCI_MSIX_IRQ_INDEX };
	char drv[64], group[32], path[128], others[512];
	int ret;

	memset(v, 0, sizeof(*v));
	v->container = v->group = v->device = -1;
	pthread_mutex_init(&v->lock, NULL);
	snprintf(v->bdf, sizeof(v->bdf), "%s", bdf);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", bdf);
	if (access(path, F_OK))
		return fail(err, errlen, -ENODEV, "no PCI device %s", bdf);
	if (sysfs_link_name(bdf, "driver", drv, sizeof(drv)))
		snprintf(drv, sizeof(drv), "no driver");
	if (strcmp(drv, "vfio-pci"))
		return fail(err, errlen, -EBUSY,
			    "%s is bound to %s, not vfio-pci (run: nvmegated --bind %s)", bdf, drv, bdf);
	if (sysfs_link_name(bdf, "iommu_group", group, sizeof(group)))
		return fail(err, errlen, -ENODEV,
			    "%s has no IOMMU group: enable the IOMMU (intel_iommu=on or amd_iommu=on)", bdf);

	v->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (v->container < 0) {
		ret = -errno;
		goto fail_errno_dev;
	}
	if (ioctl(v->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION ||
	    !ioctl(v->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU)) {
		ret = fail(err, errlen, -ENOTSUP, "VFIO has no type1v2 IOMMU support (no IOMMU?)");
		goto out;
	}
	snprintf(path, sizeof(path), "/dev/vfio/%s", group);
	v->group = open(path, O_RDWR | O_CLOEXEC);
	if (v->group < 0) {
		ret = -errno;
		fail(err, errlen, ret, "%s: %s%s", path, strerror(-ret),
		     ret == -EBUSY ? " (another process owns the device)" : "");
		goto out;
	}
	if (ioctl(v->group, VFIO_GROUP_GET_STATUS, &gs)) {
		ret = -errno;
		fail(err, errlen, ret, "VFIO_GROUP_GET_STATUS: %s", strerror(-ret));
		goto out;
	}
	if (!(gs.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		group_members(group, bdf, others, sizeof(others));
		ret = fail(err, errlen, -EPERM,
			   "IOMMU group %s of %s is not viable: bind every device in it to vfio-pci "
			   "or unbind it (%s)", group, bdf, others[0] ? others : "?");
		goto out;
	}
	if (ioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container) ||
	    ioctl(v->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)) {
		ret = -errno;
		fail(err, errlen, ret, "cannot attach IOMMU group %s to a type1 container: %s", group,
		     strerror(-ret));
		goto out;
	}
	ret = read_iova_ranges(v);
	if (ret) {
		fail(err, errlen, ret, "VFIO_IOMMU_GET_INFO: %s", strerror(-ret));
		goto out;
	}
	v->device = ioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (v->device < 0) {
		ret = -errno;
		fail(err, errlen, ret, "VFIO_GROUP_GET_DEVICE_FD %s: %s", bdf, strerror(-ret));
		v->device = -1;
		goto out;
	}
	if (ioctl(v->device, VFIO_DEVICE_GET_REGION_INFO, &reg) || !(reg.flags & VFIO_REGION_INFO_FLAG_MMAP) ||
	    reg.size < 0x2000) {
		ret = fail(err, errlen, -ENODEV, "%s: BAR0 is missing, too small or not mappable", bdf);
		goto out;
	}
	v->bar0 = mmap(NULL, reg.size, PROT_READ | PROT_WRITE, MAP_SHARED, v->device, (off_t)reg.offset);
	if (v->bar0 == MAP_FAILED) {
		ret = -errno;
		v->bar0 = NULL;
		fail(err, errlen, ret, "%s: mmap BAR0: %s", bdf, strerror(-ret));
		goto out;
	}
	v->bar0_size = reg.size;
	if (!ioctl(v->device, VFIO_DEVICE_GET_IRQ_INFO, &irq) && (irq.flags & VFIO_IRQ_INFO_EVENTFD))
		v->msix_count = irq.count;
	nvmg_vfio_bus_master(v, 1);
	return 0;
fail_errno_dev:
	fail(err, errlen, ret, "/dev/vfio/vfio: %s%s", strerror(-ret),
	     ret == -ENOENT ? " (load the vfio-pci and vfio_iommu_type1 modules)" : "");
out:
	nvmg_vfio_close(v);
	return ret;
}

void nvmg_vfio_close(struct nvmg_vfio *v)
{
	if (v->device >= 0) {
		nvmg_vfio_set_req(v, -1);
		nvmg_vfio_bus_master(v, 0);
	}
	nvmg_vfio_release_device(v);
	if (v->group >= 0)
		close(v->group);
	if (v->container >= 0)
		close(v->container);
	v->group = v->container = -1;
	pthread_mutex_destroy(&v->lock);
}

/* Bump allocation through the reported ranges; mappings live as long as
 * the controller, so IOVAs are never reused. */
static int iova_alloc(struct nvmg_vfio *v, size_t len, uint64_t *out)
{
	uint64_t need = (len + IOVA_ALIGN - 1) & ~(IOVA_ALIGN - 1);

	while (v->cur_range < v->nr_ranges) {
		uint64_t start = v->next_iova > v->ranges[v->cur_range].start ? v->next_iova
									: v->ranges[v->cur_range].start;

		if (start < IOVA_ALIGN)
			start = IOVA_ALIGN; /* IOVA 0 looks like a NULL pointer bug */
		start = (start + IOVA_ALIGN - 1) & ~(IOVA_ALIGN - 1);
		if (start <= MSI_LAST && start + need > MSI_START)
			start = (MSI_LAST + 1 + IOVA_ALIGN - 1) & ~(IOVA_ALIGN - 1);
		if (start + need - 1 >= start && start + need - 1 <= v->ranges[v->cur_range].last) {
			*out = start;
			v->next_iova = start + need;
			return 0;
		}
		v->cur_range++;
	}
	return -ENOSPC;
}

int nvmg_vfio_map(struct nvmg_vfio *v, void *vaddr, size_t len, uint64_t *iova)
{
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)vaddr,
		.size = len,
	};
	uint64_t at;
	int ret;

	pthread_mutex_lock(&v->lock);
	ret = iova_alloc(v, len, &at);
	pthread_mutex_unlock(&v->lock);
	if (ret)
		return ret;
	map.iova = at;
	if (ioctl(v->container, VFIO_IOMMU_MAP_DMA, &map))
		return -errno;
	*iova = map.iova;
	return 0;
}

int nvmg_vfio_unmap(struct nvmg_vfio *v, uint64_t iova, size_t len)
{
	struct vfio_iommu_type1_dma_unmap unmap = { .argsz = sizeof(unmap), .iova = iova, .size = len };

	return ioctl(v->container, VFIO_IOMMU_UNMAP_DMA, &unmap) ? -errno : 0;
}

static int set_irqs(struct nvmg_vfio *v, unsigned index, const int *fds, unsigned n);

int nvmg_vfio_set_msix(struct nvmg_vfio *v, const int *fds, unsigned n)
{
	return set_irqs(v, VFIO_PCI_MSIX_IRQ_INDEX, fds, n);
}

int nvmg_vfio_set_req(struct nvmg_vfio *v, int fd)
{
	return set_irqs(v, VFIO_PCI_REQ_IRQ_INDEX, fd >= 0 ? &fd : NULL, fd >= 0);
}

void nvmg_vfio_release_device(struct nvmg_vfio *v)
{
	if (v->device < 0)
		return;
	set_irqs(v, VFIO_PCI_MSIX_IRQ_INDEX, NULL, 0);
	set_irqs(v, VFIO_PCI_REQ_IRQ_INDEX, NULL, 0);
	if (v->bar0)
		munmap((void *)v->bar0, v->bar0_size);
	v->bar0 = NULL;
	close(v->device);
	v->device = -1;
}

static int set_irqs(struct nvmg_vfio *v, unsigned index, const int *fds, unsigned n)
{
	size_t sz = sizeof(struct vfio_irq_set) + n * sizeof(int);
	struct vfio_irq_set *set = calloc(1, sz);
	int ret = 0;

	if (!set)
		return -ENOMEM;
	set->argsz = (uint32_t)sz;
	set->index = index;
	set->start = 0;
	set->count = n;
	set->flags = n ? VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER
		       : VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
	if (n)
		memcpy(set->data, fds, n * sizeof(int));
	if (ioctl(v->device, VFIO_DEVICE_SET_IRQS, set))
		ret = -errno;
	free(set);
	return ret;
}
