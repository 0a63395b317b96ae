/* net/tls_chan.c: a server and a client channel talk through their
 * buffers, with the ciphertext cut into pieces of every size from one
 * byte (the handshake and the records split anywhere), receives that
 * pile up before anyone reads (the unread tail kept across receives),
 * partial sends, output that outgrows its first buffer, a tampered
 * record, and the peer's close_notify. Each runs with OpenSSL's record
 * layer on both sides and with ours (tls_rec.c) on one side or both
 * after the handshake: OpenSSL on the other side is the independent
 * check of our records, KeyUpdates and padding included. */
#include <errno.h>
#include <stdio.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "tests/unit/check.h"
#include "net/tls_chan.h"

static const unsigned char psk[32] = "tls_chan unit test pre-shared k";
static const unsigned char suite[2] = { 0x13, 0x01 }; /* TLS_AES_128_GCM_SHA256 */

static SSL_SESSION *session(SSL *ssl)
{
	SSL_SESSION *s = SSL_SESSION_new();

	if (s && SSL_SESSION_set1_master_key(s, psk, sizeof(psk)) &&
	    SSL_SESSION_set_cipher(s, SSL_CIPHER_find(ssl, suite)) &&
	    SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION))
		return s;
	SSL_SESSION_free(s);
	return NULL;
}

static int find_session(SSL *ssl, const unsigned char *id, size_t len, SSL_SESSION **sess)
{
	*sess = len == 4 && !memcmp(id, "test", 4) ? session(ssl) : NULL;
	return 1;
}

static int use_session(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *len,
		       SSL_SESSION **sess)
{
	(void)md;
	*sess = session(ssl);
	*id = (const unsigned char *)"test";
	*len = 4;
	return *sess != NULL;
}

static void keylog(const SSL *ssl, const char *line)
{
	struct tls_chan *ch = SSL_get_app_data(ssl);

	if (ch)
		tls_chan_keylog(ch, line);
}

static SSL *new_ssl(bool server)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	SSL *ssl;

	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256");
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_keylog_callback(ctx, keylog);
	if (server)
		SSL_CTX_set_psk_find_session_callback(ctx, find_session);
	else
		SSL_CTX_set_psk_use_session_callback(ctx, use_session);
	ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);
	if (server)
		SSL_set_accept_state(ssl);
	else
		SSL_set_connect_state(ssl);
	return ssl;
}

/* Moves up to max pending bytes of a into b's receive buffer, at most
 * piece bytes per receive (the last send may be partial). */
static size_t pump(struct tls_chan *a, struct tls_chan *b, size_t piece, size_t max)
{
	size_t moved = 0;
	const uint8_t *p;
	size_t n;

	while (moved < max && (n = tls_chan_pending(a, &p))) {
		uint8_t *dst;
		size_t room = tls_chan_rx_space(b, &dst);

		if (n > piece)
			n = piece;
		if (n > max - moved)
			n = max - moved;
		if (n > room)
			n = room;
		if (!n)
			break;
		memcpy(dst, p, n);
		tls_chan_received(b, n);
		tls_chan_sent(a, n);
		moved += n;
	}
	return moved;
}

static bool handshake(struct tls_chan *cl, struct tls_chan *sv, size_t piece)
{
	int rc = 0, rs = 0;

	for (int i = 0; i < 100000 && (rc != 1 || rs != 1); i++) {
		if (rc != 1)
			rc = tls_chan_handshake(cl);
		pump(cl, sv, piece, piece);
		if (rs != 1)
			rs = tls_chan_handshake(sv);
		pump(sv, cl, piece, piece);
		if (rc < 0 || rs < 0)
			return false;
	}
	return rc == 1 && rs == 1;
}

/* Who seals and opens the records after the handshake. */
enum { OWN_NONE, OWN_CLIENT, OWN_SERVER, OWN_BOTH, NR_MODES };
static const char *const mode_name[] = { "OpenSSL both", "ours client", "ours server", "ours both" };
static int mode; /* of the pairs made next */

static bool take(struct tls_chan *ch)
{
	return !tls_chan_take_rx(ch) && !tls_chan_take_tx(ch) && ch->rx && ch->tx;
}

