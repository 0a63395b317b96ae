/* nvme/auth_crypto.c and nvme/auth.c: DH-HMAC-CHAP's key transformation,
 * responses and augmented challenge against vectors computed independently
 * (Python's hmac and hashlib), FFDHE agreement, and the controller's state
 * machine driven by a host written here: whole exchanges (null and FFDHE,
 * one-way and bidirectional, re-authentication) and every refusal (wrong
 * key, unusable hash or group, messages out of turn, short or lying
 * lengths, wrong transaction). */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tests/unit/check.h"
#include "nvme/auth.h"
#include "nvme/auth_crypto.h"
#include "nvme/host.h"

#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:0f0e0d0c-0b0a-0908-0706-050403020100"
#define SUBNQN "nqn.2026-11.io.nvmegate:auth"

static void unhex(const char *h, uint8_t *out)
{
	for (size_t i = 0; h[2 * i]; i++)
		sscanf(h + 2 * i, "%2hhx", &out[i]);
}

static bool same_hex(const uint8_t *b, size_t n, const char *h)
{
	uint8_t want[128];

	if (strlen(h) != 2 * n)
		return false;
	unhex(h, want);
	return !memcmp(b, want, n);
}

static struct nvmg_secret counting_key(uint8_t hash, size_t len)
{
	struct nvmg_secret k = { .hash = hash, .len = len };

	for (size_t i = 0; i < len; i++)
		k.key[i] = (uint8_t)i;
	return k;
}

/* ---- vectors (Python: hmac.new(key, nqn + b"NVMe-over-Fabrics", h) etc.) ---- */

static void test_transform_key(void)
{
	static const char *const want[] = {
		NULL,
		"166d822042f045f0fbf284e3931db29827617f77a5d1615e12160de2815a9cbd",
		"9bce93a80ef56e4bbf8a5beea17b6d5b391709628c5fab8b142b0b9a92d1443d74ef414fe0fdbfe5"
		"b344a577fd8d3386",
		"7ca654216065df4bd053eab24282394a53ccc87587617394d41efd694638629b9caccb1b97903a71"
		"45662b5428644aa08c14498e2192b55117bd56b3d6c705de",
	};
	uint8_t out[NVMG_SECRET_MAX];
	size_t len = 0;

	for (uint8_t hh = 1; hh <= 3; hh++) {
		struct nvmg_secret k = counting_key(hh, nvmg_auth_hash_len(hh));

		CHECK(nvmg_auth_transform_key(&k, HOSTNQN, out, &len) == 0);
		CHECK(len == nvmg_auth_hash_len(hh) && same_hex(out, len, want[hh]));
	}
	/* HH 00: the key as it is. */
	struct nvmg_secret k0 = counting_key(0, 48);

	CHECK(nvmg_auth_transform_key(&k0, HOSTNQN, out, &len) == 0);
	CHECK(len == 48 && !memcmp(out, k0.key, 48));
}

static void test_responses(void)
{
	struct nvmg_secret k = counting_key(1, 32);
	uint8_t key[NVMG_SECRET_MAX], chal[64], out[64], skey[256];
	size_t len;

	for (int i = 0; i < 32; i++)
		chal[i] = (uint8_t)(0xa0 + i);
	CHECK(nvmg_auth_transform_key(&k, HOSTNQN, key, &len) == 0);
	CHECK(nvmg_auth_response(1, key, len, chal, 0x01020304, 0x0506, "HostHost", HOSTNQN, SUBNQN,
				 out) == 0);
	CHECK(same_hex(out, 32, "6b4f108832cd3208ac6d538b4929ec94578bcee2d6a0cafeba23bacd57091ce9"));

	k = counting_key(0, 64);
	for (int i = 0; i < 64; i++)
		chal[i] = (uint8_t)(0x40 + i);
	CHECK(nvmg_auth_response(3, k.key, 64, chal, 0xdeadbeef, 0xbeef, "Controller", SUBNQN,
				 HOSTNQN, out) == 0);
	CHECK(same_hex(out, 64,
		       "24f56272b05aa17d62e684294f9dced4a4d0136023c72c33493100016a698a56030413736f73"
		       "4611faf57209c3e684a865fb1ecb2265f26d5d7ecbebaf2fcd05"));

	/* HMAC-SHA384(SHA384(session key), challenge) */
	for (int i = 0; i < 256; i++)
		skey[i] = (uint8_t)i;
	for (int i = 0; i < 48; i++)
		chal[i] = (uint8_t)i;
	CHECK(nvmg_auth_augmented_challenge(2, skey, sizeof(skey), chal, out) == 0);
	CHECK(same_hex(out, 48,
		       "7d06b9fb00d1289f1e5dc4ca04a56d90777e613b48c79d735005966c9aa6bd4a0103e443ed03"
		       "c0a47f7fc3fc432e8181"));
	CHECK(nvmg_auth_response(4, key, len, chal, 1, 1, "HostHost", HOSTNQN, SUBNQN, out) ==
	      -EINVAL);
}

