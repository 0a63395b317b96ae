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

static pthread_mutex_t devreg_lock = PTHREAD_MUTEX_INITIALIZER;
static LIST_HEAD(, devreg_ent) devreg_list = LIST_HEAD_INITIALIZER(devreg_list);

void *nvmg_devreg_get(const char *key, void *(*open)(const char *key, char *err, size_t errlen, int *ret),
		      char *err, size_t errlen, int *ret)
{
	struct devreg_ent *e;
	void *dev = NULL;

	*ret = 0;
	pthread_mutex_lock(&devreg_lock);
	LIST_FOREACH(e, &devreg_list, link) {
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
	LIST_INSERT_HEAD(&devreg_list, e, link);
	dev = e->dev;
out:
	pthread_mutex_unlock(&devreg_lock);
	return dev;
}

void nvmg_devreg_put(const char *key, void (*close)(void *dev))
{
	struct devreg_ent *e;

	pthread_mutex_lock(&devreg_lock);
	LIST_FOREACH(e, &devreg_list, link)
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
	pthread_mutex_unlock(&devreg_lock);
}
