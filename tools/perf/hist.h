/* Log-linear latency histogram, shared by nvmegate-perf and
 * nvmegate-bdev-perf. */
#ifndef NVMG_PERF_HIST_H
#define NVMG_PERF_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct perf_hist {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t min_ns, max_ns;
	uint64_t bucket[HIST_BUCKETS];
};

void hist_init(struct perf_hist *h);
void hist_add(struct perf_hist *h, uint64_t ns);
void hist_merge(struct perf_hist *dst, const struct perf_hist *src);
/* p in [0, 100]; result in ns (bucket midpoint, clamped to min/max). */
uint64_t hist_percentile(const struct perf_hist *h, double p);

#endif
