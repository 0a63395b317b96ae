/* One TLS session's record channel, shared by the target (net/tcp_tls.c)
 * and nvmegate-perf's client (tools/perf/tls.c): OpenSSL encrypts and
 * decrypts, the caller does all socket I/O (io_uring or plain send).
 *
 * OpenSSL reaches the bytes through a BIO of our own, not BIO_s_mem:
 * - receive: the caller receives ciphertext straight into the channel's
 *   input buffer (tls_chan_rx_space, tls_chan_received) and OpenSSL
 *   reads it from there; what it has not taken yet stays for the next
 *   receive, which lands after it.
 * - send: OpenSSL's records are appended to an output buffer that is
 *   reused, never cleared, and grows by doubling; the caller sends from
 *   tls_chan_pending and reports tls_chan_sent. How much may wait there
 *   is the caller's limit (it stops writing above its backlog).
 * Plaintext written in small pieces is staged into full records, so a
 * batch of PDUs costs few records; whole records' worth goes straight
 * to SSL_write. No global state: each channel has its BIO method.
 *
 * Knows nothing of NVMe or of the target: the layer nvmegate-perf links. */
#ifndef NVMG_TLS_CHAN_H
#define NVMG_TLS_CHAN_H

#include <stddef.h>
#include <stdint.h>

typedef struct ssl_st SSL;
typedef struct bio_method_st BIO_METHOD;

#define TLS_CHAN_RECORD 16384u       /* plaintext per record (TLS maximum) */
#define TLS_CHAN_IN_SIZE (64u << 10) /* ciphertext per receive */

struct tls_chan {
	SSL *ssl;
	BIO_METHOD *meth;
	uint8_t *in; /* [in_off, in_len): received, not yet read by OpenSSL */
	size_t in_cap, in_off, in_len;
	uint8_t *out; /* [out_sent, out_len): records waiting for the socket */
	size_t out_cap, out_len, out_sent;
	size_t stage_len;
	uint8_t stage[TLS_CHAN_RECORD];
};

/* Takes ssl (a fresh SSL in connect or accept state) and gives it the
 * channel's BIO. On failure ssl is freed too. 0 or -ENOMEM. */
int tls_chan_init(struct tls_chan *ch, SSL *ssl);
/* Frees the SSL and the buffers, wiping the staged plaintext. */
void tls_chan_fini(struct tls_chan *ch);

/* Where the next receive lands and how much it may take; 0 when the
 * unread ciphertext fills the buffer (a peer far ahead of its reader).
 * Until tls_chan_received reports that receive, the channel may be read
 * (OpenSSL only advances past what it took) but not asked again. */
size_t tls_chan_rx_space(struct tls_chan *ch, uint8_t **p);
void tls_chan_received(struct tls_chan *ch, size_t n);

/* One handshake step over what was received: 1 done, 0 wants more
 * ciphertext (its output may be pending), -EPROTO failed. */
int tls_chan_handshake(struct tls_chan *ch);
/* Plaintext: > 0 bytes, 0 when more ciphertext is needed, -EPIPE on the
 * peer's close_notify, -EPROTO on a bad record. */
int tls_chan_read(struct tls_chan *ch, void *buf, size_t len);

/* Plaintext to send (staged into full records), the staged rest made a
 * record, and the ciphertext waiting for the socket. 0 or -EIO. */
int tls_chan_write(struct tls_chan *ch, const void *p, size_t n);
int tls_chan_flush(struct tls_chan *ch);
size_t tls_chan_pending(const struct tls_chan *ch, const uint8_t **p);
void tls_chan_sent(struct tls_chan *ch, size_t n);

/* OpenSSL's first queued error as text (empty when none); clears the queue. */
void tls_chan_error(char *buf, size_t len);

#endif
