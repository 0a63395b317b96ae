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

/* The channel keeps the traffic secrets for our record layer. */
static void keylog(const SSL *ssl, const char *line)
{
	struct tls_chan *ch = SSL_get_app_data(ssl);

	if (ch)
		tls_chan_keylog(ch, line);
}

static int flush_blocking(struct tls_chan *ch, int fd)
{
	const uint8_t *p;
	size_t n;

	while ((n = tls_chan_pending(ch, &p))) {
		ssize_t r = send(fd, p, n, MSG_NOSIGNAL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		tls_chan_sent(ch, (size_t)r);
	}
	return 0;
}

static int fill_blocking(struct tls_chan *ch, int fd)
{
	uint8_t *p;
	size_t room = tls_chan_rx_space(ch, &p);
	ssize_t r;

	if (!room)
		return -1;
	do
		r = recv(fd, p, room, 0);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return -1;
	tls_chan_received(ch, (size_t)r);
	return 0;
}

/* The PSK offer (the identity and key) and the client's OpenSSL session,
 * in connect state, cipher suite per the key's hash. */
static SSL *client_new(struct psk_ctx *p)
{
	SSL_CTX *ctx;
	SSL *ssl = NULL;

	if (psk_ex_idx < 0)
		psk_ex_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx && SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) &&
	    SSL_CTX_set_ciphersuites(ctx, p->hash == 1 ? "TLS_AES_128_GCM_SHA256"
							: "TLS_AES_256_GCM_SHA384")) {
		SSL_CTX_set_psk_use_session_callback(ctx, use_session);
		SSL_CTX_set_keylog_callback(ctx, keylog);
		ssl = SSL_new(ctx);
	}
	SSL_CTX_free(ctx); /* the SSL keeps a reference */
	if (ssl) {
		SSL_set_ex_data(ssl, psk_ex_idx, p);
		SSL_set_connect_state(ssl);
	}
	return ssl;
}

struct tls_chan *perf_tls_connect(int fd, const struct perf_opts *o, uint16_t qid)
{
	struct nvmg_secret key;
	struct nvmg_psk_id id;
	struct psk_ctx *p = calloc(1, sizeof(*p));
	struct tls_chan *ch = calloc(1, sizeof(*ch));
	char err[160];
	int r;

	if (!p || !ch)
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
	if (tls_chan_init(ch, client_new(p))) {
		perf_err("qid %u: TLS: out of memory", qid);
		goto fail;
	}
	SSL_set_app_data(ch->ssl, ch);
	for (;;) {
		r = tls_chan_handshake(ch);
		if (flush_blocking(ch, fd))
			break;
		if (r == 1) {
			SSL_set_ex_data(ch->ssl, psk_ex_idx, NULL);
			OPENSSL_cleanse(p, sizeof(*p));
			free(p);
			/* The target speaks only after our ICReq: nothing of its
			 * is pending, so both directions move at once. */
			if (!o->tls_openssl_records &&
			    (tls_chan_take_rx(ch) || tls_chan_take_tx(ch))) {
				perf_err("qid %u: TLS: our record layer could not take over", qid);
				tls_chan_fini(ch);
				free(ch);
				return NULL;
			}
			return ch;
		}
		if (r < 0 || fill_blocking(ch, fd))
			break;
	}
	tls_chan_error(ch, err, sizeof(err));
	perf_err("qid %u: TLS handshake failed%s%s", qid, err[0] ? ": " : " (connection closed)", err);
	tls_chan_fini(ch);
fail:
	if (p)
		OPENSSL_cleanse(p, sizeof(*p));
	free(p);
	free(ch);
	return NULL;
}

void perf_tls_free(struct tls_chan *ch)
{
	if (!ch)
		return;
	tls_chan_fini(ch);
	free(ch);
}

int perf_tls_send(struct tls_chan *ch, int fd, const void *p, size_t n)
{
	if (tls_chan_write(ch, p, n) || tls_chan_flush(ch))
		return -1;
	return flush_blocking(ch, fd);
}

int perf_tls_recv(struct tls_chan *ch, int fd, void *p, size_t n)
{
	uint8_t *d = p;

	while (n) {
		int r = tls_chan_read(ch, d, n);

		if (r < 0)
			return -1;
		if (r == 0) {
			if (fill_blocking(ch, fd))
				return -1;
			continue;
		}
		d += r;
		n -= (size_t)r;
	}
	return 0;
}
