/* nvmegated: start-up, signals and shutdown. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "conf/config.h"
#include "daemon/log.h"
#include "daemon/reactor.h"
#include "fuse/nvmg_fuse.h"
#include "net/tcp.h"
#include "nvme/admin.h"
#include "nvme/pcie/bind.h"
#include "nvme/subsys.h"

#define EXIT_CONFIG 2
#define DRAIN_TIMEOUT_MS 5000

/* The process's single target; everything else gets it by pointer. */
static struct nvmg_target target;
/* The FUSE front end, when the config asks for one (reload checks it). */
static struct nvmg_fuse *fuse;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: nvmegated -c FILE [--check-config] | --bind BDF | --unbind BDF\n"
		"  -c, --config FILE   JSON configuration (a superset of `nvmetcli save`)\n"
		"      --check-config  validate FILE and exit (0 valid, 2 invalid)\n"
		"      --bind BDF      give PCI device BDF (0000:01:00.0) to vfio-pci for pcie: namespaces\n"
		"      --unbind BDF    give it back to the kernel's nvme driver\n"
		"  -V, --version       print the version\n"
		"  -h, --help          this text\n"
		"Signals: SIGHUP reloads the configuration, SIGTERM stops cleanly.\n");
}

static void warn_cb(void *ctx, const char *msg)
{
	(void)ctx;
	log_warn("%s", msg);
}

static unsigned reactor_count(const struct nvmg_conf *conf)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (conf->reactors)
		return conf->reactors;
	return n > 0 ? (unsigned)n : 1;
}

static int start_reactors(unsigned n)
{
	int ret = 0;

	target.reactors = calloc(n, sizeof(*target.reactors));
	if (!target.reactors)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		target.reactors[i] = nvmg_reactor_create(i, &ret);
		if (!target.reactors[i])
			return ret;
		target.nr_reactors++;
		ret = nvmg_reactor_start(target.reactors[i]);
		if (ret)
			return ret;
	}
	return 0;
}

static void stop_reactors(void)
{
	for (unsigned i = 0; i < target.nr_reactors; i++)
		nvmg_reactor_stop(target.reactors[i]);
	for (unsigned i = 0; i < target.nr_reactors; i++)
		nvmg_reactor_destroy(target.reactors[i]);
	free(target.reactors);
	target.reactors = NULL;
	target.nr_reactors = 0;
}

static void reload(const char *file)
{
	struct nvmg_conf *conf;
	char err[512] = "";
	int ret;

	log_info("SIGHUP: reloading %s", file);
	ret = nvmg_conf_load(file, &conf, err, sizeof(err), warn_cb, NULL);
	if (ret) {
		log_err("reload: %s: %s; keeping the running configuration", file, err);
		return;
	}
	nvmg_log_set_level(conf->log_level);
	ret = nvmg_target_reload(&target, conf, err, sizeof(err));
	if (ret)
		log_err("reload: %s; keeping the running configuration", err);
	else
		log_info("reload: done");
	nvmg_fuse_reload(fuse, conf);
	nvmg_conf_free(conf);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "bind", required_argument, NULL, 'B' },
		{ "unbind", required_argument, NULL, 'U' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *file = NULL;
	bool check_only = false;
	struct nvmg_reactor_features feat;
	struct nvmg_tcp *tcp = NULL;
	struct nvmg_tcp_opts topts;
	struct nvmg_conf *conf;
	char err[512] = "";
	sigset_t sigs;
	int opt, ret, status = 0;

	while ((opt = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			file = optarg;
			break;
		case 'C':
			check_only = true;
			break;
		case 'B':
		case 'U':
			ret = nvmg_pcie_bind(optarg, opt == 'B', err, sizeof(err));
			if (ret) {
				fprintf(stderr, "nvmegated: %s\n", err);
				return 1;
			}
			printf("%s: bound to %s\n", optarg, opt == 'B' ? "vfio-pci" : "nvme");
			return 0;
		case 'V':
			printf("nvmegated %s\n", NVMG_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_CONFIG;
		}
	}
	if (!file || optind != argc) {
		usage(stderr);
		return EXIT_CONFIG;
	}
	ret = nvmg_conf_load(file, &conf, err, sizeof(err), warn_cb, NULL);
	if (ret) {
		fprintf(stderr, "nvmegated: %s: %s\n", file, err);
		return EXIT_CONFIG;
	}
	if (check_only) {
		printf("config OK\n");
		nvmg_conf_free(conf);
		return 0;
	}
	nvmg_log_set_level(conf->log_level);

	ret = nvmg_reactor_probe(&feat);
	if (ret) {
		log_err("io_uring is not available: %s", strerror(-ret));
		nvmg_conf_free(conf);
		return 1;
	}
	if (!feat.fallocate)
		log_info("io_uring has no fallocate: Write Zeroes and Deallocate run inline");

	/* Signals are taken synchronously by this thread only; reactors
	 * inherit the blocked mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	ret = nvmg_target_build(&target, conf, err, sizeof(err));
	if (ret) {
		log_err("%s", err);
		status = 1;
		goto out_target;
	}
	ret = start_reactors(reactor_count(conf));
	if (ret) {
		log_err("cannot start reactors: %s", strerror(-ret));
		status = 1;
		goto out_reactors;
	}
	/* conf/ owns the defaults and ranges (never 0). */
	topts.handshake_timeout_ms = conf->handshake_timeout_ms;
	topts.max_pending_sockets = conf->max_pending_sockets;
	ret = nvmg_tcp_start(&target, &topts, &tcp, err, sizeof(err));
	if (ret) {
		log_err("%s", err);
		status = 1;
		goto out_reactors;
	}
	/* After the listeners, so a FUSE failure is the only thing to undo;
	 * before "ready", so a started daemon has its mount. */
	ret = nvmg_fuse_start(&target, conf, &fuse, err, sizeof(err));
	if (ret) {
		log_err("%s", err);
		status = 1;
		goto out_tcp;
	}
	log_info("nvmegated %s ready: %zu subsystem%s, %zu port%s, %u reactor%s", NVMG_VERSION,
		 target.nr_subsys, target.nr_subsys == 1 ? "" : "s", target.nr_ports,
		 target.nr_ports == 1 ? "" : "s", target.nr_reactors, target.nr_reactors == 1 ? "" : "s");
	nvmg_conf_free(conf);
	conf = NULL;

	for (;;) {
		int sig = sigwaitinfo(&sigs, NULL);

		if (sig == SIGHUP) {
			reload(file);
			continue;
		}
		if (sig == SIGTERM || sig == SIGINT) {
			log_info("%s: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			break;
		}
	}
	/* FUSE first: its commands finish on the reactors, still running. */
	nvmg_fuse_stop(fuse);
	fuse = NULL;
out_tcp:
	nvmg_tcp_shutdown(tcp, DRAIN_TIMEOUT_MS);
out_reactors:
	stop_reactors();
	nvmg_tcp_destroy(tcp);
	ret = nvmg_target_flush_all(&target);
	if (ret) {
		log_err("flush on shutdown: %s", strerror(-ret));
		status = 1;
	}
out_target:
	nvmg_target_destroy(&target);
	nvmg_conf_free(conf);
	if (!status)
		log_info("stopped");
	return status;
}
