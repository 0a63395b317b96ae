/* Applying configurations to the running daemon. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/daemon.h"
#include "daemon/notify.h"
#include "lib/log.h"
#include "fuse/nvmg_fuse.h"
#include "net/tcp.h"
#include "nvme/bdev/path.h"
#include "nvme/snapshot.h"
#include "nvme/subsys.h"

static void warn_cb(void *ctx, const char *msg)
{
	(void)ctx;
	log_warn("%s", msg);
}

/* A port's trtype must name a transport registered on the target. */
static int check_trtype(void *ctx, const char *trtype, const char *shown, char *err, size_t errlen)
{
	struct nvmg_daemon *d = ctx;

	return nvmg_target_check_trtype(&d->target, trtype, shown, err, errlen);
}

void nvmg_daemon_conf_env(struct nvmg_daemon *d, struct nvmg_conf_env *env)
{
	*env = (struct nvmg_conf_env){ .warn = warn_cb, .ctx = d, .check_path = nvmg_bdev_check_path,
				       .check_trtype = check_trtype };
}

static bool str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b));
}

/* Reservation state that persists through power loss lives next to the
 * config: FILE without ".json", plus ".resv" (a folder), so two daemons
 * with two configs in one folder never share it. Absolute: it must not
 * depend on the working directory. */
static char *resv_dir_of(const char *file)
{
	char *abs = realpath(file, NULL), *out;
	const char *f = abs ? abs : file;
	size_t n = strlen(f);

	if (n > 5 && !strcmp(f + n - 5, ".json"))
		n -= 5;
	if (asprintf(&out, "%.*s.resv", (int)n, f) < 0)
		out = NULL;
	free(abs);
	return out;
}

int nvmg_daemon_keep_fixed(struct nvmg_daemon *d, const struct nvmg_conf *conf)
{
	d->fixed.resv_dir = d->conf_file ? resv_dir_of(d->conf_file) : NULL;
	if (d->conf_file && !d->fixed.resv_dir)
		return -ENOMEM;
	d->fixed.reactors = conf->reactors;
	d->fixed.handshake_timeout_ms = conf->handshake_timeout_ms;
	d->fixed.max_pending_sockets = conf->max_pending_sockets;
	d->fixed.icreq_timeout_ms = conf->icreq_timeout_ms;
	d->fixed.max_pending_per_address = conf->max_pending_per_address;
	d->fixed.tcp_user_timeout_ms = conf->tcp_user_timeout_ms;
	d->fixed.kernel_tls = conf->kernel_tls;
	d->fixed.control_socket = conf->control_socket ? strdup(conf->control_socket) : NULL;
	d->fixed.control_group = conf->control_group ? strdup(conf->control_group) : NULL;
	if ((conf->control_socket && !d->fixed.control_socket) ||
	    (conf->control_group && !d->fixed.control_group))
		return -ENOMEM;
	return 0;
}

void nvmg_daemon_free_fixed(struct nvmg_daemon *d)
{
	free(d->fixed.control_socket);
	free(d->fixed.control_group);
	free(d->fixed.resv_dir);
	d->fixed.control_socket = d->fixed.control_group = d->fixed.resv_dir = NULL;
}

/* Threads, sockets and the handshake deadline are set up once. */
static void warn_fixed(const struct nvmg_daemon *d, const struct nvmg_conf *conf)
{
	if (conf->reactors != d->fixed.reactors)
		log_warn("reload: nvmegate.reactors changes at the next restart");
	if (conf->handshake_timeout_ms != d->fixed.handshake_timeout_ms ||
	    conf->max_pending_sockets != d->fixed.max_pending_sockets ||
	    conf->icreq_timeout_ms != d->fixed.icreq_timeout_ms ||
	    conf->max_pending_per_address != d->fixed.max_pending_per_address)
		log_warn("reload: nvmegate.handshake_timeout_ms, icreq_timeout_ms, max_pending_sockets "
			 "and max_pending_per_address change at the next restart");
	if (conf->kernel_tls != d->fixed.kernel_tls)
		log_warn("reload: nvmegate.kernel_tls changes at the next restart");
	if (conf->tcp_user_timeout_ms != d->fixed.tcp_user_timeout_ms)
		log_warn("reload: nvmegate.tcp_user_timeout_ms changes at the next restart");
	if (str_differs(conf->control_socket, d->fixed.control_socket) ||
	    str_differs(conf->control_group, d->fixed.control_group))
		log_warn("reload: nvmegate.control changes at the next restart");
}

static int apply_conf(struct nvmg_daemon *d, struct nvmg_conf *conf, char *text, char *err,
		      size_t errlen)
{
	int ret = nvmg_target_reload(&d->target, conf, err, errlen);

	if (!ret) {
		warn_fixed(d, conf);
		nvmg_log_set_level(conf->log_level);
		for (unsigned i = 0; i < d->target.nr_reactors; i++)
			nvmg_reactor_set_poll_us(d->target.reactors[i], conf->poll_us);
		nvmg_fuse_reload(d->fuse, conf);
		free(d->running_json);
		d->running_json = text;
		text = NULL;
		d->changes++;
	}
	nvmg_conf_free(conf);
	free(text);
	return ret;
}

int nvmg_daemon_apply_locked(struct nvmg_daemon *d, char *text, char *err, size_t errlen)
{
	struct nvmg_conf_env env;
	struct nvmg_conf *conf;
	int ret;

	nvmg_daemon_conf_env(d, &env);
	ret = nvmg_conf_parse_at(text, d->conf_file, &conf, err, errlen, &env);

	if (ret) {
		free(text);
		return ret;
	}
	return apply_conf(d, conf, text, err, errlen);
}

static int reload_locked(struct nvmg_daemon *d, char *err, size_t errlen)
{
	struct nvmg_conf_env env;
	struct nvmg_conf *conf;
	char *text = NULL;
	int ret;

	nvmg_daemon_conf_env(d, &env);
	ret = nvmg_conf_load_text(d->conf_file, &conf, &text, err, errlen, &env);
	if (!ret)
		ret = apply_conf(d, conf, text, err, errlen);
	return ret;
}

void nvmg_daemon_notify_status(struct nvmg_daemon *d)
{
	struct nvmg_target_counts n;
	unsigned conns = nvmg_tcp_live_conns(d->tcp);

	nvmg_target_count(&d->target, &n);
	nvmg_notify("STATUS=serving %zu subsystem%s on %zu port%s, %u connection%s, %u reactor%s",
		    n.subsystems, n.subsystems == 1 ? "" : "s", n.ports, n.ports == 1 ? "" : "s", conns,
		    conns == 1 ? "" : "s", n.reactors, n.reactors == 1 ? "" : "s");
}

int nvmg_daemon_reload(struct nvmg_daemon *d, const char *who, char *err, size_t errlen)
{
	int ret;

	/* systemd hears of it either way (RELOADING=1 ... READY=1), and the
	 * error goes to the journal at err whoever asked. */
	nvmg_notify_reloading(d->conf_file);
	log_info("%s: reloading %s", who, d->conf_file);
	pthread_mutex_lock(&d->lock);
	ret = reload_locked(d, err, errlen);
	pthread_mutex_unlock(&d->lock);
	if (ret)
		log_err("reload: %s: %s; keeping the running configuration", d->conf_file, err);
	else
		log_info("reload: done");
	nvmg_notify("READY=1");
	nvmg_daemon_notify_status(d);
	return ret;
}
