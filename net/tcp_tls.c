/* NVMe/TCP over TLS 1.3 with PSKs, target side (see tcp_tls.h). */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "lib/log.h"
#include "net/tcp_conn.h"
#include "net/tcp_internal.h"
#include "net/tcp_ktls.h"
#include "net/tcp_psk.h"
#include "net/tcp_tls.h"
#include "nvme/host.h"

/* The host's identity names its NQN: look its configured PSK up (a copy,
 * wiped after), derive the TLS PSK as the Linux host did, and offer it
 * as the session's resumption PSK. An identity we cannot match gets no
 * PSK, and with no certificate to fall back on the handshake fails. */
static int psk_find(SSL *ssl, const unsigned char *identity, size_t len, SSL_SESSION **sess)
{
	struct tcp_conn *c = SSL_get_app_data(ssl);
	static const unsigned char suites[2][2] = { { 0x13, 0x01 }, { 0x13, 0x02 } };
	struct nvmg_psk_id id;
	struct nvmg_host h;
	char host[NVMG_ESCAPED_SIZE(NVME_NQN_LENGTH)];
	uint8_t psk[NVMG_PSK_MAX];
	size_t plen = 0;
	const SSL_CIPHER *cipher;
	SSL_SESSION *s = NULL;
	int ret;

	*sess = NULL;
	if (nvmg_psk_id_parse(identity, len, &id)) {
		log_warn("%s: TLS: PSK identity is not an NVMe one (%zu bytes)", c->peer, len);
		return 1;
	}
	if (nvmg_target_find_host(c->sq.tgt, id.hostnqn, &h)) {
		log_warn("%s: TLS: host %s is not in \"hosts\"", c->peer,
			 nvmg_escape(host, sizeof(host), id.hostnqn, sizeof(id.hostnqn)));
		return 1;
	}
	ret = h.has_psk ? nvmg_psk_accept(&h.psk, &id, psk, &plen) : -ENOKEY;
	nvmg_host_wipe(&h);
	if (ret) {
		log_warn("%s: TLS: %s for host %s (identity version %u, hash %02u)", c->peer,
			 ret == -ENOKEY ? "no \"psk\" configured" : "PSK identity does not match its key",
			 nvmg_escape(host, sizeof(host), id.hostnqn, sizeof(id.hostnqn)), id.version,
			 id.hash);
		return 1;
	}
	cipher = SSL_CIPHER_find(ssl, suites[id.hash - 1]);
	s = cipher ? SSL_SESSION_new() : NULL;
	if (!s || !SSL_SESSION_set1_master_key(s, psk, plen) || !SSL_SESSION_set_cipher(s, cipher) ||
	    !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
		SSL_SESSION_free(s);
		OPENSSL_cleanse(psk, sizeof(psk));
		return 0;
	}
	OPENSSL_cleanse(psk, sizeof(psk));
	strcpy(c->tls->hostnqn, id.hostnqn);
	strcpy(c->tls->subnqn, id.subnqn);
	*sess = s;
	return 1;
}

/* OpenSSL tells its secrets only through the key log: the channel keeps
 * the first application traffic secrets for whoever takes the records
 * over (tcp_tls_handover). */
static void keylog(const SSL *ssl, const char *line)
{
	struct tcp_conn *c = SSL_get_app_data(ssl);

	if (c && c->tls)
		tls_chan_keylog(&c->tls->ch, line);
}

SSL_CTX *tcp_tls_ctx_new(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx)
		return NULL;
	/* TLS 1.3 only, the two suites TP 8011 names, PSK only (no
	 * certificate), no tickets: every connection proves its PSK. */
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384")) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_psk_find_session_callback(ctx, psk_find);
	SSL_CTX_set_keylog_callback(ctx, keylog);
	return ctx;
}

void tcp_tls_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

