/* One TLS session's record channel (see tls_chan.h). */
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include "net/tls_chan.h"

static int bio_read(BIO *b, char *buf, size_t len, size_t *done)
{
	struct tls_chan *ch = BIO_get_data(b);
	size_t n = ch->in_len - ch->in_off;

	BIO_clear_retry_flags(b);
	if (!n) {
		/* Empty is "come back after the next receive", not EOF. */
		BIO_set_retry_read(b);
		*done = 0;
		return 0;
	}
	if (n > len)
		n = len;
	memcpy(buf, ch->in + ch->in_off, n);
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
	return 0;
}

void tls_chan_fini(struct tls_chan *ch)
{
	SSL_free(ch->ssl); /* and the BIO, before its method */
	BIO_meth_free(ch->meth);
	free(ch->in);
	free(ch->out);
	OPENSSL_cleanse(ch->stage, sizeof(ch->stage));
	memset(ch, 0, offsetof(struct tls_chan, stage));
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

int tls_chan_read(struct tls_chan *ch, void *buf, size_t len)
{
	int r;

	if (!len)
		return 0;
	r = SSL_read(ch->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
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

int tls_chan_write(struct tls_chan *ch, const void *p, size_t n)
{
	const uint8_t *s = p;

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

size_t tls_chan_pending(const struct tls_chan *ch, const uint8_t **p)
{
	*p = ch->out + ch->out_sent;
	return ch->out_len - ch->out_sent;
}

void tls_chan_sent(struct tls_chan *ch, size_t n)
{
	ch->out_sent += n;
	/* All out: the next records start at the front again. */
	if (ch->out_sent >= ch->out_len)
		ch->out_sent = ch->out_len = 0;
}

void tls_chan_error(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	buf[0] = '\0';
	if (e)
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
}
