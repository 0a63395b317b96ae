/* Shared by the FUSE front end's files: session.c (life cycle), mount.c
 * (mountpoint checks), ops.c (the file system's operations) and
 * transport.c (NVMe commands on the local controllers' queues). */
#ifndef NVMG_FUSE_INTERNAL_H
#define NVMG_FUSE_INTERNAL_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include "fuse/nvmg_fuse.h"

/* Commands are routed by stripe: a block's writes go to its stripe's
 * reactor, which orders read-modify-write without a lock (whole-block
 * writes run elsewhere only through the stripe's gate, gate.c). Stripe
 * boundaries are block aligned, so a stripe never splits a block. */
#define NVMG_FUSE_STRIPE (256u << 10)
#define NVMG_FUSE_MAX_IO (1u << 20)   /* max_write and max_pages: MDTS */
#define NVMG_FUSE_CMDS_PER_OP 8       /* a 1 MiB op spans at most 5 stripes */
#define NVMG_FUSE_NR_OPS 256          /* far above what the kernel queues */
#define NVMG_FUSE_HOSTNQN "nqn.2026-11.io.nvmegate:fuse-frontend"

/* Write gates (gate.c): hashed per (subsystem, namespace, stripe). */
#define NVMG_FUSE_GATES_SHIFT 10
#define NVMG_FUSE_GATES (1u << NVMG_FUSE_GATES_SHIFT)

/* Inode numbers are computed, never stored: root 1, a subsystem's folder
 * (index + 1) << 32, its namespace files the folder's number | nsid. */
#define NVMG_FUSE_ROOT 1ull
static inline uint64_t nvmg_fuse_dir_ino(size_t sub)
{
	return (uint64_t)(sub + 1) << 32;
}

struct nvmg_fuse;
struct fuse_reactor;
struct fuse_op;
struct fuse_uent;
struct fuse_uring;

/* One I/O queue of a local controller: (subsystem, reactor). */
struct fuse_queue {
	struct nvmg_sq sq;       /* first: the core's queue */
	struct fuse_reactor *fr;
};

/* A subsystem's folder. Entries are only appended (by reloads, while the
 * workers read lock-free), so an index -- and the inode numbers made of it
 * -- never changes meaning; a removed subsystem's entry stays, marked gone. */
struct fuse_sub {
	struct nvmg_subsys *s;
	const char *name;        /* folder name: alias or NQN (owned) */
	struct nvmg_ctrl *ctrl;  /* local controller, NULL until started */
	struct fuse_queue *queues; /* one per reactor */
	atomic_bool gone;        /* removed by a reload: no folder */
};

/* Room for subsystems added at runtime beyond those at start. */
#define NVMG_FUSE_SUBS_SPARE 256

/* What a file's I/O needs to know of its namespace, as Identify Namespace
 * reports it (nsze, LBA format, NSATTR write protect, DLFEAT). */
struct fuse_geo {
	size_t sub;
	uint32_t nsid;
	uint8_t lba_shift;
	uint64_t bytes;
	bool readonly;
	bool dealloc_zeroes;
};

enum fuse_op_kind { FOP_READ, FOP_WRITE, FOP_FLUSH, FOP_ZERO, FOP_DEALLOC };
enum fuse_cmd_kind { FC_READ, FC_WRITE, FC_ZPART, FC_WZ, FC_DSM, FC_FLUSH };
enum fuse_cmd_state { FCS_NEW, FCS_RUN };

/* One NVMe command slot of an op; it runs on one reactor at a time. */
struct fuse_cmd {
	struct nvmg_req req;     /* first: what the core sees */
	struct fuse_op *op;
	struct fuse_queue *q;
	struct fuse_cmd *lnext;  /* inbox: a lock-free stack, so not a queue.h list */
	STAILQ_ENTRY(fuse_cmd) rlink;   /* reactor's ready list */
	TAILQ_ENTRY(fuse_cmd) wlink;    /* reactor's started or waiting writes */
	enum fuse_cmd_kind kind;
	enum fuse_cmd_state state;
	uint8_t stage;
	bool rmw;                /* rewrites bytes it was not given */
	bool tracked;            /* on the started-writes list */
	bool away;               /* an aligned write run off its stripe's reactor */
	bool entered;            /* away: inside its gate */
	bool held;               /* rmw: holds its gate */
	struct fuse_queue *owner; /* the stripe's queue: where writes are ordered */
	struct fuse_gate *gate;  /* away or rmw: its stripe's gate */
	uint16_t status;         /* first NVMe error */
	uint64_t slba;
	uint32_t nlb;
	uint8_t *data;           /* FC_READ/FC_WRITE: nlb blocks inside op->buf */
	uint32_t head_fill;      /* FC_WRITE: bytes of the first block kept from the medium */
	uint32_t tail_fill;      /* FC_WRITE: bytes of the last block kept from the medium */
	uint32_t zoff, zlen;     /* FC_ZPART: the bytes of the block to zero */
	void *scratch;           /* one block from the reactor's bufpool (RMW) */
	struct nvme_dsm_range dsm;
};

