/* Half-open NVMe/TCP sockets: accepted, their Connect not done yet. They
 * are one pool for all ports and reactors, bounded in total and, for the
 * sockets that have shown no progress, per source address. When a new
 * socket would pass a bound, the oldest socket of the address holding the
 * most is evicted (shut down) instead of refusing the new one: a flood of
 * idle sockets from one address (slow-loris) then only ever pushes out its
 * own sockets, and a real host from elsewhere always gets in.
 *
 * "Progress" is ICReq received, or on a TLS port the handshake completed
 * (a ClientHello costs nothing, a finished handshake needs the PSK). A
 * Linux host opens all its I/O queues' sockets and sends their ICReqs
 * before the first Connect, so a host with many queues holds as many
 * proven sockets at once: the per-address cap counts only the sockets
 * without progress, which a real host has one of at a time.
 *
 * Any thread: the accepting reactor admits, the connection's reactor marks
 * progress and releases, the control thread reads the counters. */
#ifndef NVMG_TCP_HALFOPEN_H
#define NVMG_TCP_HALFOPEN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#define TCP_HO_BUCKETS 64
#define TCP_HO_LOG_INTERVAL_MS 10000 /* at most one eviction line per 10 s */
/* The per-address cap evicts only a socket this old without ICReq: many
 * hosts behind one address (a NAT, a load generator, a gateway) connect
 * at the same instant, and a busy target may not have read their ICReqs
 * yet; a trickling socket is older than this after its first second. */
#define TCP_HO_GRACE_MS 1000

enum tcp_ho_stage { TCP_HO_NEW, TCP_HO_PROVEN, TCP_HO_NR_STAGES };

/* A source address: IPv4 (also v4-mapped IPv6) in a[0..3], else IPv6. */
struct tcp_ho_addr {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t a[16];
};

struct tcp_ho_src;

/* One half-open socket; its connection owns it and hands it back with
 * tcp_ho_done(). */
struct tcp_ho {
	TAILQ_ENTRY(tcp_ho) link;  /* in its source's queue of its stage */
	struct tcp_ho_src *src;    /* NULL once out of the pool (evicted) */
	enum tcp_ho_stage stage;
	int fd;                    /* what eviction shuts down */
	uint64_t since_ms;         /* admitted, or proven */
};

struct tcp_ho_src {
	LIST_ENTRY(tcp_ho_src) link;
	struct tcp_ho_addr addr;
	unsigned nr[TCP_HO_NR_STAGES];
	TAILQ_HEAD(, tcp_ho) q[TCP_HO_NR_STAGES]; /* oldest first */
};

struct tcp_ho_pool {
	pthread_mutex_t lock;
	unsigned max_total;    /* max_pending_sockets */
	unsigned max_per_addr; /* max_pending_per_address: sockets without progress */
	unsigned count;
	LIST_HEAD(, tcp_ho_src) buckets[TCP_HO_BUCKETS];
	/* Called under the lock for each victim, while its fd is still open
	 * (tcp_ho_done, which precedes the close, takes the same lock). */
	void (*evict)(struct tcp_ho *victim, void *arg);
	void *evict_arg;
	uint64_t evicted;      /* since start */
	/* Rate-limited log: evictions since the last line. */
	uint64_t last_log_ms;
	unsigned unlogged;
	bool logged;
};

int tcp_ho_pool_init(struct tcp_ho_pool *p, unsigned max_total, unsigned max_per_addr,
		     void (*evict)(struct tcp_ho *victim, void *arg), void *evict_arg);
void tcp_ho_pool_destroy(struct tcp_ho_pool *p);

/* The address of a peer as the pool keys it. */
void tcp_ho_addr_of(const struct sockaddr *sa, struct tcp_ho_addr *out);

/* A socket from addr was accepted: take it into the pool, evicting one
 * first if a bound would be passed. NULL when out of memory (close fd). */
struct tcp_ho *tcp_ho_admit(struct tcp_ho_pool *p, const struct tcp_ho_addr *addr, int fd,
			    uint64_t now_ms);
/* ICReq arrived or the TLS handshake completed: the socket leaves its
 * address's cap and is evicted only after every socket without progress. */
void tcp_ho_progress(struct tcp_ho_pool *p, struct tcp_ho *ho, uint64_t now_ms);
/* Connect done or the connection closed: out of the pool, and freed. */
void tcp_ho_done(struct tcp_ho_pool *p, struct tcp_ho *ho);

/* Sockets in the pool now, and evictions since start. */
void tcp_ho_counts(struct tcp_ho_pool *p, unsigned *held, uint64_t *evicted);

#endif
