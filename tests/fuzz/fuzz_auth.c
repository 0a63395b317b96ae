/* DH-HMAC-CHAP, the controller's state machine (nvme/auth.c), driven by a
 * host that sends random messages and reads the replies.
 *
 * Input: one byte choosing the host's "hosts" entry (none; SHA-256 with
 * the null DH group; SHA-384 with ffdhe2048 and a controller key), then
 * steps: a byte (even: Send, odd: Receive), two bytes of length (the
 * message's, or the Receive's allocation), and for a Send the message.
 * Each reply must fit the allocation and the largest message, be a
 * DH-HMAC-CHAP message of the kind the state calls for with the
 * exchange's transaction ID, and a Failure1 must carry a reason the
 * spec defines. The host never knows the key (and the challenge is new
 * every time), so no sequence may ever authenticate. */
#include <errno.h>
#include "tests/fuzz/fuzz.h"
#include "nvme/auth.h"
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct nvmg_host entries[3] = { { 0 }, host_entry(1, 0, false), host_entry(2, 1, true) };
	uint8_t sel = fuzz_u8(&in) % 3;
	const struct nvmg_host *keys = sel ? &entries[sel] : NULL;
	struct nvmg_auth a;

	nvmg_auth_init(&a, HOSTNQN, SUBNQN);
	for (int step = 0; in.left && step < 16; step++) {
		bool send = !(fuzz_u8(&in) & 1);
		size_t len = fuzz_u16(&in) % (NVMG_AUTH_XFER_MAX + 1);

		if (send) {
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
			if (n == -ENOSPC)
				FUZZ_CHECK(a.state == before ||
					   (a.state == NVMG_AUTH_SEND_FAILURE1 &&
					    before != NVMG_AUTH_SEND_CHALLENGE &&
					    before != NVMG_AUTH_SEND_SUCCESS1));
			else
				check_reply(&a, out, n, len);
			free(out);
		}
		FUZZ_CHECK(a.state <= NVMG_AUTH_FAILED);
		FUZZ_CHECK(!a.authenticated);
		FUZZ_CHECK(a.msg_len <= sizeof(a.msg));
	}
	nvmg_auth_clear(&a);
	return 0;
}