/* One FUSE request: split at stripes into commands, answered when the
 * last one finishes, on whichever reactor that is (fuse_reply_* is
 * thread-safe). Preallocated; its buffer stays with it between uses. */
struct fuse_op {
	struct nvmg_fuse *fs;
	fuse_req_t freq;         /* libfuse path, or */
	struct fuse_uent *ent;   /* io_uring path: answered through this ring entry */
	uint8_t *inplace;        /* io_uring path: the entry's payload used as buf */
	int home;                /* io_uring path: the entry's reactor, else -1 */
	enum fuse_op_kind kind;
	bool fua;                /* FOP_WRITE: the writes carry FUA */
	struct fuse_geo geo;
	uint64_t off, len;       /* the caller's byte range */
	uint64_t aoff;           /* off rounded down to a block: where buf starts */
	uint64_t end;            /* off + len */
	atomic_uint_fast64_t cursor; /* first byte no command has claimed */
	atomic_uint pending;     /* commands not finished */
	atomic_int err;          /* first errno */
	uint8_t *buf;
	size_t cap;
	struct fuse_op *next_free;
	struct fuse_cmd cmds[NVMG_FUSE_CMDS_PER_OP];
};

struct nvmg_fuse {
	struct nvmg_target *tgt;
	char *mountpoint;
	struct fuse_sub *subs;   /* cap_subs entries, nr_subs of them published */
	_Atomic size_t nr_subs;
	size_t cap_subs;
	char **alias_nqns, **alias_names; /* as configured, for reload checks */
	size_t nr_aliases;
	struct timespec mtime;   /* start: every file's times */

	/* transport.c */
	struct fuse_reactor *reactors;
	struct fuse_gate *gates; /* NVMG_FUSE_GATES */
	unsigned nr_queues;
	struct fuse_op *ops;
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;
	struct fuse_op *free_ops;
	unsigned nr_free_ops;

	/* session.c */
	struct fuse_session *se;
	pthread_t loop_thread;
	bool loop_started;
	sem_t loop_done;
	atomic_bool stopping;    /* the loop's end is ours, not an outside unmount */
	dev_t dev;               /* the mount's device: fusectl's connection number */
	unsigned proto_minor;    /* from INIT */
	bool parallel_dio;       /* FOPEN_PARALLEL_DIRECT_WRITES understood */
	unsigned max_write;

	/* uring.c: FUSE requests over io_uring (Linux 6.14+) */
	uint8_t *init_req;       /* the kernel's INIT request, for the shadow sessions */
	size_t init_req_len;
	uint64_t init_unique;
	bool uring_offered;      /* INIT offered FUSE_OVER_IO_URING */
	bool uring_negotiated;   /* and our INIT reply took it */
	struct fuse_uring *uring; /* one per reactor, NULL on the libfuse path */
	unsigned nr_uring;
	unsigned uring_ents;     /* entries on all queues */
};

/* ---- ops.c ---- */
extern const struct fuse_lowlevel_ops nvmg_fuse_ll_ops;
/* 0 or -errno: ino must be a namespace file that exists now. */
int nvmg_fuse_geo(struct nvmg_fuse *fs, fuse_ino_t ino, struct fuse_geo *g);
/* The checks of the data operations, shared by both paths: 0 means issue
 * the op (with *len trimmed to the namespace's end), 1 answered without
 * I/O (end of file, nothing to write or zero), -errno an error reply. */
int nvmg_fuse_check_read(struct nvmg_fuse *fs, fuse_ino_t ino, int64_t off, uint64_t *len,
			 struct fuse_geo *g);
int nvmg_fuse_check_write(struct nvmg_fuse *fs, fuse_ino_t ino, int64_t off, uint64_t *len,
			  struct fuse_geo *g);
int nvmg_fuse_check_fallocate(struct nvmg_fuse *fs, fuse_ino_t ino, int mode, int64_t off,
			      int64_t len, struct fuse_geo *g, enum fuse_op_kind *kind,
			      uint64_t *nbytes);

