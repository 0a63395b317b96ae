/* Log-linear latency histogram: values below 2^HIST_SUB_BITS ns are exact,
 * above that each power of two is split into HIST_SUB linear buckets
 * (relative error < 1/HIST_SUB). */
#include <string.h>

#include "tools/perf/hist.h"

static unsigned bucket_of(uint64_t v)
{
	unsigned msb;

	if (v < HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	return ((msb - HIST_SUB_BITS + 1) << HIST_SUB_BITS) |
	       (unsigned)((v >> (msb - HIST_SUB_BITS)) & (HIST_SUB - 1));
}

/* Midpoint of a bucket's value range. */
static uint64_t bucket_mid(unsigned b)
{
	unsigned grp = b >> HIST_SUB_BITS, sub = b & (HIST_SUB - 1), shift;
	uint64_t lo;

	if (grp == 0)
		return b;
	shift = grp - 1;
	lo = (uint64_t)(HIST_SUB + sub) << shift;
	return lo + ((1ull << shift) >> 1);
}

void hist_init(struct perf_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min_ns = UINT64_MAX;
}

void hist_add(struct perf_hist *h, uint64_t ns)
{
	h->bucket[bucket_of(ns)]++;
	h->count++;
	h->sum_ns += ns;
	if (ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

void hist_merge(struct perf_hist *dst, const struct perf_hist *src)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	dst->sum_ns += src->sum_ns;
	if (src->min_ns < dst->min_ns)
		dst->min_ns = src->min_ns;
	if (src->max_ns > dst->max_ns)
		dst->max_ns = src->max_ns;
}

uint64_t hist_percentile(const struct perf_hist *h, double p)
{
	uint64_t target, seen = 0, v;

	if (!h->count)
		return 0;
	target = (uint64_t)((p / 100.0) * (double)h->count + 0.999999);
	if (target < 1)
		target = 1;
	if (target > h->count)
		target = h->count;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= target) {
			v = bucket_mid(i);
			if (v < h->min_ns)
				v = h->min_ns;
			if (v > h->max_ns)
				v = h->max_ns;
			return v;
		}
	}
	return h->max_ns;
}