static void test_names(void)
{
	CHECK(nvmg_auth_hash_id("hmac(sha384)") == 2 && nvmg_auth_hash_id("sha384") == 0);
	CHECK(nvmg_auth_dhgroup_id("ffdhe6144") == 4 && nvmg_auth_dhgroup_id("ffdhe1024") == -1);
	CHECK(nvmg_auth_dhgroup_len(0) == 0 && nvmg_auth_dhgroup_len(5) == 1024 &&
	      nvmg_auth_dhgroup_len(6) == 0);
}

static void test_dh_agreement(void)
{
	uint8_t pa[NVMG_AUTH_MAX_DHV], pb[NVMG_AUTH_MAX_DHV];
	uint8_t sa[NVMG_AUTH_MAX_DHV], sb[NVMG_AUTH_MAX_DHV], bad[NVMG_AUTH_MAX_DHV];

	for (uint8_t gid = 1; gid <= 2; gid++) {
		size_t len = nvmg_auth_dhgroup_len(gid);
		struct nvmg_dh *a = nvmg_dh_new(gid), *b = nvmg_dh_new(gid);

		CHECK(a && b);
		if (!a || !b)
			return;
		CHECK(nvmg_dh_public(a, pa, len) == 0 && nvmg_dh_public(b, pb, len) == 0);
		CHECK(memcmp(pa, pb, len));
		CHECK(nvmg_dh_shared(a, pb, len, sa) == 0 && nvmg_dh_shared(b, pa, len, sb) == 0);
		CHECK(!memcmp(sa, sb, len));
		/* 0, 1 and p - 1 (its last byte is FE: p ends in FF..FF) are refused. */
		memset(bad, 0, len);
		CHECK(nvmg_dh_shared(a, bad, len, sa) == -EINVAL);
		bad[len - 1] = 1;
		CHECK(nvmg_dh_shared(a, bad, len, sa) == -EINVAL);
		memset(bad, 0xff, len);
		bad[len - 1] = 0xfe;
		CHECK(nvmg_dh_shared(a, bad, len, sa) == -EINVAL);
		memset(bad, 0xff, len); /* > p */
		CHECK(nvmg_dh_shared(a, bad, len, sa) == -EINVAL);
		CHECK(nvmg_dh_shared(a, pb, len - 1, sa) == -EINVAL);
		nvmg_dh_free(a);
		nvmg_dh_free(b);
	}
	CHECK(nvmg_dh_new(0) == NULL && nvmg_dh_new(6) == NULL);
}

/* ---- the state machine, with a host written on auth_crypto.c ---- */

static struct nvmg_host host_entry(uint8_t hash, uint8_t dhgroup, bool ctrl_key)
{
	struct nvmg_host h;

	memset(&h, 0, sizeof(h));
	snprintf(h.nqn, sizeof(h.nqn), "%s", HOSTNQN);
	h.has_dhchap_key = true;
	h.dhchap_key = counting_key(1, 32);
	h.has_dhchap_ctrl_key = ctrl_key;
	h.dhchap_ctrl_key = counting_key(0, 48);
	h.dhchap_ctrl_key.key[0] = 0x55; /* not the host's */
	h.dhchap_hash = hash;
	h.dhchap_dhgroup = dhgroup;
	return h;
}