static bool pair(struct tls_chan *cl, struct tls_chan *sv, size_t piece)
{
	if (tls_chan_init(cl, new_ssl(false)) || tls_chan_init(sv, new_ssl(true)))
		return false;
	SSL_set_app_data(cl->ssl, cl);
	SSL_set_app_data(sv->ssl, sv);
	if (!handshake(cl, sv, piece))
		return false;
	if ((mode == OWN_CLIENT || mode == OWN_BOTH) && !take(cl))
		return false;
	return (mode != OWN_SERVER && mode != OWN_BOTH) || take(sv);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + seed + (i >> 8));
}

/* Sends len bytes from a to b in writes of the sizes in wr (cycled),
 * delivered piece bytes at a time, read back with a buffer of rd bytes. */
static bool transfer(struct tls_chan *a, struct tls_chan *b, size_t len, const size_t *wr,
		     size_t nwr, size_t piece, size_t rd)
{
	uint8_t *src = malloc(len), *dst = malloc(len);
	size_t off = 0, got = 0;
	bool ok = true;

	fill(src, len, (unsigned)len);
	for (size_t i = 0; off < len; i++) {
		size_t n = wr[i % nwr];

		if (n > len - off)
			n = len - off;
		ok &= !tls_chan_write(a, src + off, n);
		off += n;
	}
	ok &= !tls_chan_flush(a);
	while (ok && got < len) {
		size_t moved = pump(a, b, piece, piece);
		int r = 0;

		while (got < len && (r = tls_chan_read(b, dst + got, rd < len - got ? rd : len - got)) > 0)
			got += (size_t)r;
		if (!moved && r == 0)
			ok = false; /* stuck: nothing to deliver, nothing to read */
		if (r < 0)
			ok = false;
	}
	ok &= got == len && !memcmp(src, dst, len);
	free(src);
	free(dst);
	return ok;
}

static void test_split_everywhere(void)
{
	static const size_t pieces[] = { 1, 2, 3, 7, 64, 1000, 16389, TLS_CHAN_IN_SIZE };
	static const size_t writes[] = { 24, 4096, 24, 1, 72, 16384, 3 };

	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		struct tls_chan cl, sv;

		CHECK(pair(&cl, &sv, pieces[i]));
		CHECK(transfer(&cl, &sv, 50000, writes, 7, pieces[i], 4096));
		CHECK(transfer(&sv, &cl, 50000, writes, 7, pieces[i], 100));
		tls_chan_fini(&cl);
		tls_chan_fini(&sv);
	}
}

/* Several receives land before the reader runs, the reader takes a few
 * bytes at a time: the unread ciphertext stays in front of the new. */
static void test_tail_across_receives(void)
{
	struct tls_chan cl, sv;
	uint8_t src[20000], dst[20000];
	size_t got = 0;
	int r = 0;

	CHECK(pair(&cl, &sv, TLS_CHAN_IN_SIZE));
	fill(src, sizeof(src), 9);
	CHECK(!tls_chan_write(&cl, src, sizeof(src)) && !tls_chan_flush(&cl));
	for (int k = 0; k < 4; k++)
		pump(&cl, &sv, 333, 5000); /* fifteen receives each, no read */
	while ((r = tls_chan_read(&sv, dst + got, 10)) > 0)
		got += (size_t)r;
	CHECK(r == 0 && got > 0 && got < sizeof(src));
	while (got < sizeof(src)) {
		if (!pump(&cl, &sv, 1000, 5000) && r == 0)
			break;
		while ((r = tls_chan_read(&sv, dst + got, 77)) > 0)
			got += (size_t)r;
	}
	CHECK(got == sizeof(src) && !memcmp(src, dst, sizeof(src)));
	tls_chan_fini(&cl);
	tls_chan_fini(&sv);
}

/* The caller reads while its next receive is in flight (the server
 * arms it from inside its parser): that receive still lands after what
 * was there when it was armed. */
