/* Fabrics commands: Connect, Property Get/Set, Disconnect; Authentication
 * Send/Receive are auth_cmd.c's. */
#include <stddef.h>
#include <string.h>
#include "lib/log.h"
#include "nvme/auth.h"
#include "nvme/core.h"

static uint16_t connect_fail(struct nvmg_req *req, uint16_t status, uint32_t ipo)
{
	req->cqe.result = htole64(ipo);
	return status | NVME_SC_DNR;
}

#define INVALID_PARAM NVMG_SC_CMD(NVME_SC_CONNECT_INVALID_PARAM)

/* Everything but the controller lookup/creation: formats and sizes. */
static uint16_t connect_check(struct nvmg_req *req, const struct nvmg_connect_cmd *cmd,
			      struct nvmf_connect_data *d, struct nvmg_subsys **subsys)
{
	struct nvmg_sq *sq = req->sq;
	uint16_t sqsize = le16toh(cmd->sqsize);
	struct nvmg_subsys *s;

	if (le16toh(cmd->recfmt) != 0)
		return NVMG_SC_CMD(NVME_SC_CONNECT_FORMAT) | NVME_SC_DNR;
	/* SQSIZE is 0's based; 0 would be a one-entry queue. */
	if (sqsize == 0 || sqsize > NVMG_MQES)
		return connect_fail(req, INVALID_PARAM, NVMG_IPO_SQE(offsetof(struct nvmg_connect_cmd, sqsize)));
	d->subsysnqn[NVME_NQN_LENGTH - 1] = '\0';
	d->hostnqn[NVME_NQN_LENGTH - 1] = '\0';
	/* An empty host NQN is let through, as the Linux target and SPDK do:
	 * it names no host, so it can only match "allow any host" (an allow
	 * list never holds it: the config refuses empty NQNs), and it has no
	 * DH-HMAC-CHAP key nor TLS identity (tcp_tls_check_connect refuses it). */
	s = nvmg_target_find_subsys(sq->tgt, d->subsysnqn);
	if (!s || !nvmg_port_exports(sq->tgt, sq->port, s)) {
		char host[NVMG_ESCAPED_SIZE(NVME_NQN_LENGTH)], sub[NVMG_ESCAPED_SIZE(NVME_NQN_LENGTH)];

		log_info("connect from %s: subsystem %s not found on port %u",
			 nvmg_escape(host, sizeof(host), d->hostnqn, sizeof(d->hostnqn)),
			 nvmg_escape(sub, sizeof(sub), d->subsysnqn, sizeof(d->subsysnqn)),
			 sq->port->portid);
		return connect_fail(req, INVALID_PARAM,
				    NVMG_IPO_DATA(offsetof(struct nvmf_connect_data, subsysnqn)));
	}
	if (!nvmg_subsys_host_allowed(s, d->hostnqn)) {
		char host[NVMG_ESCAPED_SIZE(NVME_NQN_LENGTH)];

		log_info("connect from %s to %s refused: host not allowed",
			 nvmg_escape(host, sizeof(host), d->hostnqn, sizeof(d->hostnqn)), s->nqn);
		return connect_fail(req, NVMG_SC_CMD(NVME_SC_CONNECT_INVALID_HOST),
				    NVMG_IPO_DATA(offsetof(struct nvmf_connect_data, hostnqn)));
	}
	*subsys = s;
	return 0;
}

