/* DH-HMAC-CHAP on a queue (see auth.h): Connect's decision, the
 * Authentication Send/Receive commands, the gate, and the deadline.
 *
 * A queue whose host must authenticate accepts nothing but these two
 * commands until an exchange succeeds (Connect answers with AUTHREQ.ATR,
 * the others with Authentication Required, as the Linux target does). An
 * exchange that fails ends the controller, as Linux's does, but only after
 * a grace tick, so that the host reads our Failure1 first. A host that
 * closes the failed queue within the grace ends it first: a failed I/O
 * queue then goes alone (it never had access) and the controller lives
 * on, as with Linux. One that stalls past the deadline (KATO, or 120 s
 * without one, like Linux's) ends the queue, and with the admin queue the
 * controller. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/reactor.h"
#include "lib/util.h"
#include "nvme/auth.h"
#include "nvme/auth_crypto.h"
#include "nvme/core.h"
#include "nvme/host.h"

#define AUTH_TIMEOUT_MS 120000 /* without a KATO */
#define AUTH_GRACE_MS 500      /* from Failure1 to the end of the controller */

struct nvmg_auth_queue {
	struct nvmg_auth a;
	struct nvmg_sq *sq;
	struct nvmg_ticker ticker; /* armed while an exchange runs or a failure ends */
	uint64_t deadline_ms;
};

int nvmg_auth_queue_setup(struct nvmg_sq *sq, const char *hostnqn, const struct nvmg_subsys *s)
{
	struct nvmg_auth_queue *q;
	struct nvmg_host h;
	bool need;

	/* Discovery is open to every host, as with Linux's target. */
	if (s->discovery || nvmg_target_find_host(sq->tgt, hostnqn, &h))
		return 0;
	need = h.has_dhchap_key;
	nvmg_host_wipe(&h);
	if (!need)
		return 0;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	nvmg_auth_init(&q->a, hostnqn, s->nqn);
	q->sq = sq;
	sq->auth = q;
	return 0;
}

void nvmg_auth_queue_free(struct nvmg_sq *sq)
{
	struct nvmg_auth_queue *q = sq->auth;

	if (!q)
		return;
	if (sq->reactor)
		nvmg_reactor_del_ticker(sq->reactor, &q->ticker);
	nvmg_auth_clear(&q->a);
	OPENSSL_cleanse(q, sizeof(*q));
	free(q);
	sq->auth = NULL;
}

bool nvmg_auth_queue_ok(const struct nvmg_sq *sq)
{
	return !sq->auth || sq->auth->a.authenticated;
}

static void auth_tick(struct nvmg_ticker *t, uint64_t now)
{
	struct nvmg_auth_queue *q = nvmg_container_of(t, struct nvmg_auth_queue, ticker);
	struct nvmg_sq *sq = q->sq;
	struct nvmg_ctrl *c = sq->ctrl;
	bool failed = q->a.state == NVMG_AUTH_FAILED;
	char host[NVMG_ESCAPED_SIZE(NVME_NQN_LENGTH)];

	if (now < q->deadline_ms)
		return;
	nvmg_reactor_del_ticker(sq->reactor, t);
	if (!c || sq->closing)
		return;
	if (failed) {
		nvmg_ctrl_kill(c, false, "authentication failed");
		return;
	}
	log_info("controller %u queue %u (host %s): authentication did not complete in time",
		 c->cntlid, sq->qid, nvmg_escape(host, sizeof(host), c->hostnqn, sizeof(c->hostnqn)));
	if (sq->qid == 0)
		nvmg_ctrl_kill(c, false, "authentication timeout");
	else
		sq->transport->kill_queue(sq);
}

/* After each step: the deadline moves while an exchange runs, stops when
 * it is over, and becomes the grace tick when it failed. */
static void rearm(struct nvmg_auth_queue *q)
{
	struct nvmg_sq *sq = q->sq;
	uint32_t kato = sq->ctrl ? sq->ctrl->kato_ms : 0;

	if (!sq->reactor)
		return;
	if (q->a.state == NVMG_AUTH_FAILED)
		q->deadline_ms = nvmg_now_ms() + AUTH_GRACE_MS;
	else if (nvmg_auth_busy(&q->a))
		q->deadline_ms = nvmg_now_ms() + (kato ? kato : AUTH_TIMEOUT_MS);
	else {
		nvmg_reactor_del_ticker(sq->reactor, &q->ticker);
		return;
	}
	if (!q->ticker.link.tqe_prev)
		nvmg_reactor_add_ticker(sq->reactor, &q->ticker);
}

