/* The transport-independent target core: subsystems, namespaces, ports,
 * controllers, queues and the request life cycle.
 *
 * A request flows one way: a transport fills nvmg_req from the wire and
 * calls nvmg_req_init(), which parses the command and sets req->execute
 * and the expected data length; the transport moves the data and calls
 * req->execute(req); the handler (possibly after backend I/O) calls
 * nvmg_req_complete(), which hands the request back to the transport's
 * queue_response(). Handlers return status as values, never via globals. */
#ifndef NVMG_CORE_H
#define NVMG_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <endian.h>
#include <sys/socket.h>
#include "nvme/spec.h"
#include "nvme/ana.h"
#include "nvme/bdev/bdev.h"
#include "nvme/stats.h"
#include "nvme/transport.h"

#define NVMG_MQES 127            /* CAP.MQES, 0's based: 128 entries */
#define NVMG_MAXCMD 128
#define NVMG_MDTS 8              /* 2^8 * 4 KiB = 1 MiB */
#define NVMG_MAX_DATA (1u << 20) /* largest transfer, = MDTS */
#define NVMG_ADMIN_INCAPSULE 8192
#define NVMG_MAX_IO_QUEUES 128
#define NVMG_AERL 3              /* 0's based: 4 outstanding AERs */
#define NVMG_KAS 10              /* KAS granularity: 100 ms units */
#define NVMG_MAX_CHANGED_NS 1024
#define NVMG_ERROR_LOG_ENTRIES 64

struct nvmg_target;
struct nvmg_ctrl;
struct nvmg_sq;
struct nvmg_req;
struct nvmg_host;
struct nvmg_auth_queue;
struct nvmg_ns_table;

/* A namespace's references: commands on reactors count in their reactor's
 * own counter (ns->inflight[reactor id]: no shared cache line written per
 * I/O), everything else in refs, which also holds the subsystem table's
 * reference. A namespace leaving the table is retired (nvme/subsys.c): it
 * turns dying, every reactor passes a quiescent point, the counters are
 * folded into refs, and from then on every reference counts in refs, the
 * last one closing it. */
struct nvmg_ns_inflight {
	atomic_long n; /* written by its reactor only */
	char pad[64 - sizeof(atomic_long)];
};
struct nvmg_resv;
struct nvmg_resv_log;

struct nvmg_ns {
	atomic_int refs;
	atomic_bool dying;
	struct nvmg_ns_inflight *_Atomic inflight[NVMG_STAT_SLOTS]; /* allocated by their reactor */
	uint32_t nsid;
	struct nvmg_bdev *bdev;
	char *path;
	bool readonly;
	uint8_t lba_shift;  /* 9 or 12 */
	uint64_t nsze;      /* blocks; changed by resize: use nvmg_ns_nsze() */
	uint8_t nguid[16];
	uint8_t uuid[16];
	uint8_t eui64[8];
	_Atomic uint32_t anagrpid; /* ANA group (ana.c); a reload may move it */
	struct nvmg_resv *resv;   /* reservations (resv.h); set before it is published */
	/* One slot per reactor id, allocated by that reactor on its first
	 * command (stats.c readers see NULL or a live slot). */
	struct nvmg_io_stats *_Atomic stats[NVMG_STAT_SLOTS];
};

/* An enabled referral of a port: another discovery service its Discovery
 * log points hosts to (ports[].referrals), in the log's own terms. */
struct nvmg_referral {
	uint16_t portid;
	uint8_t trtype;  /* NVMF_TRTYPE_* */
	uint8_t adrfam;  /* NVMF_ADDR_FAMILY_* */
	uint8_t treq;    /* NVMF_TREQ_* */
	uint8_t sectype; /* NVMF_TCP_SECTYPE_* */
	char traddr[64];
	char trsvcid[8];
};

