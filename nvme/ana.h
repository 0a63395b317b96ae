/* Asymmetric Namespace Access: the state of each ANA group on each port,
 * what an I/O command on a path that may not serve it gets back, the ANA
 * log page, and applying a config's states (start and reload) with the ANA
 * change event to the controllers that see the change.
 *
 * Like the Linux target, a state belongs to a (port, group) pair: the same
 * namespace can be optimized through one port and inaccessible through
 * another. Group 1 exists on every port; any other group is inaccessible on
 * a port that does not list it. */
#ifndef NVMG_ANA_H
#define NVMG_ANA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NVMG_ANAGRPMAX 128 /* = NVMG_CONF_ANAGRPMAX (checked in ana.c) */
#define NVMG_ANATT 10      /* seconds a "change" state may last (Identify ANATT) */

struct nvmg_ana_port {
	/* enum nvme_ana_state by group ID; read by I/O on any reactor,
	 * written by the reloading thread. */
	_Atomic uint8_t state[NVMG_ANAGRPMAX + 1];
	_Atomic bool listed[NVMG_ANAGRPMAX + 1]; /* in the port's ana_groups */
	_Atomic uint64_t grp_chgcnt[NVMG_ANAGRPMAX + 1];
	_Atomic uint64_t chgcnt;                 /* the ANA log's Change Count */
};

struct nvmg_port;
struct nvmg_ns;
struct nvmg_ctrl;
struct nvmg_target;
struct nvmg_conf;
struct nvmg_conf_port;

/* A new port's states from its config (no controller sees it yet). */
void nvmg_ana_port_init(struct nvmg_ana_port *a, const struct nvmg_conf_port *c);
/* The state c gives group g (1..NVMG_ANAGRPMAX); *listed: c names it. */
uint8_t nvmg_ana_conf_state(const struct nvmg_conf_port *c, uint32_t g, bool *listed);
/* 0 if ns may be accessed through port, else the path-related status
 * (SCT 3, no DNR: the host retries on another path). port NULL is an
 * in-process front end, which has no paths. */
uint16_t nvmg_ana_check(const struct nvmg_port *port, const struct nvmg_ns *ns);
/* Apply conf's ANA states and namespace groups to the running ports and
 * namespaces, and raise the ANA change event on every controller whose log
 * changed. Main or control thread, after the reload's topology change. */
void nvmg_ana_apply(struct nvmg_target *t, const struct nvmg_conf *conf);
/* The ANA log page for c (rgo: groups only, no NSID lists) in a malloc'ed
 * buffer; *len its size. NULL when out of memory. */
void *nvmg_ana_log(struct nvmg_ctrl *c, bool rgo, size_t *len);

#endif
