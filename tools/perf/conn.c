/* Blocking setup path of nvmegate-perf: TCP connect, ICReq/ICResp, and
 * one-command-at-a-time execution for Connect, Property Get/Set, Identify,
 * Set Features and Keep Alive. The I/O path lives in engine.c. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net/tcp_frame.h"
#include "tools/perf/perf.h"
#include "tools/perf/tls.h"

#define SETUP_TIMEOUT_S 10
#define CONNECT_TIMEOUT_MS 5000

/* One line on stderr per message, formatted first so lines never interleave. */
static void vmsg(const char *kind, const char *fmt, va_list ap)
{
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	fprintf(stderr, PERF_NAME ": %s%s\n", kind, buf);
}

void perf_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
}

void perf_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("warning: ", fmt, ap);
	va_end(ap);
}

/* ---- status names ------------------------------------------------------ */

struct sc_name {
	uint8_t sct, sc;
	const char *name;
};

static const struct sc_name sc_names[] = {
	{ 0, 0x00, "Successful Completion" },
	{ 0, 0x01, "Invalid Command Opcode" },
	{ 0, 0x02, "Invalid Field in Command" },
	{ 0, 0x03, "Command ID Conflict" },
	{ 0, 0x04, "Data Transfer Error" },
	{ 0, 0x05, "Commands Aborted due to Power Loss Notification" },
	{ 0, 0x06, "Internal Error" },
	{ 0, 0x07, "Command Abort Requested" },
	{ 0, 0x08, "Command Aborted due to SQ Deletion" },
	{ 0, 0x0b, "Invalid Namespace or Format" },
	{ 0, 0x0c, "Command Sequence Error" },
	{ 0, 0x0d, "Invalid SGL Segment Descriptor" },
	{ 0, 0x0e, "Invalid Number of SGL Descriptors" },
	{ 0, 0x0f, "Data SGL Length Invalid" },
	{ 0, 0x10, "Metadata SGL Length Invalid" },
	{ 0, 0x11, "SGL Descriptor Type Invalid" },
	{ 0, 0x16, "SGL Offset Invalid" },
	{ 0, 0x18, "Host Identifier Inconsistent Format" },
	{ 0, 0x19, "Keep Alive Timer Expired" },
	{ 0, 0x1a, "Keep Alive Timeout Invalid" },
	{ 0, 0x20, "Namespace is Write Protected" },
	{ 0, 0x21, "Command Interrupted" },
	{ 0, 0x22, "Transient Transport Error" },
	{ 0, 0x80, "LBA Out of Range" },
	{ 0, 0x81, "Capacity Exceeded" },
	{ 0, 0x82, "Namespace Not Ready" },
	{ 0, 0x83, "Reservation Conflict" },
	{ 0, 0x84, "Format In Progress" },
	{ 1, 0x01, "Invalid Queue Identifier" },
	{ 1, 0x02, "Invalid Queue Size" },
	{ 1, 0x80, "Conflicting Attributes" },
	{ 1, 0x81, "Invalid Protection Information" },
	{ 1, 0x82, "Attempted Write to Read Only Range" },
	{ 2, 0x80, "Write Fault" },
	{ 2, 0x81, "Unrecovered Read Error" },
	{ 2, 0x82, "End-to-end Guard Check Error" },
	{ 2, 0x83, "End-to-end Application Tag Check Error" },
	{ 2, 0x84, "End-to-end Reference Tag Check Error" },
	{ 2, 0x85, "Compare Failure" },
	{ 2, 0x86, "Access Denied" },
	{ 2, 0x87, "Deallocated or Unwritten Logical Block" },
	{ 3, 0x00, "Internal Path Error" },
	{ 3, 0x01, "Asymmetric Access Persistent Loss" },
	{ 3, 0x02, "Asymmetric Access Inaccessible" },
	{ 3, 0x03, "Asymmetric Access Transition" },
	{ 3, 0x60, "Controller Pathing Error" },
	{ 3, 0x70, "Host Pathing Error" },
	{ 3, 0x71, "Command Aborted By Host" },
};