static void test_read_while_receiving(void)
{
	struct tls_chan cl, sv;
	uint8_t src[3000], dst[3000], *land;
	const uint8_t *p;
	size_t got = 0, n, room;
	int r;

	CHECK(pair(&cl, &sv, TLS_CHAN_IN_SIZE));
	fill(src, sizeof(src), 5);
	for (int k = 0; k < 3; k++)
		CHECK(!tls_chan_write(&cl, src + k * 1000, 1000) && !tls_chan_flush(&cl));
	pump(&cl, &sv, 1500, 1500); /* the first record and part of the second */
	while (got < sizeof(src)) {
		room = tls_chan_rx_space(&sv, &land); /* armed */
		while ((r = tls_chan_read(&sv, dst + got, sizeof(dst) - got)) > 0)
			got += (size_t)r;
		n = tls_chan_pending(&cl, &p);
		if (!n)
			break;
		n = n < 700 ? n : 700;
		CHECK(room >= n);
		memcpy(land, p, n); /* completes */
		tls_chan_received(&sv, n);
		tls_chan_sent(&cl, n);
	}
	while ((r = tls_chan_read(&sv, dst + got, sizeof(dst) - got)) > 0)
		got += (size_t)r;
	CHECK(got == sizeof(src) && !memcmp(src, dst, sizeof(src)));
	tls_chan_fini(&cl);
	tls_chan_fini(&sv);
}

/* Records pile up unsent beyond the first output buffer; a partial send
 * in between leaves the rest in order. */
static void test_output_grows(void)
{
	struct tls_chan cl, sv;
	const uint8_t *p, *q;
	size_t len = 5 * TLS_CHAN_IN_SIZE, got = 0;
	uint8_t *src = malloc(len), *dst = malloc(len);
	int r;

	CHECK(pair(&cl, &sv, TLS_CHAN_IN_SIZE));
	fill(src, len, 3);
	CHECK(!tls_chan_write(&cl, src, 1000) && !tls_chan_flush(&cl));
	CHECK(tls_chan_pending(&cl, &p) > 1000);
	pump(&cl, &sv, 500, 500); /* a partial send */
	CHECK(!tls_chan_write(&cl, src + 1000, len - 1000) && !tls_chan_flush(&cl));
	CHECK(tls_chan_pending(&cl, &q) > len - 1000);
	while (pump(&cl, &sv, TLS_CHAN_IN_SIZE, TLS_CHAN_IN_SIZE))
		while ((r = tls_chan_read(&sv, dst + got, len - got)) > 0)
			got += (size_t)r;
	CHECK(got == len && !memcmp(src, dst, len));
	CHECK(tls_chan_pending(&cl, &p) == 0);
	free(src);
	free(dst);
	tls_chan_fini(&cl);
	tls_chan_fini(&sv);
}

static void test_tampered_record(void)
{
	struct tls_chan cl, sv;
	uint8_t msg[100] = "hello", buf[100], *dst;
	const uint8_t *p;
	size_t n;

	CHECK(pair(&cl, &sv, 100));
	CHECK(!tls_chan_write(&cl, msg, sizeof(msg)) && !tls_chan_flush(&cl));
	n = tls_chan_pending(&cl, &p);
	CHECK(tls_chan_rx_space(&sv, &dst) >= n);
	memcpy(dst, p, n);
	dst[n - 3] ^= 1; /* in the tag */
	tls_chan_received(&sv, n);
	tls_chan_sent(&cl, n);
	CHECK(tls_chan_read(&sv, buf, sizeof(buf)) == -EPROTO);
	tls_chan_error(&sv, (char *)buf, sizeof(buf));
	CHECK(buf[0] != '\0'); /* a reason to log */
	tls_chan_fini(&cl);
	tls_chan_fini(&sv);
}

static void test_close_notify(void)
{
	struct tls_chan cl, sv;
	uint8_t buf[16];

	if (mode == OWN_CLIENT || mode == OWN_BOTH)
		return; /* our layer sends no alerts: OpenSSL's client does */
	CHECK(pair(&cl, &sv, 7));
	CHECK(tls_chan_read(&sv, buf, sizeof(buf)) == 0); /* nothing yet: want more */
	SSL_shutdown(cl.ssl);
	pump(&cl, &sv, 1, 1000);
	CHECK(tls_chan_read(&sv, buf, sizeof(buf)) == -EPIPE);
	tls_chan_fini(&cl);
	tls_chan_fini(&sv);
}

/* A ClientHello changed in transit (its PSK binder no longer matches)
 * fails the handshake. */
static void test_handshake_fails(void)
{
	struct tls_chan cl, sv;
	uint8_t *dst;
	int rs;

	CHECK(!tls_chan_init(&cl, new_ssl(false)) && !tls_chan_init(&sv, new_ssl(true)));
	CHECK(tls_chan_handshake(&cl) == 0);
	pump(&cl, &sv, 1000, 1000);
	tls_chan_rx_space(&sv, &dst);
	sv.in[20] ^= 0x55; /* in the ClientHello's random */
	rs = tls_chan_handshake(&sv);
	CHECK(rs < 0);
	tls_chan_fini(&cl);
	tls_chan_fini(&sv);
}

