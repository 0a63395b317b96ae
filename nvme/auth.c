/* The DH-HMAC-CHAP exchange on one queue, controller side (see auth.h).
 * Every field of a host's message is checked against the length it came
 * with before it is read; a message out of turn, or one that does not
 * parse, gets Failure1 with the spec's reason code explanation, and an
 * exchange that fails leaves the queue unauthenticated. */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>
#include "nvme/auth.h"
#include "nvme/auth_crypto.h"
#include "nvme/host.h"

void nvmg_auth_init(struct nvmg_auth *a, const char *hostnqn, const char *subnqn)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->hostnqn, sizeof(a->hostnqn), "%s", hostnqn);
	snprintf(a->subnqn, sizeof(a->subnqn), "%s", subnqn);
}

/* Forget the exchange's secrets (not the outcome). */
static void forget(struct nvmg_auth *a)
{
	nvmg_dh_free(a->dh);
	a->dh = NULL;
	OPENSSL_cleanse(a->c1, sizeof(a->c1));
}

void nvmg_auth_clear(struct nvmg_auth *a)
{
	forget(a);
	OPENSSL_cleanse(a->msg, sizeof(a->msg));
}

bool nvmg_auth_busy(const struct nvmg_auth *a)
{
	return a->state != NVMG_AUTH_FAILED &&
	       !(a->state == NVMG_AUTH_WAIT_NEGOTIATE && a->authenticated);
}

/* The exchange failed: the host's next Receive gets Failure1, and the queue
 * has no access from now on (also when it had authenticated before). */
static void fail(struct nvmg_auth *a, uint8_t reason)
{
	struct nvmg_auth_failure *f = (struct nvmg_auth_failure *)a->msg;

	forget(a);
	a->authenticated = false;
	a->reason = reason;
	a->state = NVMG_AUTH_SEND_FAILURE1;
	memset(a->msg, 0, sizeof(*f));
	f->auth_type = NVMG_AUTH_COMMON_MESSAGES;
	f->auth_id = NVMG_AUTH_MSG_FAILURE1;
	f->t_id = htole16(a->tid);
	f->rescode = NVMG_AUTH_RESCODE_FAILED;
	f->rescode_exp = reason;
	a->msg_len = sizeof(*f);
}

