/* The discovery controller: its admin command set and the Discovery log
 * page (LID 70h), which lists what this port offers to the asking host. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include "nvme/admin.h"

#define DISC_ENTRY_SIZE sizeof(struct nvmf_disc_log_entry)
#define DISC_HDR_SIZE DISC_ENTRY_SIZE /* header padded to one entry */
#define CNTLID_DYNAMIC 0xffff
#define DISC_ASQSZ 32 /* the spec's minimum admin queue size */

_Static_assert(sizeof(struct nvmf_disc_log_entry) == 1024, "discovery entry is 1 KiB");
_Static_assert(sizeof(struct nvmf_discovery_log) == 1024, "discovery header is 1 KiB");

/* A discovery controller offers a subset of the admin commands; the
 * ones it has parse as on an I/O controller. */
uint16_t nvmg_parse_discovery_admin(struct nvmg_req *req)
{
	switch (req->cmd.opcode) {
	case nvme_admin_identify:
		if ((le32toh(req->cmd.cdw10) & 0xff) != NVME_IDENTIFY_CNS_CTRL)
			return NVMG_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVME_SC_DNR;
		break;
	case nvme_admin_get_log_page:
	case nvme_admin_get_features:
	case nvme_admin_set_features:
	case nvme_admin_async_event:
	case nvme_admin_keep_alive:
		break;
	default:
		return NVMG_SC_GENERIC(NVME_SC_INVALID_OPCODE) | NVME_SC_DNR;
	}
	return nvmg_parse_admin(req);
}

/* The host's window onto the log: records are written at their log
 * offset and only the part inside [off, off + len) lands in buf. */
struct disc_window {
	uint8_t *buf;
	uint64_t off;
	uint32_t len;
};

static void window_put(const struct disc_window *w, uint64_t pos, const void *src, size_t n)
{
	/* LPO is the host's: clamp rather than overflow. */
	uint64_t wend = w->off > UINT64_MAX - w->len ? UINT64_MAX : w->off + w->len;
	uint64_t start = pos > w->off ? pos : w->off;
	uint64_t end = pos + n < wend ? pos + n : wend;

	if (start < end)
		memcpy(w->buf + (start - w->off), (const uint8_t *)src + (start - pos), end - start);
}

struct disc_addr {
	char traddr[NVMF_TRADDR_SIZE + 1];
	char trsvcid[NVMF_TRSVCID_SIZE + 1];
};

/* The fields that describe how to reach the port (TRTYPE, ADRFAM, TREQ,
 * TSAS) are its transport's; the rest is the core's. */
static void fill_entry(struct nvmf_disc_log_entry *e, const struct nvmg_port *port,
		       const struct disc_addr *a, uint8_t subtype, const char *nqn)
{
	const struct nvmg_transport *tr = port->transport;

	memset(e, 0, sizeof(*e));
	e->trtype = tr->trtype;
	e->adrfam = tr->disc_adrfam(port);
	e->subtype = subtype;
	e->treq = tr->disc_treq(port);
	e->portid = htole16(port->portid);
	e->cntlid = htole16(CNTLID_DYNAMIC);
	e->asqsz = htole16(DISC_ASQSZ);
	/* The discovery controller keeps connections and sends change AENs. */
	if (subtype == NVME_NQN_CURR)
		e->eflags = htole16(NVMF_DISC_EFLAGS_EPCSD);
	nvmg_copy_padded(e->trsvcid, sizeof(e->trsvcid), a->trsvcid);
	memcpy(e->subnqn, nqn, strnlen(nqn, sizeof(e->subnqn) - 1));
	nvmg_copy_padded(e->traddr, sizeof(e->traddr), a->traddr);
	tr->disc_tsas(port, &e->tsas);
}

/* The address a port is reported with. A wildcard port is reported with
 * the address this host reached us on, which is one it can connect to:
 * the asking port's own always; another wildcard port listens there too
 * when it is of the same family, and is skipped (false) otherwise. */
static bool port_addr(struct nvmg_sq *sq, const struct nvmg_port *port, struct disc_addr *a)
{
	char local[NVMF_TRADDR_SIZE + 1];
	uint8_t bin[16];

	snprintf(a->trsvcid, sizeof(a->trsvcid), "%.*s", (int)sizeof(port->trsvcid), port->trsvcid);
	snprintf(a->traddr, sizeof(a->traddr), "%.*s", (int)sizeof(port->traddr), port->traddr);
	if (!port->wildcard)
		return true;
	memset(local, 0, sizeof(local));
	if (!sq->transport || !sq->transport->local_addr ||
	    sq->transport->local_addr(sq, local, sizeof(local) - 1) || !local[0])
		return port == sq->port;
	if (port != sq->port && inet_pton(port->adrfam, local, bin) != 1)
		return false;
	memcpy(a->traddr, local, sizeof(local));
	return true;
}

