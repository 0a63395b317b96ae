/* One TLS session's record channel (see tls_chan.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include "net/tls_chan.h"

/* Follows the record framing of what OpenSSL takes (with read-ahead
 * off it reads a header, then exactly its body), so a hand-over knows
 * whether OpenSSL holds part of a record. */
static void track_records(struct tls_chan *ch, const uint8_t *p, size_t n)
{
	while (n) {
		if (ch->rd_left) {
			size_t k = n < ch->rd_left ? n : ch->rd_left;

			ch->rd_left -= k;
			p += k;
			n -= k;
			continue;
		}
		ch->rd_hdr[ch->rd_got++] = *p++;
		n--;
		if (ch->rd_got == TLS_REC_HDR) {
			ch->rd_left = (size_t)ch->rd_hdr[3] << 8 | ch->rd_hdr[4];
			ch->rd_got = 0;
			/* 5.1, 5.2: a record in the clear carries at most 2^14
			 * bytes, a protected one 2^14 + 256. OpenSSL would wait
			 * for the whole body before it judged the length. */
			if (ch->rd_left > (ch->rd_hdr[0] == TLS_CT_APPLICATION_DATA ? TLS_REC_MAX_CIPHER
										 : TLS_REC_MAX_PLAIN))
				ch->err = "record_overflow: a record longer than TLS allows";
		}
	}
}

static int bio_read(BIO *b, char *buf, size_t len, size_t *done)
{
	struct tls_chan *ch = BIO_get_data(b);
	size_t n = ch->in_len - ch->in_off;

	BIO_clear_retry_flags(b);
	if (ch->err) {
		/* A record we will not wait for: no retry, the SSL fails. */
		*done = 0;
		return 0;
	}
	if (!n) {
		/* Empty is "come back after the next receive", not EOF. */
		BIO_set_retry_read(b);
		*done = 0;
		return 0;
	}
	if (n > len)
		n = len;
	memcpy(buf, ch->in + ch->in_off, n);
	track_records(ch, ch->in + ch->in_off, n);
	/* Only the offset moves: a receive may be in flight at in_len. */
	ch->in_off += n;
	*done = n;
	return 1;
}

/* Room for n more bytes of output: first slide what is unsent to the
 * front, then double. Never cleared: every byte is written before it is
 * read. */
static int out_reserve(struct tls_chan *ch, size_t n)
{
	size_t cap = ch->out_cap;
	uint8_t *p;

	if (ch->out_len + n <= cap)
		return 0;
	if (ch->out_sent) {
		memmove(ch->out, ch->out + ch->out_sent, ch->out_len - ch->out_sent);
		ch->out_len -= ch->out_sent;
		ch->out_sent = 0;
		if (ch->out_len + n <= cap)
			return 0;
	}
	if (!cap)
		cap = TLS_CHAN_IN_SIZE;
	while (cap < ch->out_len + n)
		cap *= 2;
	p = realloc(ch->out, cap);
	if (!p)
		return -ENOMEM;
	ch->out = p;
	ch->out_cap = cap;
	return 0;
}

static int bio_write(BIO *b, const char *buf, size_t len, size_t *done)
{
	struct tls_chan *ch = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (out_reserve(ch, len)) {
		*done = 0;
		return 0;
	}
	memcpy(ch->out + ch->out_len, buf, len);
	ch->out_len += len;
	*done = len;
	return 1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls_chan *ch = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH: /* the caller sends what is pending */
		return 1;
	case BIO_CTRL_PENDING:
		return (long)(ch->in_len - ch->in_off);
	case BIO_CTRL_WPENDING:
		return (long)(ch->out_len - ch->out_sent);
	default:
		return 0;
	}
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

/* Counts the application records each way: the record layer that takes
 * over continues their sequence numbers. Every record header passes
 * here once; the ones before the handshake finished used its keys. */
static void record_seen(int write_p, int version, int type, const void *buf, size_t len, SSL *ssl,
			void *arg)
{
	struct tls_chan *ch = arg;

	(void)version, (void)buf, (void)len;
	if (type != SSL3_RT_HEADER || !SSL_is_init_finished(ssl))
		return;
	if (write_p)
		ch->rec_out++;
	else
		ch->rec_in++;
}

