/* net/tcp_ktls.c: the traffic keys handed to kernel TLS and the key log
 * lines they come from. The SHA-256 vector is RFC 8448's simple 1-RTT
 * handshake (server application traffic secret -> write key and IV); the
 * SHA-384 one was computed with Python's hmac/hashlib implementing
 * HKDF-Expand-Label, independent of OpenSSL. A wrong key or IV would
 * only show on a kernel with kernel TLS (the 6.12 guest suite) as a host
 * that cannot open our records; here it shows at once. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "tests/unit/check.h"
#include "net/tls_rec.h"

static void unhex(const char *s, uint8_t *out)
{
	for (size_t i = 0; s[2 * i]; i++)
		sscanf(s + 2 * i, "%2hhx", &out[i]);
}

static void test_derive(void)
{
	uint8_t secret[48], key[32], iv[12];
	struct tls13_keys k;

	unhex("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643", secret);
	unhex("9f02283b6c9c07efc26bb9f2ac92e356", key);
	unhex("cf782b88dd83549aadf1e984", iv);
	CHECK(tls13_derive_keys(0x1301, secret, 32, &k) == 0);
	CHECK(k.cipher == 0x1301 && k.key_len == 16);
	CHECK(!memcmp(k.key, key, 16) && !memcmp(k.iv, iv, 12));

	for (int i = 0; i < 48; i++)
		secret[i] = (uint8_t)i;
	unhex("6877d022f1c61d24ebb7487c16752d9a4798e40431c75b39320e537c90e23225", key);
	unhex("42822531a0fe88648fc09e9f", iv);
	CHECK(tls13_derive_keys(0x1302, secret, 48, &k) == 0);
	CHECK(k.cipher == 0x1302 && k.key_len == 32);
	CHECK(!memcmp(k.key, key, 32) && !memcmp(k.iv, iv, 12));

	/* the secret's length is the suite's hash; other suites are not ours */
	CHECK(tls13_derive_keys(0x1302, secret, 32, &k) == -EINVAL);
	CHECK(tls13_derive_keys(0x1301, secret, 48, &k) == -EINVAL);
	CHECK(tls13_derive_keys(0x1303, secret, 32, &k) == -EINVAL);
	CHECK(tls13_derive_keys(0, secret, 32, &k) == -EINVAL);
}

static void test_keylog(void)
{
	uint8_t s[TLS13_SECRET_MAX];
	const char *line = "CLIENT_TRAFFIC_SECRET_0 00112233445566778899aabbccddeeff"
			   "00112233445566778899aabbccddeeff a11af9f05531f856ad47116b45a95032"
			   "8204b4f44bfb6b3a4b4f1f3fcb631643";

	CHECK(tls13_keylog_secret(line, "CLIENT_TRAFFIC_SECRET_0", s) == 32);
	CHECK(s[0] == 0xa1 && s[31] == 0x43);
	CHECK(tls13_keylog_secret(line, "SERVER_TRAFFIC_SECRET_0", s) == 0);
	CHECK(tls13_keylog_secret(line, "CLIENT_TRAFFIC_SECRET", s) == 0); /* a prefix */
	CHECK(tls13_keylog_secret("CLIENT_TRAFFIC_SECRET_0 abcd", "CLIENT_TRAFFIC_SECRET_0", s) ==
	      0); /* no secret field */
	CHECK(tls13_keylog_secret("CLIENT_TRAFFIC_SECRET_0 r a1x2", "CLIENT_TRAFFIC_SECRET_0",
				     s) == 0);
	CHECK(tls13_keylog_secret("CLIENT_TRAFFIC_SECRET_0 r a1b", "CLIENT_TRAFFIC_SECRET_0",
				     s) == 0); /* odd digit count */
	CHECK(tls13_keylog_secret("CLIENT_TRAFFIC_SECRET_0 r a1b2", "CLIENT_TRAFFIC_SECRET_0",
				     s) == 2);
}

int main(void)
{
	test_derive();
	test_keylog();
	return check_report("test_tls_rec");
}
