/* The device paths the backends accept, in one place: "mem:SIZE" (RAM),
 * "pcie:DDDD:BB:DD.F/NSID" (a namespace of an SSD driven over VFIO), and
 * anything else names a file or block device. The config checks paths
 * with nvmg_bdev_check_path; nvmg_bdev_open parses them the same way. */
#ifndef NVMG_BDEV_PATH_H
#define NVMG_BDEV_PATH_H

#include <stddef.h>
#include <stdint.h>

enum nvmg_bdev_kind { NVMG_BDEV_KIND_FILE, NVMG_BDEV_KIND_MEM, NVMG_BDEV_KIND_PCIE };

struct nvmg_bdev_path {
	enum nvmg_bdev_kind kind;
	uint64_t mem_size;  /* MEM: bytes */
	char bdf[13];       /* PCIE: DDDD:BB:DD.F */
	uint32_t nsid;      /* PCIE */
};

/* Returns 0, or -EINVAL with a reason in err that names the path as shown
 * (the caller's quoting of it, for one-line messages). */
int nvmg_bdev_parse_path(const char *path, const char *shown, struct nvmg_bdev_path *out,
			 char *err, size_t errlen);
/* nvmg_bdev_parse_path, and a RAM size that is a multiple of lba_size. */
int nvmg_bdev_check_path(const char *path, const char *shown, uint32_t lba_size, char *err,
			 size_t errlen);
/* "pcie:DDDD:BB:DD.F/NSID" (the PCI address as sysfs spells it). bdf gets
 * 13 bytes. 0 or -EINVAL. */
int nvmg_bdev_parse_pcie(const char *s, char *bdf, uint32_t *nsid);

#endif
