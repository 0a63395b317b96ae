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
 * Once the handshake is done, OpenSSL's SSL layer may hand the records
 * over, each way on its own: to kernel TLS (the caller's business, with
 * tls_chan_keys) or to our own record layer (tls_chan_take_rx/_tx,
 * tls_rec.h), which seals a batch of pieces straight into the output
 * and opens a record straight into the reader's buffer when its
 * plaintext fits there (in place in the input buffer otherwise): no
 * copies into and out of OpenSSL's buffers, no staging. The calls below
 * stay the same either way. What the hand-over needs the channel learns
 * during the handshake: the traffic secrets (the owner of the SSL_CTX
 * passes its key log lines to tls_chan_keylog) and how many records
 * OpenSSL protected each way since (the message callback it installs).
 *
 * Knows nothing of NVMe or of the target: the layer nvmegate-perf links. */
#ifndef NVMG_TLS_CHAN_H
#define NVMG_TLS_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include "net/tls_rec.h"

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
	/* From the handshake: the application traffic secrets each way (rx
	 * the peer's) and the records OpenSSL protected with them so far. */
	uint8_t secret_len;
	uint8_t secret_rx[TLS13_SECRET_MAX], secret_tx[TLS13_SECRET_MAX];
	uint64_t rec_in, rec_out;
	/* Where OpenSSL is in the received stream: at a record boundary
	 * when it holds no header bytes (rd_got) and no body bytes are due. */
	uint8_t rd_hdr[TLS_REC_HDR], rd_got;
	size_t rd_left;
	/* Our record layer each way once it took over (NULL: OpenSSL's). */
	struct tls_rec *rx, *tx;
	/* A record opened in place whose content is not all read yet: its
	 * size (header included) and the unread content, from in_off. */
	size_t pt_rec, pt_pos, pt_left;
	const char *err; /* why our layer failed, for tls_chan_error */
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
 * peer's close_notify, -EPROTO on a bad record. With our record layer
 * the bytes of buf past the count returned may be written too (a record
 * opened there carries its type and padding after the content), and a
 * read may add output (the answer to a peer's KeyUpdate): send what is
 * pending after reading. */
int tls_chan_read(struct tls_chan *ch, void *buf, size_t len);

/* Plaintext to send (staged into full records), the staged rest made a
 * record, and the ciphertext waiting for the socket. 0 or -EIO. writev
 * is one batch, in as few records as fit it, flushed. */
int tls_chan_write(struct tls_chan *ch, const void *p, size_t n);
int tls_chan_writev(struct tls_chan *ch, const struct iovec *iov, int niov);
int tls_chan_flush(struct tls_chan *ch);
size_t tls_chan_pending(const struct tls_chan *ch, const uint8_t **p);
void tls_chan_sent(struct tls_chan *ch, size_t n);

/* Why the last call failed: our record layer's reason, else OpenSSL's
 * first queued error (empty when none); clears OpenSSL's queue. */
void tls_chan_error(struct tls_chan *ch, char *buf, size_t len);

/* The SSL_CTX's key log callback, for this channel's SSL: keeps the
 * first application traffic secrets. */
void tls_chan_keylog(struct tls_chan *ch, const char *line);

/* Hand-over, once the handshake is done. keys: one direction's keys and
 * the sequence number of its next record (for kernel TLS), then forget
 * wipes that direction's secret once the kernel has them. 0, or -ENOKEY
 * (no secret: the key log said nothing) or -EINVAL. */
int tls_chan_keys(struct tls_chan *ch, bool tx, struct tls13_keys *k, uint64_t *seq);
void tls_chan_forget(struct tls_chan *ch, bool tx);
/* OpenSSL holds nothing received that is not wholly read: the receive
 * direction may move (with kernel TLS, also nothing unread in ours). */
bool tls_chan_rx_at_boundary(const struct tls_chan *ch);
/* Our record layer takes a direction: 0, -EAGAIN (not at a record
 * boundary yet: try again after the next read or flush), -ENOKEY,
 * -EINVAL or -ENOMEM (OpenSSL keeps it). */
int tls_chan_take_rx(struct tls_chan *ch);
int tls_chan_take_tx(struct tls_chan *ch);

#endif