/* A KeyUpdate from OpenSSL's side, asking for ours or not, between
 * data each way: both sides keep reading each other. */
static void test_key_update(void)
{
	static const size_t writes[] = { 24, 4096, 24 };
	struct tls_chan cl, sv;

	for (int k = 0; k < 4; k++) {
		bool requested = k & 1, from_client = k & 2;
		struct tls_chan *o;

		CHECK(pair(&cl, &sv, 1000));
		o = from_client ? &cl : &sv;
		for (int i = 0; i < 3; i++) {
			struct tls_chan *peer = o == &cl ? &sv : &cl;
			uint8_t before[TLS13_SECRET_MAX];

			if (peer->tx)
				memcpy(before, peer->tx->secret, sizeof(before));
			if (!o->tx) { /* OpenSSL has this side */
				CHECK(SSL_key_update(o->ssl, requested ? SSL_KEY_UPDATE_REQUESTED
								       : SSL_KEY_UPDATE_NOT_REQUESTED));
			}
			CHECK(transfer(o, peer, 5000, writes, 3, 777, 4096));
			/* Ours answered a request with its own KeyUpdate (and
			 * only then): OpenSSL opens what follows with the next
			 * keys. */
			if (peer->tx && !o->tx)
				CHECK(!memcmp(before, peer->tx->secret, sizeof(before)) == !requested);
			CHECK(transfer(peer, o, 5000, writes, 3, 777, 4096));
		}
		tls_chan_fini(&cl);
		tls_chan_fini(&sv);
	}
}

/* OpenSSL pads its records (5.4: zeros after the type): the padding is
 * not content. */
static void test_padding(void)
{
	static const size_t writes[] = { 24, 4096, 1, 16384 };
	struct tls_chan cl, sv;

	CHECK(pair(&cl, &sv, 1000));
	if (!cl.tx)
		CHECK(SSL_set_block_padding(cl.ssl, 512));
	if (!sv.tx)
		CHECK(SSL_set_block_padding(sv.ssl, 4096));
	CHECK(transfer(&cl, &sv, 60000, writes, 4, 5000, 4096));
	CHECK(transfer(&sv, &cl, 60000, writes, 4, 5000, 100));
	tls_chan_fini(&cl);
	tls_chan_fini(&sv);
}

/* After the handshake a record in the clear, a change_cipher_spec, a
 * length past 2^14 + 256, or a record whose inner plaintext is all
 * padding ends the session (our layer; OpenSSL's says so itself). */
static void test_bad_records(void)
{
	static const uint8_t bad[][5] = {
		{ 22, 3, 3, 0, 40 },	 /* handshake in the clear */
		{ 20, 3, 3, 0, 1 },	 /* change_cipher_spec */
		{ 23, 3, 1, 0, 40 },	 /* legacy version not 0x0303 */
		{ 23, 3, 3, 0x41, 1 },	 /* 2^14 + 257 */
		{ 23, 3, 3, 0, 16 },	 /* no room for the type */
	};
	struct tls_chan cl, sv;
	uint8_t buf[64], *dst;

	if (mode != OWN_SERVER && mode != OWN_BOTH)
		return;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(pair(&cl, &sv, 1000));
		tls_chan_rx_space(&sv, &dst);
		memset(dst, 0, 64);
		memcpy(dst, bad[i], 5);
		tls_chan_received(&sv, 64);
		CHECK(tls_chan_read(&sv, buf, sizeof(buf)) == -EPROTO);
		tls_chan_fini(&cl);
		tls_chan_fini(&sv);
	}
}

int main(void)
{
	for (mode = 0; mode < NR_MODES; mode++) {
		int before = check_failed;

		test_split_everywhere();
		test_tail_across_receives();
		test_read_while_receiving();
		test_output_grows();
		test_tampered_record();
		test_close_notify();
		test_key_update();
		test_padding();
		test_bad_records();
		if (check_failed != before)
			fprintf(stderr, "test_tls_chan: failures with %s\n", mode_name[mode]);
	}
	test_handshake_fails();
	return check_report("test_tls_chan");
}
