/* lib/secret.c: the DHHC-1 and NVMeTLSkey-1 formats nvme-cli prints.
 * Vectors were made with Python's base64 and zlib.crc32 (independent of
 * ISA-L and OpenSSL), plus the PSK example the NVMe/TCP TLS documentation
 * and nvme-cli use. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "tests/unit/check.h"
#include "lib/secret.h"

#define K32 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR"
#define K48 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vcSEgBQ=="
#define K64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P4zODhA="

static int counting(const struct nvmg_secret *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s->key[i] != i)
			return 0;
	return 1;
}

static void accepts_dhchap(const char *str, unsigned hash, size_t len)
{
	struct nvmg_secret s;
	char err[128] = "";

	CHECK(nvmg_parse_dhchap_secret(str, &s, err, sizeof(err)) == 0);
	CHECK(s.hash == hash && s.len == len && counting(&s, len));
	if (err[0])
		fprintf(stderr, "%s: %s\n", str, err);
}

static void refuses(int (*parse)(const char *, struct nvmg_secret *, char *, size_t),
		    const char *str, const char *why)
{
	struct nvmg_secret s = { .hash = 0xee, .len = 7 };
	char err[128] = "";

	CHECK(parse(str, &s, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, why) != NULL);
	CHECK(s.hash == 0xee && s.len == 7); /* untouched */
	if (!strstr(err, why))
		fprintf(stderr, "%s: got '%s', want '%s'\n", str, err, why);
}

static void test_dhchap(void)
{
	accepts_dhchap("DHHC-1:00:" K32 ":", 0, 32);
	accepts_dhchap("DHHC-1:01:" K32 ":", 1, 32);
	accepts_dhchap("DHHC-1:02:" K48 ":", 2, 48);
	accepts_dhchap("DHHC-1:03:" K64 ":", 3, 64);
	accepts_dhchap("DHHC-1:00:" K64 ":", 0, 64);

	refuses(nvmg_parse_dhchap_secret, "DHHC-1:04:" K32 ":", "hash 04");
	refuses(nvmg_parse_dhchap_secret, "DHHC-1:00:AAAAAAAAAAAAAAAAAAAAAFVLu+w=:", "16 bytes long");
	refuses(nvmg_parse_dhchap_secret, "DHHC-2:00:" K32 ":", "not a DHHC-1 secret");
	refuses(nvmg_parse_dhchap_secret, "NVMeTLSkey-1:01:" K32 ":", "not a DHHC-1 secret");
	refuses(nvmg_parse_dhchap_secret, "DHHC-1:0:" K32 ":", "two hex digits");
	refuses(nvmg_parse_dhchap_secret, "DHHC-1:0g:" K32 ":", "two hex digits");
	refuses(nvmg_parse_dhchap_secret, "DHHC-1:00:" K32, "end with ':'");
	refuses(nvmg_parse_dhchap_secret, "DHHC-1:00:" K32 ":x", "end with ':'");
	refuses(nvmg_parse_dhchap_secret, "DHHC-1:00::", "wrong length");
	refuses(nvmg_parse_dhchap_secret, "DHHC-1:00:" K32 "A:", "wrong length");
	refuses(nvmg_parse_dhchap_secret, "DHHC-1:00:" K64 K64 ":", "wrong length");
	/* one character changed: the CRC catches it */
	refuses(nvmg_parse_dhchap_secret,
		"DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaS:", "CRC");
	refuses(nvmg_parse_dhchap_secret,
		"DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+Kfia*:", "not base64");
	refuses(nvmg_parse_dhchap_secret,
		"DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+Kfi=R:", "not base64");
	refuses(nvmg_parse_dhchap_secret, "", "not a DHHC-1 secret");
}

static void test_tls_psk(void)
{
	struct nvmg_secret s;
	char err[128] = "";

	CHECK(nvmg_parse_tls_psk("NVMeTLSkey-1:01:" K32 ":", &s, err, sizeof(err)) == 0);
	CHECK(s.hash == 1 && s.len == 32 && counting(&s, 32));
	CHECK(nvmg_parse_tls_psk("NVMeTLSkey-1:02:" K48 ":", &s, err, sizeof(err)) == 0);
	CHECK(s.hash == 2 && s.len == 48 && counting(&s, 48));
	/* The example PSK of the NVMe/TCP TLS documentation (nvme-cli, kernel). */
	CHECK(nvmg_parse_tls_psk("NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:",
				 &s, err, sizeof(err)) == 0);
	CHECK(s.hash == 1 && s.len == 32 && s.key[0] == 0x55 && s.key[31] == 0x03);

	refuses(nvmg_parse_tls_psk, "NVMeTLSkey-1:01:" K48 ":", "48 bytes long (32 for hash 01)");
	refuses(nvmg_parse_tls_psk, "NVMeTLSkey-1:02:" K32 ":", "32 bytes long (48 for hash 02)");
	refuses(nvmg_parse_tls_psk, "NVMeTLSkey-1:00:" K32 ":", "hash 00");
	refuses(nvmg_parse_tls_psk, "NVMeTLSkey-1:03:" K64 ":", "hash 03");
	refuses(nvmg_parse_tls_psk, "DHHC-1:01:" K32 ":", "not a NVMeTLSkey-1 secret");
}

int main(void)
{
	test_dhchap();
	test_tls_psk();
	return check_report("test_secret");
}