struct nvmg_port {
	uint16_t portid;
	/* The transport its config's trtype names, and that transport's
	 * registered ctx for enable_port/disable_port. */
	const struct nvmg_transport *transport;
	void *transport_ctx;
	int adrfam;         /* AF_INET / AF_INET6 */
	char traddr[64];
	char trsvcid[8];
	bool wildcard;
	uint32_t inline_data_size; /* I/O queue in-capsule bytes */
	/* TLS 1.3 offered (tsas), and plain connections refused (treq).
	 * A reload may change them in place (atomics): they apply to the
	 * connections accepted after it. */
	bool tls, tls_required;
	char **subsys_nqns; /* exported subsystems */
	size_t nr_subsys;
	struct nvmg_ana_port ana; /* ANA group states on this port (ana.h) */
	/* Enabled referrals; a reload swaps them under the model lock. */
	struct nvmg_referral *referrals;
	size_t nr_referrals;
};

struct nvmg_subsys {
	char nqn[NVME_NQN_LENGTH];
	bool discovery;
	bool allow_any_host;
	char **allowed_hosts;
	size_t nr_allowed_hosts;
	char serial[21];
	char model[41];
	uint32_t version;
	uint16_t cntlid_min, cntlid_max;
	struct nvmg_devreg *devreg; /* the target's, for opening namespaces */
	const char *resv_dir;       /* the target's, for reservation state files */

	pthread_mutex_t lock; /* namespaces, controllers, next_cntlid */
	struct nvmg_ns **ns;  /* sorted by nsid */
	size_t nr_ns;
	/* The same namespaces for the I/O path on the reactors, read without
	 * the lock: a new table is published whenever ns changes, and the old
	 * one freed once every reactor passed a quiescent point. NULL: none. */
	struct nvmg_ns_table *_Atomic io_ns;
	struct nvmg_ctrl **ctrls;
	size_t nr_ctrls, cap_ctrls;
	uint16_t next_cntlid;
	/* Reservation commands are refused here: other nodes serve s too and
	 * another is its reservation owner (conf: "reservation_owner"). A
	 * reload may change it. */
	_Atomic bool resv_off;
};

struct nvmg_sq {
	struct nvmg_target *tgt;
	struct nvmg_ctrl *ctrl;   /* NULL until Connect succeeds */
	struct nvmg_port *port;
	struct nvmg_reactor *reactor;
	const struct nvmg_transport *transport;
	uint16_t qid;
	uint16_t size;            /* entries (SQSIZE + 1) */
	uint16_t sqhd;
	bool sqfc_disabled;       /* Connect CATTR bit 2 */
	bool closing;
	uint64_t kill_gen;        /* ctrl->kill_gen when installed (ctrl.c) */
	uint32_t incapsule_max;   /* in-capsule data bytes accepted */
	const char *peer;         /* transport's peer address, for `nvmegate list`; may be NULL */
	uint64_t connected_ms;    /* nvmg_now_ms() when bound to its controller */
	struct nvmg_io_stats stats; /* its reactor writes; SMART log and control read */
	/* DH-HMAC-CHAP: set at Connect when the host must authenticate on this
	 * queue; until it has, only Authentication Send/Receive run (auth.h). */
	struct nvmg_auth_queue *auth;
};

enum nvmg_data_dir { NVMG_DIR_NONE, NVMG_DIR_TO_HOST, NVMG_DIR_FROM_HOST };

struct nvmg_req {
	struct nvmg_sqe cmd;
	struct nvmg_cqe cqe;
	struct nvmg_sq *sq;
	struct nvmg_ns *ns;       /* reference held until completion */
	enum nvmg_data_dir dir;
	uint32_t data_len;        /* bytes the command moves */
	uint32_t sgl_len;         /* bytes the SGL describes (set by the transport) */
	void *buf;                /* data_len bytes, owned by the transport */
	void (*execute)(struct nvmg_req *req);
	struct nvmg_bdev_io io;
	uint32_t sub_count;       /* for multi-part commands (DSM ranges, SHN flush) */
	uint16_t sub_status;
	uint64_t start_ns;        /* nvmg_req_init time, for latency statistics */
};

