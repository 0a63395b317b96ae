/* nvmegate-bdev-perf: command line, backend, reactors and the report. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lib/log.h"
#include "lib/parse.h"
#include "nvme/bdev/devreg.h"
#include "tools/bdev-perf/bdev_perf.h"

#define EXIT_USAGE 2
#define MAX_QD 1024
#define MAX_REACTORS 64
/* After the run time, how long in-flight I/O may take before we give up
 * (the PCIe driver aborts a command after 30 s and resets after 60 s). */
#define DRAIN_GRACE_S 90

static const char *const wl_names[] = {
	[BP_RANDREAD] = "randread", [BP_READ] = "read", [BP_RANDWRITE] = "randwrite",
	[BP_WRITE] = "write", [BP_VERIFY] = "verify",
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: " BP_NAME " [options] PATH\n"
"Drives one nvmegated backend directly (no NVMe/TCP or FUSE in between).\n"
"PATH is a namespace path as in the config: pcie:DDDD:BB:DD.F/NSID, mem:SIZE,\n"
"or a file / block device (read workloads open it read-only).\n"
"  -w, --workload W   randread|read|randwrite|write|verify (default randread);\n"
"                     verify writes a pattern and reads it back, checking it\n"
"  -b, --bs BYTES     block size, K/M suffixes, <= 1M (default 4096)\n"
"  -d, --qd N         queue depth per reactor (default 32)\n"
"  -t, --time SECS    run time (default 10)\n"
"  -r, --reactors N   reactor threads, one queue pair each (default 1)\n"
"      --json         print one JSON object with the results\n"
"  -h, --help         this text\n"
"Exit status: 0 done, 1 open or I/O failure (or data mismatch), 2 bad arguments.\n");
}

static int bad_arg(const char *fmt, const char *val)
{
	fprintf(stderr, BP_NAME ": ");
	fprintf(stderr, fmt, val);
	fprintf(stderr, "\n");
	usage(stderr);
	return EXIT_USAGE;
}

/* A count from 1 to max. */
static bool parse_count(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v;

	if (nvmg_parse_u64(s, &v) || !v || v > max)
		return false;
	*out = v;
	return true;
}

