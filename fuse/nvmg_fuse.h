/* The FUSE front end: every enabled namespace as a regular file
 * <mountpoint>/<subsystem NQN or alias>/n<nsid> that dd, fio, losetup and
 * mkfs can use. Every file operation is an NVMe command through the same
 * target core as NVMe/TCP, on a local controller per subsystem. */
#ifndef NVMG_FUSE_H
#define NVMG_FUSE_H

#include <stddef.h>
#include "conf/config.h"
#include "nvme/core.h"

struct nvmg_fuse;

/* The "local" transport of the FUSE controllers' queues. It serves no
 * port; register it on the target (ctx NULL) at start. */
extern const struct nvmg_transport nvmg_fuse_transport;

/* Mount conf->fuse_mountpoint (nothing to do without one: *out = NULL) and
 * serve it. Call once the reactors run. A stale mount left by a crashed
 * nvmegated is lazily unmounted first; a missing or busy mountpoint fails
 * at once. Returns 0 or -errno with err filled. Main thread. */
int nvmg_fuse_start(struct nvmg_target *t, const struct nvmg_conf *conf, struct nvmg_fuse **out,
		    char *err, size_t errlen);
/* SIGHUP: namespaces follow through the target's ns_changed hook; the
 * mountpoint and aliases need a restart, which this says if they changed. */
void nvmg_fuse_reload(struct nvmg_fuse *fs, const struct nvmg_conf *conf);
/* Unmount, let commands in flight finish, free. Call before the reactors
 * stop. A mount still in use (open files, a loop device) is detached and
 * its connection aborted, so its users get ENOTCONN instead of a hang.
 * NULL is a no-op. Main thread. */
void nvmg_fuse_stop(struct nvmg_fuse *fs);

#endif