/* The whole model. Reloads change namespaces and host lists inside
 * subsystems under their locks, and the lists of subsystems and ports (and
 * what each port exports) under model_lock. A removed subsystem or port is
 * retired, not freed, until the target is destroyed: controllers and
 * connections may still point at it while they are torn down. */
struct nvmg_target {
	struct nvmg_subsys *discovery;
	struct nvmg_devreg *devreg;  /* devices shared by namespaces (PCIe controllers) */
	pthread_rwlock_t model_lock; /* subsys, ports, each port's subsys_nqns */
	struct nvmg_subsys **subsys;
	size_t nr_subsys;
	struct nvmg_port **ports;
	size_t nr_ports;
	struct nvmg_host *hosts;     /* "hosts" entries: secrets (host.h) */
	size_t nr_hosts;
	struct nvmg_subsys **retired_subsys;
	size_t nr_retired_subsys;
	struct nvmg_port **retired_ports;
	size_t nr_retired_ports;
	/* Registered at start, before the config is loaded (transport.c). */
	struct nvmg_transport_reg transports[NVMG_MAX_TRANSPORTS];
	unsigned nr_transports;
	struct nvmg_reactor **reactors;
	unsigned nr_reactors;
	unsigned max_queues_per_host;
	/* Where namespaces with Persist Through Power Loss keep their
	 * reservation state (set by the process before the model is built;
	 * NULL: PTPL unsupported). Not owned. */
	const char *resv_dir;
	atomic_uint_fast64_t discovery_genctr;
	pthread_mutex_t hosts_lock; /* queue counts per host */
	struct nvmg_host_count *host_counts;
	size_t nr_host_counts;
	/* Optional observer of namespace changes (the FUSE front end): called
	 * once per added, removed or replaced nsid after a reload applied it,
	 * on the reloading thread with no lock held, so it may block. Set and
	 * cleared on that same (main) thread. */
	void (*ns_changed)(void *ctx, struct nvmg_subsys *s, uint32_t nsid);
	void *ns_changed_ctx;
};

/* ---- controllers (nvme/ctrl.c) ---- */
struct nvmg_aen {
	uint32_t dw0;
};

struct nvmg_ctrl {
	atomic_int refs;
	/* CSTS.RDY and not dead, for the I/O path: kept by ctrl.c under lock,
	 * read without it. */
	atomic_bool io_ready;
	struct nvmg_target *tgt;
	struct nvmg_subsys *subsys;
	struct nvmg_port *port;
	uint16_t cntlid;
	char hostnqn[NVME_NQN_LENGTH];
	uint8_t hostid[16];
	struct nvmg_reactor *admin_reactor;

	pthread_mutex_t lock;     /* everything below */
	uint32_t cc, csts;
	uint32_t kato_ms;
	uint64_t last_keepalive_ms;
	bool dead;
	uint64_t kill_gen;        /* bumped by every kill: stale messages spare newer queues */
	struct nvmg_sq *sqs[NVMG_MAX_IO_QUEUES + 1];
	uint16_t nr_io_queues;    /* granted by Set Features Number of Queues */
	uint32_t aen_enabled;     /* Async Event Configuration (FID 0Bh) */
	uint32_t aen_masked;      /* event types waiting for their log read (bit = AER type) */
	struct nvmg_aen aen_pending[8];
	unsigned nr_aen_pending;
	struct nvmg_req *aer_reqs[NVMG_AERL + 1]; /* touched on admin_reactor only */
	unsigned nr_aer_reqs;
	uint32_t changed_ns[NVMG_MAX_CHANGED_NS];
	unsigned nr_changed_ns;   /* > NVMG_MAX_CHANGED_NS: overflowed */
	int64_t timestamp_offset_ms; /* Set Features Timestamp - local clock */
	bool timestamp_set;       /* a host set it: Timestamp Origin 001b */
	bool vwc_enabled;
	struct nvmg_resv_log *resv_log; /* Reservation Notification log (resv.c) */
};