/* Fabrics commands reuse command-specific codes 80h and up. */
static const struct sc_name fabrics_sc_names[] = {
	{ 1, 0x80, "Connect Incompatible Format" },
	{ 1, 0x81, "Connect Controller Busy" },
	{ 1, 0x82, "Connect Invalid Parameters" },
	{ 1, 0x83, "Connect Restart Discovery" },
	{ 1, 0x84, "Connect Invalid Host" },
	{ 1, 0x85, "Invalid Queue Type" },
	{ 1, 0x90, "Discover Restart" },
	{ 1, 0x91, "Authentication Required" },
};

static const char *status_str(uint16_t sf, bool fabrics, char *buf, size_t len)
{
	unsigned sct = (sf >> NVME_SCT_SHIFT) & NVME_SCT_MASK;
	unsigned sc = sf & NVME_SC_MASK;
	const char *name = NULL;
	size_t i;

	if (fabrics)
		for (i = 0; i < sizeof(fabrics_sc_names) / sizeof(fabrics_sc_names[0]); i++)
			if (fabrics_sc_names[i].sct == sct && fabrics_sc_names[i].sc == sc)
				name = fabrics_sc_names[i].name;
	for (i = 0; !name && i < sizeof(sc_names) / sizeof(sc_names[0]); i++)
		if (sc_names[i].sct == sct && sc_names[i].sc == sc)
			name = sc_names[i].name;
	snprintf(buf, len, "%s (sct %u sc 0x%02x)", name ? name : "Unknown Status", sct, sc);
	return buf;
}

const char *perf_status_str(uint16_t sf, char *buf, size_t len)
{
	return status_str(sf, false, buf, len);
}

/* ---- socket helpers ----------------------------------------------------- */

static int connect_timeout(int fd, const struct sockaddr *sa, socklen_t len)
{
	int fl = fcntl(fd, F_GETFL), err = 0;
	socklen_t elen = sizeof(err);
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	if (connect(fd, sa, len) < 0) {
		if (errno != EINPROGRESS)
			return -1;
		int r = poll(&pfd, 1, CONNECT_TIMEOUT_MS);
		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (r < 0)
			return -1;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			return -1;
		if (err) {
			errno = err;
			return -1;
		}
	}
	return fcntl(fd, F_SETFL, fl);
}

static int set_timeouts(int fd, int secs)
{
	struct timeval tv = { .tv_sec = secs };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return -1;
	return 0;
}

