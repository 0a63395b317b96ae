/* NVMe/TCP framing (net/tcp_frame.h): every header check the target and
 * the load generator rely on, the digests against known CRC32C values,
 * and that the headers we build pass our own checks. */
#include <stdint.h>
#include <string.h>
#include "net/tcp_frame.h"
#include "tests/unit/check.h"

/* A PDU buffer: header, header digest, padding, data, data digest. */
static uint8_t pdu[512];

static struct nvmg_tcp_hdr *hdr(void)
{
	return (struct nvmg_tcp_hdr *)pdu;
}

static void set_hdr(uint8_t type, uint8_t flags, uint8_t hlen, uint8_t pdo, uint32_t plen)
{
	memset(pdu, 0, sizeof(pdu));
	hdr()->type = type;
	hdr()->flags = flags;
	hdr()->hlen = hlen;
	hdr()->pdo = pdo;
	hdr()->plen = htole32(plen);
}

static enum nvmg_pdu_err check(uint32_t types, bool hdgst, bool strict, uint32_t *total)
{
	uint32_t dummy;

	return nvmg_pdu_check_hdr(hdr(), types, hdgst, strict, total ? total : &dummy);
}

/* CRC32C test values of RFC 3720 (B.4) and the usual check string. */
static void test_crc32c_vectors(void)
{
	uint8_t buf[32];

	CHECK(nvmg_crc32c("123456789", 9) == 0xe3069283u);
	memset(buf, 0, sizeof(buf));
	CHECK(nvmg_crc32c(buf, sizeof(buf)) == 0x8a9136aau);
	memset(buf, 0xff, sizeof(buf));
	CHECK(nvmg_crc32c(buf, sizeof(buf)) == 0x62a8ab43u);
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)i;
	CHECK(nvmg_crc32c(buf, sizeof(buf)) == 0x46dd794eu);
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(31 - i);
	CHECK(nvmg_crc32c(buf, sizeof(buf)) == 0x113fdb5cu);
	/* Piecewise, as a receiver accumulates data that arrives in parts. */
	uint32_t crc = nvmg_crc32c_update(NVMG_CRC32C_INIT, "1234", 4);

	crc = nvmg_crc32c_update(crc, "56789", 5);
	CHECK(nvmg_crc32c_final(crc) == 0xe3069283u);
	/* The field goes on the wire little endian. */
	uint32_t field = nvmg_pdu_ddgst("123456789", 9);

	CHECK(memcmp(&field, "\x83\x92\x06\xe3", 4) == 0);
}

/* A CapsuleCmd with both digests and 256 bytes in capsule, as built. */
static uint32_t build_cmd(uint32_t len)
{
	struct nvmg_tcp_cmd *c = (struct nvmg_tcp_cmd *)pdu;
	uint32_t total, pdo, dg;

	memset(pdu, 0, sizeof(pdu));
	pdo = nvmg_pdu_data_offset(nvmg_pdu_hdr_total(NVMG_TCP_CMD, true), 4);
	total = nvmg_pdu_init_hdr(&c->hdr, NVMG_TCP_CMD, true, true, pdo, len);
	c->sqe.opcode = 0x01;
	c->sqe.cid = 7;
	nvmg_pdu_put_hdgst(&c->hdr);
	for (uint32_t i = 0; i < len; i++)
		pdu[pdo + i] = (uint8_t)(i * 7);
	dg = nvmg_pdu_ddgst(pdu + pdo, len);
	memcpy(pdu + pdo + len, &dg, 4);
	return total;
}

static void test_valid_pdu_passes(void)
{
	uint32_t total = 0, pad = 1, len = 0, built = build_cmd(256);
	uint32_t crc;

	CHECK(built == 72 + 4);
	CHECK(hdr()->flags == (NVMG_TCP_F_HDGST | NVMG_TCP_F_DDGST));
	CHECK(hdr()->pdo == 76 && le32toh(hdr()->plen) == 76 + 256 + 4);
	CHECK(check(NVMG_PDU_TO_CTRL, true, false, &total) == NVMG_PDU_OK);
	CHECK(check(NVMG_PDU_TO_CTRL, true, true, &total) == NVMG_PDU_OK);
	CHECK(total == 76);
	CHECK(nvmg_pdu_check_hdgst(hdr(), true) == NVMG_PDU_OK);
	CHECK(nvmg_pdu_data_span(hdr(), total, true, &pad, &len) == NVMG_PDU_OK);
	CHECK(pad == 0 && len == 256);
	crc = nvmg_crc32c_update(NVMG_CRC32C_INIT, pdu + 76, 100);
	crc = nvmg_crc32c_update(crc, pdu + 176, 156);
	CHECK(nvmg_pdu_check_ddgst(crc, pdu + 76 + 256) == NVMG_PDU_OK);

	/* No data: PLEN is the header, PDO and DDGSTF are not read. */
	set_hdr(NVMG_TCP_CMD, 0, 72, 0, 72);
	CHECK(check(NVMG_PDU_TO_CTRL, false, false, &total) == NVMG_PDU_OK && total == 72);
	CHECK(nvmg_pdu_data_span(hdr(), total, true, &pad, &len) == NVMG_PDU_OK);
	CHECK(pad == 0 && len == 0);
}

