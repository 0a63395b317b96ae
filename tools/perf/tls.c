/* nvmegate-perf's TLS 1.3 PSK client (see tls.h). */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "lib/secret.h"
#include "net/tcp_psk.h"
#include "tools/perf/perf.h"
#include "tools/perf/tls.h"

struct psk_ctx {
	char identity[NVMG_PSK_ID_MAX];
	uint8_t psk[NVMG_PSK_MAX];
	size_t len;
	uint8_t hash;
};

static int psk_ex_idx = -1;

static int use_session(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
		       SSL_SESSION **sess)
{
	struct psk_ctx *p = SSL_get_ex_data(ssl, psk_ex_idx);
	static const unsigned char suites[2][2] = { { 0x13, 0x01 }, { 0x13, 0x02 } };
	const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, suites[p->hash - 1]);
	SSL_SESSION *s;

	(void)md;
	*sess = NULL;
	s = cipher ? SSL_SESSION_new() : NULL;
	if (!s || !SSL_SESSION_set1_master_key(s, p->psk, p->len) ||
	    !SSL_SESSION_set_cipher(s, cipher) || !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
		SSL_SESSION_free(s);
		return 0;
	}
	*sess = s;
	*id = (const unsigned char *)p->identity;
	*idlen = strlen(p->identity);
	return 1;
}

static int flush_blocking(struct perf_tls *t, int fd)
{
	const uint8_t *p;
	size_t n;

	while ((n = perf_tls_pending(t, &p))) {
		ssize_t r = send(fd, p, n, MSG_NOSIGNAL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		perf_tls_sent(t, (size_t)r);
	}
	return 0;
}

static int fill_blocking(struct perf_tls *t, int fd)
{
	ssize_t r;

	do
		r = recv(fd, t->cbuf, sizeof(t->cbuf), 0);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return -1;
	return perf_tls_feed(t, t->cbuf, (size_t)r);
}

struct perf_tls *perf_tls_connect(int fd, const struct perf_opts *o, uint16_t qid)
{
	struct nvmg_secret key;
	struct nvmg_psk_id id;
	struct psk_ctx *p = calloc(1, sizeof(*p));
	struct perf_tls *t = calloc(1, sizeof(*t));
	SSL_CTX *ctx = NULL;
	char err[128];
	int r;

	if (!p || !t)
		goto fail;
	if (!o->psk) {
		perf_err("--tls needs --psk KEY");
		goto fail;
	}
	if (nvmg_parse_tls_psk(o->psk, &key, err, sizeof(err))) {
		perf_err("--psk: %s", err);
		goto fail;
	}
	if (nvmg_psk_connect(&key, o->hostnqn, o->subnqn, o->tls_identity_v0 ? 0 : 1,
			     o->tls_rfc8446 ? NVMG_PSK_KDF_RFC8446 : NVMG_PSK_KDF_LIBNVME, &id, p->psk)) {
		nvmg_secret_wipe(&key);
		perf_err("cannot derive the TLS PSK");
		goto fail;
	}
	p->len = key.len;
	p->hash = key.hash;
	nvmg_secret_wipe(&key);
	nvmg_psk_id_format(&id, p->identity, sizeof(p->identity));
	if (psk_ex_idx < 0)
		psk_ex_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(ctx, p->hash == 1 ? "TLS_AES_128_GCM_SHA256"
							 : "TLS_AES_256_GCM_SHA384"))
		goto fail;
	SSL_CTX_set_psk_use_session_callback(ctx, use_session);
	t->ssl = SSL_new(ctx);
	t->rbio = BIO_new(BIO_s_mem());
	t->wbio = BIO_new(BIO_s_mem());
	if (!t->ssl || !t->rbio || !t->wbio)
		goto fail;
	BIO_set_mem_eof_return(t->rbio, -1);
	SSL_set_bio(t->ssl, t->rbio, t->wbio);
	SSL_set_ex_data(t->ssl, psk_ex_idx, p);
	SSL_set_connect_state(t->ssl);
	SSL_CTX_free(ctx); /* the SSL keeps a reference */
	ctx = NULL;
	for (;;) {
		r = SSL_do_handshake(t->ssl);
		if (flush_blocking(t, fd))
			break;
		if (r == 1) {
			SSL_set_ex_data(t->ssl, psk_ex_idx, NULL);
			OPENSSL_cleanse(p, sizeof(*p));
			free(p);
			return t;
		}
		if (SSL_get_error(t->ssl, r) != SSL_ERROR_WANT_READ || fill_blocking(t, fd))
			break;
	}
	{
		unsigned long e = ERR_get_error();

		perf_err("qid %u: TLS handshake failed%s%s", qid, e ? ": " : " (connection closed)",
			 e ? ERR_reason_error_string(e) : "");
	}
fail:
	SSL_CTX_free(ctx);
	if (p)
		OPENSSL_cleanse(p, sizeof(*p));
	free(p);
	perf_tls_free(t);
	return NULL;
}