int tcp_tls_start(struct tcp_conn *c, const uint8_t *first, size_t n)
{
	SSL_CTX *ctx = c->tr->tcp->ssl_ctx;
	struct tcp_tls *t;
	uint8_t *p;
	SSL *ssl;

	if (!ctx)
		return -ENOTSUP;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	ssl = SSL_new(ctx);
	if (tls_chan_init(&t->ch, ssl)) {
		free(t);
		return -ENOMEM;
	}
	SSL_set_accept_state(ssl);
	SSL_set_app_data(ssl, c);
	t->ktls_try = c->tr->tcp->opts.kernel_tls && !atomic_load(&c->tr->tcp->ktls_absent);
	c->tls = t;
	if (tls_chan_rx_space(&t->ch, &p) < n)
		return -EPROTO;
	memcpy(p, first, n);
	return tcp_tls_feed(c, n);
}

void tcp_tls_free(struct tcp_conn *c)
{
	if (!c->tls)
		return;
	tls_chan_fini(&c->tls->ch);
	free(c->tls);
	c->tls = NULL;
}

static void log_ssl_error(struct tcp_conn *c, const char *what)
{
	char buf[160];

	tls_chan_error(&c->tls->ch, buf, sizeof(buf));
	log_warn("%s: TLS %s failed%s%s", c->peer, what, buf[0] ? ": " : "", buf);
}

int tcp_tls_feed(struct tcp_conn *c, size_t n)
{
	struct tcp_tls *t = c->tls;
	const uint8_t *p;
	int r;

	tls_chan_received(&t->ch, n);
	if (t->established)
		return 0;
	r = tls_chan_handshake(&t->ch);
	/* Its output (ServerHello..Finished, or an alert) leaves now. */
	if (tls_chan_pending(&t->ch, &p))
		nvmg_reactor_defer(c->r, &c->flush_defer);
	if (r == 1) {
		t->established = true;
		log_debug("%s: TLS 1.3 (%s) with the PSK of %s", c->peer,
			  SSL_CIPHER_get_name(SSL_get_current_cipher(t->ch.ssl)), t->hostnqn);
		return 0;
	}
	if (r == 0)
		return 0;
	log_ssl_error(c, "handshake");
	return -EPROTO;
}

int tcp_tls_read(struct tcp_conn *c, void *buf, size_t len)
{
	struct tls_chan *ch = &c->tls->ch;
	const uint8_t *p;
	size_t before = tls_chan_pending(ch, &p);
	int r = tls_chan_read(ch, buf, len);

	if (r == -EPROTO)
		log_ssl_error(c, "record");
	/* Our answer to the host's KeyUpdate leaves now. */
	if (tls_chan_pending(ch, &p) > before)
		nvmg_reactor_defer(c->r, &c->flush_defer);
	return r;
}

/* Kernel TLS is not there (no "tls" ULP): say so once per daemon and
 * stop trying. */
static void ktls_absent(struct tcp_conn *c, int err)
{
	struct tcp_tls *t = c->tls;

	t->ktls_try = false;
	if (!atomic_exchange(&c->tr->tcp->ktls_absent, true))
		log_info("kernel TLS is not available (%s): OpenSSL does the TLS record layer",
			 strerror(-err));
}

static int ktls_hand_over(struct tcp_conn *c, bool tx)
{
	struct tcp_tls *t = c->tls;
	struct tls13_keys k;
	uint64_t seq = 0;
	int ret;

	ret = tcp_ktls_attach(c->fd);
	if (ret == -ENOENT || ret == -ENOPROTOOPT || ret == -EOPNOTSUPP) {
		ktls_absent(c, ret);
		return ret;
	}
	if (!ret)
		ret = tls_chan_keys(&t->ch, tx, &k, &seq);
	if (!ret) {
		ret = tcp_ktls_set(c->fd, tx, &k, seq);
		OPENSSL_cleanse(&k, sizeof(k));
	}
	if (ret) {
		/* The socket is unchanged: our record layer takes it. */
		log_warn("%s: kernel TLS %s: %s; nvmegated keeps it", c->peer,
			 tx ? "send" : "receive", strerror(-ret));
		t->ktls_try = false;
		return ret;
	}
	tls_chan_forget(&t->ch, tx);
	log_debug("%s: kernel TLS %s from record %llu", c->peer, tx ? "send" : "receive",
		  (unsigned long long)seq);
	return 0;
}

