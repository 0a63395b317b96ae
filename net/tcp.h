/* NVMe/TCP transport: listeners and connections. */
#ifndef NVMG_TCP_H
#define NVMG_TCP_H

#include <stddef.h>
#include <stdint.h>
#include "nvme/core.h"

struct nvmg_tcp;

struct nvmg_tcp_opts {
	unsigned handshake_timeout_ms; /* ICReq + Connect deadline */
	unsigned icreq_timeout_ms;     /* ICReq (or TLS handshake) deadline, at most the above */
	unsigned max_pending_sockets;  /* sockets not yet past Connect */
	unsigned max_pending_per_address; /* of those, without ICReq yet, per source address */
	bool kernel_tls;               /* TLS records by the kernel where it can */
	unsigned user_timeout_ms;      /* TCP_USER_TIMEOUT of accepted sockets, 0 = kernel's */
};

/* The "tcp" transport: register it on the target with the nvmg_tcp that
 * nvmg_tcp_create() returns as its ctx. */
extern const struct nvmg_transport nvmg_tcp_transport;

/* Its state for t, before the config is loaded (nothing runs yet). NULL
 * when out of memory. */
struct nvmg_tcp *nvmg_tcp_create(struct nvmg_target *t);
/* Once t's reactors run: ports may be enabled from now on (the core's
 * nvmg_target_enable_ports(), reloads). Returns 0 or -ENOMEM. */
int nvmg_tcp_start(struct nvmg_tcp *tcp, const struct nvmg_tcp_opts *o);
/* Stop accepting, then let in-flight commands finish and their responses
 * leave (up to timeout_ms) before closing every connection. */
void nvmg_tcp_shutdown(struct nvmg_tcp *tcp, unsigned timeout_ms);
void nvmg_tcp_destroy(struct nvmg_tcp *tcp);
/* Open connections (any state); 0 for NULL. Any thread. */
unsigned nvmg_tcp_live_conns(struct nvmg_tcp *tcp);
/* Half-open sockets now, and those evicted since start to make room for
 * others (0 before start). Any thread. */
void nvmg_tcp_half_open(struct nvmg_tcp *tcp, unsigned *held, uint64_t *evicted);

#endif
