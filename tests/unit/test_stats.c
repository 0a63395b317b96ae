/* Unit tests for nvme/stats.c: latency buckets, percentiles and sums, the
 * numbers `nvmegate stats` and the Prometheus output report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tests/unit/check.h"
#include "nvme/stats.h"


/* Within one bucket's width (12.5%) above the true value, never below. */
static int close_above(uint64_t got, uint64_t want)
{
	return got >= want && got <= want + want / 8 + 1;
}

static void test_empty(void)
{
	struct nvmg_lat_hist *h = calloc(1, sizeof(*h));

	CHECK(nvmg_lat_count(h) == 0);
	CHECK(nvmg_lat_percentile(h, 0.5) == 0);
	CHECK(nvmg_lat_percentile(h, 0.99) == 0);
	free(h);
}

static void test_single_values_are_exact_or_one_bucket_wide(void)
{
	static const uint64_t v[] = { 0, 1, 7, 8, 15, 16, 17, 1000, 123456, 99999999, 1ull << 40,
				      1ull << 50 };

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct nvmg_lat_hist *h = calloc(1, sizeof(*h));

		nvmg_lat_record(h, v[i]);
		CHECK(nvmg_lat_count(h) == 1);
		/* capped by the maximum seen, so a lone sample is exact */
		CHECK(nvmg_lat_percentile(h, 0.5) == v[i]);
		CHECK(h->max_ns == v[i] && h->sum_ns == v[i]);
		free(h);
	}
}

static void test_percentiles_of_a_uniform_spread(void)
{
	struct nvmg_lat_hist *h = calloc(1, sizeof(*h));

	/* 1..10000 us */
	for (uint64_t i = 1; i <= 10000; i++)
		nvmg_lat_record(h, i * 1000);
	CHECK(nvmg_lat_count(h) == 10000);
	CHECK(close_above(nvmg_lat_percentile(h, 0.5), 5000 * 1000));
	CHECK(close_above(nvmg_lat_percentile(h, 0.9), 9000 * 1000));
	CHECK(close_above(nvmg_lat_percentile(h, 0.99), 9900 * 1000));
	CHECK(nvmg_lat_percentile(h, 1.0) == 10000 * 1000);
	CHECK(h->max_ns == 10000 * 1000);
	free(h);
}

static void test_tail_is_seen(void)
{
	struct nvmg_lat_hist *h = calloc(1, sizeof(*h));

	/* 99.8% fast, 0.2% slow: p99 fast, p99.9 slow */
	for (int i = 0; i < 998; i++)
		nvmg_lat_record(h, 20000);
	nvmg_lat_record(h, 5000000);
	nvmg_lat_record(h, 5000000);
	CHECK(close_above(nvmg_lat_percentile(h, 0.99), 20000));
	CHECK(close_above(nvmg_lat_percentile(h, 0.999), 5000000));
	free(h);
}

static void test_sums(void)
{
	struct nvmg_io_stats *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b)),
			     *sum = calloc(1, sizeof(*sum));

	a->read_cmds = 3;
	a->read_bytes = 12288;
	a->errors = 1;
	b->write_cmds = 5;
	b->write_bytes = 20480;
	b->other_cmds = 2;
	nvmg_lat_record(&a->lat, 100);
	nvmg_lat_record(&b->lat, 300);
	nvmg_io_stats_add(sum, a);
	nvmg_io_stats_add(sum, b);
	CHECK(sum->read_cmds == 3 && sum->write_cmds == 5 && sum->other_cmds == 2);
	CHECK(sum->read_bytes == 12288 && sum->write_bytes == 20480 && sum->errors == 1);
	CHECK(nvmg_lat_count(&sum->lat) == 2 && sum->lat.sum_ns == 400 && sum->lat.max_ns == 300);
	free(a);
	free(b);
	free(sum);
}

int main(void)
{
	test_empty();
	test_single_values_are_exact_or_one_bucket_wide();
	test_percentiles_of_a_uniform_spread();
	test_tail_is_seen();
	test_sums();
	return check_report("test_stats");
}
