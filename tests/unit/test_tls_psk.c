/* net/tcp_psk.c: NVMe/TCP TLS PSK identities and the retained and TLS PSK
 * derivations. The digests are libnvme's published vectors (test/psk.c:
 * test_data_identity for RFC 8446, test_data_identity_compat for the
 * spelling libnvme 1.x uses); the retained and TLS PSKs were computed
 * with Python's hmac/hashlib implementing HKDF-Extract/Expand-Label in
 * both spellings, independent of OpenSSL. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "tests/unit/check.h"
#include "lib/secret.h"
#include "net/tcp_psk.h"

#define HOST "nqn.psk-test-host"
#define SUB "nqn.psk-test-subsys"
#define KEY01 "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:"
#define KEY02 "NVMeTLSkey-1:02:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwP/w0S89ELi3W2LxIcLXVsDn8kXZQ==:"

struct vec {
	const char *key;
	enum nvmg_psk_kdf kdf;
	const char *digest, *retained, *tls_v0, *tls_v1;
};

static const struct vec vecs[] = {
	{ KEY01, NVMG_PSK_KDF_RFC8446, "iSbjiStwJ/1TrTvDlt2fjFmzvsytOJelidNnA+X5lEU=",
	  "073311dec37e219ff3acd43f130130c5bdd443c066e1cc3424e49030234ff7d5",
	  "05c6503551ad136e6ee32e6eeb3f6d500b69701d84ec71e328f65c7f51566f68",
	  "8fc3c0badfd4c0c66fa3ca33aadd0314f85536cc9bc47338b60f3e6e563786ca" },
	{ KEY01, NVMG_PSK_KDF_LIBNVME, "66GuqV08TsAGII39teWUfwQwizjv06Jy8jOcX3NAAzM=",
	  "ad4cdadfcbaf4e353fcbd09aac891c4d75c5300fe5ee7bb04ae87726a312eddc",
	  "09fb1983ac6d6d0353e7cae4f23daddd651c367fa347c59d9cf6936f5a83eafb",
	  "b9f5ab2a41ba6e72a23a12066302a2f775fa6c0942c8e0b18ca8ac07edf305e2" },
	{ KEY02, NVMG_PSK_KDF_RFC8446,
	  "QhW2+Rp6RzHlNtCslyRxMnwJ11tKKhz8JCAQpQ+XUD8f9td1VeH5h53yz2wKJG1a",
	  "73973a1b51a9acdde29a0610ac6a3ef852cf45936cca6830a661d18f68502f1a4c7a8ecb37524e0b1f7087cb4d680ad9",
	  "f42ba63824cdfe421914c582921f85b5b5b7e2d4df084caeedc9be20b212e8bb0fe8a23e9d59a1c8fc6449da4970a78d",
	  "a2b2f943f479fc682555cec89857c80ed004ce92f32a973d5764155bb7e36b17a85368a0666d250afac9282dda2e62ca" },
	{ KEY02, NVMG_PSK_KDF_LIBNVME,
	  "RsKmYJ3nAn1ApjjMloJFbAkLPivONDAX/xW327YBUsn2eGShXSjCZvBaOxscLqmz",
	  "12d2452bc4783f50286bf940ad1caa05a304065e379024d9278ca7c9d8a42400c47029f198bfcdf5f14c07cb04eb7306",
	  "2ee4754186a625b28a3936ef4a40d839c3ad958b2e017562ee07e2501f172ce999dc9c29033ea7ee33f814f192c13f47",
	  "fcefe2e2a2e682b1447dcabf1ec268f78f08c63cd075753abcc8bda2c5c34d48d3014aa8d76ad80107e4f5c9f27e2149" },
};

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

static int parse(const char *s, struct nvmg_psk_id *id)
{
	return nvmg_psk_id_parse(s, strlen(s), id);
}

static void test_identity_parse(void)
{
	struct nvmg_psk_id id;
	char buf[NVMG_PSK_ID_MAX];

	CHECK(parse("NVMe0R01 " HOST " " SUB, &id) == 0);
	CHECK(id.version == 0 && id.hash == 1 && !strcmp(id.hostnqn, HOST) &&
	      !strcmp(id.subnqn, SUB) && !id.digest[0]);
	CHECK(nvmg_psk_id_format(&id, buf, sizeof(buf)) > 0 &&
	      !strcmp(buf, "NVMe0R01 " HOST " " SUB));
	CHECK(parse("NVMe1R01 " HOST " " SUB " iSbjiStwJ/1TrTvDlt2fjFmzvsytOJelidNnA+X5lEU=", &id) == 0);
	CHECK(id.version == 1 && id.hash == 1 &&
	      !strcmp(id.digest, "iSbjiStwJ/1TrTvDlt2fjFmzvsytOJelidNnA+X5lEU="));
	CHECK(parse("NVMe1R02 " HOST " " SUB
		    " QhW2+Rp6RzHlNtCslyRxMnwJ11tKKhz8JCAQpQ+XUD8f9td1VeH5h53yz2wKJG1a", &id) == 0);
	CHECK(id.version == 1 && id.hash == 2);
	/* bad: version, type, hash, fields, lengths */
	CHECK(parse("NVMe2R01 " HOST " " SUB, &id) == -EINVAL);
	CHECK(parse("NVMe0G01 " HOST " " SUB, &id) == -EINVAL);      /* generated: not offered */
	CHECK(parse("NVMe0R03 " HOST " " SUB, &id) == -EINVAL);      /* SHA-512: no cipher suite */
	CHECK(parse("NVMe0R00 " HOST " " SUB, &id) == -EINVAL);
	CHECK(parse("NVMe0R01 " HOST, &id) == -EINVAL);              /* truncated */
	CHECK(parse("NVMe0R01 " HOST " ", &id) == -EINVAL);
	CHECK(parse("NVMe0R01 ", &id) == -EINVAL);
	CHECK(parse("NVMe0R0", &id) == -EINVAL);
	CHECK(parse("", &id) == -EINVAL);
	CHECK(parse("NVMe0R01 " HOST " " SUB " extra", &id) == -EINVAL);
	CHECK(parse("NVMe0R01 " HOST "  " SUB, &id) == -EINVAL);     /* empty field */
	CHECK(parse("NVMe1R01 " HOST " " SUB, &id) == -EINVAL);      /* v1 needs a digest */
	/* a SHA-384 digest on a SHA-256 identity, and a cut one */
	CHECK(parse("NVMe1R01 " HOST " " SUB
		    " QhW2+Rp6RzHlNtCslyRxMnwJ11tKKhz8JCAQpQ+XUD8f9td1VeH5h53yz2wKJG1a", &id) == -EINVAL);
	CHECK(parse("NVMe1R01 " HOST " " SUB " iSbjiStwJ/1TrTvDlt2fjFmzvsytOJelidNnA+X5lEU", &id) == -EINVAL);
	CHECK(parse("NVMe1R01 " HOST " " SUB " iSbjiStwJ/1TrTvDlt2fjFmzvsytOJelidNnA+X5lE*=", &id) == -EINVAL);
	/* a NUL inside, and an NQN longer than 223 bytes */
	CHECK(nvmg_psk_id_parse("NVMe0R01 a\0b c", 14, &id) == -EINVAL);
	{
		char big[600];

		memset(big, 'x', sizeof(big));
		memcpy(big, "NVMe0R01 ", 9);
		big[9 + 224] = ' ';
		CHECK(nvmg_psk_id_parse(big, 9 + 224 + 2, &id) == -EINVAL);
		big[9 + 224] = 'x';
		big[9 + 223] = ' ';
		CHECK(nvmg_psk_id_parse(big, 9 + 223 + 2, &id) == 0);
	}
}