static int send_all(struct perf_conn *c, struct iovec *iov, int n, const char *what)
{
	if (c->tls) {
		for (int i = 0; i < n; i++)
			if (tls_chan_write(c->tls, iov[i].iov_base, iov[i].iov_len))
				goto tls_fail;
		if (!perf_tls_send(c->tls, c->fd, NULL, 0))
			return 0;
tls_fail:
		perf_err("qid %u: sending %s over TLS failed", c->qid, what);
		return -1;
	}
	while (n > 0) {
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t r = sendmsg(c->fd, &m, MSG_NOSIGNAL);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			perf_err("qid %u: sending %s: %s", c->qid, what,
				 errno == EAGAIN ? "timed out" : strerror(errno));
			return -1;
		}
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

static int recv_all(struct perf_conn *c, void *buf, size_t len, const char *what)
{
	uint8_t *p = buf;

	if (c->tls) {
		if (!perf_tls_recv(c->tls, c->fd, buf, len))
			return 0;
		perf_err("qid %u: TLS session ended while waiting for %s", c->qid, what);
		return -1;
	}
	while (len) {
		ssize_t r = recv(c->fd, p, len, 0);

		if (r == 0) {
			perf_err("qid %u: connection closed by target while waiting for %s",
				 c->qid, what);
			return -1;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				perf_err("qid %u: timed out after %d s waiting for %s",
					 c->qid, SETUP_TIMEOUT_S, what);
			else
				perf_err("qid %u: receiving %s: %s", c->qid, what, strerror(errno));
			return -1;
		}
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

/* The 8 common header bytes of a C2HTermReq are in hdr, checked; read
 * the rest and report it. Always returns -1. */
static int report_term(struct perf_conn *c, const struct nvmg_tcp_hdr *hdr, const char *what)
{
	uint8_t buf[sizeof(struct nvmg_tcp_term) + NVMG_TCP_TERM_MAX_DATA];
	uint32_t plen = le32toh(hdr->plen);
	struct nvmg_tcp_term t;

	memcpy(buf, hdr, sizeof(*hdr));
	if (recv_all(c, buf + sizeof(*hdr), plen - sizeof(*hdr), "C2HTermReq") < 0)
		return -1;
	memcpy(&t, buf, sizeof(t));
	perf_err("qid %u: target sent C2HTermReq in reply to %s: %s (FES 0x%x, FEI 0x%x)",
		 c->qid, what, nvmg_pdu_fes_name(le16toh(t.fes)), le16toh(t.fes), le32toh(t.fei));
	return -1;
}

/* A framing error in what the target sent; always returns -1. */
static int report_pdu_err(struct perf_conn *c, enum nvmg_pdu_err err, const struct nvmg_tcp_hdr *h,
			  const char *what)
{
	char buf[192];

	perf_err("qid %u: %s in reply to %s", c->qid,
		 nvmg_pdu_err_str(err, h, c->hdgst, c->ddgst, buf, sizeof(buf)), what);
	return -1;
}

/* ---- connection setup ------------------------------------------------- */

int conn_open(struct perf_conn *c, const struct perf_opts *o, uint16_t qid)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_protocol = IPPROTO_TCP,
		.ai_flags = AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL, *ai;
	char host[256];
	int rc, one = 1, err = 0;
	size_t l;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->qid = qid;

	/* Accept "[::1]" as well as "::1". */
	snprintf(host, sizeof(host), "%s", o->addr);
	l = strlen(host);
	if (l >= 2 && host[0] == '[' && host[l - 1] == ']') {
		memmove(host, host + 1, l - 2);
		host[l - 2] = 0;
	}
	rc = getaddrinfo(host, o->port, &hints, &res);
	if (rc) {
		perf_err("cannot resolve %s port %s: %s", o->addr, o->port, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
		if (c->fd < 0) {
			err = errno;
			continue;
		}
		if (connect_timeout(c->fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno;
		close(c->fd);
		c->fd = -1;
	}
	freeaddrinfo(res);
	if (c->fd < 0) {
		perf_err("connect to %s port %s (qid %u): %s", o->addr, o->port, qid, strerror(err));
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (set_timeouts(c->fd, SETUP_TIMEOUT_S) < 0) {
		perf_err("setsockopt: %s", strerror(errno));
		goto fail;
	}

	if (o->tls && !(c->tls = perf_tls_connect(c->fd, o, qid)))
		goto fail;
	/* ICReq: PFV 0, HPDA 0 (no padding), MAXR2T 0 (one R2T per command). */
	struct nvmg_tcp_icreq req;
	struct nvmg_tcp_icresp resp;
	struct iovec iov = { &req, sizeof(req) };
	enum nvmg_pdu_err perr;
	uint32_t hl;

	memset(&req, 0, sizeof(req));
	nvmg_pdu_init_hdr(&req.hdr, NVMG_TCP_ICREQ, false, false, 0, 0);
	req.pfv = htole16(0);
	req.hpda = 0;
	req.digest = (o->hdgst ? NVMG_TCP_HDGST_ENABLE : 0) | (o->ddgst ? NVMG_TCP_DDGST_ENABLE : 0);
	req.maxr2t = htole32(0);
	if (send_all(c, &iov, 1, "ICReq") < 0)
		goto fail;
	if (recv_all(c, &resp.hdr, sizeof(resp.hdr), "ICResp") < 0)
		goto fail;
	perr = nvmg_pdu_check_hdr(&resp.hdr, NVMG_PDU_BIT(NVMG_TCP_ICRESP) | NVMG_PDU_BIT(NVMG_TCP_C2H_TERM),
				  false, true, &hl);
	if (!perr && resp.hdr.type == NVMG_TCP_C2H_TERM) {
		report_term(c, &resp.hdr, "ICReq");
		goto fail;
	}
	if (!perr)
		perr = nvmg_pdu_check_no_data(&resp.hdr, hl);
	if (perr) {
		report_pdu_err(c, perr, &resp.hdr, "ICReq");
		goto fail;
	}
	if (recv_all(c, (uint8_t *)&resp + sizeof(resp.hdr), sizeof(resp) - sizeof(resp.hdr),
		     "ICResp") < 0)
		goto fail;
	if (le16toh(resp.pfv) != 0) {
		perf_err("qid %u: ICResp PFV %u, only 0 is supported", qid, le16toh(resp.pfv));
		goto fail;
	}
	if (resp.cpda != 0) {
		perf_err("qid %u: ICResp CPDA %u, only 0 is supported", qid, resp.cpda);
		goto fail;
	}
	if (resp.digest != req.digest) {
		perf_err("qid %u: digest negotiation failed: asked for %s%s, ICResp DGST 0x%x",
			 qid, o->hdgst ? "header " : "", o->ddgst ? "data " : "none ", resp.digest);
		goto fail;
	}
	c->hdgst = o->hdgst;
	c->ddgst = o->ddgst;
	c->maxh2cdata = le32toh(resp.maxh2cdata);
	if (c->maxh2cdata < 4096 || (c->maxh2cdata & 3)) {
		perf_err("qid %u: ICResp MAXH2CDATA %u is invalid (must be >= 4096, dword multiple)",
			 qid, c->maxh2cdata);
		goto fail;
	}
	return 0;
fail:
	close(c->fd);
	c->fd = -1;
	return -1;
}

void conn_close(struct perf_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	perf_tls_free(c->tls);
	c->tls = NULL;
}

int conn_handoff(struct perf_conn *c)
{
	return set_timeouts(c->fd, 0);
}

struct cmd_pdu {
	struct nvmg_tcp_cmd pdu;
	uint32_t hdgst;
} __attribute__((packed));

int conn_sync_cmd(struct perf_conn *c, struct nvmg_sqe *sqe,
		  const void *wdata, uint32_t wlen, void *rdata, uint32_t rlen,
		  struct nvmg_cqe *cqe, const char *what)
{
	uint16_t cid = c->next_cid++;
	struct cmd_pdu cmd;
	uint32_t ddg = 0, hl;
	struct iovec iov[3];
	int n = 0;

	sqe->cid = htole16(cid);
	sqe->flags = (uint8_t)((sqe->flags & ~NVMG_PSDT_MASK) | NVMG_PSDT_SGL_MPTR_CONTIG);
	memset(&sqe->dptr, 0, sizeof(sqe->dptr));
	if (wlen) {
		sqe->dptr.length = htole32(wlen);
		sqe->dptr.type = NVMG_SGL_DATA_BLOCK_OFFSET;
	} else {
		sqe->dptr.length = htole32(rlen);
		sqe->dptr.type = NVMG_SGL_TRANSPORT_DATA_BLOCK;
	}
	memset(&cmd, 0, sizeof(cmd));
	hl = nvmg_pdu_init_hdr(&cmd.pdu.hdr, NVMG_TCP_CMD, c->hdgst, c->ddgst,
			       nvmg_pdu_hdr_total(NVMG_TCP_CMD, c->hdgst), wlen);
	memcpy(&cmd.pdu.sqe, sqe, sizeof(*sqe));
	nvmg_pdu_put_hdgst(&cmd.pdu.hdr);
	iov[n++] = (struct iovec){ &cmd, hl };
	if (wlen) {
		iov[n++] = (struct iovec){ (void *)wdata, wlen };
		if (c->ddgst) {
			ddg = nvmg_pdu_ddgst(wdata, wlen);
			iov[n++] = (struct iovec){ &ddg, 4 };
		}
	}
	if (send_all(c, iov, n, what) < 0)
		return -1;

	for (;;) {
		uint8_t hbuf[256];
		struct nvmg_tcp_hdr *h = (struct nvmg_tcp_hdr *)hbuf;
		uint32_t need, pad = 0, len = 0;
		enum nvmg_pdu_err err;

		if (recv_all(c, hbuf, sizeof(*h), what) < 0)
			return -1;
		err = nvmg_pdu_check_hdr(h, NVMG_PDU_BIT(NVMG_TCP_RSP) | NVMG_PDU_BIT(NVMG_TCP_C2H_DATA) |
					 NVMG_PDU_BIT(NVMG_TCP_C2H_TERM), c->hdgst, true, &need);
		if (!err && h->type == NVMG_TCP_C2H_TERM)
			return report_term(c, h, what);
		if (!err && h->type == NVMG_TCP_C2H_DATA)
			err = nvmg_pdu_data_span(h, need, c->ddgst, &pad, &len);
		else if (!err)
			err = nvmg_pdu_check_no_data(h, need);
		if (err)
			return report_pdu_err(c, err, h, what);
		/* The padding up to PDO is read with the header (PDO <= 255). */
		need += pad;
		if (recv_all(c, hbuf + sizeof(*h), need - sizeof(*h), what) < 0)
			return -1;
		err = nvmg_pdu_check_hdgst(h, c->hdgst);
		if (err)
			return report_pdu_err(c, err, h, what);
		if (h->type == NVMG_TCP_RSP) {
			struct nvmg_tcp_rsp r;

			memcpy(&r, hbuf, sizeof(r));
			if (le16toh(r.cqe.cid) != cid) {
				perf_err("qid %u: CapsuleResp for CID %u while waiting for CID %u (%s)",
					 c->qid, le16toh(r.cqe.cid), cid, what);
				return -1;
			}
			*cqe = r.cqe;
			return le16toh(r.cqe.status) >> 1;
		}

		/* C2HData */
		struct nvmg_tcp_data d;
		uint32_t off;

		memcpy(&d, hbuf, sizeof(d));
		off = le32toh(d.offset);
		err = nvmg_pdu_check_datal(&d, len);
		if (err)
			return report_pdu_err(c, err, h, what);
		if (le16toh(d.cccid) != cid || !rdata || (uint64_t)off + len > rlen) {
			perf_err("qid %u: bad C2HData in reply to %s: CCCID %u (expected %u) DATAO %u DATAL %u (buffer %u)",
				 c->qid, what, le16toh(d.cccid), cid, off, len, rlen);
			return -1;
		}
		if (recv_all(c, (uint8_t *)rdata + off, len, what) < 0)
			return -1;
		if (c->ddgst) {
			uint8_t have[4];

			if (recv_all(c, have, 4, what) < 0)
				return -1;
			if (nvmg_pdu_check_ddgst(nvmg_crc32c_update(NVMG_CRC32C_INIT, (uint8_t *)rdata + off, len),
						 have)) {
				perf_err("qid %u: data digest error in C2HData in reply to %s", c->qid, what);
				return -1;
			}
		}
		if (d.hdr.flags & NVMG_TCP_F_DATA_SUCCESS) {
			if (!(d.hdr.flags & NVMG_TCP_F_DATA_LAST)) {
				perf_err("qid %u: C2HData with SUCCESS but without LAST_PDU (%s)",
					 c->qid, what);
				return -1;
			}
			memset(cqe, 0, sizeof(*cqe));
			cqe->cid = htole16(cid);
			return 0;
		}
	}
}

int conn_fabrics_connect(struct perf_conn *c, const struct perf_opts *o,
			 uint16_t qid, uint16_t sqsize, uint16_t cntlid,
			 uint32_t kato, uint16_t *cntlid_out)
{
	struct nvmf_connect_data data;
	union {
		struct nvmg_sqe sqe;
		struct nvmg_connect_cmd cc;
	} u;
	struct nvmg_cqe cqe;
	char sbuf[128];
	int rc;

	memset(&data, 0, sizeof(data));
	memcpy(data.hostid, o->hostid, sizeof(data.hostid));
	data.cntlid = htole16(cntlid);
	memcpy(data.subsysnqn, o->subnqn, strnlen(o->subnqn, PERF_NQN_MAX));
	memcpy(data.hostnqn, o->hostnqn, strnlen(o->hostnqn, PERF_NQN_MAX));

	memset(&u, 0, sizeof(u));
	u.cc.opcode = nvme_admin_fabrics;
	u.cc.fctype = nvme_fabrics_type_connect;
	u.cc.recfmt = htole16(0);
	u.cc.qid = htole16(qid);
	u.cc.sqsize = htole16(sqsize);
	u.cc.cattr = 0;
	u.cc.kato = htole32(kato);
	rc = conn_sync_cmd(c, &u.sqe, &data, sizeof(data), NULL, 0, &cqe, "Connect");
	if (rc < 0)
		return -1;
	uint32_t dw0 = (uint32_t)le64toh(cqe.result);
	if (rc) {
		char extra[96] = "";

		if ((rc & 0x7ff) == NVMG_SC_CMD(NVME_SC_CONNECT_INVALID_PARAM))
			snprintf(extra, sizeof(extra), ", invalid parameter at %s byte %u",
				 (dw0 >> 16) & 1 ? "Connect data" : "SQE", dw0 & 0xffff);
		perf_err("connect: %s [qid %u, subsystem %s, host %s%s]",
			 status_str((uint16_t)rc, true, sbuf, sizeof(sbuf)), qid, o->subnqn,
			 o->hostnqn, extra);
		return -1;
	}
	if ((dw0 >> 16) & 0x3) {
		perf_err("connect: target requires in-band authentication (AUTHREQ 0x%x) [qid %u], not supported",
			 (dw0 >> 16) & 0xffff, qid);
		return -1;
	}
	if (cntlid_out)
		*cntlid_out = (uint16_t)(dw0 & 0xffff);
	return 0;
}

/* Property Get and Set share one capsule layout. */
static int prop_cmd(struct perf_conn *c, uint8_t fctype, uint32_t off, bool eight, uint64_t *val)
{
	bool get = fctype == nvme_fabrics_type_property_get;
	const char *what = get ? "Property Get" : "Property Set";
	union {
		struct nvmg_sqe sqe;
		struct nvmg_prop_cmd p;
	} u;
	struct nvmg_cqe cqe;
	char sbuf[128];
	int rc;

	memset(&u, 0, sizeof(u));
	u.p.opcode = nvme_admin_fabrics;
	u.p.fctype = fctype;
	u.p.attrib = eight ? 1 : 0;
	u.p.offset = htole32(off);
	if (!get)
		u.p.value = htole64(*val);
	rc = conn_sync_cmd(c, &u.sqe, NULL, 0, NULL, 0, &cqe, what);
	if (rc < 0)
		return -1;
	if (rc) {
		perf_err("%s 0x%x: %s", what, off, status_str((uint16_t)rc, true, sbuf, sizeof(sbuf)));
		return -1;
	}
	if (get)
		*val = le64toh(cqe.result) & (eight ? ~0ull : 0xffffffffull);
	return 0;
}

int conn_prop_get(struct perf_conn *c, uint32_t off, bool eight, uint64_t *val)
{
	return prop_cmd(c, nvme_fabrics_type_property_get, off, eight, val);
}

int conn_prop_set(struct perf_conn *c, uint32_t off, uint64_t val)
{
	return prop_cmd(c, nvme_fabrics_type_property_set, off, false, &val);
}

int conn_keep_alive(struct perf_conn *c)
{
	struct nvmg_sqe sqe;
	struct nvmg_cqe cqe;
	char sbuf[128];
	int rc;

	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = nvme_admin_keep_alive;
	rc = conn_sync_cmd(c, &sqe, NULL, 0, NULL, 0, &cqe, "Keep Alive");
	if (rc < 0)
		return -1;
	if (rc) {
		perf_err("Keep Alive: %s", perf_status_str((uint16_t)rc, sbuf, sizeof(sbuf)));
		return -1;
	}
	return 0;
}
