/* Backends: where a namespace's blocks live. One interface for the io_uring
 * file/block-device backend, RAM, and the userspace PCIe driver.
 * Submissions happen on a reactor thread; completions arrive on the same
 * thread (possibly before submit returns, for RAM). */
#ifndef NVMG_BDEV_H
#define NVMG_BDEV_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>
#include <stddef.h>
#include "lib/reactor.h"
#include "nvme/spec.h"

enum nvmg_bdev_op {
	NVMG_BDEV_READ,
	NVMG_BDEV_WRITE,
	NVMG_BDEV_FLUSH,
	NVMG_BDEV_WRITE_ZEROES,
	NVMG_BDEV_DEALLOCATE,
};

/* For log lines. */
static inline const char *nvmg_bdev_op_name(enum nvmg_bdev_op op)
{
	static const char *const names[] = { "read", "write", "flush", "write zeroes", "deallocate" };

	return (unsigned)op < sizeof(names) / sizeof(names[0]) ? names[op] : "?";
}

struct nvmg_bdev_io {
	struct nvmg_ev ev; /* used by io_uring backends */
	enum nvmg_bdev_op op;
	bool fua;
	uint64_t offset; /* bytes */
	uint64_t len;    /* bytes */
	void *buf;       /* READ/WRITE */
	/* READ: the submitter can take the data where it already lies. A
	 * backend that holds the blocks in memory (RAM) then points buf at
	 * them instead of copying; they stay valid while the bdev is open,
	 * which the submitter's namespace reference guarantees. Others
	 * ignore it and fill buf. */
	bool lend;
	uint64_t done;   /* bytes done so far (short I/O is resumed) */
	struct nvmg_bdev *bdev;       /* set by submit, for the completion path */
	struct nvmg_reactor *reactor;
	/* res: 0 or negative errno. */
	void (*complete)(struct nvmg_bdev_io *io, int res);
	/* Each backend's own state of this I/O, typed (SPDK's driver_ctx):
	 * set by its submit, meaningless to anyone else. */
	union {
		struct {
			bool direct;        /* READ/WRITE: went to the O_DIRECT fd */
			uint8_t zero_step;  /* WRITE_ZEROES/DEALLOCATE: enum zero_step */
		} file;
		struct {
			STAILQ_ENTRY(nvmg_bdev_io) wait; /* on the queue pair's wait list */
			uint32_t parts;     /* its commands on the device */
			int err;            /* the first error of any part */
			bool sent;          /* a zero-length op's one command is posted */
			bool waiting;       /* on the wait list */
		} pcie;
	} priv;
};

struct nvmg_bdev;

struct nvmg_bdev_ops {
	const char *name;
	void (*submit)(struct nvmg_bdev *b, struct nvmg_reactor *r, struct nvmg_bdev_io *io);
	/* Change the size to size bytes (0: re-read it, after the file or
	 * device grew outside). Not on a reactor. NULL: not resizable. */
	int (*resize)(struct nvmg_bdev *b, uint64_t size);
	/* Synchronous flush for shutdown paths. */
	int (*flush_sync)(struct nvmg_bdev *b);
	void (*close)(struct nvmg_bdev *b);
	/* Optional: the device's own SMART / health log (pcie). */
	int (*smart_log)(struct nvmg_bdev *b, struct nvme_smart_log *log);
};

struct nvmg_bdev {
	const struct nvmg_bdev_ops *ops;
	uint64_t size;         /* bytes; resize stores it relaxed, readers load it relaxed */
	uint32_t block_size;   /* minimum I/O alignment the backend wants */
	bool volatile_cache;   /* Flush does something: advertise VWC */
	bool dealloc_zeroes;   /* deallocated blocks read back as zeros */
	bool readonly;
	/* Identifiers of a real namespace (pcie), passed through to hosts;
	 * all-zero means "none", and the config or derived ones are used. */
	uint8_t nguid[16];
	uint8_t uuid[16];
	uint8_t eui64[8];
};

/* Open by config path: "mem:SIZE", "pcie:BDF/NSID" or a file / block
 * device path. err (may be NULL) gets a reason beyond errno when known. */
struct nvmg_devreg;
/* reg shares one controller among a PCIe device's namespaces. */
int nvmg_bdev_open(struct nvmg_devreg *reg, const char *path, bool readonly,
		   struct nvmg_bdev **out, char *err, size_t errlen);
int nvmg_bdev_file_open(const char *path, bool readonly, struct nvmg_bdev **out);
int nvmg_bdev_mem_open(uint64_t size, struct nvmg_bdev **out);
int nvmg_bdev_pcie_open(struct nvmg_devreg *reg, const char *bdf, uint32_t nsid, bool readonly, struct nvmg_bdev **out,
			char *err, size_t errlen);

static inline uint64_t nvmg_bdev_size(const struct nvmg_bdev *b)
{
	return __atomic_load_n(&b->size, __ATOMIC_RELAXED);
}

/* Checks the range once for every backend (Flush has none). */
static inline void nvmg_bdev_submit(struct nvmg_bdev *b, struct nvmg_reactor *r,
				    struct nvmg_bdev_io *io)
{
	uint64_t size = nvmg_bdev_size(b);

	io->bdev = b;
	io->reactor = r;
	if (io->op != NVMG_BDEV_FLUSH && (io->offset > size || io->len > size - io->offset)) {
		io->complete(io, -EINVAL);
		return;
	}
	b->ops->submit(b, r, io);
}

#endif
