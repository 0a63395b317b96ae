/* NVMe/TCP over TLS 1.3 with PSKs (TP 8011), target side: the server's
 * parts (its OpenSSL context, the PSK lookup by identity, the check of
 * Connect against that identity) around a record channel (tls_chan.h)
 * shared with nvmegate-perf. The connection's io_uring receive lands
 * ciphertext in the channel, SSL_read yields the plaintext the PDU parser
 * reads (straight into a command's buffer for large data), and the send
 * side encrypts each flushed batch of PDUs into the channel's output,
 * whose bytes leave in one send. No SSL call touches the socket or
 * blocks; the handshake runs under the ICReq and Connect deadline. Then
 * OpenSSL's SSL layer hands the records over: where the kernel has
 * kernel TLS, each direction moves to the socket (tcp_ktls.h) and the
 * connection carries plaintext like a plain one; otherwise our own
 * record layer in the channel seals and opens them (tls_chan.h).
 * Everything runs on the connection's reactor. */
#ifndef NVMG_TCP_TLS_H
#define NVMG_TCP_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "net/tls_chan.h"
#include "nvme/spec.h"

struct tcp_conn;
struct nvmg_tcp;
struct nvmg_req;
typedef struct ssl_ctx_st SSL_CTX;

#define TLS_BACKLOG_MAX (1u << 20) /* ciphertext waiting for the socket */

struct tcp_tls {
	bool established;
	/* Kernel TLS may still take a direction (ktls_try) and which ones
	 * the socket owns; handed: OpenSSL's SSL layer is done with the
	 * records (the kernel's or ours have them). */
	bool ktls_try, ktls_tx, ktls_rx, handed;
	char hostnqn[NVME_NQN_LENGTH]; /* of the PSK identity the host used */
	char subnqn[NVME_NQN_LENGTH];
	struct tls_chan ch;
};

/* The one place a connection decides who makes its records, each way:
 * the channel (non-NULL: OpenSSL during the handshake, our record layer
 * after it), or nobody above the socket (NULL: no TLS, or kernel TLS
 * since the handshake handed it the keys), in which case the plain send
 * or receive path runs. */
static inline struct tls_chan *tcp_tls_rx_chan(struct tcp_tls *t)
{
	return t && !t->ktls_rx ? &t->ch : NULL;
}

static inline struct tls_chan *tcp_tls_tx_chan(struct tcp_tls *t)
{
	return t && !t->ktls_tx ? &t->ch : NULL;
}

/* The server context shared by all connections (any thread may SSL_new
 * from it). NULL when OpenSSL cannot make one. */
SSL_CTX *tcp_tls_ctx_new(void);
void tcp_tls_ctx_free(SSL_CTX *ctx);

/* The first bytes of c were a TLS record: start the server handshake and
 * take them as its first ciphertext. 0 or -errno (then close c). */
int tcp_tls_start(struct tcp_conn *c, const uint8_t *first, size_t n);
void tcp_tls_free(struct tcp_conn *c);

/* n bytes of ciphertext arrived where tls_chan_rx_space said: advance
 * the handshake. 0, or -EPROTO when the handshake failed (close c). */
int tcp_tls_feed(struct tcp_conn *c, size_t n);
/* Plaintext out of the records received: > 0 bytes, 0 when more
 * ciphertext is needed, -EPIPE when the host closed the session (its
 * close_notify) and -EPROTO on a bad record (logged). The send side
 * uses the channel's calls directly. */
int tcp_tls_read(struct tcp_conn *c, void *buf, size_t len);

/* Once the handshake is done, OpenSSL hands the records over: each
 * direction to the kernel where it can take it (the receive direction
 * once OpenSSL holds no ciphertext: call between receives; the send
 * direction once no ciphertext waits), else to our record layer (at a
 * record boundary). No-op when done or not possible yet; a failure
 * leaves the direction to the next in line. */
void tcp_tls_handover(struct tcp_conn *c);

/* Before Connect runs on a TLS connection: the host and subsystem NQNs
 * in its data must be the PSK identity's. 0 or an NVMe status. */
uint16_t tcp_tls_check_connect(struct tcp_conn *c, const struct nvmg_req *req);

#endif