/* A referral: another discovery service (ports[].referrals). */
static void fill_referral(struct nvmf_disc_log_entry *e, const struct nvmg_referral *r)
{
	memset(e, 0, sizeof(*e));
	e->trtype = r->trtype;
	e->adrfam = r->adrfam;
	e->subtype = NVME_NQN_DISC;
	e->treq = r->treq;
	e->portid = htole16(r->portid);
	e->cntlid = htole16(CNTLID_DYNAMIC);
	e->asqsz = htole16(DISC_ASQSZ);
	nvmg_copy_padded(e->trsvcid, sizeof(e->trsvcid), r->trsvcid);
	memcpy(e->subnqn, NVMG_DISC_NQN, strlen(NVMG_DISC_NQN));
	nvmg_copy_padded(e->traddr, sizeof(e->traddr), r->traddr);
	e->tsas.tcp.sectype = r->sectype;
}

/* The entries for one port's subsystems that this host may connect to. */
static void put_port_subsys(struct nvmg_sq *sq, const struct nvmg_port *port,
			    const struct disc_window *w, uint64_t *numrec)
{
	struct nvmg_target *tgt = sq->tgt;
	struct nvmf_disc_log_entry e;
	struct disc_addr a;

	if (!port_addr(sq, port, &a))
		return;
	for (size_t i = 0; i < tgt->nr_subsys; i++) {
		struct nvmg_subsys *s = tgt->subsys[i];

		if (s->discovery || !nvmg_port_exports_locked(port, s) ||
		    !nvmg_subsys_host_allowed(s, sq->ctrl->hostnqn))
			continue;
		fill_entry(&e, port, &a, NVME_NQN_NVME, s->nqn);
		window_put(w, DISC_HDR_SIZE + (*numrec)++ * DISC_ENTRY_SIZE, &e, sizeof(e));
	}
}

/* Every port of this daemon that exports an allowed subsystem is listed,
 * not only the asking one, so that `nvme connect-all` against one port
 * finds every path of this node. That is SPDK's default (its discovery
 * log lists every listener of each subsystem unless a discovery filter
 * narrows it); the Linux target lists only the asking port's, as its
 * configfs ports are independent and a host is expected to discover
 * through each. The asking port's entries come first: hosts that connect
 * to the first entry of a subsystem stay on the port they chose. Then the
 * asking port's referrals to other nodes' discovery services, as the
 * Linux target orders them. */
uint16_t nvmg_discovery_log(struct nvmg_sq *sq, void *buf, uint64_t off, uint32_t len)
{
	struct nvmg_target *tgt = sq->tgt;
	struct disc_window w = { .buf = buf, .off = off, .len = len };
	struct nvmf_discovery_log hdr;
	struct nvmf_disc_log_entry e;
	struct disc_addr a;
	uint64_t numrec = 0;
	/* Read first: a change racing with us bumps it past what we report,
	 * so the host rereads. */
	uint64_t genctr = atomic_load(&tgt->discovery_genctr);

	if (len)
		memset(buf, 0, len);
	port_addr(sq, sq->port, &a);

	fill_entry(&e, sq->port, &a, NVME_NQN_CURR, NVMG_DISC_NQN);
	window_put(&w, DISC_HDR_SIZE + numrec++ * DISC_ENTRY_SIZE, &e, sizeof(e));
	pthread_rwlock_rdlock(&tgt->model_lock);
	put_port_subsys(sq, sq->port, &w, &numrec);
	for (size_t i = 0; i < tgt->nr_ports; i++)
		if (tgt->ports[i] != sq->port)
			put_port_subsys(sq, tgt->ports[i], &w, &numrec);
	for (size_t i = 0; i < sq->port->nr_referrals; i++) {
		fill_referral(&e, &sq->port->referrals[i]);
		window_put(&w, DISC_HDR_SIZE + numrec++ * DISC_ENTRY_SIZE, &e, sizeof(e));
	}
	pthread_rwlock_unlock(&tgt->model_lock);

	/* The header goes last: only then is NUMREC known. */
	memset(&hdr, 0, sizeof(hdr));
	hdr.genctr = htole64(genctr);
	hdr.numrec = htole64(numrec);
	hdr.recfmt = 0;
	window_put(&w, 0, &hdr, sizeof(hdr));
	return 0;
}
