/* DH-HMAC-CHAP, the controller's state machine (nvme/auth.c), driven by a
 * host that sends random messages and reads the replies.
 *
 * Input: one byte choosing the host's "hosts" entry (none; SHA-256 with
 * the null DH group; SHA-384 with ffdhe2048 and a controller key), then
 * steps: a byte (bit 0 clear: Send, set: Receive; bits 1-2 = 01b: the
 * honest host's Reply to the last Challenge instead, bit 3 asking for
 * bidirectional, bit 4 with one byte of its response or DH value flipped), two bytes
 * of length (the message's, or the Receive's allocation), and for a Send
 * the message.
 * Each reply must fit the allocation and the largest message, be a
 * DH-HMAC-CHAP message of the kind the state calls for with the
 * exchange's transaction ID, and a Failure1 must carry a reason the
 * spec defines. Only the honest host's unaltered Reply may authenticate
 * (a random one cannot know the key; the challenge is new every time),
 * and it must, if it answers the Challenge due. */
#include <errno.h>
#include "tests/fuzz/fuzz.h"
#include "nvme/auth.h"
#include "nvme/auth_crypto.h"
#include "nvme/host.h"

#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:0f0e0d0c-0b0a-0908-0706-050403020100"
#define SUBNQN "nqn.2026-11.io.nvmegate:auth"

static struct nvmg_host host_entry(uint8_t hash, uint8_t dhgroup, bool ctrl_key)
{
	struct nvmg_host h;

	memset(&h, 0, sizeof(h));
	snprintf(h.nqn, sizeof(h.nqn), "%s", HOSTNQN);
	h.has_dhchap_key = true;
	h.dhchap_key.hash = 1;
	h.dhchap_key.len = 32;
	for (size_t i = 0; i < 32; i++)
		h.dhchap_key.key[i] = (uint8_t)i;
	h.has_dhchap_ctrl_key = ctrl_key;
	h.dhchap_ctrl_key.len = 48;
	for (size_t i = 0; i < 48; i++)
		h.dhchap_ctrl_key.key[i] = (uint8_t)(0x55 + i);
	h.dhchap_hash = hash;
	h.dhchap_dhgroup = dhgroup;
	return h;
}

static void check_reply(const struct nvmg_auth *a, const uint8_t *m, int n, size_t cap)
{
	const struct nvmg_auth_failure *f = (const void *)m;

	FUZZ_CHECK(n >= 6 && (size_t)n <= cap && n <= NVMG_AUTH_MSG_MAX);
	FUZZ_CHECK(le16toh(f->t_id) == a->tid);
	switch (f->auth_id) {
	case NVMG_AUTH_MSG_CHALLENGE:
	case NVMG_AUTH_MSG_SUCCESS1:
		FUZZ_CHECK(f->auth_type == NVMG_AUTH_DHCHAP_MESSAGES);
		break;
	case NVMG_AUTH_MSG_FAILURE1:
		FUZZ_CHECK(f->auth_type == NVMG_AUTH_COMMON_MESSAGES ||
			   f->auth_type == NVMG_AUTH_DHCHAP_MESSAGES);
		FUZZ_CHECK(n == (int)sizeof(*f) && f->rescode == NVMG_AUTH_RESCODE_FAILED);
		FUZZ_CHECK(f->rescode_exp >= NVMG_AUTH_FAIL_FAILED &&
			   f->rescode_exp <= NVMG_AUTH_FAIL_INCORRECT_MESSAGE);
		break;
	default:
		FUZZ_CHECK(!"a message the controller never sends");
	}
}

/* The Reply a host holding the key sends to challenge chal (as
 * tests/unit/test_auth.c's host builds it); its length, 0 if chal is not
 * a Challenge it can answer. */
