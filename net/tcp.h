/* NVMe/TCP transport: listeners and connections. */
#ifndef NVMG_TCP_H
#define NVMG_TCP_H

#include <stddef.h>
#include "nvme/core.h"

struct nvmg_tcp;

struct nvmg_tcp_opts {
	unsigned handshake_timeout_ms; /* ICReq + Connect deadline */
	unsigned max_pending_sockets;  /* sockets not yet past Connect */
};

/* Open every port's listener and start accepting. Returns 0 or -errno
 * with err naming the port. */
int nvmg_tcp_start(struct nvmg_target *t, const struct nvmg_tcp_opts *o, struct nvmg_tcp **out,
		   char *err, size_t errlen);
/* Stop accepting, then let in-flight commands finish and their responses
 * leave (up to timeout_ms) before closing every connection. */
void nvmg_tcp_shutdown(struct nvmg_tcp *tcp, unsigned timeout_ms);
void nvmg_tcp_destroy(struct nvmg_tcp *tcp);
/* Open connections (any state); 0 for NULL. Any thread. */
unsigned nvmg_tcp_live_conns(struct nvmg_tcp *tcp);

#endif