static size_t negotiate_msg(uint8_t *m, uint16_t tid, const uint8_t *hashes, uint8_t nh,
			    const uint8_t *groups, uint8_t ng)
{
	struct nvmg_auth_negotiate *n = (void *)m;

	memset(m, 0, sizeof(*n) + sizeof(n->proto[0]));
	n->auth_type = NVMG_AUTH_COMMON_MESSAGES;
	n->auth_id = NVMG_AUTH_MSG_NEGOTIATE;
	n->t_id = htole16(tid);
	n->napd = 1;
	n->proto[0].authid = NVMG_AUTH_DHCHAP_AUTHID;
	n->proto[0].halen = nh;
	n->proto[0].dhlen = ng;
	memcpy(n->proto[0].idlist, hashes, nh);
	memcpy(n->proto[0].idlist + 30, groups, ng);
	return sizeof(*n) + sizeof(n->proto[0]);
}

static const uint8_t all_hashes[] = { 1, 2, 3 };
static const uint8_t all_groups[] = { 0, 1, 2, 3, 4, 5 };

/* The host's failure explanation when a's next Receive is Failure1, else 0. */
static int failure_reason(struct nvmg_auth *a)
{
	uint8_t buf[64];
	const struct nvmg_auth_failure *f = (const void *)buf;

	if (nvmg_auth_receive(a, buf, sizeof(buf)) != (int)sizeof(*f) ||
	    f->auth_id != NVMG_AUTH_MSG_FAILURE1 || f->rescode != NVMG_AUTH_RESCODE_FAILED)
		return 0;
	return f->rescode_exp;
}

struct host {
	uint16_t tid;
	uint8_t chal[2048];
	int chal_len;
	uint8_t msg[2048];
	size_t msg_len;
	uint8_t expect[64]; /* our expectation of the controller's response */
};

/* Negotiate and take the challenge. */
static bool host_negotiate(struct nvmg_auth *a, const struct nvmg_host *keys, struct host *h)
{
	uint8_t m[128];

	nvmg_auth_send(a, keys, m, negotiate_msg(m, h->tid, all_hashes, 3, all_groups, 6));
	h->chal_len = nvmg_auth_receive(a, h->chal, sizeof(h->chal));
	return h->chal_len >= 16 && h->chal[1] == NVMG_AUTH_MSG_CHALLENGE;
}

/* Build the Reply to h->chal with key (and C2 when bidi). */
static void host_reply(struct host *h, const struct nvmg_secret *key, bool bidi,
		       const struct nvmg_secret *ctrl_key)
{
	const struct nvmg_auth_challenge *c = (const void *)h->chal;
	struct nvmg_auth_reply *r = (void *)h->msg;
	size_t hl = c->hl, dhvlen = le16toh(c->dhvlen);
	uint8_t tkey[64], chal[64], skey[NVMG_AUTH_MAX_DHV];
	size_t klen;
	struct nvmg_dh *dh = NULL;

	memset(h->msg, 0, sizeof(h->msg));
	r->auth_type = NVMG_AUTH_DHCHAP_MESSAGES;
	r->auth_id = NVMG_AUTH_MSG_REPLY;
	r->t_id = htole16(h->tid);
	r->hl = (uint8_t)hl;
	r->dhvlen = htole16((uint16_t)dhvlen);
	memcpy(chal, c->cval, hl);
	if (dhvlen) {
		dh = nvmg_dh_new(c->dhgid);
		CHECK(dh && nvmg_dh_public(dh, r->rval + 2 * hl, dhvlen) == 0);
		CHECK(nvmg_dh_shared(dh, c->cval + hl, dhvlen, skey) == 0);
		CHECK(nvmg_auth_augmented_challenge(c->hashid, skey, dhvlen, c->cval, chal) == 0);
	}
	CHECK(nvmg_auth_transform_key(key, HOSTNQN, tkey, &klen) == 0);
	CHECK(nvmg_auth_response(c->hashid, tkey, klen, chal, le32toh(c->seqnum), h->tid,
				 "HostHost", HOSTNQN, SUBNQN, r->rval) == 0);
	if (bidi) {
		r->cvalid = 1;
		r->seqnum = htole32(77);
		for (size_t i = 0; i < hl; i++)
			r->rval[hl + i] = (uint8_t)(i * 7);
		memcpy(chal, r->rval + hl, hl);
		if (dhvlen)
			CHECK(nvmg_auth_augmented_challenge(c->hashid, skey, dhvlen, r->rval + hl,
							    chal) == 0);
		CHECK(nvmg_auth_transform_key(ctrl_key, SUBNQN, tkey, &klen) == 0);
		CHECK(nvmg_auth_response(c->hashid, tkey, klen, chal, 77, h->tid, "Controller",
					 SUBNQN, HOSTNQN, h->expect) == 0);
	}
	h->msg_len = sizeof(*r) + 2 * hl + dhvlen;
	nvmg_dh_free(dh);
}