static bool has_id(const uint8_t *ids, uint8_t n, uint8_t id)
{
	for (uint8_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* AUTH_Negotiate: the host offers hashes and DH groups; we take the ones
 * its "hosts" entry names, or fail. */
static uint8_t negotiate(struct nvmg_auth *a, const struct nvmg_host *keys, const uint8_t *m,
			 size_t len)
{
	const struct nvmg_auth_negotiate *n = (const void *)m;
	const struct nvmg_auth_protocol_desc *d = NULL;
	struct nvmg_auth_challenge *c = (struct nvmg_auth_challenge *)a->msg;
	size_t hl, dhvlen;

	if (len < sizeof(*n) + sizeof(*d))
		return NVMG_AUTH_FAIL_INCORRECT_PAYLOAD;
	a->tid = le16toh(n->t_id);
	/* Secure channel concatenation (a TLS PSK from the exchange) is not offered. */
	if (n->sc_c != NVMG_AUTH_SC_NONE)
		return NVMG_AUTH_FAIL_CONCAT_MISMATCH;
	if (!n->napd || len < sizeof(*n) + (size_t)n->napd * sizeof(*d))
		return NVMG_AUTH_FAIL_INCORRECT_PAYLOAD;
	for (unsigned i = 0; i < n->napd && !d; i++)
		if (n->proto[i].authid == NVMG_AUTH_DHCHAP_AUTHID)
			d = &n->proto[i];
	if (!d)
		return NVMG_AUTH_FAIL_NOT_USABLE;
	if (d->halen > NVMG_AUTH_MAX_HASH_IDS || d->dhlen > NVMG_AUTH_MAX_DH_IDS)
		return NVMG_AUTH_FAIL_INCORRECT_PAYLOAD;
	if (!keys || !keys->has_dhchap_key)
		return NVMG_AUTH_FAIL_FAILED; /* its key was removed by a reload */
	if (!has_id(d->idlist, d->halen, keys->dhchap_hash))
		return NVMG_AUTH_FAIL_HASH_UNUSABLE;
	if (!has_id(d->idlist + NVMG_AUTH_MAX_HASH_IDS, d->dhlen, keys->dhchap_dhgroup))
		return NVMG_AUTH_FAIL_DHGROUP_UNUSABLE;
	a->hash = keys->dhchap_hash;
	a->dhgid = keys->dhchap_dhgroup;
	hl = nvmg_auth_hash_len(a->hash);
	dhvlen = nvmg_auth_dhgroup_len(a->dhgid);
	if (!hl || (a->dhgid && !dhvlen))
		return NVMG_AUTH_FAIL_FAILED;

	memset(c, 0, sizeof(*c));
	do {
		if (nvmg_auth_random(&a->s1, sizeof(a->s1)))
			return NVMG_AUTH_FAIL_FAILED;
	} while (!a->s1); /* 0 means "no sequence number" */
	if (nvmg_auth_random(a->c1, hl))
		return NVMG_AUTH_FAIL_FAILED;
	c->auth_type = NVMG_AUTH_DHCHAP_MESSAGES;
	c->auth_id = NVMG_AUTH_MSG_CHALLENGE;
	c->t_id = htole16(a->tid);
	c->hl = (uint8_t)hl;
	c->hashid = a->hash;
	c->dhgid = a->dhgid;
	c->dhvlen = htole16((uint16_t)dhvlen);
	c->seqnum = htole32(a->s1);
	memcpy(c->cval, a->c1, hl);
	if (dhvlen) {
		/* A fresh key pair for each exchange. */
		if (!(a->dh = nvmg_dh_new(a->dhgid)) || nvmg_dh_public(a->dh, c->cval + hl, dhvlen))
			return NVMG_AUTH_FAIL_FAILED;
	}
	a->msg_len = sizeof(*c) + hl + dhvlen;
	a->state = NVMG_AUTH_SEND_CHALLENGE;
	return 0;
}

/* Both responses of an exchange are computed here, while the session key
 * exists; it is wiped before this returns. */
static uint8_t reply(struct nvmg_auth *a, const struct nvmg_host *keys, const uint8_t *m,
		     size_t len)
{
	const struct nvmg_auth_reply *r = (const void *)m;
	struct nvmg_auth_success1 *s = (struct nvmg_auth_success1 *)a->msg;
	size_t hl = nvmg_auth_hash_len(a->hash), dhvlen = nvmg_auth_dhgroup_len(a->dhgid);
	uint8_t skey[NVMG_AUTH_MAX_DHV], chal[NVMG_AUTH_MAX_HL], c2[NVMG_AUTH_MAX_HL];
	uint8_t key[NVMG_SECRET_MAX], expect[NVMG_AUTH_MAX_HL];
	size_t key_len;
	uint32_t s2;
	uint8_t ret = NVMG_AUTH_FAIL_FAILED;

	if (len < sizeof(*r) || r->hl != hl || le16toh(r->dhvlen) != dhvlen ||
	    len < sizeof(*r) + 2 * hl + dhvlen)
		return NVMG_AUTH_FAIL_INCORRECT_PAYLOAD;
	if (!keys || !keys->has_dhchap_key)
		return NVMG_AUTH_FAIL_FAILED;
	memcpy(chal, a->c1, hl);
	if (dhvlen) {
		if (nvmg_dh_shared(a->dh, r->rval + 2 * hl, dhvlen, skey))
			return NVMG_AUTH_FAIL_DHGROUP_UNUSABLE;
		if (nvmg_auth_augmented_challenge(a->hash, skey, dhvlen, a->c1, chal))
			goto out;
	}
	if (nvmg_auth_transform_key(&keys->dhchap_key, a->hostnqn, key, &key_len) ||
	    nvmg_auth_response(a->hash, key, key_len, chal, a->s1, a->tid, "HostHost", a->hostnqn,
			       a->subnqn, expect))
		goto out;
	if (CRYPTO_memcmp(expect, r->rval, hl))
		goto out; /* wrong key */

	memset(s, 0, sizeof(*s));
	s->auth_type = NVMG_AUTH_DHCHAP_MESSAGES;
	s->auth_id = NVMG_AUTH_MSG_SUCCESS1;
	s->t_id = htole16(a->tid);
	s->hl = (uint8_t)hl;
	s2 = le32toh(r->seqnum);
	/* CVALID with a sequence number: the host wants us to prove we hold the
	 * controller key (S2 = 0 would carry C2 for a secure channel only). */
	a->bidi = (r->cvalid & 1) && s2;
	if (a->bidi) {
		if (!keys->has_dhchap_ctrl_key)
			goto out;
		memcpy(c2, r->rval + hl, hl);
		if (dhvlen && nvmg_auth_augmented_challenge(a->hash, skey, dhvlen, r->rval + hl, c2))
			goto out;
		if (nvmg_auth_transform_key(&keys->dhchap_ctrl_key, a->subnqn, key, &key_len) ||
		    nvmg_auth_response(a->hash, key, key_len, c2, s2, a->tid, "Controller", a->subnqn,
				       a->hostnqn, s->rval))
			goto out;
		s->rvalid = 1;
	} else {
		a->authenticated = true;
	}
	a->msg_len = sizeof(*s) + (a->bidi ? hl : 0);
	a->state = NVMG_AUTH_SEND_SUCCESS1;
	ret = 0;
out:
	OPENSSL_cleanse(skey, sizeof(skey));
	OPENSSL_cleanse(chal, sizeof(chal));
	OPENSSL_cleanse(c2, sizeof(c2));
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(expect, sizeof(expect));
	forget(a);
	return ret;
}

void nvmg_auth_send(struct nvmg_auth *a, const struct nvmg_host *keys, const uint8_t *m,
		    size_t len)
{
	uint8_t type, id, ret;

	if (a->state == NVMG_AUTH_FAILED)
		return; /* the controller is on its way out */
	if (len < 8) {
		fail(a, NVMG_AUTH_FAIL_INCORRECT_PAYLOAD);
		return;
	}
	type = m[0];
	id = m[1];
	if (type == NVMG_AUTH_COMMON_MESSAGES && id == NVMG_AUTH_MSG_NEGOTIATE) {
		/* A new exchange, also on an authenticated queue (the host
		 * re-authenticates) or in the middle of one (it starts over).
		 * The queue keeps its access until that exchange fails. */
		forget(a);
		ret = negotiate(a, keys, m, len);
	} else if (type == NVMG_AUTH_COMMON_MESSAGES && id == NVMG_AUTH_MSG_FAILURE2) {
		/* The host refused our Success1 (or gave up): no access. */
		forget(a);
		a->authenticated = false;
		a->state = NVMG_AUTH_FAILED;
		return;
	} else if (type != NVMG_AUTH_DHCHAP_MESSAGES) {
		ret = NVMG_AUTH_FAIL_INCORRECT_MESSAGE;
	} else if (a->state == NVMG_AUTH_WAIT_REPLY && id == NVMG_AUTH_MSG_REPLY) {
		ret = le16toh(((const struct nvmg_auth_reply *)m)->t_id) != a->tid
			      ? NVMG_AUTH_FAIL_INCORRECT_PAYLOAD
			      : reply(a, keys, m, len);
	} else if (a->state == NVMG_AUTH_WAIT_SUCCESS2 && id == NVMG_AUTH_MSG_SUCCESS2) {
		if (le16toh(((const struct nvmg_auth_success2 *)m)->t_id) != a->tid) {
			ret = NVMG_AUTH_FAIL_INCORRECT_PAYLOAD;
		} else {
			a->authenticated = true;
			a->state = NVMG_AUTH_WAIT_NEGOTIATE;
			ret = 0;
		}
	} else {
		ret = NVMG_AUTH_FAIL_INCORRECT_MESSAGE; /* out of turn */
	}
	if (ret)
		fail(a, ret);
}

int nvmg_auth_receive(struct nvmg_auth *a, uint8_t *out, size_t cap)
{
	size_t n;

	switch (a->state) {
	case NVMG_AUTH_SEND_CHALLENGE:
	case NVMG_AUTH_SEND_SUCCESS1:
	case NVMG_AUTH_SEND_FAILURE1:
		break;
	default:
		/* Nothing is due: the host is out of step. */
		fail(a, NVMG_AUTH_FAIL_INCORRECT_MESSAGE);
		break;
	}
	if (cap < a->msg_len)
		return -ENOSPC;
	n = a->msg_len;
	memcpy(out, a->msg, n);
	OPENSSL_cleanse(a->msg, n);
	a->msg_len = 0;
	if (a->state == NVMG_AUTH_SEND_CHALLENGE)
		a->state = NVMG_AUTH_WAIT_REPLY;
	else if (a->state == NVMG_AUTH_SEND_SUCCESS1)
		a->state = a->bidi ? NVMG_AUTH_WAIT_SUCCESS2 : NVMG_AUTH_WAIT_NEGOTIATE;
	else
		a->state = NVMG_AUTH_FAILED;
	return (int)n;
}