uint32_t nvmg_auth_queue_start(struct nvmg_sq *sq)
{
	struct nvmg_auth_queue *q = sq->auth;

	if (!q)
		return 0;
	q->ticker.fn = auth_tick;
	rearm(q);
	return NVMG_CONNECT_AUTHREQ_ATR;
}

static void log_failure(const struct nvmg_sq *sq, const struct nvmg_auth *a)
{
	char host[NVMG_ESCAPED_SIZE(NVME_NQN_LENGTH)];

	log_warn("controller %u queue %u (host %s): authentication failed (reason %#x)",
		 sq->ctrl->cntlid, sq->qid, nvmg_escape(host, sizeof(host), a->hostnqn, sizeof(a->hostnqn)),
		 a->reason);
}

/* After a message: an exchange that has just ended with access (Success1
 * received, or Success2 sent when bidirectional) is logged with what it
 * used, so a test sees every queue's (re-)authentication. */
static void log_done(const struct nvmg_sq *sq, const struct nvmg_auth *a, bool was_busy)
{
	char host[NVMG_ESCAPED_SIZE(NVME_NQN_LENGTH)];

	if (was_busy && a->authenticated && !nvmg_auth_busy(a))
		log_debug("controller %u queue %u (host %s): authenticated (%s, %s)",
			  sq->ctrl->cntlid, sq->qid,
			  nvmg_escape(host, sizeof(host), a->hostnqn, sizeof(a->hostnqn)),
			  nvmg_auth_hash_name(a->hash), nvmg_auth_dhgroup_name(a->dhgid));
}

static void execute_auth_send(struct nvmg_req *req)
{
	struct nvmg_sq *sq = req->sq;
	struct nvmg_auth_queue *q = sq->auth;
	bool was_busy = nvmg_auth_busy(&q->a);
	struct nvmg_host h, *keys = &h;
	char host[NVMG_ESCAPED_SIZE(NVME_NQN_LENGTH)];

	if (nvmg_target_find_host(sq->tgt, q->a.hostnqn, &h))
		keys = NULL;
	/* Keys are read at every message: a reload's new key applies to the
	 * next exchange, as a re-authentication should see it. */
	nvmg_auth_send(&q->a, keys, req->buf, req->data_len);
	nvmg_host_wipe(&h);
	OPENSSL_cleanse(req->buf, req->data_len);
	if (q->a.state == NVMG_AUTH_SEND_FAILURE1)
		log_failure(sq, &q->a);
	else if (q->a.state == NVMG_AUTH_FAILED)
		log_warn("controller %u queue %u (host %s): the host failed the authentication",
			 sq->ctrl->cntlid, sq->qid,
			 nvmg_escape(host, sizeof(host), q->a.hostnqn, sizeof(q->a.hostnqn)));
	log_done(sq, &q->a, was_busy);
	rearm(q);
	nvmg_req_complete(req, 0);
}

static void execute_auth_receive(struct nvmg_req *req)
{
	struct nvmg_sq *sq = req->sq;
	struct nvmg_auth_queue *q = sq->auth;
	bool was_failing = q->a.state == NVMG_AUTH_SEND_FAILURE1;
	bool was_busy = nvmg_auth_busy(&q->a);
	int n = nvmg_auth_receive(&q->a, req->buf, req->data_len);

	if (n < 0) {
		/* AL too small for the message: the host may ask again. */
		nvmg_req_complete(req, NVMG_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVME_SC_DNR);
		return;
	}
	memset((uint8_t *)req->buf + n, 0, req->data_len - (size_t)n);
	if (q->a.state == NVMG_AUTH_FAILED && !was_failing)
		log_failure(sq, &q->a);
	else
		log_done(sq, &q->a, was_busy);
	rearm(q);
	nvmg_req_complete(req, 0);
}

uint16_t nvmg_parse_auth(struct nvmg_req *req)
{
	const struct nvmg_auth_cmd *cmd = (const struct nvmg_auth_cmd *)&req->cmd;
	uint32_t len = le32toh(cmd->tl_al);

	/* A queue that need not authenticate has no exchange to run. */
	if (!req->sq->auth)
		return NVMG_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR) | NVME_SC_DNR;
	if (cmd->secp != NVMG_AUTH_SECP_DHCHAP || cmd->spsp0 != NVMG_AUTH_SPSP ||
	    cmd->spsp1 != NVMG_AUTH_SPSP || !len || len > NVMG_AUTH_XFER_MAX)
		return NVMG_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVME_SC_DNR;
	req->data_len = len;
	if (cmd->fctype == nvme_fabrics_type_auth_send) {
		req->dir = NVMG_DIR_FROM_HOST;
		req->execute = execute_auth_send;
	} else {
		req->dir = NVMG_DIR_TO_HOST;
		req->execute = execute_auth_receive;
	}
	return 0;
}
