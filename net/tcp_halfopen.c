/* The pool of half-open NVMe/TCP sockets: admission, eviction, progress
 * (tcp_halfopen.h says why it is shaped this way). */
#include "net/tcp_halfopen.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/log.h"

int tcp_ho_pool_init(struct tcp_ho_pool *p, unsigned max_total, unsigned max_per_addr,
		     void (*evict)(struct tcp_ho *victim, void *arg), void *evict_arg)
{
	memset(p, 0, sizeof(*p));
	p->max_total = max_total ? max_total : 1;
	p->max_per_addr = max_per_addr ? max_per_addr : 1;
	p->evict = evict;
	p->evict_arg = evict_arg;
	for (unsigned i = 0; i < TCP_HO_BUCKETS; i++)
		LIST_INIT(&p->buckets[i]);
	return -pthread_mutex_init(&p->lock, NULL);
}

/* Every connection released its entry first; what is left are sources
 * of entries a failed start never handed back. */
void tcp_ho_pool_destroy(struct tcp_ho_pool *p)
{
	for (unsigned i = 0; i < TCP_HO_BUCKETS; i++) {
		struct tcp_ho_src *s;

		while ((s = LIST_FIRST(&p->buckets[i]))) {
			LIST_REMOVE(s, link);
			free(s);
		}
	}
	pthread_mutex_destroy(&p->lock);
}

void tcp_ho_addr_of(const struct sockaddr *sa, struct tcp_ho_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		/* A v4 host on a dual-stack port is the same host as on a v4 port. */
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			out->family = AF_INET;
			memcpy(out->a, &s6->sin6_addr.s6_addr[12], 4);
		} else {
			out->family = AF_INET6;
			memcpy(out->a, &s6->sin6_addr, 16);
		}
	} else {
		out->family = AF_INET;
		memcpy(out->a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	}
}

static unsigned bucket_of(const struct tcp_ho_addr *a)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < sizeof(a->a); i++)
		h = (h ^ a->a[i]) * 16777619u;
	return (h ^ a->family) % TCP_HO_BUCKETS;
}

static struct tcp_ho_src *src_get(struct tcp_ho_pool *p, const struct tcp_ho_addr *a)
{
	unsigned b = bucket_of(a);
	struct tcp_ho_src *s;

	LIST_FOREACH(s, &p->buckets[b], link)
		if (s->addr.family == a->family && !memcmp(s->addr.a, a->a, sizeof(a->a)))
			return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->addr = *a;
	for (unsigned i = 0; i < TCP_HO_NR_STAGES; i++)
		TAILQ_INIT(&s->q[i]);
	LIST_INSERT_HEAD(&p->buckets[b], s, link);
	return s;
}

static void src_put(struct tcp_ho_src *s)
{
	if (!s->nr[TCP_HO_NEW] && !s->nr[TCP_HO_PROVEN]) {
		LIST_REMOVE(s, link);
		free(s);
	}
}

/* Out of the pool; the source stays (the caller puts it). */
static void unlink_ho(struct tcp_ho_pool *p, struct tcp_ho *ho)
{
	struct tcp_ho_src *s = ho->src;

	TAILQ_REMOVE(&s->q[ho->stage], ho, link);
	s->nr[ho->stage]--;
	p->count--;
	ho->src = NULL;
}

/* The pool is full: the oldest socket of the address holding the most
 * sockets without progress; if none has any, of the address holding the
 * most. Ties go to the address whose oldest socket is older. */
static struct tcp_ho *pick_victim(struct tcp_ho_pool *p)
{
	for (unsigned stage = TCP_HO_NEW; stage < TCP_HO_NR_STAGES; stage++) {
		struct tcp_ho_src *best = NULL, *s;
		unsigned best_n = 0;

		for (unsigned b = 0; b < TCP_HO_BUCKETS; b++) {
			LIST_FOREACH(s, &p->buckets[b], link) {
				unsigned n = stage == TCP_HO_NEW ? s->nr[TCP_HO_NEW]
								 : s->nr[TCP_HO_NEW] + s->nr[TCP_HO_PROVEN];

				if (!s->nr[stage] || n < best_n)
					continue;
				if (n > best_n || TAILQ_FIRST(&s->q[stage])->since_ms <
							  TAILQ_FIRST(&best->q[stage])->since_ms) {
					best = s;
					best_n = n;
				}
			}
		}
		if (best)
			return TAILQ_FIRST(&best->q[stage]);
	}
	return NULL;
}

