/* The key and identity parsers: DH-HMAC-CHAP secrets ("DHHC-1:..."), TLS
 * PSKs in the interchange format ("NVMeTLSkey-1:..."), both from the
 * config (lib/secret.c), and the TLS PSK identity a host sends in its
 * ClientHello (net/tcp_psk.c nvmg_psk_id_parse), each on random text.
 *
 * Input: one byte choosing the parser, then the text. An accepted secret
 * has a key length its hash allows; a refusal says why without echoing
 * the key. An accepted identity has version 0 or 1, hash 1 or 2,
 * non-empty NQNs, a digest only in version 1, and formats back to the
 * very bytes it was parsed from. */
#include <errno.h>
#include "tests/fuzz/fuzz.h"
#include "lib/secret.h"
#include "net/tcp_psk.h"

static void check_secret(int ret, const struct nvmg_secret *k, const char *err, bool psk)
{
	if (ret) {
		FUZZ_CHECK(ret == -EINVAL && err[0] && !strchr(err, '\n'));
		return;
	}
	if (psk)
		FUZZ_CHECK((k->hash == 1 && k->len == 32) || (k->hash == 2 && k->len == 48));
	else
		FUZZ_CHECK(k->hash <= 3 && (k->len == 32 || k->len == 48 || k->len == 64));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvmg_secret k;
	char err[256], *s;
	int ret;

	if (!size)
		return 0;
	s = malloc(size);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	err[0] = '\0';
	switch (data[0] % 3) {
	case 0:
		ret = nvmg_parse_dhchap_secret(s, &k, err, sizeof(err));
		check_secret(ret, &k, err, false);
		break;
	case 1:
		ret = nvmg_parse_tls_psk(s, &k, err, sizeof(err));
		check_secret(ret, &k, err, true);
		break;
	default: {
		struct nvmg_psk_id id;
		char again[NVMG_PSK_ID_MAX + 1];
		/* Not NUL-terminated on the wire: an exact-size copy. */
		uint8_t *raw = malloc(size - 1 ? size - 1 : 1);

		memcpy(raw, data + 1, size - 1);
		ret = nvmg_psk_id_parse(raw, size - 1, &id);
		if (!ret) {
			FUZZ_CHECK(id.version <= 1 && (id.hash == 1 || id.hash == 2));
			FUZZ_CHECK(id.hostnqn[0] && id.subnqn[0]);
			FUZZ_CHECK(strlen(id.hostnqn) < sizeof(id.hostnqn) &&
				   strlen(id.subnqn) < sizeof(id.subnqn));
			FUZZ_CHECK(id.version == 1 ? id.digest[0] != 0 : 1);
			ret = nvmg_psk_id_format(&id, again, sizeof(again));
			FUZZ_CHECK(ret == (int)(size - 1) && !memcmp(again, raw, size - 1));
		} else {
			FUZZ_CHECK(ret == -EINVAL);
		}
		free(raw);
	}
	}
	free(s);
	return 0;
}
