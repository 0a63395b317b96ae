/* nvmegate-bdev-perf: drives one backend (nvme/bdev.h) directly with the
 * daemon's reactors and buffer pools, no front end in between, like
 * SPDK's bdevperf. It measures what the backend alone can do.
 *
 * main.c  command line, backend open, reactors, report
 * job.c   the per-reactor I/O loop: QD slots, offsets, latency, verify */
#ifndef NVMG_BDEV_PERF_H
#define NVMG_BDEV_PERF_H

#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include "lib/reactor.h"
#include "nvme/bdev/bdev.h"
#include "lib/clock.h"
#include "tools/perf/hist.h"

#define BP_NAME "nvmegate-bdev-perf"

enum bp_workload { BP_RANDREAD, BP_READ, BP_RANDWRITE, BP_WRITE, BP_VERIFY };

struct bp_opts {
	enum bp_workload wl;
	uint32_t bs;
	unsigned qd;       /* per reactor */
	unsigned secs;
	unsigned reactors;
	bool json;
	const char *path;
};

struct bp_job;

struct bp_slot {
	struct nvmg_bdev_io io;
	struct bp_job *job;
	SLIST_ENTRY(bp_slot) ready; /* on the job's ready list */
	void *buf;
	uint64_t start_ns;
	uint64_t seed;          /* verify: pattern of the last write */
	unsigned idx;
	bool verify_read;       /* verify: the read-back half is in flight */
};

/* One per reactor; touched only on that reactor's thread until done is
 * posted, then only by main. */
struct bp_job {
	const struct bp_opts *o;
	struct nvmg_bdev *b;
	struct nvmg_reactor *r;
	unsigned id, nr_jobs;
	uint64_t nblocks;       /* of bs bytes */
	uint64_t next_blk;      /* sequential workloads */
	uint64_t rng;
	struct bp_slot *slots;
	SLIST_HEAD(, bp_slot) ready; /* slots free to issue, zeroed = empty */
	bool in_kick, warm, finished;
	unsigned outstanding;
	uint64_t t0_ns, end_ns, t_done_ns;
	struct perf_hist hist;
	uint64_t ios, bytes;
	int err;                /* first error: 0 or -errno (-EILSEQ: mismatch) */
	uint64_t err_off;
	const atomic_bool *stop; /* main's Ctrl-C */
	sem_t *done;
};

/* Posted to the job's reactor with nvmg_reactor_post. */
void bp_job_start(void *arg);

#endif