/* HLEN per type; each end accepts only what it receives. */
static void test_hlen_per_type(void)
{
	static const struct {
		uint8_t type;
		uint8_t hlen;
		uint32_t to;
	} types[] = {
		{ NVMG_TCP_ICREQ, 128, NVMG_PDU_TO_CTRL },  { NVMG_TCP_ICRESP, 128, NVMG_PDU_TO_HOST },
		{ NVMG_TCP_H2C_TERM, 24, NVMG_PDU_TO_CTRL }, { NVMG_TCP_C2H_TERM, 24, NVMG_PDU_TO_HOST },
		{ NVMG_TCP_CMD, 72, NVMG_PDU_TO_CTRL },      { NVMG_TCP_RSP, 24, NVMG_PDU_TO_HOST },
		{ NVMG_TCP_H2C_DATA, 24, NVMG_PDU_TO_CTRL }, { NVMG_TCP_C2H_DATA, 24, NVMG_PDU_TO_HOST },
		{ NVMG_TCP_R2T, 24, NVMG_PDU_TO_HOST },
	};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		uint8_t t = types[i].type, hl = types[i].hlen;
		uint32_t other = types[i].to == NVMG_PDU_TO_CTRL ? NVMG_PDU_TO_HOST : NVMG_PDU_TO_CTRL;
		uint32_t total = 0;

		CHECK(nvmg_pdu_hlen(t) == hl);
		set_hdr(t, 0, hl, 0, hl);
		CHECK(check(types[i].to, false, false, &total) == NVMG_PDU_OK && total == hl);
		CHECK(check(types[i].to, false, true, NULL) == NVMG_PDU_OK);
		CHECK(check(other, false, false, NULL) == NVMG_PDU_ETYPE);
		set_hdr(t, 0, (uint8_t)(hl - 4), 0, hl);
		CHECK(check(types[i].to, false, false, NULL) == NVMG_PDU_EHLEN);
		set_hdr(t, 0, (uint8_t)(hl + 8), 0, hl + 8);
		CHECK(check(types[i].to, false, false, NULL) == NVMG_PDU_EHLEN);
	}
	/* Types NVMe/TCP 1.0 does not define, even with every bit in the mask. */
	for (unsigned t = 0x08; t < 0x100; t += (t < 0x0a ? 2 : 0x31)) {
		set_hdr((uint8_t)t, 0, 24, 0, 24);
		CHECK(check(~0u, false, false, NULL) == NVMG_PDU_ETYPE);
	}
	set_hdr(0xff, 0, 24, 0, 24);
	CHECK(check(~0u, false, false, NULL) == NVMG_PDU_ETYPE);
}

static void test_plen_smaller_than_header(void)
{
	set_hdr(NVMG_TCP_CMD, 0, 72, 0, 71);
	CHECK(check(NVMG_PDU_TO_CTRL, false, false, NULL) == NVMG_PDU_EPLEN);
	/* With header digests the digest counts as header. */
	set_hdr(NVMG_TCP_H2C_DATA, NVMG_TCP_F_HDGST, 24, 28, 27);
	CHECK(check(NVMG_PDU_TO_CTRL, true, false, NULL) == NVMG_PDU_EPLEN);
	set_hdr(NVMG_TCP_H2C_DATA, NVMG_TCP_F_HDGST, 24, 28, 28);
	CHECK(check(NVMG_PDU_TO_CTRL, true, false, NULL) == NVMG_PDU_OK);
	/* TermReqs carry no digest: 24 is enough. */
	set_hdr(NVMG_TCP_H2C_TERM, 0, 24, 0, 24);
	CHECK(check(NVMG_PDU_TO_CTRL, true, false, NULL) == NVMG_PDU_OK);
	set_hdr(NVMG_TCP_H2C_TERM, 0, 24, 0, 23);
	CHECK(check(NVMG_PDU_TO_CTRL, true, false, NULL) == NVMG_PDU_EPLEN);
	/* A TermReq echoes at most 128 bytes: strict readers refuse more. */
	set_hdr(NVMG_TCP_C2H_TERM, 0, 24, 0, 24 + 128);
	CHECK(check(NVMG_PDU_TO_HOST, false, true, NULL) == NVMG_PDU_OK);
	set_hdr(NVMG_TCP_C2H_TERM, 0, 24, 0, 24 + 129);
	CHECK(check(NVMG_PDU_TO_HOST, false, true, NULL) == NVMG_PDU_EPLEN);
	CHECK(check(NVMG_PDU_TO_HOST, false, false, NULL) == NVMG_PDU_OK);
	/* PDUs without data: PLEN must be exactly the header. */
	set_hdr(NVMG_TCP_R2T, NVMG_TCP_F_HDGST, 24, 0, 32);
	CHECK(check(NVMG_PDU_TO_HOST, true, true, NULL) == NVMG_PDU_OK);
	CHECK(nvmg_pdu_check_no_data(hdr(), 28) == NVMG_PDU_EPLEN);
	hdr()->plen = htole32(28);
	CHECK(nvmg_pdu_check_no_data(hdr(), 28) == NVMG_PDU_OK);
}