static void test_derivation(void)
{
	for (size_t i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++) {
		const struct vec *v = &vecs[i];
		struct nvmg_secret key;
		struct nvmg_psk_id id;
		uint8_t ret[NVMG_PSK_MAX], tls[NVMG_PSK_MAX];
		char err[128], digest[NVMG_PSK_DIGEST_MAX], h[2 * NVMG_PSK_MAX + 1];

		CHECK(nvmg_parse_tls_psk(v->key, &key, err, sizeof(err)) == 0);
		CHECK(nvmg_psk_retained(&key, HOST, v->kdf, ret) == 0);
		hex(ret, key.len, h);
		CHECK(!strcmp(h, v->retained));
		CHECK(nvmg_psk_digest(key.hash, ret, key.len, HOST, SUB, digest) == 0);
		CHECK(!strcmp(digest, v->digest));
		for (unsigned ver = 0; ver < 2; ver++) {
			CHECK(nvmg_psk_connect(&key, HOST, SUB, ver, v->kdf, &id, tls) == 0);
			hex(tls, key.len, h);
			CHECK(!strcmp(h, ver ? v->tls_v1 : v->tls_v0));
			if (strcmp(h, ver ? v->tls_v1 : v->tls_v0))
				fprintf(stderr, "vector %zu v%u: got %s\n", i, ver, h);
		}
	}
}

/* The target finds the host's TLS PSK from its identity: both spellings
 * for version 1 (the digest tells), libnvme's for version 0. */
static void test_accept(void)
{
	struct nvmg_secret k1, k2;
	struct nvmg_psk_id id;
	uint8_t want[NVMG_PSK_MAX], got[NVMG_PSK_MAX];
	size_t len = 0;
	char err[128];

	CHECK(nvmg_parse_tls_psk(KEY01, &k1, err, sizeof(err)) == 0);
	CHECK(nvmg_parse_tls_psk(KEY02, &k2, err, sizeof(err)) == 0);
	for (int kdf = 0; kdf < 2; kdf++) {
		CHECK(nvmg_psk_connect(&k1, HOST, SUB, 1, (enum nvmg_psk_kdf)kdf, &id, want) == 0);
		CHECK(nvmg_psk_accept(&k1, &id, got, &len) == 0 && len == 32 && !memcmp(got, want, 32));
		/* another key, the other hash, other NQNs: refused */
		CHECK(nvmg_psk_accept(&k2, &id, got, &len) == -EACCES);
		strcpy(id.subnqn, "nqn.other");
		CHECK(nvmg_psk_accept(&k1, &id, got, &len) == -EACCES);
	}
	CHECK(nvmg_psk_connect(&k2, HOST, SUB, 0, NVMG_PSK_KDF_LIBNVME, &id, want) == 0);
	CHECK(nvmg_psk_accept(&k2, &id, got, &len) == 0 && len == 48 && !memcmp(got, want, 48));
	id.hash = 1;
	CHECK(nvmg_psk_accept(&k2, &id, got, &len) == -EACCES);
	/* a digest that decodes but is not this key's */
	CHECK(nvmg_psk_connect(&k1, HOST, SUB, 1, NVMG_PSK_KDF_LIBNVME, &id, want) == 0);
	id.digest[3] ^= 1;
	CHECK(nvmg_psk_accept(&k1, &id, got, &len) == -EACCES);
}

int main(void)
{
	test_identity_parse();
	test_derivation();
	test_accept();
	return check_report("test_tls_psk");
}
