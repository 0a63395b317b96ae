/* sd_notify readiness, status and the reactor-checked watchdog. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <systemd/sd-daemon.h>
#include "lib/log.h"
#include "daemon/notify.h"
#include "lib/reactor.h"

void nvmg_notify(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int ret;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ret = sd_notify(0, buf);
	if (ret < 0)
		log_debug("sd_notify: %s", strerror(-ret));
}

void nvmg_notify_reloading(const char *file)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	nvmg_notify("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
		    (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000, file);
}

int nvmg_watchdog_init(struct nvmg_watchdog *wd, struct nvmg_reactor **reactors, unsigned n)
{
	uint64_t usec = 0;
	int ret;

	memset(wd, 0, sizeof(*wd));
	ret = sd_watchdog_enabled(0, &usec);
	if (ret < 0)
		return ret;
	if (ret == 0 || !usec)
		return 0;
	wd->answered = calloc(n ? n : 1, sizeof(*wd->answered));
	if (!wd->answered)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++)
		atomic_init(&wd->answered[i], 0);
	wd->reactors = reactors;
	wd->nr_reactors = n;
	/* sd_watchdog_enabled(3): ping at half the timeout; a quarter leaves
	 * room for one late round-trip through the reactors. */
	wd->interval_ms = usec / 4000;
	if (!wd->interval_ms)
		wd->interval_ms = 1;
	log_info("watchdog: every %llu ms, checked on %u reactor%s",
		 (unsigned long long)wd->interval_ms, n, n == 1 ? "" : "s");
	return 0;
}

struct heartbeat {
	atomic_uint_fast64_t *slot;
	uint64_t seq;
};

static void heartbeat_msg(void *arg)
{
	struct heartbeat *h = arg;

	atomic_store_explicit(h->slot, h->seq, memory_order_release);
	free(h);
}

void nvmg_watchdog_tick(struct nvmg_watchdog *wd)
{
	unsigned late = 0;

	if (!wd->interval_ms)
		return;
	for (unsigned i = 0; i < wd->nr_reactors; i++)
		if (atomic_load_explicit(&wd->answered[i], memory_order_acquire) != wd->sent)
			late++;
	if (late) {
		/* No new heartbeat either: the late one still counts, and a
		 * stuck reactor must not pile up messages. */
		if (!wd->stalled_logged)
			log_err("watchdog: %u reactor%s did not answer for %llu ms; not pinging systemd",
				late, late == 1 ? "" : "s", (unsigned long long)wd->interval_ms);
		wd->stalled_logged = true;
		return;
	}
	if (wd->stalled_logged)
		log_warn("watchdog: every reactor answers again");
	wd->stalled_logged = false;
	nvmg_notify("WATCHDOG=1");
	wd->sent++;
	for (unsigned i = 0; i < wd->nr_reactors; i++) {
		struct heartbeat *h = malloc(sizeof(*h));

		if (!h) {
			log_err("watchdog: out of memory");
			continue;
		}
		h->slot = &wd->answered[i];
		h->seq = wd->sent;
		if (nvmg_reactor_post(wd->reactors[i], heartbeat_msg, h))
			free(h);
	}
}

void nvmg_watchdog_free(struct nvmg_watchdog *wd)
{
	free(wd->answered);
	wd->answered = NULL;
	wd->interval_ms = 0;
}
