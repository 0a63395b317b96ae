/* Applying configurations to the running daemon. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/daemon.h"
#include "daemon/log.h"
#include "fuse/nvmg_fuse.h"
#include "nvme/subsys.h"

static void warn_cb(void *ctx, const char *msg)
{
	(void)ctx;
	log_warn("%s", msg);
}

static int apply_conf(struct nvmg_daemon *d, struct nvmg_conf *conf, char *text, char *err,
		      size_t errlen)
{
	int ret = nvmg_target_reload(&d->target, conf, err, errlen);

	if (!ret) {
		nvmg_log_set_level(conf->log_level);
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
	struct nvmg_conf *conf;
	int ret = nvmg_conf_parse_at(text, d->conf_file, &conf, err, errlen, warn_cb, NULL);

	if (ret) {
		free(text);
		return ret;
	}
	return apply_conf(d, conf, text, err, errlen);
}

int nvmg_daemon_reload(struct nvmg_daemon *d, char *err, size_t errlen)
{
	struct nvmg_conf *conf;
	char *text = NULL;
	int ret;

	pthread_mutex_lock(&d->lock);
	ret = nvmg_conf_load_text(d->conf_file, &conf, &text, err, errlen, warn_cb, NULL);
	if (!ret)
		ret = apply_conf(d, conf, text, err, errlen);
	pthread_mutex_unlock(&d->lock);
	return ret;
}