static void addr_str(const struct tcp_ho_addr *a, char *buf, size_t len)
{
	if (!inet_ntop(a->family, a->a, buf, (socklen_t)len))
		snprintf(buf, len, "?");
}

struct tcp_ho *tcp_ho_admit(struct tcp_ho_pool *p, const struct tcp_ho_addr *addr, int fd,
			    uint64_t now_ms)
{
	struct tcp_ho *ho = calloc(1, sizeof(*ho)), *victim = NULL;
	struct tcp_ho_src *s, *vs = NULL;
	struct tcp_ho_addr vaddr;
	unsigned vheld = 0, nlog = 0, interval = 0;
	bool per_addr = false;

	if (!ho)
		return NULL;
	ho->fd = fd;
	ho->stage = TCP_HO_NEW;
	ho->since_ms = now_ms;
	pthread_mutex_lock(&p->lock);
	s = src_get(p, addr);
	if (!s) {
		pthread_mutex_unlock(&p->lock);
		free(ho);
		return NULL;
	}
	if (s->nr[TCP_HO_NEW] >= p->max_per_addr &&
	    now_ms - TAILQ_FIRST(&s->q[TCP_HO_NEW])->since_ms >= TCP_HO_GRACE_MS) {
		victim = TAILQ_FIRST(&s->q[TCP_HO_NEW]);
		per_addr = true;
	} else if (p->count >= p->max_total) {
		victim = pick_victim(p);
	}
	if (victim) {
		vs = victim->src;
		vaddr = vs->addr;
		vheld = vs->nr[TCP_HO_NEW] + vs->nr[TCP_HO_PROVEN];
		unlink_ho(p, victim);
		if (vs != s)
			src_put(vs);
		p->evict(victim, p->evict_arg);
		p->evicted++;
		p->unlogged++;
		if (!p->logged || now_ms - p->last_log_ms >= TCP_HO_LOG_INTERVAL_MS) {
			nlog = p->unlogged;
			interval = p->logged ? (unsigned)((now_ms - p->last_log_ms) / 1000) : 0;
			p->unlogged = 0;
			p->last_log_ms = now_ms;
			p->logged = true;
		}
	}
	ho->src = s;
	TAILQ_INSERT_TAIL(&s->q[TCP_HO_NEW], ho, link);
	s->nr[TCP_HO_NEW]++;
	p->count++;
	pthread_mutex_unlock(&p->lock);
	if (nlog) {
		char a[INET6_ADDRSTRLEN], since[32] = "";

		addr_str(&vaddr, a, sizeof(a));
		if (interval)
			snprintf(since, sizeof(since), " in the last %u s", interval);
		log_warn("evicted %u half-open socket%s%s (the last from %s, which held %u: %s)", nlog,
			 nlog == 1 ? "" : "s", since, a, vheld,
			 per_addr ? "max_pending_per_address reached" : "max_pending_sockets reached");
	}
	return ho;
}

void tcp_ho_progress(struct tcp_ho_pool *p, struct tcp_ho *ho, uint64_t now_ms)
{
	struct tcp_ho_src *s;

	pthread_mutex_lock(&p->lock);
	s = ho->src;
	if (s && ho->stage == TCP_HO_NEW) {
		TAILQ_REMOVE(&s->q[TCP_HO_NEW], ho, link);
		s->nr[TCP_HO_NEW]--;
		ho->stage = TCP_HO_PROVEN;
		ho->since_ms = now_ms;
		TAILQ_INSERT_TAIL(&s->q[TCP_HO_PROVEN], ho, link);
		s->nr[TCP_HO_PROVEN]++;
	}
	pthread_mutex_unlock(&p->lock);
}

void tcp_ho_done(struct tcp_ho_pool *p, struct tcp_ho *ho)
{
	struct tcp_ho_src *s;

	pthread_mutex_lock(&p->lock);
	s = ho->src;
	if (s) {
		unlink_ho(p, ho);
		src_put(s);
	}
	pthread_mutex_unlock(&p->lock);
	free(ho);
}

void tcp_ho_counts(struct tcp_ho_pool *p, unsigned *held, uint64_t *evicted)
{
	pthread_mutex_lock(&p->lock);
	*held = p->count;
	*evicted = p->evicted;
	pthread_mutex_unlock(&p->lock);
}
