/* Shared between the NVMe/TCP connection code and its listeners. */
#ifndef NVMG_TCP_INTERNAL_H
#define NVMG_TCP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/queue.h>
#include "net/tcp.h"
#include "net/tcp_halfopen.h"

struct tcp_conn;
typedef struct ssl_ctx_st SSL_CTX;

/* Per-reactor state: the connections it owns. Touched by its thread only. */
struct tcp_reactor {
	struct nvmg_tcp *tcp;
	struct nvmg_reactor *r;
	LIST_HEAD(, tcp_conn) conns;
	unsigned nr_conns;
	bool draining;
	/* Multishot receive into the reactor's provided-buffer ring
	 * (tcp_recv.c): 0 not yet decided, 1 on, -1 off (switched off, or
	 * the kernel lacks it). */
	int8_t mshot;
	struct nvmg_bufring *bufring;
};

struct tcp_listener;

struct nvmg_tcp {
	struct nvmg_target *tgt;
	struct nvmg_tcp_opts opts;
	struct tcp_reactor *reactors; /* one per target reactor */
	unsigned nr_reactors;
	atomic_uint next_reactor;
	struct tcp_ho_pool half_open; /* accepted, not yet connected */
	bool half_open_ready;         /* half_open initialized (nvmg_tcp_start) */
	atomic_uint live_conns;
	struct tcp_listener **listeners;
	size_t nr_listeners;
	bool started;                 /* between nvmg_tcp_start and shutdown */
	SSL_CTX *ssl_ctx;             /* TLS ports' server context (tcp_tls.c) */
	atomic_bool ktls_absent;      /* the kernel has no "tls" ULP */
};

/* nvmg_tcp_transport's port calls and discovery fields (tcp_listen.c). */
int nvmg_tcp_enable_port(void *ctx, struct nvmg_port *p, char *err, size_t errlen);
void nvmg_tcp_disable_port(void *ctx, struct nvmg_port *p);
uint8_t nvmg_tcp_disc_adrfam(const struct nvmg_port *p);
uint8_t nvmg_tcp_disc_treq(const struct nvmg_port *p);
void nvmg_tcp_disc_tsas(const struct nvmg_port *p, union nvmf_tsas *tsas);

/* Runs on tr's reactor: adopt an accepted socket and its place in the
 * half-open pool. */
void nvmg_tcp_conn_create(struct tcp_reactor *tr, int fd, struct nvmg_port *port, struct tcp_ho *ho);
/* Runs on tr's reactor: finish or close every connection it owns. */
void nvmg_tcp_reactor_drain(struct tcp_reactor *tr);
/* Runs on tr's reactor: close the connections that came through port. */
void nvmg_tcp_reactor_close_port(struct tcp_reactor *tr, struct nvmg_port *port);
/* Runs on tr's reactor: close every connection now. */
void nvmg_tcp_reactor_close_all(struct tcp_reactor *tr);

#endif