/* ---- transport.c ---- */
int nvmg_fuse_transport_start(struct nvmg_fuse *fs, char *err, size_t errlen);
/* Give sub its local controller and one queue per reactor (start, or a
 * subsystem added by a reload). 0 or -errno with err filled. */
int nvmg_fuse_sub_attach(struct nvmg_fuse *fs, struct fuse_sub *sub, char *err, size_t errlen);
/* Undo (part of) nvmg_fuse_sub_attach; no op may be using sub. */
void nvmg_fuse_sub_detach(struct fuse_sub *sub);
/* Waits for every op to come back, then unbinds and frees the queues. */
void nvmg_fuse_transport_stop(struct nvmg_fuse *fs);
/* Where an op's answer goes: a libfuse request, or an io_uring entry.
 * inplace (io_uring only, block-aligned requests) is the entry's payload,
 * used as the op's buffer so data is neither copied in nor out. */
struct fuse_reply_to {
	fuse_req_t req;
	struct fuse_uent *ent;
	uint8_t *inplace;
};
/* Worker thread (libfuse) or reactor (io_uring): run an op; replies now or
 * from a reactor. wdata holds len bytes for FOP_WRITE; fua makes its
 * writes FUA (an O_DSYNC write: durable when answered, like a write and an
 * fdatasync). */
void nvmg_fuse_submit(struct nvmg_fuse *fs, struct fuse_reply_to to, enum fuse_op_kind kind,
		      const struct fuse_geo *g, uint64_t off, uint64_t len, const void *wdata, bool fua);

/* ---- gate.c ---- */
/* Orders aligned writes run away from their stripe's reactor against the
 * read-modify-writes that reactor runs (see gate.c). */
struct fuse_gate {
	_Alignas(64) atomic_uint word; /* away writes in, and RMWs << 16 */
};
int nvmg_fuse_gates_init(struct nvmg_fuse *fs);
void nvmg_fuse_gates_free(struct nvmg_fuse *fs);
struct fuse_gate *nvmg_fuse_gate(struct nvmg_fuse *fs, size_t sub, uint32_t nsid, uint64_t stripe);
/* Away write: true if in (run it here, leave when done); false if an RMW
 * holds the gate (go to the stripe's reactor). *wake: tell that reactor. */
bool nvmg_fuse_gate_enter(struct fuse_gate *g, bool *wake);
/* Away write done; true: it was the last one an RMW waited for, so tell
 * the stripe's reactor. */
bool nvmg_fuse_gate_leave(struct fuse_gate *g);
/* RMW (stripe's reactor): take the gate; true if no away write is in,
 * else wait for a wake and check nvmg_fuse_gate_clear() again. */
bool nvmg_fuse_gate_hold(struct fuse_gate *g);
bool nvmg_fuse_gate_clear(struct fuse_gate *g);
void nvmg_fuse_gate_release(struct fuse_gate *g);

/* ---- uring.c ---- */
/* libfuse's session I/O hooks (fuse_session_custom_io): they pass every
 * request and reply through, noting the kernel's INIT and adding
 * FUSE_OVER_IO_URING to our INIT reply where the kernel offered it. */
extern const struct fuse_custom_io nvmg_fuse_session_io;
/* After INIT: register the io_uring queues if INIT negotiated them. Only
 * logs on failure (the libfuse loop serves). Main thread. */
void nvmg_fuse_uring_start(struct nvmg_fuse *fs);
/* After the connection is gone and every op is back. Main thread. */
void nvmg_fuse_uring_stop(struct nvmg_fuse *fs);
/* Any reactor: answer ent (err an errno, or data/len; data may already be
 * the entry's payload). */
void nvmg_fuse_uring_reply(struct fuse_uent *ent, int err, const void *data, size_t len);
/* The index (in fs->reactors) of the reactor that owns ent. */
unsigned nvmg_fuse_uring_home(const struct fuse_uent *ent);

/* ---- mount.c ---- */
/* Check the mountpoint before mounting: exists, is a folder, nothing live
 * mounted there; a stale nvmegate mount (its daemon is gone) is lazily
 * unmounted. 0 or -errno with err filled. */
int nvmg_fuse_prepare_mountpoint(const char *mnt, char *err, size_t errlen);
/* The device number of the file system mounted at mnt, from mountinfo
 * (no FUSE request). 0 or -errno. */
int nvmg_fuse_mount_dev(const char *mnt, dev_t *dev);
/* Abort the FUSE connection of dev through fusectl (mounting it if
 * needed). 0 or -errno. */
int nvmg_fuse_abort_conn(dev_t dev);

#endif
