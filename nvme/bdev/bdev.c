/* Backend selection by config path. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "nvme/bdev/bdev.h"
#include "nvme/bdev/path.h"

int nvmg_bdev_open(struct nvmg_devreg *reg, const char *path, bool readonly,
		   struct nvmg_bdev **out, char *err, size_t errlen)
{
	struct nvmg_bdev_path p;
	char shown[600], why[700];
	int ret;

	if (!path || !*path)
		return -EINVAL;
	snprintf(shown, sizeof(shown), "'%s'", path);
	ret = nvmg_bdev_parse_path(path, shown, &p, why, sizeof(why));
	if (ret) {
		if (err)
			snprintf(err, errlen, "%s", why);
		return ret;
	}
	switch (p.kind) {
	case NVMG_BDEV_KIND_MEM:
		ret = nvmg_bdev_mem_open(p.mem_size, out);
		if (!ret && readonly)
			(*out)->readonly = true;
		return ret;
	case NVMG_BDEV_KIND_PCIE:
		return nvmg_bdev_pcie_open(reg, p.bdf, p.nsid, readonly, out, err, errlen);
	case NVMG_BDEV_KIND_FILE:
		break;
	}
	return nvmg_bdev_file_open(path, readonly, out);
}
