/* I/O statistics: counters and latency histograms written by one reactor
 * without locks, read by the control thread with relaxed loads. */
#ifndef NVMG_STATS_H
#define NVMG_STATS_H

#include <stdint.h>
#include "lib/clock.h"

/* Log-linear buckets: exact below 8 ns, then 8 per power of two (at most
 * 12.5% wide), up to 2^42 ns (over an hour). */
#define NVMG_LAT_SUB 8
#define NVMG_LAT_BUCKETS (NVMG_LAT_SUB * 41)
/* Per-namespace statistics have one slot per reactor. */
#define NVMG_STAT_SLOTS 256

/* Single writer: a plain load and store, made relaxed atomics only so the
 * reader's concurrent load is defined. No read-modify-write on the hot path. */
#define NVMG_STAT_ADD(field, v)                                                        \
	__atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (v), \
			 __ATOMIC_RELAXED)
#define NVMG_STAT_GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

struct nvmg_lat_hist {
	uint64_t b[NVMG_LAT_BUCKETS];
	uint64_t max_ns;
	uint64_t sum_ns;
};

/* Counters of a queue or of a namespace (on one reactor). */
struct nvmg_io_stats {
	uint64_t read_cmds, write_cmds, other_cmds;
	uint64_t read_bytes, write_bytes;
	uint64_t errors;
	struct nvmg_lat_hist lat;   /* I/O commands, submission to completion */
};

void nvmg_lat_record(struct nvmg_lat_hist *h, uint64_t ns);
/* dst += src, reading src with relaxed loads (src may be live). */
void nvmg_io_stats_add(struct nvmg_io_stats *dst, const struct nvmg_io_stats *src);
/* The latency at or below which a fraction p (0..1) of the samples fall,
 * as the upper edge of its bucket, in ns; 0 without samples. */
uint64_t nvmg_lat_percentile(const struct nvmg_lat_hist *h, double p);
uint64_t nvmg_lat_count(const struct nvmg_lat_hist *h);

#endif