void perf_tls_free(struct perf_tls *t)
{
	if (!t)
		return;
	if (t->ssl)
		SSL_free(t->ssl);
	else {
		BIO_free(t->rbio);
		BIO_free(t->wbio);
	}
	free(t);
}

int perf_tls_write(struct perf_tls *t, const void *p, size_t n)
{
	const uint8_t *s = p;

	while (n) {
		size_t k;

		if (!t->stage_len && n >= PERF_TLS_STAGE) {
			k = n - n % PERF_TLS_STAGE;
			if (SSL_write(t->ssl, s, (int)k) != (int)k)
				return -1;
		} else {
			k = PERF_TLS_STAGE - t->stage_len;
			if (k > n)
				k = n;
			memcpy(t->stage + t->stage_len, s, k);
			t->stage_len += (uint32_t)k;
			if (t->stage_len == PERF_TLS_STAGE && perf_tls_flush(t))
				return -1;
		}
		s += k;
		n -= k;
	}
	return 0;
}

int perf_tls_flush(struct perf_tls *t)
{
	int n = (int)t->stage_len;

	t->stage_len = 0;
	return n && SSL_write(t->ssl, t->stage, n) != n ? -1 : 0;
}

size_t perf_tls_pending(struct perf_tls *t, const uint8_t **p)
{
	BUF_MEM *bm = NULL;

	BIO_get_mem_ptr(t->wbio, &bm);
	if (!bm || bm->length <= t->wsent)
		return 0;
	*p = (const uint8_t *)bm->data + t->wsent;
	return bm->length - t->wsent;
}

void perf_tls_sent(struct perf_tls *t, size_t n)
{
	BUF_MEM *bm = NULL;

	t->wsent += n;
	BIO_get_mem_ptr(t->wbio, &bm);
	if (bm && t->wsent >= bm->length) {
		(void)BIO_reset(t->wbio);
		t->wsent = 0;
	}
}

int perf_tls_feed(struct perf_tls *t, const void *p, size_t n)
{
	return BIO_write(t->rbio, p, (int)n) == (int)n ? 0 : -1;
}

int perf_tls_read(struct perf_tls *t, void *p, size_t n)
{
	int r = SSL_read(t->ssl, p, (int)n);

	if (r > 0)
		return r;
	return SSL_get_error(t->ssl, r) == SSL_ERROR_WANT_READ ? 0 : -1;
}

int perf_tls_send(struct perf_tls *t, int fd, const void *p, size_t n)
{
	if (perf_tls_write(t, p, n) || perf_tls_flush(t))
		return -1;
	return flush_blocking(t, fd);
}

int perf_tls_recv(struct perf_tls *t, int fd, void *p, size_t n)
{
	uint8_t *d = p;

	while (n) {
		int r = perf_tls_read(t, d, n);

		if (r < 0)
			return -1;
		if (r == 0) {
			if (fill_blocking(t, fd))
				return -1;
			continue;
		}
		d += r;
		n -= (size_t)r;
	}
	return 0;
}
