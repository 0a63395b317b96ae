/* Kernel TLS keys and socket options (see tcp_ktls.h). */
#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <string.h>
#include <sys/socket.h>
#include "net/tcp_ktls.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

int tcp_ktls_attach(int fd)
{
	if (!setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")))
		return 0;
	/* Already attached (the other direction went first). */
	return errno == EEXIST ? 0 : -errno;
}

/* The kernel's layout: TLS 1.3's 12-byte IV is its 4-byte "salt" and
 * 8-byte "iv"; the record sequence number is big-endian. */
#define FILL_INFO(ci, type, k, seq)                                            \
	do {                                                                   \
		(ci).info.version = TLS_1_3_VERSION;                           \
		(ci).info.cipher_type = (type);                                \
		memcpy((ci).salt, (k)->iv, 4);                                 \
		memcpy((ci).iv, (k)->iv + 4, 8);                               \
		memcpy((ci).key, (k)->key, sizeof((ci).key));                  \
		for (int i_ = 0; i_ < 8; i_++)                                 \
			(ci).rec_seq[i_] = (uint8_t)((seq) >> (56 - 8 * i_));  \
	} while (0)

int tcp_ktls_set(int fd, int tx, const struct tls13_keys *k, uint64_t seq)
{
	int opt = tx ? TLS_TX : TLS_RX, ret;

	if (k->cipher == 0x1301) {
		struct tls12_crypto_info_aes_gcm_128 ci = { 0 };

		FILL_INFO(ci, TLS_CIPHER_AES_GCM_128, k, seq);
		ret = setsockopt(fd, SOL_TLS, opt, &ci, sizeof(ci));
		OPENSSL_cleanse(&ci, sizeof(ci));
	} else if (k->cipher == 0x1302) {
		struct tls12_crypto_info_aes_gcm_256 ci = { 0 };

		FILL_INFO(ci, TLS_CIPHER_AES_GCM_256, k, seq);
		ret = setsockopt(fd, SOL_TLS, opt, &ci, sizeof(ci));
		OPENSSL_cleanse(&ci, sizeof(ci));
	} else {
		return -EINVAL;
	}
	return ret ? -errno : 0;
}