static int parse_opts(int argc, char **argv, struct bp_opts *o)
{
	enum { OPT_JSON = 256 };
	static const struct option opts[] = {
		{ "workload", required_argument, NULL, 'w' },
		{ "bs", required_argument, NULL, 'b' },
		{ "qd", required_argument, NULL, 'd' },
		{ "time", required_argument, NULL, 't' },
		{ "reactors", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	uint64_t v;
	int opt;

	*o = (struct bp_opts){ .wl = BP_RANDREAD, .bs = 4096, .qd = 32, .secs = 10, .reactors = 1 };
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":w:b:d:t:r:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'w': {
			size_t i;

			for (i = 0; i < sizeof(wl_names) / sizeof(wl_names[0]); i++)
				if (!strcmp(optarg, wl_names[i]))
					break;
			if (i == sizeof(wl_names) / sizeof(wl_names[0]))
				return bad_arg("unknown workload '%s' (randread|read|randwrite|write|verify)", optarg);
			o->wl = (enum bp_workload)i;
			break;
		}
		case 'b':
			if (nvmg_parse_size(optarg, &v) || v > 1u << NVMG_BUF_MAX_SHIFT || v % 512)
				return bad_arg("bad block size '%s' (a multiple of 512, at most 1M)", optarg);
			o->bs = (uint32_t)v;
			break;
		case 'd':
			if (!parse_count(optarg, MAX_QD, &v))
				return bad_arg("bad queue depth '%s' (1..1024)", optarg);
			o->qd = (unsigned)v;
			break;
		case 't':
			if (!parse_count(optarg, 86400, &v))
				return bad_arg("bad run time '%s' (1..86400 seconds)", optarg);
			o->secs = (unsigned)v;
			break;
		case 'r':
			if (!parse_count(optarg, MAX_REACTORS, &v))
				return bad_arg("bad reactor count '%s' (1..64)", optarg);
			o->reactors = (unsigned)v;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			return bad_arg("option '%s' needs a value", argv[optind - 1]);
		default:
			return bad_arg("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return bad_arg("%s", optind >= argc ? "no backend PATH given" : "more than one PATH given");
	o->path = argv[optind];
	return 0;
}

struct bp_result {
	uint64_t ios, bytes;
	double secs, iops, mibps, mean_us, p50_us, p99_us, min_us, max_us;
};

static int summarize(struct bp_job *jobs, unsigned n, struct bp_result *r)
{
	/* Large (58 KiB): not on the stack. */
	struct perf_hist *all = malloc(sizeof(*all));

	if (!all)
		return -ENOMEM;
	hist_init(all);
	memset(r, 0, sizeof(*r));
	for (unsigned i = 0; i < n; i++) {
		double s = jobs[i].warm ? (double)(jobs[i].t_done_ns - jobs[i].t0_ns) / 1e9 : 0;

		hist_merge(all, &jobs[i].hist);
		r->ios += jobs[i].ios;
		r->bytes += jobs[i].bytes;
		if (s > r->secs)
			r->secs = s;
	}
	if (r->secs > 0) {
		r->iops = (double)r->ios / r->secs;
		r->mibps = (double)r->bytes / r->secs / (1 << 20);
	}
	if (all->count) {
		r->mean_us = (double)all->sum_ns / (double)all->count / 1e3;
		r->p50_us = (double)hist_percentile(all, 50) / 1e3;
		r->p99_us = (double)hist_percentile(all, 99) / 1e3;
		r->min_us = (double)all->min_ns / 1e3;
		r->max_us = (double)all->max_ns / 1e3;
	}
	free(all);
	return 0;
}

static void report(const struct bp_opts *o, const struct nvmg_bdev *b, const struct bp_result *r,
		   uint64_t errors)
{
	if (o->json) {
		json_object *j = json_object_new_object();

		json_c_set_serialization_double_format("%.3f", JSON_C_OPTION_THREAD);
		json_object_object_add(j, "path", json_object_new_string(o->path));
		json_object_object_add(j, "backend", json_object_new_string(b->ops->name));
		json_object_object_add(j, "size", json_object_new_int64((int64_t)nvmg_bdev_size(b)));
		json_object_object_add(j, "workload", json_object_new_string(wl_names[o->wl]));
		json_object_object_add(j, "bs", json_object_new_int64(o->bs));
		json_object_object_add(j, "qd", json_object_new_int64(o->qd));
		json_object_object_add(j, "reactors", json_object_new_int64(o->reactors));
		json_object_object_add(j, "runtime_s", json_object_new_double(r->secs));
		json_object_object_add(j, "ios", json_object_new_int64((int64_t)r->ios));
		json_object_object_add(j, "bytes", json_object_new_int64((int64_t)r->bytes));
		json_object_object_add(j, "iops", json_object_new_double(r->iops));
		json_object_object_add(j, "mibps", json_object_new_double(r->mibps));
		json_object_object_add(j, "mean_lat_us", json_object_new_double(r->mean_us));
		json_object_object_add(j, "p50_lat_us", json_object_new_double(r->p50_us));
		json_object_object_add(j, "p99_lat_us", json_object_new_double(r->p99_us));
		json_object_object_add(j, "min_lat_us", json_object_new_double(r->min_us));
		json_object_object_add(j, "max_lat_us", json_object_new_double(r->max_us));
		json_object_object_add(j, "errors", json_object_new_int64((int64_t)errors));
		printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
		json_object_put(j);
		return;
	}
	printf("%s (%s, %" PRIu64 " bytes, block %u): %s bs %u qd %u x %u reactor%s, %.2f s\n",
	       o->path, b->ops->name, nvmg_bdev_size(b), b->block_size, wl_names[o->wl], o->bs, o->qd,
	       o->reactors, o->reactors == 1 ? "" : "s", r->secs);
	printf("%12s %10s %10s %10s %10s\n", "IOPS", "MiB/s", "mean_us", "p50_us", "p99_us");
	printf("%12.1f %10.2f %10.1f %10.1f %10.1f\n", r->iops, r->mibps, r->mean_us, r->p50_us,
	       r->p99_us);
}

/* Waits for every job, turning SIGINT/SIGTERM into an early stop.
 * false: the jobs did not finish in time. */
static bool wait_jobs(sem_t *done, unsigned n, atomic_bool *stop, unsigned secs)
{
	uint64_t deadline = nvmg_now_ns() + (uint64_t)(secs + DRAIN_GRACE_S) * 1000000000ull;
	struct timespec tick = { 0, 100000000 };
	sigset_t sigs;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	while (n) {
		if (!sem_trywait(done)) {
			n--;
			continue;
		}
		if (nvmg_now_ns() > deadline)
			return false;
		if (sigtimedwait(&sigs, NULL, &tick) > 0)
			atomic_store(stop, true);
	}
	return true;
}

int main(int argc, char **argv)
{
	struct bp_opts o;
	struct nvmg_bdev *b = NULL;
	struct nvmg_reactor **rs = NULL;
	struct bp_job *jobs = NULL;
	struct bp_result res;
	atomic_bool stop;
	sem_t done;
	char err[512] = "";
	unsigned started = 0;
	uint64_t errors = 0;
	sigset_t sigs;
	struct nvmg_devreg *reg;
	int ret, status = 1;

	ret = parse_opts(argc, argv, &o);
	if (ret)
		return ret;
	/* Taken by the main thread only (wait_jobs); reactors inherit the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	atomic_init(&stop, false);
	sem_init(&done, 0, 0);

	reg = nvmg_devreg_create();
	if (!reg) {
		fprintf(stderr, BP_NAME ": out of memory\n");
		return 1;
	}
	ret = nvmg_bdev_open(reg, o.path, o.wl == BP_RANDREAD || o.wl == BP_READ, &b, err,
			     sizeof(err));
	if (ret) {
		fprintf(stderr, BP_NAME ": %s: cannot open: %s\n", o.path, err[0] ? err : strerror(-ret));
		nvmg_devreg_destroy(reg);
		return 1;
	}
	if (o.bs % b->block_size) {
		fprintf(stderr, BP_NAME ": %s: block size %u is not a multiple of the backend's %u\n",
			o.path, o.bs, b->block_size);
		status = EXIT_USAGE;
		goto out;
	}
	if (nvmg_bdev_size(b) / o.bs < (o.wl == BP_VERIFY ? (uint64_t)o.qd * o.reactors : 1)) {
		fprintf(stderr, BP_NAME ": %s: too small (%" PRIu64 " bytes) for %s with bs %u%s\n",
			o.path, nvmg_bdev_size(b), wl_names[o.wl], o.bs,
			o.wl == BP_VERIFY ? " (verify needs a block per slot)" : "");
		goto out;
	}
	if ((uint64_t)o.qd * o.bs > NVMG_BUF_ARENA_SIZE && !strcmp(b->ops->name, "pcie"))
		fprintf(stderr, BP_NAME ": note: qd x bs exceeds the %u MiB buffer arena: buffers "
			"beyond it are not device-mapped, so the driver copies their data\n",
			NVMG_BUF_ARENA_SIZE >> 20);
	rs = calloc(o.reactors, sizeof(*rs));
	jobs = calloc(o.reactors, sizeof(*jobs));
	if (!rs || !jobs) {
		fprintf(stderr, BP_NAME ": out of memory\n");
		goto out;
	}
	for (unsigned i = 0; i < o.reactors; i++) {
		rs[i] = nvmg_reactor_create(i, &ret);
		if (rs[i])
			ret = nvmg_reactor_start(rs[i]);
		if (ret) {
			fprintf(stderr, BP_NAME ": cannot start reactor %u: %s\n", i, strerror(-ret));
			goto out;
		}
	}
	for (unsigned i = 0; i < o.reactors; i++) {
		struct bp_job *j = &jobs[i];

		j->o = &o;
		j->b = b;
		j->r = rs[i];
		j->id = i;
		j->nr_jobs = o.reactors;
		j->nblocks = nvmg_bdev_size(b) / o.bs;
		j->stop = &stop;
		j->done = &done;
		j->slots = calloc(o.qd, sizeof(*j->slots));
		if (!j->slots || nvmg_reactor_post(rs[i], bp_job_start, j)) {
			fprintf(stderr, BP_NAME ": out of memory\n");
			atomic_store(&stop, true);
			break;
		}
		started++;
	}
	if (!wait_jobs(&done, started, &stop, o.secs)) {
		/* Reactors are stuck in the backend: nothing can be freed safely. */
		fprintf(stderr, BP_NAME ": %s: I/O did not complete %u s after the run\n", o.path,
			DRAIN_GRACE_S);
		_exit(1);
	}
	for (unsigned i = 0; i < started; i++) {
		if (jobs[i].err) {
			errors++;
			if (jobs[i].err == -EILSEQ)
				fprintf(stderr, BP_NAME ": %s: data mismatch at offset %" PRIu64 " (reactor %u)\n",
					o.path, jobs[i].err_off, i);
			else
				fprintf(stderr, BP_NAME ": %s: I/O error at offset %" PRIu64 " (reactor %u): %s\n",
					o.path, jobs[i].err_off, i, strerror(-jobs[i].err));
		}
	}
	if (started == o.reactors && summarize(jobs, started, &res)) {
		fprintf(stderr, BP_NAME ": out of memory\n");
	} else if (started == o.reactors) {
		report(&o, b, &res, errors);
		if (!errors && !res.ios)
			fprintf(stderr, BP_NAME ": %s: no I/O completed\n", o.path);
		else if (!errors)
			status = 0;
	}
out:
	/* Reactor threads end before the backend closes (the PCIe queue
	 * pairs' notifications live in their rings); their pools (the
	 * device-mapped arenas) go last, after the driver unmapped them. */
	for (unsigned i = 0; rs && i < o.reactors && rs[i]; i++)
		nvmg_reactor_stop(rs[i]);
	if (b)
		b->ops->close(b);
	for (unsigned i = 0; rs && i < o.reactors && rs[i]; i++)
		nvmg_reactor_destroy(rs[i]);
	for (unsigned i = 0; jobs && i < o.reactors; i++)
		free(jobs[i].slots);
	free(jobs);
	free(rs);
	nvmg_devreg_destroy(reg);
	sem_destroy(&done);
	return status;
}
