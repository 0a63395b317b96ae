/* Backend selection by config path. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "conf/config.h"
#include "nvme/bdev.h"

int nvmg_bdev_open(const char *path, bool readonly, struct nvmg_bdev **out, char *err,
		   size_t errlen)
{
	if (!path || !*path)
		return -EINVAL;
	if (!strncmp(path, "mem:", 4)) {
		uint64_t size;
		int ret = nvmg_conf_parse_size(path + 4, &size);

		if (ret) {
			if (err)
				snprintf(err, errlen, "bad size in '%s' (mem:SIZE, K/M/G/T suffixes)", path);
			return ret;
		}
		ret = nvmg_bdev_mem_open(size, out);
		if (!ret && readonly)
			(*out)->readonly = true;
		return ret;
	}
	if (!strncmp(path, "pcie:", 5)) {
		char bdf[16];
		uint32_t nsid;

		if (nvmg_conf_parse_pcie(path, bdf, &nsid)) {
			if (err)
				snprintf(err, errlen, "bad PCIe path '%s' (pcie:DDDD:BB:DD.F/NSID)", path);
			return -EINVAL;
		}
		return nvmg_bdev_pcie_open(bdf, nsid, readonly, out, err, errlen);
	}
	return nvmg_bdev_file_open(path, readonly, out);
}