/* ---- core.c: request life cycle ---- */
/* Parse req->cmd for req->sq. Returns 0 (req->execute, dir, data_len set)
 * or an NVMe status: the transport then completes with that status
 * without moving data. */
uint16_t nvmg_req_init(struct nvmg_req *req);
void nvmg_req_complete(struct nvmg_req *req, uint16_t status);
/* Checks the SGL covers exactly data_len; status or 0. */
uint16_t nvmg_req_check_len(struct nvmg_req *req);

/* ---- handlers, one file each ---- */
uint16_t nvmg_parse_fabrics(struct nvmg_req *req);   /* fabrics.c */
uint16_t nvmg_parse_admin(struct nvmg_req *req);     /* admin.c */
uint16_t nvmg_parse_discovery_admin(struct nvmg_req *req); /* discovery.c */
uint16_t nvmg_parse_io(struct nvmg_req *req);        /* io_cmd.c */

/* admin.c helpers shared with identify/log/features */
void nvmg_execute_identify(struct nvmg_req *req);    /* identify.c */
void nvmg_execute_get_log_page(struct nvmg_req *req); /* log_page.c */
void nvmg_execute_get_features(struct nvmg_req *req); /* features.c */
void nvmg_execute_set_features(struct nvmg_req *req); /* features.c */
void nvmg_execute_async_event(struct nvmg_req *req);  /* aen.c */
/* Fill the discovery log for sq's host and port into buf (len bytes starting
 * at byte offset off). Returns 0 or status. discovery.c */
uint16_t nvmg_discovery_log(struct nvmg_sq *sq, void *buf, uint64_t off, uint32_t len);
/* Copy src[off..] into req->buf (req->data_len bytes), zero-filling past the
 * end of src; an offset beyond src is not an error (admin.c). */
void nvmg_req_copy_to_buf(struct nvmg_req *req, const void *src, size_t src_len, uint64_t off);

/* ---- ctrl.c ---- */
struct nvmg_ctrl *nvmg_ctrl_create(struct nvmg_target *tgt, struct nvmg_subsys *s,
				   struct nvmg_port *port, const struct nvmf_connect_data *d,
				   uint32_t kato_ms, uint16_t *status);
/* A controller for an in-process front end (fuse/): no Connect, no admin
 * queue, no keep alive, and no host access check (the front end is the
 * target's own). It is born enabled -- CC.EN=1 with the only CC we accept,
 * CSTS.RDY=1 -- so I/O queues are bound at once with nvmg_ctrl_install_sq().
 * Returns it with two references, the subsystem's list and the caller's,
 * or NULL with *status set. End it with nvmg_ctrl_destroy_local() once its
 * queues are idle. */
struct nvmg_ctrl *nvmg_ctrl_create_local(struct nvmg_target *tgt, struct nvmg_subsys *s,
					 const char *hostnqn, uint16_t *status);
/* Unbind every queue, take the controller out of its subsystem and drop the
 * caller's reference. Local queues were never counted per host, so this is
 * not nvmg_ctrl_remove_sq(). */
void nvmg_ctrl_destroy_local(struct nvmg_ctrl *c);
void nvmg_ctrl_get(struct nvmg_ctrl *c);
void nvmg_ctrl_put(struct nvmg_ctrl *c);
/* Find a live controller of s by CNTLID and take a reference. */
struct nvmg_ctrl *nvmg_ctrl_find(struct nvmg_subsys *s, uint16_t cntlid);
/* Bind/unbind a queue to its controller (ctrl->sqs[qid]). */
uint16_t nvmg_ctrl_install_sq(struct nvmg_ctrl *c, struct nvmg_sq *sq);
void nvmg_ctrl_remove_sq(struct nvmg_ctrl *c, struct nvmg_sq *sq);
/* Tear the controller down: every queue's connection is closed (on its own
 * reactor). io_only keeps the admin queue (controller reset). */
