/* nvmegate-perf's TLS 1.3 PSK client (TP 8011), the host side of
 * net/tcp_tls.c: OpenSSL through memory BIOs, the socket I/O stays the
 * tool's own (blocking during setup, io_uring in the engine). The PSK and
 * identity are derived from the configured key as libnvme inserts them
 * into the Linux host's keyring (net/tcp_psk.h). */
#ifndef NVMG_PERF_TLS_H
#define NVMG_PERF_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct perf_opts;
typedef struct ssl_st SSL;
typedef struct bio_st BIO;

#define PERF_TLS_CBUF (64u << 10)
#define PERF_TLS_STAGE 16384u

struct perf_tls {
	SSL *ssl;
	BIO *rbio, *wbio;
	size_t wsent;
	uint32_t stage_len;
	uint8_t stage[PERF_TLS_STAGE];
	uint8_t cbuf[PERF_TLS_CBUF];
};

/* Blocking handshake on fd (its timeouts apply). NULL on failure, reported. */
struct perf_tls *perf_tls_connect(int fd, const struct perf_opts *o, uint16_t qid);
void perf_tls_free(struct perf_tls *t);
/* Blocking, for the setup path: 0 or -1 (reported by the caller). */
int perf_tls_send(struct perf_tls *t, int fd, const void *p, size_t n);
int perf_tls_recv(struct perf_tls *t, int fd, void *p, size_t n);
/* Non-blocking pieces for the engine. */
int perf_tls_write(struct perf_tls *t, const void *p, size_t n); /* staged */
int perf_tls_flush(struct perf_tls *t);
size_t perf_tls_pending(struct perf_tls *t, const uint8_t **p);
void perf_tls_sent(struct perf_tls *t, size_t n);
int perf_tls_feed(struct perf_tls *t, const void *p, size_t n);
/* > 0 bytes, 0 want more ciphertext, -1 error or close. */
int perf_tls_read(struct perf_tls *t, void *p, size_t n);

#endif