int tls_chan_init(struct tls_chan *ch, SSL *ssl)
{
	BIO *b = NULL;

	memset(ch, 0, offsetof(struct tls_chan, stage));
	ch->ssl = ssl;
	ch->in_cap = TLS_CHAN_IN_SIZE;
	ch->in = malloc(ch->in_cap);
	ch->meth = BIO_meth_new(BIO_TYPE_SOURCE_SINK, "nvmegate TLS channel");
	if (!ssl || !ch->in || !ch->meth || !BIO_meth_set_read_ex(ch->meth, bio_read) ||
	    !BIO_meth_set_write_ex(ch->meth, bio_write) || !BIO_meth_set_ctrl(ch->meth, bio_ctrl) ||
	    !BIO_meth_set_create(ch->meth, bio_create) || !(b = BIO_new(ch->meth))) {
		tls_chan_fini(ch);
		return -ENOMEM;
	}
	BIO_set_data(b, ch);
	SSL_set_bio(ssl, b, b); /* one BIO both ways: the SSL owns it */
	/* Read-ahead stays off: with it OpenSSL 3.0 moves all it buffered
	 * past a record to the front of its buffer after every record (to
	 * align the next payload), which costs more than the second BIO
	 * read per record it saves (a small memcpy from our buffer). */
	SSL_set_read_ahead(ssl, 0);
	/* Keep OpenSSL's record buffers between records (the default). */
	SSL_clear_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	SSL_set_msg_callback(ssl, record_seen);
	SSL_set_msg_callback_arg(ssl, ch);
	return 0;
}

static void rec_free(struct tls_rec **r)
{
	if (*r) {
		tls_rec_fini(*r);
		free(*r);
		*r = NULL;
	}
}

void tls_chan_fini(struct tls_chan *ch)
{
	SSL_free(ch->ssl); /* and the BIO, before its method */
	BIO_meth_free(ch->meth);
	free(ch->in);
	free(ch->out);
	rec_free(&ch->rx);
	rec_free(&ch->tx);
	OPENSSL_cleanse(ch->stage, sizeof(ch->stage));
	/* The secrets, and the plaintext of a record opened in place. */
	OPENSSL_cleanse(ch, offsetof(struct tls_chan, stage));
}

size_t tls_chan_rx_space(struct tls_chan *ch, uint8_t **p)
{
	/* The unread tail goes first, so the next receive continues it. */
	if (ch->in_off == ch->in_len) {
		ch->in_off = ch->in_len = 0;
	} else if (ch->in_off) {
		memmove(ch->in, ch->in + ch->in_off, ch->in_len - ch->in_off);
		ch->in_len -= ch->in_off;
		ch->in_off = 0;
	}
	*p = ch->in + ch->in_len;
	return ch->in_cap - ch->in_len;
}

void tls_chan_received(struct tls_chan *ch, size_t n)
{
	ch->in_len += n;
}

int tls_chan_handshake(struct tls_chan *ch)
{
	int r = SSL_do_handshake(ch->ssl);

	if (r == 1)
		return 1;
	return SSL_get_error(ch->ssl, r) == SSL_ERROR_WANT_READ ? 0 : -EPROTO;
}

static int rec_fail(struct tls_chan *ch, const char *why)
{
	ch->err = why;
	return -EPROTO;
}

/* After the peer's KeyUpdate asking for ours: ours goes out under the
 * old keys, everything after it under the new. */
static int rec_key_update_reply(struct tls_chan *ch)
{
	static const uint8_t msg[5] = { TLS_HS_KEY_UPDATE, 0, 0, 1, 0 }; /* update_not_requested */
	const struct iovec iov = { (void *)msg, sizeof(msg) };

	if (!ch->tx)
		return rec_fail(ch, "KeyUpdate asks for ours, and OpenSSL still has the send side");
	if (out_reserve(ch, TLS_REC_SIZE(sizeof(msg))) ||
	    tls_rec_seal(ch->tx, TLS_CT_HANDSHAKE, &iov, 1, 0, sizeof(msg), ch->out + ch->out_len))
		return rec_fail(ch, "cannot seal our KeyUpdate");
	ch->out_len += TLS_REC_SIZE(sizeof(msg));
	return tls_rec_update(ch->tx) ? rec_fail(ch, "cannot update our keys") : 0;
}

/* A record that is not application data: an alert, or post-handshake
 * messages. A peer may update its keys (KeyUpdate, which ends its
 * record: 5.1 lets no handshake message span a key change); a server
 * may send a client tickets, which we do not use. Handshake messages
 * split across records are not reassembled: no one sends those two so. */
static int rec_control(struct tls_chan *ch, uint8_t type, const uint8_t *p, size_t n)
{
	if (type == TLS_CT_ALERT) {
		if (n != 2)
			return rec_fail(ch, "malformed alert");
		if (p[1] == 0) /* close_notify */
			return -EPIPE;
		if (p[1] == 90) /* user_canceled: a close_notify follows */
			return 0;
		return rec_fail(ch, "the peer sent an alert");
	}
	if (type != TLS_CT_HANDSHAKE)
		return rec_fail(ch, "unexpected record type");
	if (!n)
		return rec_fail(ch, "empty handshake record");
	while (n) {
		size_t m = n >= 4 ? ((size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3]) : SIZE_MAX;

		if (m > n - 4)
			return rec_fail(ch, "handshake message split across records");
		if (p[0] == TLS_HS_KEY_UPDATE) {
			if (m != 1 || p[4] > 1 || n != 5)
				return rec_fail(ch, "malformed KeyUpdate");
			if (tls_rec_update(ch->rx))
				return rec_fail(ch, "cannot update the peer's keys");
			return p[4] ? rec_key_update_reply(ch) : 0;
		}
		if (p[0] != TLS_HS_NEW_SESSION_TICKET || SSL_is_server(ch->ssl))
			return rec_fail(ch, "unexpected handshake message");
		p += 4 + m;
		n -= 4 + m;
	}
	return 0;
}