static size_t honest_reply(const struct nvmg_host *keys, const uint8_t *chal, size_t chal_len,
			   bool bidi, uint8_t *msg)
{
	const struct nvmg_auth_challenge *c = (const void *)chal;
	struct nvmg_auth_reply *r = (void *)msg;
	size_t hl, dhvlen, klen;
	uint8_t tkey[64], ch[64], skey[NVMG_AUTH_MAX_DHV];
	struct nvmg_dh *dh = NULL;

	if (!keys || chal_len < sizeof(*c) || c->auth_id != NVMG_AUTH_MSG_CHALLENGE)
		return 0;
	hl = c->hl;
	dhvlen = le16toh(c->dhvlen);
	FUZZ_CHECK(hl == nvmg_auth_hash_len(c->hashid) && sizeof(*c) + hl + dhvlen == chal_len);
	memset(msg, 0, sizeof(*r) + 2 * hl + dhvlen);
	r->auth_type = NVMG_AUTH_DHCHAP_MESSAGES;
	r->auth_id = NVMG_AUTH_MSG_REPLY;
	r->t_id = c->t_id;
	r->hl = (uint8_t)hl;
	r->dhvlen = htole16((uint16_t)dhvlen);
	memcpy(ch, c->cval, hl);
	if (dhvlen) {
		dh = nvmg_dh_new(c->dhgid);
		FUZZ_CHECK(dh && nvmg_dh_public(dh, r->rval + 2 * hl, dhvlen) == 0);
		FUZZ_CHECK(nvmg_dh_shared(dh, c->cval + hl, dhvlen, skey) == 0);
		FUZZ_CHECK(nvmg_auth_augmented_challenge(c->hashid, skey, dhvlen, c->cval, ch) == 0);
		nvmg_dh_free(dh);
	}
	FUZZ_CHECK(nvmg_auth_transform_key(&keys->dhchap_key, HOSTNQN, tkey, &klen) == 0);
	FUZZ_CHECK(nvmg_auth_response(c->hashid, tkey, klen, ch, le32toh(c->seqnum),
				      le16toh(c->t_id), "HostHost", HOSTNQN, SUBNQN, r->rval) == 0);
	if (bidi) {
		r->cvalid = 1;
		r->seqnum = htole32(77);
		for (size_t i = 0; i < hl; i++)
			r->rval[hl + i] = (uint8_t)(i * 7);
	}
	return sizeof(*r) + 2 * hl + dhvlen;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct nvmg_host entries[3] = { { 0 }, host_entry(1, 0, false), host_entry(2, 1, true) };
	uint8_t sel = fuzz_u8(&in) % 3;
	const struct nvmg_host *keys = sel ? &entries[sel] : NULL;
	struct nvmg_auth a;
	uint8_t last[NVMG_AUTH_MSG_MAX]; /* the last message received */
	size_t last_len = 0;
	/* The honest host's Reply got Success1 (access then lasts through
	 * re-authentication, until an exchange fails). */
	bool honest = false;

	nvmg_auth_init(&a, HOSTNQN, SUBNQN);
	for (int step = 0; in.left && step < 16; step++) {
		uint8_t op = fuzz_u8(&in);
		size_t len = fuzz_u16(&in) % (NVMG_AUTH_XFER_MAX + 1);

		if ((op & 7) == 2) {
			/* The honest host answers the last Challenge. */
			uint8_t msg[sizeof(struct nvmg_auth_reply) + 128 + NVMG_AUTH_MAX_DHV];
			bool bidi = op & 8, flip = op & 0x10, due = a.state == NVMG_AUTH_WAIT_REPLY;
			size_t n = honest_reply(keys, last, last_len, bidi, msg);

			if (!n)
				continue;
			if (flip) {
				/* A byte of the response or of the DH value (C2
				 * is the host's own challenge: any value goes). */
				size_t hl = msg[offsetof(struct nvmg_auth_reply, hl)];
				size_t k = len % (n - sizeof(struct nvmg_auth_reply) - hl);

				msg[sizeof(struct nvmg_auth_reply) + (k < hl ? k : hl + k)] ^= 1;
			}
			nvmg_auth_send(&a, keys, msg, n);
			if (due && !flip && (!bidi || keys->has_dhchap_ctrl_key))
				FUZZ_CHECK(a.state == NVMG_AUTH_SEND_SUCCESS1);
			if (!flip && a.state == NVMG_AUTH_SEND_SUCCESS1)
				honest = true;
		} else if (!(op & 1)) {
			/* Exactly what the host sent: ASan sees a read past it. */
			uint8_t *m = malloc(len ? len : 1);

			len = len < in.left ? len : in.left;
			fuzz_take(&in, m, len);
			nvmg_auth_send(&a, keys, m, len);
			free(m);
		} else {
			uint8_t *out = malloc(len ? len : 1);
			enum nvmg_auth_state before = a.state;
			int n = nvmg_auth_receive(&a, out, len);

			/* Too small for the message due: nothing changes, but
			 * a Receive when none is due has already failed the
			 * exchange (the next one gets Failure1). */
			if (n == -ENOSPC) {
				FUZZ_CHECK(a.state == before ||
					   (a.state == NVMG_AUTH_SEND_FAILURE1 &&
					    before != NVMG_AUTH_SEND_CHALLENGE &&
					    before != NVMG_AUTH_SEND_SUCCESS1));
			} else {
				check_reply(&a, out, n, len);
				if (n <= (int)sizeof(last)) {
					memcpy(last, out, (size_t)n);
					last_len = (size_t)n;
				}
			}
			free(out);
		}
		FUZZ_CHECK(a.state <= NVMG_AUTH_FAILED);
		FUZZ_CHECK(!a.authenticated || (keys && honest));
		FUZZ_CHECK(a.msg_len <= sizeof(a.msg));
	}
	nvmg_auth_clear(&a);
	return 0;
}
