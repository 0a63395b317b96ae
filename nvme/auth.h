/* DH-HMAC-CHAP (NVMe Base 2.x, "Authentication"; TP 8006), the
 * controller's side, in two parts:
 *  - the exchange on one queue (auth.c): AUTH_Negotiate -> Challenge ->
 *    Reply -> Success1 [-> Success2], or Failure1 with the spec's reason,
 *    a state machine over messages that knows no queue, so the unit tests
 *    drive it directly;
 *  - the queue's side (auth_cmd.c): whether Connect requires it, the
 *    Authentication Send/Receive commands that carry the messages, the
 *    gate that refuses every other command until the queue has
 *    authenticated, and the deadline of an exchange that stalls.
 * The cryptography is auth_crypto.c's. */
#ifndef NVMG_AUTH_H
#define NVMG_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "nvme/spec.h"

struct nvmg_host;
struct nvmg_dh;
struct nvmg_req;
struct nvmg_sq;
struct nvmg_subsys;

/* Our Challenge with ffdhe8192 and SHA-512 is the largest message. */
#define NVMG_AUTH_MSG_MAX 1280
/* Authentication Send's TL and Receive's AL: the Linux host uses 4 KiB. */
#define NVMG_AUTH_XFER_MAX 8192

enum nvmg_auth_state {
	NVMG_AUTH_WAIT_NEGOTIATE, /* nothing started (or the last one succeeded) */
	NVMG_AUTH_SEND_CHALLENGE, /* the host's Receive gets our Challenge */
	NVMG_AUTH_WAIT_REPLY,
	NVMG_AUTH_SEND_SUCCESS1,
	NVMG_AUTH_WAIT_SUCCESS2,  /* bidirectional: the host checked our response */
	NVMG_AUTH_SEND_FAILURE1,
	NVMG_AUTH_FAILED,         /* final: the controller goes */
};

struct nvmg_auth {
	enum nvmg_auth_state state;
	bool authenticated;       /* an exchange succeeded and none has failed since */
	uint8_t reason;           /* Failure1's reason code explanation */
	uint16_t tid;
	uint8_t hash, dhgid;      /* chosen at Negotiate */
	bool bidi;
	uint32_t s1;
	uint8_t c1[64];
	struct nvmg_dh *dh;       /* our key pair of this exchange */
	char hostnqn[NVME_NQN_LENGTH];
	char subnqn[NVME_NQN_LENGTH];
	uint8_t msg[NVMG_AUTH_MSG_MAX]; /* the message the host's next Receive gets */
	size_t msg_len;
};

void nvmg_auth_init(struct nvmg_auth *a, const char *hostnqn, const char *subnqn);
/* Wipes the exchange's secrets. */
void nvmg_auth_clear(struct nvmg_auth *a);
/* One host-to-controller message (len bytes, as the host sent them). keys is
 * the host's "hosts" entry now (NULL: none): its DH-HMAC-CHAP key, ctrl key,
 * hash and group. A bad message moves to SEND_FAILURE1 with its reason. */
void nvmg_auth_send(struct nvmg_auth *a, const struct nvmg_host *keys, const uint8_t *m,
		    size_t len);
/* The controller-to-host message into out (cap bytes): its length, or
 * -ENOSPC when cap is too small (the message stays for a larger Receive).
 * A Receive when no message is due is an incorrect protocol message: the
 * exchange fails at once and that Receive (or the next) gets Failure1. */
int nvmg_auth_receive(struct nvmg_auth *a, uint8_t *out, size_t cap);
/* Neither idle nor finished: the deadline runs. */
bool nvmg_auth_busy(const struct nvmg_auth *a);

/* ---- the queue's side (auth_cmd.c) ---- */
/* At Connect, before the queue is bound: whether hostnqn must authenticate
 * to s (its "hosts" entry has a DH-HMAC-CHAP key; never the discovery
 * subsystem). Sets sq->auth when it must. 0 or -ENOMEM. */
int nvmg_auth_queue_setup(struct nvmg_sq *sq, const char *hostnqn, const struct nvmg_subsys *s);
/* The Connect succeeded: the deadline starts. Returns the Connect response's
 * AUTHREQ bits. */
uint32_t nvmg_auth_queue_start(struct nvmg_sq *sq);
/* Unbinding or a failed Connect: the ticker goes, the secrets are wiped.
 * On the queue's reactor. */
void nvmg_auth_queue_free(struct nvmg_sq *sq);
/* Whether the queue may run commands other than Authentication Send/Receive. */
bool nvmg_auth_queue_ok(const struct nvmg_sq *sq);
/* Authentication Send (fctype 05h) and Receive (06h). */
uint16_t nvmg_parse_auth(struct nvmg_req *req);

#endif
