/* Device path syntax (see path.h). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/parse.h"
#include "nvme/bdev/path.h"

int nvmg_bdev_parse_pcie(const char *s, char *bdf, uint32_t *nsid)
{
	unsigned long long v;
	char *end;

	if (!s || strncmp(s, "pcie:", 5))
		return -EINVAL;
	s += 5;
	/* DDDD:BB:DD.F, hex, exactly as in /sys/bus/pci/devices */
	for (int i = 0; i < 12; i++) {
		bool sep = i == 4 || i == 7 || i == 10;

		if (sep ? s[i] != (i == 10 ? '.' : ':') : !isxdigit((unsigned char)s[i]))
			return -EINVAL;
	}
	if (s[11] > '7' || s[8] > '1' || s[12] != '/' || s[13] < '1' || s[13] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s + 13, &end, 10);
	if (errno || *end || v == 0 || v >= 0xffffffffull)
		return -EINVAL;
	memcpy(bdf, s, 12);
	bdf[12] = '\0';
	*nsid = (uint32_t)v;
	return 0;
}

int nvmg_bdev_parse_path(const char *path, const char *shown, struct nvmg_bdev_path *out,
			 char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!strncmp(path, "mem:", 4)) {
		out->kind = NVMG_BDEV_KIND_MEM;
		if (nvmg_parse_size(path + 4, &out->mem_size)) {
			snprintf(err, errlen, "%s is not a valid size (mem:SIZE with SIZE > 0 "
					      "and an optional K, M, G or T suffix)", shown);
			return -EINVAL;
		}
		return 0;
	}
	if (!strncmp(path, "pcie:", 5)) {
		out->kind = NVMG_BDEV_KIND_PCIE;
		if (nvmg_bdev_parse_pcie(path, out->bdf, &out->nsid)) {
			snprintf(err, errlen, "%s is not a PCIe namespace (pcie:DDDD:BB:DD.F/NSID, "
					      "e.g. pcie:0000:01:00.0/1)", shown);
			return -EINVAL;
		}
		return 0;
	}
	out->kind = NVMG_BDEV_KIND_FILE;
	return 0;
}

int nvmg_bdev_check_path(const char *path, const char *shown, uint32_t lba_size, char *err,
			 size_t errlen)
{
	struct nvmg_bdev_path p;
	int ret = nvmg_bdev_parse_path(path, shown, &p, err, errlen);

	if (ret)
		return ret;
	if (p.kind == NVMG_BDEV_KIND_MEM && lba_size && p.mem_size % lba_size) {
		snprintf(err, errlen, "size %" PRIu64 " is not a multiple of lba_size %u", p.mem_size,
			 (unsigned)lba_size);
		return -EINVAL;
	}
	return 0;
}