/* Our record layer takes what the kernel did not. A direction not at a
 * record boundary yet is tried again at the next call; one it cannot
 * take (out of memory) stays with OpenSSL. */
static void own_hand_over(struct tcp_conn *c)
{
	struct tcp_tls *t = c->tls;
	int rx = t->ktls_rx ? 0 : tls_chan_take_rx(&t->ch);
	int tx = t->ktls_tx ? 0 : tls_chan_take_tx(&t->ch);

	if (rx == -EAGAIN || tx == -EAGAIN)
		return;
	t->handed = true;
	if (rx || tx)
		log_warn("%s: TLS records: %s; OpenSSL keeps them", c->peer, strerror(-(rx ? rx : tx)));
	else
		log_debug("%s: TLS records: send by %s, receive by %s", c->peer,
			  t->ktls_tx ? "the kernel" : "nvmegated", t->ktls_rx ? "the kernel" : "nvmegated");
}

void tcp_tls_handover(struct tcp_conn *c)
{
	struct tcp_tls *t = c->tls;
	const uint8_t *p;

	if (!t || !t->established || t->handed)
		return;
	if (t->ktls_try) {
		/* Receive: at a record boundary, nothing OpenSSL still holds
		 * and nothing unread in our buffer (the kernel reads the
		 * socket from here). */
		if (!t->ktls_rx && !c->recv_inflight && t->ch.in_off == t->ch.in_len &&
		    tls_chan_rx_at_boundary(&t->ch) && !ktls_hand_over(c, false))
			t->ktls_rx = true;
		/* Send: every sealed record out, nothing staged. */
		if (t->ktls_try && !t->ktls_tx && !t->ch.stage_len && !tls_chan_pending(&t->ch, &p) &&
		    !ktls_hand_over(c, true))
			t->ktls_tx = true;
		if (t->ktls_rx && t->ktls_tx) {
			t->ktls_try = false;
			t->handed = true;
		}
		if (t->ktls_try)
			return;
	}
	own_hand_over(c);
}

uint16_t tcp_tls_check_connect(struct tcp_conn *c, const struct nvmg_req *req)
{
	const struct nvmg_fabrics_cmd *cmd = (const struct nvmg_fabrics_cmd *)&req->cmd;
	const struct nvmf_connect_data *d = req->buf;

	if (req->cmd.opcode != nvme_admin_fabrics || cmd->fctype != nvme_fabrics_type_connect ||
	    !d || req->data_len < sizeof(*d))
		return 0;
	if (strncmp(d->hostnqn, c->tls->hostnqn, sizeof(d->hostnqn)) ||
	    strncmp(d->subsysnqn, c->tls->subnqn, sizeof(d->subsysnqn))) {
		char host[NVMG_ESCAPED_SIZE(NVME_NQN_LENGTH)], sub[NVMG_ESCAPED_SIZE(NVME_NQN_LENGTH)], thost[NVMG_ESCAPED_SIZE(NVME_NQN_LENGTH)], tsub[NVMG_ESCAPED_SIZE(NVME_NQN_LENGTH)];

		log_warn("%s: Connect as %s to %s over a TLS session of %s to %s: refused", c->peer,
			 nvmg_escape(host, sizeof(host), d->hostnqn, sizeof(d->hostnqn)),
			 nvmg_escape(sub, sizeof(sub), d->subsysnqn, sizeof(d->subsysnqn)),
			 nvmg_escape(thost, sizeof(thost), c->tls->hostnqn, sizeof(c->tls->hostnqn)),
			 nvmg_escape(tsub, sizeof(tsub), c->tls->subnqn, sizeof(c->tls->subnqn)));
		return NVMG_SC_CMD(NVME_SC_CONNECT_INVALID_HOST) | NVME_SC_DNR;
	}
	return 0;
}