static bool run_exchange(struct nvmg_auth *a, const struct nvmg_host *keys, bool bidi)
{
	struct host h = { .tid = 0x1234 };
	uint8_t s1[256];
	const struct nvmg_auth_success1 *s = (const void *)s1;
	struct nvmg_auth_success2 s2 = { .auth_type = NVMG_AUTH_DHCHAP_MESSAGES,
					 .auth_id = NVMG_AUTH_MSG_SUCCESS2, .t_id = htole16(0x1234) };
	int n;

	if (!host_negotiate(a, keys, &h))
		return false;
	host_reply(&h, &keys->dhchap_key, bidi, &keys->dhchap_ctrl_key);
	nvmg_auth_send(a, keys, h.msg, h.msg_len);
	n = nvmg_auth_receive(a, s1, sizeof(s1));
	if (n < 16 || s->auth_id != NVMG_AUTH_MSG_SUCCESS1)
		return false;
	if (!bidi)
		return !s->rvalid && n == 16 && a->authenticated;
	/* Bidirectional: access only once the host has checked us. */
	CHECK(!a->authenticated || a->state == NVMG_AUTH_WAIT_SUCCESS2);
	if (!s->rvalid || memcmp(s->rval, h.expect, s->hl))
		return false;
	nvmg_auth_send(a, keys, (const uint8_t *)&s2, sizeof(s2));
	return a->authenticated && !nvmg_auth_busy(a);
}

