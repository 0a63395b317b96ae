/* Identities derived from the subsystem NQN (and NSID): stable across
 * restarts without storing anything, and distinct per subsystem and
 * namespace, which Linux requires even across subsystems. */
#include <stdio.h>
#include <string.h>
#include <openssl/evp.h>
#include "nvme/core.h"

/* SHA-256 of "nqn|nsid|purpose". The NSID is decimal and the purpose has
 * no '|', so the input splits uniquely from the right: distinct
 * (nqn, nsid, purpose) triples never hash the same input. */
static void derive(const char *nqn, uint32_t nsid, const char *purpose, uint8_t md[32])
{
	char in[NVME_NQN_LENGTH + 32];
	unsigned int mdlen = 0;
	int n = snprintf(in, sizeof(in), "%s|%u|%s", nqn, nsid, purpose);

	if (n < 0 || (size_t)n >= sizeof(in))
		n = (int)strnlen(in, sizeof(in) - 1);
	if (!EVP_Digest(in, (size_t)n, md, &mdlen, EVP_sha256(), NULL))
		memset(md, 0, 32); /* only on OOM inside libcrypto */
}

void nvmg_derive_serial(const char *subnqn, char out[21])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(subnqn, strlen(subnqn), md, &mdlen, EVP_sha256(), NULL))
		memset(md, 0, sizeof(md));
	for (int i = 0; i < 10; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[20] = '\0';
}

void nvmg_derive_ns_ids(const char *subnqn, uint32_t nsid, uint8_t nguid[16],
			uint8_t uuid[16], uint8_t eui64[8])
{
	uint8_t md[32];

	derive(subnqn, nsid, "nguid", md);
	memcpy(nguid, md, 16);
	if (!nguid[0])
		nguid[15] |= 1; /* an all-zero NGUID means "none" */

	derive(subnqn, nsid, "uuid", md);
	memcpy(uuid, md, 16);
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x50); /* version 5: name-based SHA */
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80); /* RFC 4122 variant */

	derive(subnqn, nsid, "eui64", md);
	memcpy(eui64, md, 8);
	/* Unicast, locally administered: no OUI is claimed, never zero. */
	eui64[0] = (uint8_t)((eui64[0] & 0xfc) | 0x02);
}