static void execute_connect(struct nvmg_req *req)
{
	const struct nvmg_connect_cmd *cmd = (const struct nvmg_connect_cmd *)&req->cmd;
	struct nvmf_connect_data *d = req->buf;
	struct nvmg_sq *sq = req->sq;
	uint16_t qid = le16toh(cmd->qid);
	struct nvmg_subsys *s = NULL;
	struct nvmg_ctrl *c;
	uint16_t status;

	if (sq->ctrl) { /* the queue is bound already */
		nvmg_req_complete(req, NVMG_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR) | NVME_SC_DNR);
		return;
	}
	status = connect_check(req, cmd, d, &s);
	if (status)
		goto out;
	if (nvmg_auth_queue_setup(sq, d->hostnqn, s)) {
		status = NVMG_SC_GENERIC(NVME_SC_INTERNAL);
		goto out;
	}
	if (!nvmg_target_host_queue_get(sq->tgt, d->hostnqn)) {
		char host[NVMG_ESCAPED_SIZE(NVME_NQN_LENGTH)];

		log_warn("connect from %s refused: more than %u queues",
			 nvmg_escape(host, sizeof(host), d->hostnqn, sizeof(d->hostnqn)),
			 sq->tgt->max_queues_per_host);
		status = NVMG_SC_CMD(NVME_SC_CONNECT_CTRL_BUSY);
		goto out;
	}
	sq->qid = qid;
	sq->size = (uint16_t)(le16toh(cmd->sqsize) + 1);
	sq->sqhd = 0;
	sq->sqfc_disabled = cmd->cattr & NVMG_CONNECT_CATTR_DISABLE_SQFC;
	sq->incapsule_max = qid ? sq->port->inline_data_size : NVMG_ADMIN_INCAPSULE;
	if (qid == 0) {
		if (le16toh(d->cntlid) != 0xffff) {
			/* Only the dynamic controller model is offered. */
			status = connect_fail(req, INVALID_PARAM,
					      NVMG_IPO_DATA(offsetof(struct nvmf_connect_data, cntlid)));
			goto put_host;
		}
		c = nvmg_ctrl_create(sq->tgt, s, sq->port, d, le32toh(cmd->kato), &status);
		if (!c)
			goto put_host;
		c->admin_reactor = sq->reactor;
		status = nvmg_ctrl_install_sq(c, sq);
		if (status) {
			nvmg_ctrl_kill(c, false, "connect failed");
			nvmg_ctrl_put(c);
			goto put_host;
		}
	} else if (s->discovery) {
		/* A discovery controller has an admin queue only. */
		status = connect_fail(req, INVALID_PARAM, NVMG_IPO_SQE(offsetof(struct nvmg_connect_cmd, qid)));
		goto put_host;
	} else {
		c = nvmg_ctrl_find(s, le16toh(d->cntlid));
		if (!c || strcmp(c->hostnqn, d->hostnqn) || memcmp(c->hostid, d->hostid, 16)) {
			if (c)
				nvmg_ctrl_put(c);
			status = connect_fail(req, INVALID_PARAM,
					      NVMG_IPO_DATA(offsetof(struct nvmf_connect_data, cntlid)));
			goto put_host;
		}
		status = nvmg_ctrl_install_sq(c, sq);
		if (status) {
			nvmg_ctrl_put(c);
			if (nvme_status_code(status) == NVME_SC_CONNECT_INVALID_PARAM)
				status = connect_fail(req, INVALID_PARAM,
						      NVMG_IPO_SQE(offsetof(struct nvmg_connect_cmd, qid)));
			goto put_host;
		}
	}
	/* AUTHREQ: the host authenticates this queue before anything else. */
	req->cqe.result = htole64(c->cntlid | nvmg_auth_queue_start(sq));
	log_debug("queue %u of controller %u connected (size %u%s)", qid, c->cntlid, sq->size,
		  sq->sqfc_disabled ? ", SQ flow control off" : "");
	nvmg_req_complete(req, 0);
	return;
put_host:
	nvmg_target_host_queue_put(sq->tgt, d->hostnqn);
	sq->qid = 0;
	sq->size = 0;
out:
	nvmg_auth_queue_free(sq);
	nvmg_req_complete(req, status);
}

static void execute_prop_get(struct nvmg_req *req)
{
	const struct nvmg_prop_cmd *cmd = (const struct nvmg_prop_cmd *)&req->cmd;
	uint64_t val = 0;
	uint16_t status;

	status = nvmg_ctrl_prop_get(req->sq->ctrl, le32toh(cmd->offset), (cmd->attrib & 7) == 1, &val);
	req->cqe.result = htole64(val);
	nvmg_req_complete(req, status);
}

static void execute_prop_set(struct nvmg_req *req)
{
	const struct nvmg_prop_cmd *cmd = (const struct nvmg_prop_cmd *)&req->cmd;
	uint16_t status;

	if ((cmd->attrib & 7) != 0) /* CC is a 4-byte property */
		status = NVMG_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVME_SC_DNR;
	else
		status = nvmg_ctrl_prop_set(req, le32toh(cmd->offset), le64toh(cmd->value) & 0xffffffffu);
	nvmg_req_complete(req, status);
}

static void execute_disconnect(struct nvmg_req *req)
{
	nvmg_req_complete(req, 0);
}

uint16_t nvmg_parse_fabrics(struct nvmg_req *req)
{
	const struct nvmg_fabrics_cmd *cmd = (const struct nvmg_fabrics_cmd *)&req->cmd;
	struct nvmg_sq *sq = req->sq;

	if (cmd->fctype == nvme_fabrics_type_connect) {
		if (sq->ctrl)
			return NVMG_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR) | NVME_SC_DNR;
		req->dir = NVMG_DIR_FROM_HOST;
		req->data_len = sizeof(struct nvmf_connect_data);
		req->execute = execute_connect;
		return 0;
	}
	if (!sq->ctrl)
		return NVMG_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR) | NVME_SC_DNR;
	if (cmd->fctype == nvme_fabrics_type_auth_send ||
	    cmd->fctype == nvme_fabrics_type_auth_receive)
		return nvmg_parse_auth(req);
	/* Not even Property Get before the queue has authenticated: the
	 * Linux host authenticates right after Connect. */
	if (sq->auth && !nvmg_auth_queue_ok(sq))
		return NVMG_SC_CMD(NVME_SC_AUTH_REQUIRED) | NVME_SC_DNR;
	switch (cmd->fctype) {
	case nvme_fabrics_type_property_get:
		if (sq->qid)
			break;
		req->execute = execute_prop_get;
		return 0;
	case nvme_fabrics_type_property_set:
		if (sq->qid)
			break;
		req->execute = execute_prop_set;
		return 0;
	case nvme_fabrics_type_disconnect:
		if (!sq->qid)
			return NVMG_SC_CMD(NVME_SC_DISCONNECT_INVALID_QTYPE) | NVME_SC_DNR;
		req->execute = execute_disconnect;
		return 0;
	default:
		break;
	}
	return NVMG_SC_GENERIC(NVME_SC_INVALID_OPCODE) | NVME_SC_DNR;
}