static void test_exchanges(void)
{
	static const struct { uint8_t hash, group; bool bidi; } cases[] = {
		{ 1, 0, false }, { 2, 0, true }, { 3, 0, false }, { 1, 1, false }, { 3, 1, true },
		{ 2, 2, false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct nvmg_host keys = host_entry(cases[i].hash, cases[i].group, cases[i].bidi);
		struct nvmg_auth a;

		nvmg_auth_init(&a, HOSTNQN, SUBNQN);
		CHECK(!a.authenticated && nvmg_auth_busy(&a));
		CHECK(run_exchange(&a, &keys, cases[i].bidi));
		/* The host re-authenticates on the live queue; access stays. */
		CHECK(run_exchange(&a, &keys, cases[i].bidi));
		nvmg_auth_clear(&a);
	}
}

static void test_wrong_key(void)
{
	struct nvmg_host keys = host_entry(1, 1, false);
	struct nvmg_secret wrong = counting_key(1, 32);
	struct host h = { .tid = 9 };
	struct nvmg_auth a;

	wrong.key[5] ^= 1;
	nvmg_auth_init(&a, HOSTNQN, SUBNQN);
	CHECK(host_negotiate(&a, &keys, &h));
	host_reply(&h, &wrong, false, NULL);
	nvmg_auth_send(&a, &keys, h.msg, h.msg_len);
	CHECK(!a.authenticated);
	CHECK(failure_reason(&a) == NVMG_AUTH_FAIL_FAILED);
	CHECK(a.state == NVMG_AUTH_FAILED && !a.authenticated);
	/* Nothing after the failure brings access back, not even a good Reply. */
	host_reply(&h, &keys.dhchap_key, false, NULL);
	nvmg_auth_send(&a, &keys, h.msg, h.msg_len);
	CHECK(a.state == NVMG_AUTH_FAILED && !a.authenticated);
	nvmg_auth_clear(&a);

	/* A re-authentication with the wrong key takes the access away. */
	nvmg_auth_init(&a, HOSTNQN, SUBNQN);
	CHECK(run_exchange(&a, &keys, false));
	h = (struct host){ .tid = 10 };
	CHECK(host_negotiate(&a, &keys, &h));
	CHECK(a.authenticated); /* still, while the new exchange runs */
	host_reply(&h, &wrong, false, NULL);
	nvmg_auth_send(&a, &keys, h.msg, h.msg_len);
	CHECK(!a.authenticated && failure_reason(&a) == NVMG_AUTH_FAIL_FAILED);
	nvmg_auth_clear(&a);

	/* The host asks for our response but we have no controller key. */
	nvmg_auth_init(&a, HOSTNQN, SUBNQN);
	h = (struct host){ .tid = 11 };
	CHECK(host_negotiate(&a, &keys, &h));
	host_reply(&h, &keys.dhchap_key, true, &keys.dhchap_ctrl_key);
	nvmg_auth_send(&a, &keys, h.msg, h.msg_len);
	CHECK(!a.authenticated && failure_reason(&a) == NVMG_AUTH_FAIL_FAILED);
	nvmg_auth_clear(&a);
}

/* The explanation a's Failure1 gives for the message m. */
static int refusal(const struct nvmg_host *keys, const uint8_t *m, size_t len)
{
	struct nvmg_auth a;
	int r;

	nvmg_auth_init(&a, HOSTNQN, SUBNQN);
	nvmg_auth_send(&a, keys, m, len);
	r = a.authenticated ? -1 : failure_reason(&a);
	nvmg_auth_clear(&a);
	return r;
}

static void test_negotiate_refused(void)
{
	struct nvmg_host keys = host_entry(2, 3, false);
	static const uint8_t sha256[] = { 1 }, nullg[] = { 0 };
	uint8_t m[256];
	size_t len = negotiate_msg(m, 1, all_hashes, 3, all_groups, 6);

	CHECK(refusal(&keys, m, negotiate_msg(m, 1, sha256, 1, all_groups, 6)) ==
	      NVMG_AUTH_FAIL_HASH_UNUSABLE);
	CHECK(refusal(&keys, m, negotiate_msg(m, 1, all_hashes, 3, nullg, 1)) ==
	      NVMG_AUTH_FAIL_DHGROUP_UNUSABLE);
	len = negotiate_msg(m, 1, all_hashes, 3, all_groups, 6);
	for (size_t cut = 0; cut < len; cut += 7) /* truncated */
		CHECK(refusal(&keys, m, cut) == NVMG_AUTH_FAIL_INCORRECT_PAYLOAD);
	m[7] = 2; /* NAPD 2 with one descriptor's bytes */
	CHECK(refusal(&keys, m, len) == NVMG_AUTH_FAIL_INCORRECT_PAYLOAD);
	m[7] = 1;
	m[8 + 2] = 31; /* HALEN past the hash half of the ID list */
	CHECK(refusal(&keys, m, len) == NVMG_AUTH_FAIL_INCORRECT_PAYLOAD);
	m[8 + 2] = 3;
	m[8] = 2; /* AUTHID: not DH-HMAC-CHAP */
	CHECK(refusal(&keys, m, len) == NVMG_AUTH_FAIL_NOT_USABLE);
	m[8] = 1;
	m[6] = 1; /* SC_C: secure channel concatenation */
	CHECK(refusal(&keys, m, len) == NVMG_AUTH_FAIL_CONCAT_MISMATCH);
	m[6] = 0;
	CHECK(refusal(NULL, m, len) == NVMG_AUTH_FAIL_FAILED); /* no key any more */
	m[0] = 7; /* unknown AUTH-Type */
	CHECK(refusal(&keys, m, len) == NVMG_AUTH_FAIL_INCORRECT_MESSAGE);
	m[0] = NVMG_AUTH_DHCHAP_MESSAGES; /* a Reply before any Challenge */
	m[1] = NVMG_AUTH_MSG_REPLY;
	CHECK(refusal(&keys, m, len) == NVMG_AUTH_FAIL_INCORRECT_MESSAGE);
	m[1] = NVMG_AUTH_MSG_SUCCESS2;
	CHECK(refusal(&keys, m, len) == NVMG_AUTH_FAIL_INCORRECT_MESSAGE);
}

static void test_out_of_order(void)
{
	struct nvmg_host keys = host_entry(1, 0, false);
	struct nvmg_auth a;
	struct host h = { .tid = 5 };
	uint8_t buf[128];

	/* A Receive with nothing due. */
	nvmg_auth_init(&a, HOSTNQN, SUBNQN);
	CHECK(failure_reason(&a) == NVMG_AUTH_FAIL_INCORRECT_MESSAGE);
	CHECK(a.state == NVMG_AUTH_FAILED);
	nvmg_auth_clear(&a);

	/* An allocation too small for the Challenge changes nothing. */
	nvmg_auth_init(&a, HOSTNQN, SUBNQN);
	nvmg_auth_send(&a, &keys, buf, negotiate_msg(buf, 5, all_hashes, 3, all_groups, 6));
	CHECK(nvmg_auth_receive(&a, buf, 20) == -ENOSPC && a.state == NVMG_AUTH_SEND_CHALLENGE);
	nvmg_auth_clear(&a);

	/* Two Negotiates: the second starts over (a host may retry). */
	nvmg_auth_init(&a, HOSTNQN, SUBNQN);
	CHECK(host_negotiate(&a, &keys, &h));
	h.tid = 6;
	CHECK(host_negotiate(&a, &keys, &h));
	host_reply(&h, &keys.dhchap_key, false, NULL);
	nvmg_auth_send(&a, &keys, h.msg, h.msg_len);
	CHECK(a.authenticated);
	nvmg_auth_clear(&a);

	/* The Reply twice: the second is out of turn. */
	nvmg_auth_init(&a, HOSTNQN, SUBNQN);
	h.tid = 7;
	CHECK(host_negotiate(&a, &keys, &h));
	host_reply(&h, &keys.dhchap_key, false, NULL);
	nvmg_auth_send(&a, &keys, h.msg, h.msg_len);
	nvmg_auth_send(&a, &keys, h.msg, h.msg_len);
	CHECK(!a.authenticated && failure_reason(&a) == NVMG_AUTH_FAIL_INCORRECT_MESSAGE);
	nvmg_auth_clear(&a);
}

static void test_reply_refused(void)
{
	struct nvmg_host keys = host_entry(1, 1, false);
	struct nvmg_auth a;
	struct host h = { .tid = 8 };
	size_t full;

	/* Truncated, lying lengths, wrong transaction, a bad DH value. */
	for (int variant = 0; variant < 7; variant++) {
		struct nvmg_auth_reply *r = (void *)h.msg;
		int want = NVMG_AUTH_FAIL_INCORRECT_PAYLOAD;

		nvmg_auth_init(&a, HOSTNQN, SUBNQN);
		CHECK(host_negotiate(&a, &keys, &h));
		host_reply(&h, &keys.dhchap_key, false, NULL);
		full = h.msg_len;
		switch (variant) {
		case 0: h.msg_len = 15; break;
		case 1: h.msg_len = full - 1; break;
		case 2: r->hl = 48; break;
		case 3: r->dhvlen = htole16(0); break;
		case 4: r->dhvlen = htole16(0xffff); break;
		case 5: r->t_id = htole16(9); break;
		case 6:
			memset(r->rval + 64, 0, 256); /* public value 0 */
			want = NVMG_AUTH_FAIL_DHGROUP_UNUSABLE;
			break;
		}
		nvmg_auth_send(&a, &keys, h.msg, h.msg_len);
		CHECK(!a.authenticated);
		CHECK(failure_reason(&a) == want);
		nvmg_auth_clear(&a);
	}
}

static void test_failure2(void)
{
	struct nvmg_host keys = host_entry(1, 0, true);
	struct nvmg_auth a;
	struct host h = { .tid = 3 };
	struct nvmg_auth_failure f2 = { .auth_type = NVMG_AUTH_COMMON_MESSAGES,
					.auth_id = NVMG_AUTH_MSG_FAILURE2, .t_id = htole16(3),
					.rescode = 1, .rescode_exp = 1 };
	uint8_t buf[128];

	/* Bidirectional: the host does not accept our response. */
	nvmg_auth_init(&a, HOSTNQN, SUBNQN);
	CHECK(host_negotiate(&a, &keys, &h));
	host_reply(&h, &keys.dhchap_key, true, &keys.dhchap_ctrl_key);
	nvmg_auth_send(&a, &keys, h.msg, h.msg_len);
	CHECK(nvmg_auth_receive(&a, buf, sizeof(buf)) == 16 + 32);
	CHECK(!a.authenticated && a.state == NVMG_AUTH_WAIT_SUCCESS2);
	nvmg_auth_send(&a, &keys, (const uint8_t *)&f2, sizeof(f2));
	CHECK(!a.authenticated && a.state == NVMG_AUTH_FAILED);
	nvmg_auth_clear(&a);
}

int main(void)
{
	test_transform_key();
	test_responses();
	test_names();
	test_dh_agreement();
	test_exchanges();
	test_wrong_key();
	test_negotiate_refused();
	test_out_of_order();
	test_reply_refused();
	test_failure2();
	return check_report("test_auth");
}
