/* Our TLS 1.3 record layer's receive side (net/tls_chan.c rec_read and
 * what it does with alerts and post-handshake messages, net/tls_rec.c)
 * after the handshake: what an authenticated peer, or anyone who can
 * change bytes on the wire, can make it read.
 *
 * The harness plays the peer with its own sealer under the channel's
 * receive keys, so the records it builds pass authentication and reach
 * the parser: inner content of any type with any padding (or all
 * padding), KeyUpdates asking for ours or not, alerts, tickets, empty
 * records; and also raw bytes and flipped bytes that must not. The
 * stream reaches the channel in receives of a chosen size and is read
 * with a chosen buffer size (whole records open in place or straight
 * into the buffer).
 *
 * Input: a list of operations, each a byte then its arguments:
 *   0 record: type, padding, length (u16), content
 *   1 raw bytes: length (u8), bytes
 *   2 flip: offset (u16) into what is not yet delivered, mask
 *   3 sizes: receive size (u16), read size (u16)
 * Checks: no crash, no sanitizer report; what is read is exactly the
 * application data sealed before the first raw or flipped byte, in
 * order; a stream of application data alone is read whole; everything
 * the channel sends opens under its send keys as KeyUpdate(not
 * requested), one for each request that was read. */
#include <errno.h>
#include <openssl/ssl.h>
#include "tests/fuzz/fuzz.h"
#include "net/tls_chan.h"

#define STREAM_MAX (256u << 10)

/* Reused by every input: large allocations per input slow ASan down. */
static uint8_t stream_buf[STREAM_MAX], want_buf[STREAM_MAX], got_buf[STREAM_MAX], read_buf[1u << 16];

static const uint8_t secret_c[32] = "fuzz client traffic secret 0...";
static const uint8_t secret_s[32] = "fuzz server traffic secret 0...";

struct world {
	struct tls_chan ch;
	struct tls_rec peer_tx, peer_rx; /* the peer's sealer and opener */
	uint8_t *stream;                 /* ciphertext to deliver */
	size_t len, delivered;
	uint8_t *want;                   /* application data sealed, in order */
	size_t want_len, exact;          /* exact: before the first raw/flipped byte */
	bool clean;                      /* nothing but application data so far */
	unsigned key_update_requests;
};

static SSL_CTX *server_ctx(void)
{
	static SSL_CTX *ctx; /* a harness's setup, made once */

	if (!ctx)
		ctx = SSL_CTX_new(TLS_server_method());
	return ctx;
}

static void seal(struct world *w, uint8_t type, uint8_t pad, const uint8_t *content, size_t n)
{
	uint8_t inner[TLS_REC_MAX_PLAIN + 2];
	struct iovec iov = { inner, 0 };
	uint8_t last = type;
	size_t k;

	if (n + pad > TLS_REC_MAX_PLAIN)
		n = TLS_REC_MAX_PLAIN - pad;
	if (w->len + TLS_REC_SIZE(n + pad) > STREAM_MAX)
		return;
	memcpy(inner, content, n);
	iov.iov_len = n;
	/* Padding: the type then zeros; the sealer's own last byte is the
	 * final zero. */
	if (pad) {
		inner[n] = type;
		memset(inner + n + 1, 0, pad - 1);
		iov.iov_len = n + pad;
		last = 0;
	}
	FUZZ_CHECK(!tls_rec_seal(&w->peer_tx, last, &iov, 1, 0, iov.iov_len, w->stream + w->len));
	w->len += TLS_REC_SIZE(iov.iov_len);
	/* What the receiver must see, by RFC 8446 5.4: the inner plaintext's
	 * last non-zero byte is its type, the bytes before it the content
	 * (a zero "type" makes a content byte the type). */
	inner[iov.iov_len] = last;
	for (k = iov.iov_len + 1; k && !inner[k - 1]; k--)
		;
	if (!k) { /* all padding: the session ends there */
		w->clean = false;
		return;
	}
	type = inner[k - 1];
	n = k - 1;
	content = inner;
	if (type == TLS_CT_APPLICATION_DATA && n) {
		memcpy(w->want + w->want_len, content, n);
		w->want_len += n;
		if (w->clean)
			w->exact = w->want_len;
	} else if (!(type == TLS_CT_APPLICATION_DATA && !n)) {
		w->clean = false;
	}
	/* A well-formed KeyUpdate moves the peer to its next keys too. */
	if (type == TLS_CT_HANDSHAKE && n == 5 && content[0] == TLS_HS_KEY_UPDATE && !content[1] &&
	    !content[2] && content[3] == 1 && content[4] <= 1) {
		FUZZ_CHECK(!tls_rec_update(&w->peer_tx));
		w->key_update_requests += content[4];
	}
}

/* What the channel sent: KeyUpdate(update_not_requested) records, each
 * followed by the peer's opener moving to the next keys. */
