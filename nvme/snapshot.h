/* Plain-data copies of the target model for readers outside the core (the
 * control socket's status, list and stats; systemd's STATUS line). The
 * copies are built under the core's locks, which stay private to it; the
 * caller reads them at leisure and frees them with one call. Counters are
 * read with relaxed loads, so I/O never waits for a reader. */
#ifndef NVMG_SNAPSHOT_H
#define NVMG_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "nvme/spec.h"
#include "nvme/stats.h"

struct nvmg_target;

/* What a snapshot holds beyond the model (flags for nvmg_target_snapshot). */
#define NVMG_SNAP_STATS 1u /* per-namespace and per-queue statistics */

struct nvmg_snap_ns {
	uint32_t nsid;
	char *path;
	const char *backend;        /* the backend's name (a static string) */
	uint32_t lba_size;          /* bytes */
	uint64_t blocks;            /* NSZE */
	uint64_t unserved_bytes;    /* of the backend, past the last whole block */
	bool readonly;
	struct nvmg_io_stats *stats; /* summed over reactors; NULL without NVMG_SNAP_STATS */
};

struct nvmg_snap_queue {
	uint16_t qid;
	uint16_t size;              /* entries */
	unsigned reactor;           /* id of the reactor that serves it */
	char *peer;                 /* transport's peer address; NULL: none (local) */
	uint64_t connected_ms;      /* nvmg_now_ms() when bound to its controller */
	struct nvmg_io_stats *stats; /* NULL without NVMG_SNAP_STATS */
};

struct nvmg_snap_ctrl {
	uint16_t cntlid;
	char hostnqn[NVME_NQN_LENGTH];
	int portid;                 /* -1: no port (an in-process front end) */
	struct nvmg_snap_queue *queues; /* by qid */
	size_t nr_queues;
};

struct nvmg_snap_subsys {
	char nqn[NVME_NQN_LENGTH];
	char serial[21];
	char model[41];
	bool allow_any_host;
	char **allowed_hosts;
	size_t nr_allowed_hosts;
	struct nvmg_snap_ns *ns;    /* by nsid */
	size_t nr_ns;
	struct nvmg_snap_ctrl *ctrls;
	size_t nr_ctrls;
};

struct nvmg_snap_port {
	uint16_t portid;
	int adrfam;                 /* AF_INET / AF_INET6 */
	char traddr[64];
	char trsvcid[8];
	char **subsys_nqns;         /* exported subsystems */
	size_t nr_subsys;
};

struct nvmg_snapshot {
	struct nvmg_snap_subsys *subsys; /* in the order of the configuration */
	size_t nr_subsys;
	struct nvmg_snap_subsys discovery; /* no namespaces; its controllers */
	struct nvmg_snap_port *ports;
	size_t nr_ports;
};

/* A copy of t's subsystems (with their namespaces and controllers), the
 * discovery subsystem and the ports; with NVMG_SNAP_STATS also their
 * statistics. Any thread but a reactor (it takes the model's locks).
 * Returns NULL when out of memory; free with nvmg_snapshot_free(). */
struct nvmg_snapshot *nvmg_target_snapshot(struct nvmg_target *t, unsigned what);
void nvmg_snapshot_free(struct nvmg_snapshot *snap);

/* The sizes of the model, without copying it. */
struct nvmg_target_counts {
	size_t subsystems;          /* NVM subsystems (not discovery) */
	size_t namespaces;          /* of those subsystems */
	size_t controllers;         /* of those subsystems */
	size_t ports;
	unsigned reactors;
};

void nvmg_target_count(struct nvmg_target *t, struct nvmg_target_counts *out);

#endif