void nvmg_ctrl_kill(struct nvmg_ctrl *c, bool io_only, const char *why);
void nvmg_ctrl_keepalive(struct nvmg_ctrl *c);
/* Property access (Property Get/Set). */
uint16_t nvmg_ctrl_prop_get(struct nvmg_ctrl *c, uint32_t off, bool eight, uint64_t *val);
uint16_t nvmg_ctrl_prop_set(struct nvmg_req *req, uint32_t off, uint64_t val);
uint64_t nvmg_ctrl_cap(const struct nvmg_ctrl *c);

/* ---- aen.c ---- */
/* Record an event for c (any thread) and complete an AER if one waits. */
void nvmg_ctrl_raise_aen(struct nvmg_ctrl *c, uint8_t type, uint8_t info, uint8_t lid);
void nvmg_ctrl_ns_changed(struct nvmg_ctrl *c, uint32_t nsid);
/* Log page read with RAE=0: unmask that event type. */
void nvmg_ctrl_clear_aen_mask(struct nvmg_ctrl *c, uint8_t type);
/* Fail every waiting AER (controller reset / teardown). Admin reactor. */
void nvmg_ctrl_abort_aers(struct nvmg_ctrl *c, uint16_t status);

/* ---- subsys.c ---- */
/* Any thread; the result stays valid for the target's life (removed
 * subsystems are retired, not freed). */
struct nvmg_subsys *nvmg_target_find_subsys(struct nvmg_target *t, const char *nqn);
bool nvmg_subsys_host_allowed(struct nvmg_subsys *s, const char *hostnqn);
/* The controllers of s that match (match runs under s->lock; NULL: all),
 * each referenced: drop with nvmg_ctrl_put, free the array. *n of them. */
struct nvmg_ctrl **nvmg_subsys_ctrls(struct nvmg_subsys *s,
				     bool (*match)(const struct nvmg_ctrl *c, const void *arg),
				     const void *arg, size_t *n);
/* The discovery log changed: bump its generation counter and raise the
 * discovery-change event on every discovery controller. */
void nvmg_target_discovery_changed(struct nvmg_target *t);
bool nvmg_port_exports(struct nvmg_target *t, const struct nvmg_port *p, const struct nvmg_subsys *s);
/* The same with t->model_lock already held (read or write). */
bool nvmg_port_exports_locked(const struct nvmg_port *p, const struct nvmg_subsys *s);
/* Look up an active namespace and take a reference; NULL if none. On a
 * reactor it takes no lock and writes no shared memory. */
struct nvmg_ns *nvmg_subsys_get_ns(struct nvmg_subsys *s, uint32_t nsid);
void nvmg_ns_put(struct nvmg_ns *ns);
static inline uint64_t nvmg_ns_nsze(const struct nvmg_ns *ns)
{
	return __atomic_load_n(&ns->nsze, __ATOMIC_RELAXED);
}
/* The backend's bytes past the last whole block (a file whose size is not
 * a multiple of the LBA size): no host reaches them, no write goes there. */
static inline uint64_t nvmg_ns_unserved(const struct nvmg_ns *ns)
{
	uint64_t size = nvmg_bdev_size(ns->bdev), served = nvmg_ns_nsze(ns) << ns->lba_shift;

	return size > served ? size - served : 0; /* a resize may run meanwhile */
}
/* Queue accounting per host NQN; returns false when over the cap. */
bool nvmg_target_host_queue_get(struct nvmg_target *t, const char *hostnqn);
void nvmg_target_host_queue_put(struct nvmg_target *t, const char *hostnqn);

/* ---- ident.c: stable identities derived from NQN + nsid ---- */
void nvmg_derive_serial(const char *subnqn, char out[21]);
void nvmg_derive_ns_ids(const char *subnqn, uint32_t nsid, uint8_t nguid[16],
			uint8_t uuid[16], uint8_t eui64[8]);

#endif
