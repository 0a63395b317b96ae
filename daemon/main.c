/* nvmegated: start-up, signals and shutdown. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "conf/config.h"
#include "daemon/control.h"
#include "daemon/daemon.h"
#include "lib/log.h"
#include "daemon/notify.h"
#include "lib/reactor.h"
#include "fuse/nvmg_fuse.h"
#include "net/tcp.h"
#include "nvme/admin.h"
#include "nvme/bdev/pcie/bind.h"
#include "nvme/snapshot.h"
#include "nvme/subsys.h"

/* A configuration (or usage) error: retrying cannot help until someone
 * edits the file, so the unit lists it in RestartPreventExitStatus=.
 * Every other failure at start exits 1 and a crash dies by a signal: both
 * are restarted. */
#define EXIT_CONFIG 2
#define DRAIN_TIMEOUT_MS 5000

/* The process's single daemon state; everything else gets it by pointer. */
static struct nvmg_daemon dmn;

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
		"Signals: SIGHUP reloads the configuration, SIGTERM stops cleanly.\n"
		"Exit status: 0 stopped cleanly, 2 invalid configuration or arguments (systemd\n"
		"does not restart the service for it), 1 any other failure.\n");
}

/* Every transport the daemon has, registered before the config is
 * loaded: a port's trtype is checked against them. */
static int register_transports(void)
{
	int ret;

	dmn.tcp = nvmg_tcp_create(&dmn.target);
	if (!dmn.tcp)
		return -ENOMEM;
	ret = nvmg_target_register_transport(&dmn.target, &nvmg_tcp_transport, dmn.tcp);
	if (!ret)
		ret = nvmg_target_register_transport(&dmn.target, &nvmg_fuse_transport, NULL);
	return ret;
}

static unsigned reactor_count(const struct nvmg_conf *conf)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (conf->reactors)
		return conf->reactors;
	return n > 0 ? (unsigned)n : 1;
}

static int start_reactors(unsigned n, unsigned poll_us)
{
	int ret = 0;

	dmn.target.reactors = calloc(n, sizeof(*dmn.target.reactors));
	if (!dmn.target.reactors)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		dmn.target.reactors[i] = nvmg_reactor_create(i, &ret);
		if (!dmn.target.reactors[i])
			return ret;
		dmn.target.nr_reactors++;
		nvmg_reactor_set_poll_us(dmn.target.reactors[i], poll_us);
		ret = nvmg_reactor_start(dmn.target.reactors[i]);
		if (ret)
			return ret;
	}
	return 0;
}

static void stop_reactors(void)
{
	for (unsigned i = 0; i < dmn.target.nr_reactors; i++)
		nvmg_reactor_stop(dmn.target.reactors[i]);
}

/* After the target (which forgets them): a backend's service thread
 * (PCIe reset or removal) may post to a stopped reactor until its device
 * is closed. */