/* Our record layer's read: the rest of a record opened in place, else
 * the next whole record, opened into buf when all its plaintext fits
 * (no copy), in place otherwise. */
static int rec_read(struct tls_chan *ch, uint8_t *buf, size_t len)
{
	for (;;) {
		uint8_t *rec = ch->in + ch->in_off, *out, type;
		size_t avail = ch->in_len - ch->in_off, body, n;
		bool direct;
		int r;

		if (ch->pt_left) {
			n = len < ch->pt_left ? len : ch->pt_left;
			memcpy(buf, rec + TLS_REC_HDR + ch->pt_pos, n);
			ch->pt_pos += n;
			ch->pt_left -= n;
			if (!ch->pt_left)
				ch->in_off += ch->pt_rec;
			return (int)n;
		}
		if (avail < TLS_REC_HDR)
			return 0;
		if (tls_rec_check_header(rec, &body))
			return rec_fail(ch, "not a protected TLS 1.3 record");
		if (avail < TLS_REC_HDR + body)
			return 0;
		direct = body - TLS_REC_TAG <= len;
		out = direct ? buf : rec + TLS_REC_HDR;
		r = tls_rec_open(ch->rx, rec, body, out, &n, &type);
		if (r)
			return rec_fail(ch, r == -EBADMSG ? "bad record MAC" : "malformed inner plaintext");
		if (type == TLS_CT_APPLICATION_DATA && n && direct) {
			ch->in_off += TLS_REC_HDR + body;
			return (int)n;
		}
		if (type == TLS_CT_APPLICATION_DATA && n) {
			ch->pt_rec = TLS_REC_HDR + body;
			ch->pt_pos = 0;
			ch->pt_left = n;
			continue;
		}
		ch->in_off += TLS_REC_HDR + body;
		/* Empty application data (allowed, 5.4) is skipped. */
		if (type != TLS_CT_APPLICATION_DATA && (r = rec_control(ch, type, out, n)))
			return r;
	}
}

