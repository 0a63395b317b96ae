/* The one contract between the core and a transport (NVMe/TCP, the FUSE
 * front end), in the shape of the Linux target's struct nvmet_fabrics_ops:
 * a transport describes itself once, the process registers it on the
 * target by name, each port holds the transport its config's trtype names,
 * and the core reaches the wire, the listeners and the transport's part of
 * the discovery log only through it. The core names no transport. */
#ifndef NVMG_TRANSPORT_H
#define NVMG_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

struct nvmg_target;
struct nvmg_port;
struct nvmg_sq;
struct nvmg_req;
union nvmf_tsas;

struct nvmg_transport {
	/* The config's addr.trtype, lower case ("tcp"). */
	const char *name;

	/* ---- queues: called on the queue's reactor ---- */
	/* Send req's response (and read data). */
	void (*queue_response)(struct nvmg_req *req);
	/* queue_response may find a Read's req->buf pointing into the
	 * backend's own memory (a RAM namespace lends it instead of copying,
	 * nvmg_bdev_io.lend): the transport sends from there and keeps the
	 * request, with its namespace reference, until the bytes are out. */
	bool lend_reads;
	/* Close the queue's connection. */
	void (*kill_queue)(struct nvmg_sq *sq);
	/* Local address of the queue's connection, for the discovery log of a
	 * wildcard port. NULL or an error: the port's own address is shown. */
	int (*local_addr)(struct nvmg_sq *sq, char *traddr, size_t len);

	/* ---- ports: NULL for a transport that serves none (local) ---- */
	/* Start listening on p. Called by whoever applies a config (start-up
	 * on the main thread, reloads one at a time), with no lock held.
	 * Returns 0 or -errno with err filled. */
	int (*enable_port)(void *ctx, struct nvmg_port *p, char *err, size_t errlen);
	/* Stop listening on p and close every connection that came through
	 * it. Same thread as enable_port. */
	void (*disable_port)(void *ctx, struct nvmg_port *p);

	/* ---- its fields of a port's discovery log entries ---- */
	uint8_t trtype;                                /* NVMF_TRTYPE_* */
	uint8_t (*disc_adrfam)(const struct nvmg_port *p); /* NVMF_ADDR_FAMILY_* */
	uint8_t (*disc_treq)(const struct nvmg_port *p);   /* NVMF_TREQ_* */
	/* Fill the Transport Specific Address Subtype (zeroed before). */
	void (*disc_tsas)(const struct nvmg_port *p, union nvmf_tsas *tsas);
};

#define NVMG_MAX_TRANSPORTS 4

/* One registered transport: its description and the state its port calls
 * get back (ctx). */
struct nvmg_transport_reg {
	const struct nvmg_transport *ops;
	void *ctx;
};

/* Register tr on t (main thread, before the config is loaded, so config
 * checks see it). Returns 0, -EEXIST when one of the same name is
 * registered, or -ENOSPC. */
int nvmg_target_register_transport(struct nvmg_target *t, const struct nvmg_transport *tr,
				   void *ctx);
/* The registered transport called name (any case), or NULL. */
const struct nvmg_transport_reg *nvmg_target_find_transport(const struct nvmg_target *t,
							     const char *name);
/* 0 if trtype (as written) names a registered transport that serves ports,
 * else -EINVAL with err saying which do; shown is trtype quoted for the
 * message. For the config checks (struct nvmg_conf_env's check_trtype). */
int nvmg_target_check_trtype(const struct nvmg_target *t, const char *trtype, const char *shown,
			     char *err, size_t errlen);
/* Start or stop serving one port through its transport, as a config is
 * applied (no lock held): the listeners follow the port list. */
int nvmg_port_enable(struct nvmg_port *p, char *err, size_t errlen);
void nvmg_port_disable(struct nvmg_port *p);
/* Enable every port of t (start-up, once the transports run). On failure
 * those already enabled are disabled again; returns -errno with err filled. */
int nvmg_target_enable_ports(struct nvmg_target *t, char *err, size_t errlen);

#endif