static void free_reactors(struct nvmg_reactor **r, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		nvmg_reactor_destroy(r[i]);
	free(r);
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
	struct nvmg_reactor **reactors;
	unsigned nr_reactors;
	const char *file = NULL;
	bool check_only = false;
	struct nvmg_reactor_features feat;
	struct nvmg_tcp_opts topts;
	struct nvmg_conf_env env;
	struct nvmg_conf *conf;
	struct nvmg_watchdog wd = { 0 };
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
				log_err("%s", err);
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
			/* getopt printed which option is wrong. */
			log_err("invalid arguments (see nvmegated --help)");
			return EXIT_CONFIG;
		}
	}
	if (!file || optind != argc) {
		log_err("%s", file ? "unexpected arguments after the options" : "no -c FILE given");
		usage(stderr);
		return EXIT_CONFIG;
	}
	dmn.conf_file = file;
	dmn.start_ms = nvmg_now_ms();
	pthread_mutex_init(&dmn.lock, NULL);
	ret = register_transports();
	if (ret) {
		log_err("cannot register the transports: %s", strerror(-ret));
		nvmg_tcp_destroy(dmn.tcp);
		return 1;
	}
	nvmg_daemon_conf_env(&dmn, &env);
	ret = nvmg_conf_load_text(file, &conf, &dmn.running_json, err, sizeof(err), &env);
	if (ret) {
		/* The logger, so that under systemd the journal stores the
		 * reason at priority err, not as plain (info) stderr. */
		log_err("%s: %s", file, err);
		nvmg_tcp_destroy(dmn.tcp);
		return EXIT_CONFIG;
	}
	if (check_only) {
		printf("config OK\n");
		nvmg_conf_free(conf);
		free(dmn.running_json);
		nvmg_tcp_destroy(dmn.tcp);
		return 0;
	}
	nvmg_log_set_level(conf->log_level);
	if (nvmg_daemon_keep_fixed(&dmn, conf)) {
		log_err("out of memory");
		nvmg_conf_free(conf);
		nvmg_daemon_free_fixed(&dmn);
		free(dmn.running_json);
		nvmg_tcp_destroy(dmn.tcp);
		return 1;
	}

	ret = nvmg_reactor_probe(&feat);
	if (ret) {
		log_err("io_uring is not available: %s", strerror(-ret));
		nvmg_conf_free(conf);
		nvmg_daemon_free_fixed(&dmn);
		free(dmn.running_json);
		nvmg_tcp_destroy(dmn.tcp);
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

	dmn.target.resv_dir = dmn.fixed.resv_dir;
	ret = nvmg_target_build(&dmn.target, conf, err, sizeof(err));
	if (ret) {
		log_err("%s", err);
		status = 1;
		goto out_target;
	}
	ret = start_reactors(reactor_count(conf), conf->poll_us);
	if (ret) {
		log_err("cannot start reactors: %s", strerror(-ret));
		status = 1;
		goto out_reactors;
	}
	/* conf/ owns the defaults and ranges (never 0). */
	topts.handshake_timeout_ms = conf->handshake_timeout_ms;
	topts.max_pending_sockets = conf->max_pending_sockets;
	topts.kernel_tls = conf->kernel_tls;
	topts.icreq_timeout_ms = conf->icreq_timeout_ms;
	topts.max_pending_per_address = conf->max_pending_per_address;
	topts.user_timeout_ms = conf->tcp_user_timeout_ms;
	ret = nvmg_tcp_start(dmn.tcp, &topts);
	if (ret) {
		log_err("cannot start the tcp transport: %s", strerror(-ret));
		status = 1;
		goto out_reactors;
	}
	ret = nvmg_target_enable_ports(&dmn.target, err, sizeof(err));
	if (ret) {
		log_err("%s", err);
		status = 1;
		goto out_tcp;
	}
	/* After the listeners, so a FUSE failure is the only thing to undo;
	 * before "ready", so a started daemon has its mount. */
	ret = nvmg_fuse_start(&dmn.target, conf, &dmn.fuse, err, sizeof(err));
	if (ret) {
		log_err("%s", err);
		status = 1;
		goto out_tcp;
	}
	/* The CLI's socket last: a command never sees a half-started daemon. */
	ret = nvmg_control_start(&dmn, conf, err, sizeof(err));
	if (ret) {
		log_err("%s", err);
		status = 1;
		goto out_fuse;
	}
	log_info("nvmegated %s ready: %zu subsystem%s, %zu port%s, %u reactor%s", NVMG_VERSION,
		 dmn.target.nr_subsys, dmn.target.nr_subsys == 1 ? "" : "s", dmn.target.nr_ports,
		 dmn.target.nr_ports == 1 ? "" : "s", dmn.target.nr_reactors, dmn.target.nr_reactors == 1 ? "" : "s");
	nvmg_conf_free(conf);
	conf = NULL;
	ret = nvmg_watchdog_init(&wd, dmn.target.reactors, dmn.target.nr_reactors);
	if (ret)
		log_err("watchdog: %s; running without it", strerror(-ret));
	/* Every listener and the FUSE mount are up: systemd may start units
	 * ordered after us. */
	nvmg_notify("READY=1\nMAINPID=%ld", (long)getpid());
	nvmg_daemon_notify_status(&dmn);
	nvmg_watchdog_tick(&wd);

	for (;;) {
		struct timespec ts = { (time_t)(wd.interval_ms / 1000),
				       (long)(wd.interval_ms % 1000) * 1000000L };
		int sig = wd.interval_ms ? sigtimedwait(&sigs, NULL, &ts) : sigwaitinfo(&sigs, NULL);

		nvmg_watchdog_tick(&wd);
		if (sig == SIGHUP) {
			char err[512];

			nvmg_daemon_reload(&dmn, "SIGHUP", err, sizeof(err));
			continue;
		}
		if (sig == SIGTERM || sig == SIGINT) {
			log_info("%s: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			nvmg_notify("STOPPING=1\nSTATUS=shutting down");
			break;
		}
	}
	/* No more configuration changes from the CLI. */
	nvmg_control_stop(&dmn);
out_fuse:
	/* FUSE first: its commands finish on the reactors, still running. */
	nvmg_fuse_stop(dmn.fuse);
	dmn.fuse = NULL;
out_tcp:
	nvmg_tcp_shutdown(dmn.tcp, DRAIN_TIMEOUT_MS);
out_reactors:
	nvmg_watchdog_free(&wd);
	stop_reactors();
	ret = nvmg_target_flush_all(&dmn.target);
	if (ret) {
		log_err("flush on shutdown: %s", strerror(-ret));
		status = 1;
	}
out_target:
	/* After the reactors: none runs a connection or a listener now. */
	nvmg_tcp_destroy(dmn.tcp);
	dmn.tcp = NULL;
	reactors = dmn.target.reactors;
	nr_reactors = dmn.target.nr_reactors;
	nvmg_target_destroy(&dmn.target);
	free_reactors(reactors, nr_reactors);
	nvmg_conf_free(conf);
	free(dmn.running_json);
	nvmg_daemon_free_fixed(&dmn);
	pthread_mutex_destroy(&dmn.lock);
	if (!status)
		log_info("stopped");
	return status;
}