static void test_data_span(void)
{
	uint32_t pad = 0, len = 0;

	/* PDO inside the header (and its digest). */
	set_hdr(NVMG_TCP_H2C_DATA, 0, 24, 20, 24 + 512);
	CHECK(nvmg_pdu_data_span(hdr(), 24, false, &pad, &len) == NVMG_PDU_EPDO);
	set_hdr(NVMG_TCP_H2C_DATA, NVMG_TCP_F_HDGST, 24, 24, 28 + 512);
	CHECK(nvmg_pdu_data_span(hdr(), 28, false, &pad, &len) == NVMG_PDU_EPDO);
	/* PLEN must reach past PDO by a data byte (and the data digest). */
	set_hdr(NVMG_TCP_H2C_DATA, 0, 24, 24, 24);
	CHECK(nvmg_pdu_data_span(hdr(), 24, false, &pad, &len) == NVMG_PDU_OK && len == 0);
	set_hdr(NVMG_TCP_H2C_DATA, 0, 24, 32, 30);
	CHECK(nvmg_pdu_data_span(hdr(), 24, false, &pad, &len) == NVMG_PDU_EPLEN);
	set_hdr(NVMG_TCP_H2C_DATA, NVMG_TCP_F_DDGST, 24, 24, 28);
	CHECK(nvmg_pdu_data_span(hdr(), 24, true, &pad, &len) == NVMG_PDU_EPLEN);
	set_hdr(NVMG_TCP_H2C_DATA, NVMG_TCP_F_DDGST, 24, 24, 29);
	CHECK(nvmg_pdu_data_span(hdr(), 24, true, &pad, &len) == NVMG_PDU_OK && len == 1);
	/* DDGSTF both ways, only when data is there. */
	set_hdr(NVMG_TCP_H2C_DATA, 0, 24, 24, 24 + 512 + 4);
	CHECK(nvmg_pdu_data_span(hdr(), 24, true, &pad, &len) == NVMG_PDU_EDDGSTF);
	set_hdr(NVMG_TCP_H2C_DATA, NVMG_TCP_F_DDGST, 24, 24, 24 + 512);
	CHECK(nvmg_pdu_data_span(hdr(), 24, false, &pad, &len) == NVMG_PDU_EDDGSTF);
	/* Padding up to PDO, then data, then the digest. */
	set_hdr(NVMG_TCP_C2H_DATA, NVMG_TCP_F_HDGST | NVMG_TCP_F_DDGST, 24, 64, 64 + 4096 + 4);
	CHECK(nvmg_pdu_data_span(hdr(), 28, true, &pad, &len) == NVMG_PDU_OK);
	CHECK(pad == 36 && len == 4096);
	/* DATAL must be what PLEN carries, and not 0. */
	((struct nvmg_tcp_data *)pdu)->length = htole32(4096);
	CHECK(nvmg_pdu_check_datal((const void *)pdu, len) == NVMG_PDU_OK);
	((struct nvmg_tcp_data *)pdu)->length = htole32(4095);
	CHECK(nvmg_pdu_check_datal((const void *)pdu, len) == NVMG_PDU_EDATAL);
	((struct nvmg_tcp_data *)pdu)->length = 0;
	CHECK(nvmg_pdu_check_datal((const void *)pdu, 0) == NVMG_PDU_EDATAL);
	/* Where data goes for a host that asked for alignment (HPDA). */
	CHECK(nvmg_pdu_data_offset(24, 4) == 24);
	CHECK(nvmg_pdu_data_offset(28, 4) == 28);
	CHECK(nvmg_pdu_data_offset(28, 32) == 32);
	CHECK(nvmg_pdu_data_offset(28, 128) == 128);
}

