/* Moving a PCI device between the kernel's nvme driver and vfio-pci
 * (nvmegated --bind / --unbind). */
#ifndef NVMG_PCIE_BIND_H
#define NVMG_PCIE_BIND_H

#include <stdbool.h>
#include <stddef.h>

/* to_vfio: bind bdf to vfio-pci; else give it back to the kernel (nvme).
 * Returns 0 or -errno with err saying what went wrong. */
int nvmg_pcie_bind(const char *bdf, bool to_vfio, char *err, size_t errlen);

#endif
