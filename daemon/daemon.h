/* The running daemon: its target, front ends, and the configuration it
 * applied. Configuration changes (SIGHUP, the control socket) go through
 * here one at a time, under lock. */
#ifndef NVMG_DAEMON_H
#define NVMG_DAEMON_H

#include <pthread.h>
#include <stdint.h>
#include "conf/config.h"
#include "nvme/core.h"

struct nvmg_tcp;
struct nvmg_fuse;
struct nvmg_control;

struct nvmg_daemon {
	struct nvmg_target target;
	struct nvmg_tcp *tcp;
	struct nvmg_fuse *fuse;
	struct nvmg_control *control;
	const char *conf_file;     /* as given with -c */
	uint64_t start_ms;         /* nvmg_now_ms() at start */
	/* Settings read once at start; a reload that changes them says so. */
	struct {
		unsigned reactors, handshake_timeout_ms, max_pending_sockets;
		unsigned icreq_timeout_ms, max_pending_per_address, tcp_user_timeout_ms;
		bool kernel_tls;
		char *control_socket, *control_group;
		char *resv_dir;    /* reservation state (PTPL), next to conf_file */
	} fixed;
	pthread_mutex_t lock;      /* serializes changes; guards the fields below */
	char *running_json;        /* text of the applied configuration */
	uint64_t changes;          /* configurations applied since start */
};

/* Validate TEXT as a configuration (relative paths against conf_file) and
 * apply every difference to the running target. Caller holds d->lock. On
 * success d->running_json becomes TEXT (taken over); on failure TEXT is
 * freed, err says why and what runs is unchanged. Returns 0 or -errno. */
int nvmg_daemon_apply_locked(struct nvmg_daemon *d, char *text, char *err, size_t errlen);
/* Remember conf's start-only settings (main, once). Returns 0 or -ENOMEM. */
int nvmg_daemon_keep_fixed(struct nvmg_daemon *d, const struct nvmg_conf *conf);
void nvmg_daemon_free_fixed(struct nvmg_daemon *d);
/* What configs are checked against: warnings to the log, the backends'
 * path syntax, the transports that serve ports. */
void nvmg_daemon_conf_env(struct nvmg_daemon *d, struct nvmg_conf_env *env);
/* Re-read conf_file and apply it (who: "SIGHUP", "control"), logged and
 * told to systemd. Returns 0, or -errno with err saying why (logged at
 * err; the running configuration stays). */
int nvmg_daemon_reload(struct nvmg_daemon *d, const char *who, char *err, size_t errlen);
/* systemd's one-line summary (STATUS=), after start-up and each reload. */
void nvmg_daemon_notify_status(struct nvmg_daemon *d);

#endif
