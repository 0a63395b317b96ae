/* Latency histograms and statistics sums. */
#include "nvme/stats.h"

static unsigned bucket_of(uint64_t ns)
{
	unsigned msb, idx;

	if (ns < NVMG_LAT_SUB)
		return (unsigned)ns;
	msb = 63u - (unsigned)__builtin_clzll(ns);
	idx = (msb - 2) * NVMG_LAT_SUB + (unsigned)((ns >> (msb - 3)) & (NVMG_LAT_SUB - 1));
	return idx < NVMG_LAT_BUCKETS ? idx : NVMG_LAT_BUCKETS - 1;
}

static uint64_t bucket_upper(unsigned idx)
{
	unsigned msb, sub;

	if (idx < NVMG_LAT_SUB)
		return idx;
	msb = idx / NVMG_LAT_SUB + 2;
	sub = idx % NVMG_LAT_SUB;
	return ((uint64_t)(NVMG_LAT_SUB + sub) << (msb - 3)) + (1ull << (msb - 3)) - 1;
}

void nvmg_lat_record(struct nvmg_lat_hist *h, uint64_t ns)
{
	NVMG_STAT_ADD(h->b[bucket_of(ns)], 1);
	NVMG_STAT_ADD(h->sum_ns, ns);
	if (ns > NVMG_STAT_GET(h->max_ns))
		__atomic_store_n(&h->max_ns, ns, __ATOMIC_RELAXED);
}

void nvmg_io_stats_add(struct nvmg_io_stats *dst, const struct nvmg_io_stats *src)
{
	uint64_t m;

	dst->read_cmds += NVMG_STAT_GET(src->read_cmds);
	dst->write_cmds += NVMG_STAT_GET(src->write_cmds);
	dst->other_cmds += NVMG_STAT_GET(src->other_cmds);
	dst->read_bytes += NVMG_STAT_GET(src->read_bytes);
	dst->write_bytes += NVMG_STAT_GET(src->write_bytes);
	dst->errors += NVMG_STAT_GET(src->errors);
	for (unsigned i = 0; i < NVMG_LAT_BUCKETS; i++)
		dst->lat.b[i] += NVMG_STAT_GET(src->lat.b[i]);
	dst->lat.sum_ns += NVMG_STAT_GET(src->lat.sum_ns);
	m = NVMG_STAT_GET(src->lat.max_ns);
	if (m > dst->lat.max_ns)
		dst->lat.max_ns = m;
}

uint64_t nvmg_lat_count(const struct nvmg_lat_hist *h)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < NVMG_LAT_BUCKETS; i++)
		n += h->b[i];
	return n;
}

uint64_t nvmg_lat_percentile(const struct nvmg_lat_hist *h, double p)
{
	uint64_t total = nvmg_lat_count(h), seen = 0, want;

	if (!total)
		return 0;
	want = (uint64_t)(p * (double)total + 0.999999);
	if (want < 1)
		want = 1;
	for (unsigned i = 0; i < NVMG_LAT_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= want) {
			uint64_t up = bucket_upper(i);

			/* The last bucket also holds everything longer. */
			if (i == NVMG_LAT_BUCKETS - 1)
				return h->max_ns;
			return up < h->max_ns ? up : h->max_ns;
		}
	}
	return h->max_ns;
}
