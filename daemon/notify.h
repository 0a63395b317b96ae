/* The systemd service manager protocol (sd_notify): readiness, status
 * lines, reload/stop markers and the watchdog. Without NOTIFY_SOCKET every
 * call is a no-op, so the daemon runs the same outside systemd. */
#ifndef NVMG_NOTIFY_H
#define NVMG_NOTIFY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct nvmg_reactor;

/* Watchdog state: WATCHDOG=1 is sent only when every reactor answered the
 * previous heartbeat message, so one stuck reactor stops the pings and
 * systemd restarts the service. */
struct nvmg_watchdog {
	uint64_t interval_ms;       /* 0: no watchdog requested */
	struct nvmg_reactor **reactors;
	unsigned nr_reactors;
	uint64_t sent;              /* heartbeat sequence posted to every reactor */
	atomic_uint_fast64_t *answered; /* per reactor: last sequence it ran */
	bool stalled_logged;
};

/* sd_notify(0, text); logs a failure at debug level (the daemon keeps
 * running when the manager went away). */
void nvmg_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* RELOADING=1 with the MONOTONIC_USEC= that Type=notify-reload (systemd
 * 253+) wants, and a STATUS= naming file; READY=1 ends the reload. */
void nvmg_notify_reloading(const char *file);

/* Read WATCHDOG_USEC/WATCHDOG_PID. Returns 0 (wd->interval_ms set, 0 when
 * no watchdog) or -errno. */
int nvmg_watchdog_init(struct nvmg_watchdog *wd, struct nvmg_reactor **reactors, unsigned n);
/* Call at least every wd->interval_ms: pings if every reactor answered,
 * then posts the next heartbeat. */
void nvmg_watchdog_tick(struct nvmg_watchdog *wd);
void nvmg_watchdog_free(struct nvmg_watchdog *wd);

#endif