static unsigned check_output(struct world *w)
{
	const uint8_t *p;
	size_t n = tls_chan_pending(&w->ch, &p), body, got;
	unsigned replies = 0;
	uint8_t rec[64], type;

	while (n) {
		FUZZ_CHECK(n >= TLS_REC_HDR && !tls_rec_check_header(p, &body));
		FUZZ_CHECK(body == 5 + 1 + TLS_REC_TAG && n >= TLS_REC_HDR + body);
		memcpy(rec, p, TLS_REC_HDR + body);
		FUZZ_CHECK(!tls_rec_open(&w->peer_rx, rec, body, rec + TLS_REC_HDR, &got, &type));
		FUZZ_CHECK(type == TLS_CT_HANDSHAKE && got == 5 && rec[5] == TLS_HS_KEY_UPDATE &&
			   rec[9] == 0);
		FUZZ_CHECK(!tls_rec_update(&w->peer_rx));
		replies++;
		tls_chan_sent(&w->ch, TLS_REC_HDR + body);
		n = tls_chan_pending(&w->ch, &p);
	}
	return replies;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct world w = { .clean = true };
	size_t rx_size = 4096, rd_size = 16384, got_len = 0;
	uint8_t *got, *buf;
	bool broken = false;
	unsigned replies = 0;
	SSL *ssl = SSL_new(server_ctx());
	int r = 0;

	FUZZ_CHECK(ssl);
	SSL_set_accept_state(ssl);
	FUZZ_CHECK(!tls_chan_init(&w.ch, ssl));
	w.ch.rx = malloc(sizeof(*w.ch.rx));
	w.ch.tx = malloc(sizeof(*w.ch.tx));
	FUZZ_CHECK(!tls_rec_init(w.ch.rx, false, 0x1301, secret_c, 32, 0));
	FUZZ_CHECK(!tls_rec_init(w.ch.tx, true, 0x1301, secret_s, 32, 0));
	FUZZ_CHECK(!tls_rec_init(&w.peer_tx, true, 0x1301, secret_c, 32, 0));
	FUZZ_CHECK(!tls_rec_init(&w.peer_rx, false, 0x1301, secret_s, 32, 0));
	w.stream = stream_buf;
	w.want = want_buf;
	got = got_buf;
	buf = read_buf;

	while (in.left) {
		uint8_t op = fuzz_u8(&in), content[TLS_REC_MAX_PLAIN];

		switch (op % 4) {
		case 0: {
			uint8_t type = fuzz_u8(&in), pad = fuzz_u8(&in);
			size_t n = (fuzz_u8(&in) | (size_t)fuzz_u8(&in) << 8) % (TLS_REC_MAX_PLAIN + 1);

			if (n > in.left)
				n = in.left;
			fuzz_take(&in, content, n);
			seal(&w, type, pad, content, n);
			break;
		}
		case 1: {
			size_t n = fuzz_u8(&in);

			if (w.len + n > STREAM_MAX)
				break;
			fuzz_take(&in, w.stream + w.len, n);
			w.len += n;
			w.clean = false;
			break;
		}
		case 2: {
			size_t off = fuzz_u8(&in) | (size_t)fuzz_u8(&in) << 8;
			uint8_t mask = fuzz_u8(&in);

			if (w.len && mask) {
				w.stream[off % w.len] ^= mask;
				w.clean = false;
			}
			break;
		}
		default:
			rx_size = 1 + (fuzz_u8(&in) | (size_t)fuzz_u8(&in) << 8);
			rd_size = 1 + (fuzz_u8(&in) | (size_t)fuzz_u8(&in) << 8);
			break;
		}
	}

	while (!broken && w.delivered < w.len) {
		uint8_t *dst;
		size_t room = tls_chan_rx_space(&w.ch, &dst), n = w.len - w.delivered;

		if (n > rx_size)
			n = rx_size;
		if (n > room)
			n = room;
		FUZZ_CHECK(n); /* a record always fits the input buffer */
		memcpy(dst, w.stream + w.delivered, n);
		tls_chan_received(&w.ch, n);
		w.delivered += n;
		while ((r = tls_chan_read(&w.ch, buf, rd_size)) > 0) {
			FUZZ_CHECK(got_len + (size_t)r <= w.want_len);
			memcpy(got + got_len, buf, (size_t)r);
			got_len += (size_t)r;
		}
		if (r < 0) {
			FUZZ_CHECK(r == -EPROTO || r == -EPIPE);
			broken = true;
		}
		replies += check_output(&w);
	}
	/* Read data is sealed data, in order, as far as nothing interfered. */
	FUZZ_CHECK(!memcmp(got, w.want, got_len < w.exact ? got_len : w.exact));
	if (w.clean)
		FUZZ_CHECK(!broken && got_len == w.want_len);
	FUZZ_CHECK(replies <= w.key_update_requests);

	tls_rec_fini(&w.peer_tx);
	tls_rec_fini(&w.peer_rx);
	tls_chan_fini(&w.ch);
	return 0;
}