static void test_digest_flags(void)
{
	/* Header digests on: HDGSTF must be set on PDUs that carry one. */
	set_hdr(NVMG_TCP_CMD, 0, 72, 0, 76);
	CHECK(check(NVMG_PDU_TO_CTRL, true, false, NULL) == NVMG_PDU_EFLAGS);
	hdr()->flags = NVMG_TCP_F_HDGST;
	CHECK(check(NVMG_PDU_TO_CTRL, true, false, NULL) == NVMG_PDU_OK);
	/* ... but not on those that carry none. */
	set_hdr(NVMG_TCP_ICREQ, 0, 128, 0, 128);
	CHECK(check(NVMG_PDU_TO_CTRL, true, true, NULL) == NVMG_PDU_OK);
	/* Header digests off, HDGSTF set: a lenient reader ignores it. */
	set_hdr(NVMG_TCP_CMD, NVMG_TCP_F_HDGST, 72, 0, 72);
	CHECK(check(NVMG_PDU_TO_CTRL, false, false, NULL) == NVMG_PDU_OK);
	CHECK(check(NVMG_PDU_TO_CTRL, false, true, NULL) == NVMG_PDU_EFLAGS);
	/* Strict: flags the type does not define. */
	set_hdr(NVMG_TCP_RSP, NVMG_TCP_F_DDGST, 24, 0, 24);
	CHECK(check(NVMG_PDU_TO_HOST, false, false, NULL) == NVMG_PDU_OK);
	CHECK(check(NVMG_PDU_TO_HOST, false, true, NULL) == NVMG_PDU_EFLAGS);
	set_hdr(NVMG_TCP_R2T, NVMG_TCP_F_DATA_LAST, 24, 0, 24);
	CHECK(check(NVMG_PDU_TO_HOST, false, true, NULL) == NVMG_PDU_EFLAGS);
	set_hdr(NVMG_TCP_C2H_DATA, NVMG_TCP_F_DATA_LAST | NVMG_TCP_F_DATA_SUCCESS, 24, 24, 24 + 8);
	CHECK(check(NVMG_PDU_TO_HOST, false, true, NULL) == NVMG_PDU_OK);
	hdr()->flags |= 0x10;
	CHECK(check(NVMG_PDU_TO_HOST, false, true, NULL) == NVMG_PDU_EFLAGS);
	/* A TermReq is read whatever its flags: its FES is what matters. */
	set_hdr(NVMG_TCP_C2H_TERM, 0xff, 24, 0, 24);
	CHECK(check(NVMG_PDU_TO_HOST, false, true, NULL) == NVMG_PDU_OK);
}

static void test_bad_header_digest(void)
{
	uint32_t total = build_cmd(64);

	CHECK(nvmg_pdu_check_hdgst(hdr(), true) == NVMG_PDU_OK);
	CHECK(nvmg_pdu_hdgst_field(hdr()) == nvmg_crc32c(pdu, 72));
	pdu[40] ^= 0x01; /* a bit of the SQE */
	CHECK(nvmg_pdu_check_hdgst(hdr(), true) == NVMG_PDU_EHDGST);
	/* Not negotiated: nothing to check. */
	CHECK(nvmg_pdu_check_hdgst(hdr(), false) == NVMG_PDU_OK);
	pdu[40] ^= 0x01;
	pdu[total - 1] ^= 0x80; /* the digest itself */
	CHECK(nvmg_pdu_check_hdgst(hdr(), true) == NVMG_PDU_EHDGST);
	/* TermReqs have no header digest to check. */
	set_hdr(NVMG_TCP_H2C_TERM, 0, 24, 0, 24);
	CHECK(nvmg_pdu_check_hdgst(hdr(), true) == NVMG_PDU_OK);
}

static void test_bad_data_digest(void)
{
	uint32_t total = build_cmd(128), crc;

	crc = nvmg_crc32c_update(NVMG_CRC32C_INIT, pdu + total, 128);
	CHECK(nvmg_pdu_check_ddgst(crc, pdu + total + 128) == NVMG_PDU_OK);
	pdu[total + 5] ^= 0x20;
	crc = nvmg_crc32c_update(NVMG_CRC32C_INIT, pdu + total, 128);
	CHECK(nvmg_pdu_check_ddgst(crc, pdu + total + 128) == NVMG_PDU_EDDGST);
}

