#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include "nvme/bdev/devreg.h"

struct devreg_ent {
	LIST_ENTRY(devreg_ent) link;
	char *key;
	void *dev;
	unsigned refs;
};

struct nvmg_devreg {
	pthread_mutex_t lock;
	LIST_HEAD(, devreg_ent) list;
};

struct nvmg_devreg *nvmg_devreg_create(void)
{
	struct nvmg_devreg *reg = calloc(1, sizeof(*reg));

	if (!reg)
		return NULL;
	pthread_mutex_init(&reg->lock, NULL);
	LIST_INIT(&reg->list);
	return reg;
}

void nvmg_devreg_destroy(struct nvmg_devreg *reg)
{
	if (!reg)
		return;
	pthread_mutex_destroy(&reg->lock);
	free(reg);
}

void *nvmg_devreg_get(struct nvmg_devreg *reg, const char *key,
		      void *(*open)(const char *key, char *err, size_t errlen, int *ret), char *err,
		      size_t errlen, int *ret)
{
	struct devreg_ent *e;
	void *dev = NULL;

	*ret = 0;
	pthread_mutex_lock(&reg->lock);
	LIST_FOREACH(e, &reg->list, link) {
		if (!strcmp(e->key, key)) {
			e->refs++;
			dev = e->dev;
			goto out;
		}
	}
	e = calloc(1, sizeof(*e));
	if (!e || !(e->key = strdup(key))) {
		free(e);
		*ret = -ENOMEM;
		goto out;
	}
	/* Opened under the lock: a second namespace of the same device
	 * waits instead of opening the device twice. */
	e->dev = open(key, err, errlen, ret);
	if (!e->dev) {
		free(e->key);
		free(e);
		goto out;
	}
	e->refs = 1;
	LIST_INSERT_HEAD(&reg->list, e, link);
	dev = e->dev;
out:
	pthread_mutex_unlock(&reg->lock);
	return dev;
}

void nvmg_devreg_put(struct nvmg_devreg *reg, const char *key, void (*close)(void *dev))
{
	struct devreg_ent *e;

	pthread_mutex_lock(&reg->lock);
	LIST_FOREACH(e, &reg->list, link)
		if (!strcmp(e->key, key))
			break;
	if (e && --e->refs == 0)
		LIST_REMOVE(e, link);
	else
		e = NULL;
	/* Closed under the lock: a re-open of the same device waits until
	 * the old owner has let go of it. */
	if (e) {
		close(e->dev);
		free(e->key);
		free(e);
	}
	pthread_mutex_unlock(&reg->lock);
}