int tls_chan_read(struct tls_chan *ch, void *buf, size_t len)
{
	int r;

	if (!len)
		return 0;
	if (len > INT_MAX)
		len = INT_MAX;
	if (ch->rx)
		return rec_read(ch, buf, len);
	r = SSL_read(ch->ssl, buf, (int)len);
	if (r > 0)
		return r;
	switch (SSL_get_error(ch->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		return -EPIPE;
	default:
		return -EPROTO;
	}
}

/* Our BIO takes everything: SSL_write never wants to wait. */
static int ssl_write_all(struct tls_chan *ch, const void *p, size_t n)
{
	size_t done;

	return n && (!SSL_write_ex(ch->ssl, p, n, &done) || done != n) ? -EIO : 0;
}

int tls_chan_flush(struct tls_chan *ch)
{
	int ret = ssl_write_all(ch, ch->stage, ch->stage_len);

	ch->stage_len = 0;
	return ret;
}

/* Our record layer's write: the batch cut into full records (the last
 * one the rest), each sealed from the pieces straight into the output. */
static int rec_writev(struct tls_chan *ch, const struct iovec *iov, int niov)
{
	size_t total = 0, off = 0;
	int i = 0;

	for (int k = 0; k < niov; k++)
		total += iov[k].iov_len;
	if (!total)
		return 0;
	if (out_reserve(ch, total + (total + TLS_REC_MAX_PLAIN - 1) / TLS_REC_MAX_PLAIN *
					    TLS_REC_SIZE(0)))
		return -EIO;
	while (total) {
		size_t n = total < TLS_REC_MAX_PLAIN ? total : TLS_REC_MAX_PLAIN, left = n;

		while (i < niov && off == iov[i].iov_len) {
			i++;
			off = 0;
		}
		if (tls_rec_seal(ch->tx, TLS_CT_APPLICATION_DATA, iov + i, niov - i, off, n,
				 ch->out + ch->out_len)) {
			ch->err = "cannot seal a record";
			return -EIO;
		}
		ch->out_len += TLS_REC_SIZE(n);
		total -= n;
		/* Past the n bytes just sealed. */
		while (left) {
			size_t k = iov[i].iov_len - off < left ? iov[i].iov_len - off : left;

			off += k;
			left -= k;
			if (off == iov[i].iov_len && left) {
				i++;
				off = 0;
			}
		}
	}
	return 0;
}

int tls_chan_write(struct tls_chan *ch, const void *p, size_t n)
{
	const uint8_t *s = p;

	if (ch->tx) {
		const struct iovec iov = { (void *)p, n };

		return rec_writev(ch, &iov, 1);
	}

	while (n) {
		size_t k;

		/* A whole record's worth goes in without the copy. */
		if (!ch->stage_len && n >= TLS_CHAN_RECORD) {
			k = n - n % TLS_CHAN_RECORD;
			if (ssl_write_all(ch, s, k))
				return -EIO;
		} else {
			k = TLS_CHAN_RECORD - ch->stage_len;
			if (k > n)
				k = n;
			memcpy(ch->stage + ch->stage_len, s, k);
			ch->stage_len += k;
			if (ch->stage_len == TLS_CHAN_RECORD && tls_chan_flush(ch))
				return -EIO;
		}
		s += k;
		n -= k;
	}
	return 0;
}

int tls_chan_writev(struct tls_chan *ch, const struct iovec *iov, int niov)
{
	if (ch->tx)
		return rec_writev(ch, iov, niov);
	for (int i = 0; i < niov; i++)
		if (tls_chan_write(ch, iov[i].iov_base, iov[i].iov_len))
			return -EIO;
	return tls_chan_flush(ch);
}

size_t tls_chan_pending(const struct tls_chan *ch, const uint8_t **p)
{
	/* No output buffer before the first record. */
	*p = ch->out ? ch->out + ch->out_sent : NULL;
	return ch->out_len - ch->out_sent;
}

void tls_chan_sent(struct tls_chan *ch, size_t n)
{
	ch->out_sent += n;
	/* All out: the next records start at the front again. */
	if (ch->out_sent >= ch->out_len)
		ch->out_sent = ch->out_len = 0;
}

void tls_chan_error(struct tls_chan *ch, char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	buf[0] = '\0';
	if (ch && ch->err)
		snprintf(buf, len, "%s", ch->err);
	else if (e)
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
}

void tls_chan_keylog(struct tls_chan *ch, const char *line)
{
	bool server = SSL_is_server(ch->ssl);
	size_t n;

	/* The peer's secret opens what we receive. */
	if ((n = tls13_keylog_secret(line, "CLIENT_TRAFFIC_SECRET_0",
				     server ? ch->secret_rx : ch->secret_tx)) ||
	    (n = tls13_keylog_secret(line, "SERVER_TRAFFIC_SECRET_0",
				     server ? ch->secret_tx : ch->secret_rx)))
		ch->secret_len = (uint8_t)n;
}

static uint16_t suite(const struct tls_chan *ch)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ch->ssl);

	return c ? (uint16_t)SSL_CIPHER_get_protocol_id(c) : 0;
}

int tls_chan_keys(struct tls_chan *ch, bool tx, struct tls13_keys *k, uint64_t *seq)
{
	if (!ch->secret_len || !SSL_is_init_finished(ch->ssl))
		return -ENOKEY;
	*seq = tx ? ch->rec_out : ch->rec_in;
	return tls13_derive_keys(suite(ch), tx ? ch->secret_tx : ch->secret_rx, ch->secret_len, k);
}

void tls_chan_forget(struct tls_chan *ch, bool tx)
{
	OPENSSL_cleanse(tx ? ch->secret_tx : ch->secret_rx, TLS13_SECRET_MAX);
}

bool tls_chan_rx_at_boundary(const struct tls_chan *ch)
{
	return !ch->rd_got && !ch->rd_left && !SSL_has_pending(ch->ssl);
}

static int take(struct tls_chan *ch, bool tx)
{
	struct tls_rec *r;
	int ret;

	if (!ch->secret_len || !SSL_is_init_finished(ch->ssl))
		return -ENOKEY;
	r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	ret = tls_rec_init(r, tx, suite(ch), tx ? ch->secret_tx : ch->secret_rx, ch->secret_len,
			   tx ? ch->rec_out : ch->rec_in);
	if (ret) {
		free(r);
		return ret;
	}
	tls_chan_forget(ch, tx); /* the record layer keeps its own copy */
	if (tx)
		ch->tx = r;
	else
		ch->rx = r;
	return 0;
}

int tls_chan_take_rx(struct tls_chan *ch)
{
	if (ch->rx)
		return 0;
	return tls_chan_rx_at_boundary(ch) ? take(ch, false) : -EAGAIN;
}

int tls_chan_take_tx(struct tls_chan *ch)
{
	if (ch->tx)
		return 0;
	/* Everything written went into records (OpenSSL writes whole ones). */
	return ch->stage_len ? -EAGAIN : take(ch, true);
}