/* What the target and the load generator build passes the other's checks. */
static void test_built_headers(void)
{
	struct nvmg_tcp_data *d = (struct nvmg_tcp_data *)pdu;
	uint32_t total = 0, hl, pad, len;

	/* R2T: no data, PLEN is the header and its digest. */
	memset(pdu, 0, sizeof(pdu));
	hl = nvmg_pdu_init_hdr(&d->hdr, NVMG_TCP_R2T, true, true, 0, 0);
	nvmg_pdu_put_hdgst(&d->hdr);
	CHECK(hl == 28 && le32toh(d->hdr.plen) == 28 && d->hdr.flags == NVMG_TCP_F_HDGST);
	CHECK(check(NVMG_PDU_TO_HOST, true, true, &total) == NVMG_PDU_OK && total == 28);
	CHECK(nvmg_pdu_check_hdgst(hdr(), true) == NVMG_PDU_OK);
	CHECK(nvmg_pdu_check_no_data(hdr(), total) == NVMG_PDU_OK);

	/* C2HData padded to a host's HPDA of 7 (32 bytes), data digest on. */
	memset(pdu, 0, sizeof(pdu));
	hl = nvmg_pdu_init_hdr(&d->hdr, NVMG_TCP_C2H_DATA, true, true,
			       nvmg_pdu_data_offset(nvmg_pdu_hdr_total(NVMG_TCP_C2H_DATA, true), 32), 100);
	d->hdr.flags |= NVMG_TCP_F_DATA_LAST;
	d->length = htole32(100);
	nvmg_pdu_put_hdgst(&d->hdr);
	CHECK(hl == 28 && d->hdr.pdo == 32 && le32toh(d->hdr.plen) == 32 + 100 + 4);
	CHECK(check(NVMG_PDU_TO_HOST, true, true, &total) == NVMG_PDU_OK);
	CHECK(nvmg_pdu_check_hdgst(hdr(), true) == NVMG_PDU_OK);
	CHECK(nvmg_pdu_data_span(hdr(), total, true, &pad, &len) == NVMG_PDU_OK);
	CHECK(pad == 4 && len == 100);
	CHECK(nvmg_pdu_check_datal(d, len) == NVMG_PDU_OK);

	/* H2CData without digests. */
	memset(pdu, 0, sizeof(pdu));
	hl = nvmg_pdu_init_hdr(&d->hdr, NVMG_TCP_H2C_DATA, false, false, 24, 4096);
	d->length = htole32(4096);
	CHECK(hl == 24 && d->hdr.flags == 0 && d->hdr.pdo == 24 && le32toh(d->hdr.plen) == 24 + 4096);
	CHECK(check(NVMG_PDU_TO_CTRL, false, false, &total) == NVMG_PDU_OK);
	CHECK(nvmg_pdu_data_span(hdr(), total, false, &pad, &len) == NVMG_PDU_OK);
	CHECK(pad == 0 && len == 4096 && nvmg_pdu_check_datal(d, len) == NVMG_PDU_OK);

	/* ICResp: no digests even when negotiated. */
	memset(pdu, 0, sizeof(pdu));
	hl = nvmg_pdu_init_hdr(hdr(), NVMG_TCP_ICRESP, true, true, 0, 0);
	CHECK(hl == 128 && hdr()->flags == 0 && le32toh(hdr()->plen) == 128);
	CHECK(check(NVMG_PDU_TO_HOST, false, true, &total) == NVMG_PDU_OK && total == 128);

	/* C2HTermReq echoing 8 bytes. */
	struct nvmg_tcp_term *t = (struct nvmg_tcp_term *)pdu;

	nvmg_pdu_init_term(t, NVMG_TCP_C2H_TERM, NVMG_TCP_FES_HDGST_ERROR, 4, 8);
	CHECK(t->hdr.hlen == 24 && le32toh(t->hdr.plen) == 32 && t->hdr.flags == 0);
	CHECK(le16toh(t->fes) == NVMG_TCP_FES_HDGST_ERROR && le32toh(t->fei) == 4);
	CHECK(check(NVMG_PDU_TO_HOST, true, true, NULL) == NVMG_PDU_OK);
}

int main(void)
{
	test_crc32c_vectors();
	test_valid_pdu_passes();
	test_hlen_per_type();
	test_plen_smaller_than_header();
	test_data_span();
	test_digest_flags();
	test_bad_header_digest();
	test_bad_data_digest();
	test_built_headers();
	return check_report("test_pdu");
}
