/* sysfs driver_override dance: the only way to pick a driver for one
 * device without touching other devices of the same vendor/device ID. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "nvme/bdev/pcie/bind.h"
#include "nvme/bdev/pcie/vfio.h"

static int sysfs_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static void current_driver(const char *bdf, char *out, size_t len)
{
	char path[128], target[256];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", bdf);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0) {
		out[0] = '\0';
		return;
	}
	target[n] = '\0';
	snprintf(out, len, "%s", basename(target));
}

int nvmg_pcie_bind(const char *bdf, bool to_vfio, char *err, size_t errlen)
{
	const char *want = to_vfio ? "vfio-pci" : "nvme";
	char path[160], drv[64];
	struct timespec ts = { 0, 50000000 };
	int ret;

	if (!nvmg_vfio_valid_bdf(bdf)) {
		snprintf(err, errlen, "%s is not a PCI address (DDDD:BB:DD.F, e.g. 0000:01:00.0)", bdf);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", bdf);
	if (access(path, F_OK)) {
		snprintf(err, errlen, "no PCI device %s", bdf);
		return -ENODEV;
	}
	snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s", want);
	if (access(path, F_OK)) {
		snprintf(err, errlen, "the %s driver is not loaded (modprobe %s)", want, want);
		return -ENOENT;
	}
	current_driver(bdf, drv, sizeof(drv));
	if (!strcmp(drv, want))
		return 0;
	/* An empty override (a lone newline) hands the choice back to the
	 * kernel's ID tables. */
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", bdf);
	ret = sysfs_write(path, to_vfio ? "vfio-pci" : "\n");
	if (ret) {
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	if (drv[0]) {
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver/unbind", bdf);
		ret = sysfs_write(path, bdf);
		if (ret) {
			snprintf(err, errlen, "unbinding %s from %s: %s", bdf, drv, strerror(-ret));
			return ret;
		}
	}
	ret = sysfs_write("/sys/bus/pci/drivers_probe", bdf);
	/* Probing runs asynchronously for some drivers: give it a moment. */
	for (int i = 0; i < 40; i++) {
		current_driver(bdf, drv, sizeof(drv));
		if (!strcmp(drv, want))
			return 0;
		nanosleep(&ts, NULL);
	}
	snprintf(err, errlen, "%s did not bind to %s (now: %s)%s%s", bdf, want, drv[0] ? drv : "no driver",
		 ret ? ": " : "", ret ? strerror(-ret) : "");
	return ret ? ret : -EIO;
}
