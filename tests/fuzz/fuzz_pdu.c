/* NVMe/TCP framing (net/tcp_frame.h) over a stream of PDUs, read the way
 * the target's receive path reads them: the common header, its digest,
 * the data span and DATAL, a command capsule's SGL, the data digest.
 *
 * Input: one byte of settings (bit 0 header digests, bit 1 data digests,
 * bit 2 strict, bit 3 the host's side, bits 4-7 the in-capsule limit in
 * KiB), then PDUs back to back. Beyond "no crash", each accepted PDU must
 * be consistent: header, padding, data and digest add up to PLEN within
 * the bytes received; an accepted capsule's SGL describes exactly its
 * in-capsule data, within the limit; a refused one gets one of the three
 * SGL statuses. And what we send passes our own strict checks. */
#include "tests/fuzz/fuzz.h"
#include "net/tcp_frame.h"

static void check_err_str(enum nvmg_pdu_err err, const struct nvmg_tcp_hdr *h, bool hdgst,
			  bool ddgst)
{
	char buf[256];
	const char *s = nvmg_pdu_err_str(err, h, hdgst, ddgst, buf, sizeof(buf));

	FUZZ_CHECK(s && s[0] && strlen(s) < sizeof(buf));
}

/* A header built by nvmg_pdu_init_hdr for what h announced passes the
 * strict checks and announces the same data length back. */
static void check_roundtrip(uint8_t type, bool hdgst, bool ddgst, uint32_t len)
{
	uint8_t buf[sizeof(struct nvmg_tcp_cmd) + NVMG_PDU_DGST_LEN] __attribute__((aligned(8)));
	struct nvmg_tcp_hdr *h = (struct nvmg_tcp_hdr *)buf;
	uint32_t total, hdr_total = 0, pad, got, pdo;

	if (!nvmg_pdu_has_digests(type) || type == NVMG_TCP_RSP || type == NVMG_TCP_R2T)
		return;
	memset(buf, 0, sizeof(buf));
	pdo = nvmg_pdu_data_offset(nvmg_pdu_hdr_total(type, hdgst), 4);
	total = nvmg_pdu_init_hdr(h, type, hdgst, ddgst, pdo, len);
	nvmg_pdu_put_hdgst(h);
	FUZZ_CHECK(total == nvmg_pdu_hdr_total(type, hdgst));
	FUZZ_CHECK(nvmg_pdu_check_hdr(h, NVMG_PDU_TO_CTRL | NVMG_PDU_TO_HOST, hdgst, true, &hdr_total) ==
		   NVMG_PDU_OK);
	FUZZ_CHECK(hdr_total == total);
	FUZZ_CHECK(nvmg_pdu_check_hdgst(h, hdgst) == NVMG_PDU_OK);
	FUZZ_CHECK(nvmg_pdu_data_span(h, hdr_total, ddgst, &pad, &got) == NVMG_PDU_OK);
	FUZZ_CHECK(got == len && pad < 4);
}

static void check_capsule(const struct nvmg_tcp_cmd *pdu, uint32_t in_len, uint32_t max_in)
{
	uint32_t sgl_len = 0xdeadbeef;
	uint16_t st = nvmg_pdu_capsule_sgl(&pdu->sqe.dptr, in_len, max_in, &sgl_len);

	if (st) {
		FUZZ_CHECK(st == (NVMG_SC_GENERIC(NVME_SC_SGL_INVALID_TYPE) | NVME_SC_DNR) ||
			   st == (NVMG_SC_GENERIC(NVME_SC_SGL_INVALID_OFFSET) | NVME_SC_DNR) ||
			   st == (NVMG_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVME_SC_DNR));
		FUZZ_CHECK(sgl_len == 0);
		return;
	}
	if (in_len) {
		FUZZ_CHECK(sgl_len == in_len && in_len <= max_in);
		FUZZ_CHECK(pdu->sqe.dptr.type == NVMG_SGL_DATA_BLOCK_OFFSET);
	} else if (pdu->sqe.dptr.type != NVMG_SGL_TRANSPORT_DATA_BLOCK) {
		FUZZ_CHECK(sgl_len == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t set, pdu[65536] __attribute__((aligned(8)));
	bool hdgst, ddgst, strict, host;
	uint32_t types, max_in;

	if (!size)
		return 0;
	set = data[0];
	hdgst = set & 1;
	ddgst = set & 2;
	strict = set & 4;
	host = set & 8;
	max_in = (set >> 4) * 1024u;
	types = host ? NVMG_PDU_TO_HOST : NVMG_PDU_TO_CTRL;
	data++;
	size--;

	while (size >= sizeof(struct nvmg_tcp_hdr)) {
		const struct nvmg_tcp_hdr *h = (const struct nvmg_tcp_hdr *)pdu;
		uint32_t hdr_total = 0, plen, pad, len, dd = ddgst ? NVMG_PDU_DGST_LEN : 0;
		enum nvmg_pdu_err err;

		/* A copy, as the target's receive buffer is: aligned, and ASan
		 * sees any read past what arrived. */
		memcpy(pdu, data, sizeof(*h));
		err = nvmg_pdu_check_hdr(h, types, hdgst, strict, &hdr_total);
		if (err) {
			check_err_str(err, h, hdgst, ddgst);
			return 0;
		}
		plen = le32toh(h->plen);
		FUZZ_CHECK(types & NVMG_PDU_BIT(h->type));
		FUZZ_CHECK(hdr_total == nvmg_pdu_hdr_total(h->type, hdgst) && hdr_total <= plen);
		if (hdr_total > size || plen > sizeof(pdu) || plen > size)
			return 0; /* the stream ends inside this PDU */
		memcpy(pdu, data, plen);
		err = nvmg_pdu_check_hdgst(h, hdgst);
		if (err) {
			check_err_str(err, h, hdgst, ddgst);
			return 0;
		}
		if (h->type == NVMG_TCP_ICREQ || h->type == NVMG_TCP_ICRESP || h->type == NVMG_TCP_R2T ||
		    h->type == NVMG_TCP_RSP) {
			err = nvmg_pdu_check_no_data(h, hdr_total);
			if (err) {
				check_err_str(err, h, hdgst, ddgst);
				return 0;
			}
			FUZZ_CHECK(plen == hdr_total);
		} else if (h->type == NVMG_TCP_H2C_TERM || h->type == NVMG_TCP_C2H_TERM) {
			/* The offending header follows as data; nothing to span. */
		} else {
			err = nvmg_pdu_data_span(h, hdr_total, ddgst, &pad, &len);
			if (err) {
				check_err_str(err, h, hdgst, ddgst);
				return 0;
			}
			if (len) {
				FUZZ_CHECK(hdr_total + pad == h->pdo);
				FUZZ_CHECK((uint64_t)h->pdo + len + dd == plen);
				FUZZ_CHECK(!!(h->flags & NVMG_TCP_F_DDGST) == ddgst);
			} else {
				FUZZ_CHECK(pad == 0 && plen == hdr_total);
			}
			if (h->type == NVMG_TCP_H2C_DATA || h->type == NVMG_TCP_C2H_DATA) {
				err = nvmg_pdu_check_datal((const struct nvmg_tcp_data *)h, len);
				if (err) {
					check_err_str(err, h, hdgst, ddgst);
					return 0;
				}
				FUZZ_CHECK(len && le32toh(((const struct nvmg_tcp_data *)h)->length) == len);
			}
			if (h->type == NVMG_TCP_CMD)
				check_capsule((const struct nvmg_tcp_cmd *)h, len, max_in);
			if (len && ddgst) {
				uint32_t crc = nvmg_crc32c_update(NVMG_CRC32C_INIT, pdu + h->pdo, len);
				bool ok = nvmg_pdu_check_ddgst(crc, pdu + h->pdo + len) == NVMG_PDU_OK;
				uint32_t field;

				memcpy(&field, pdu + h->pdo + len, 4);
				FUZZ_CHECK(ok == (field == nvmg_pdu_ddgst(pdu + h->pdo, len)));
			}
			check_roundtrip(h->type, hdgst, ddgst, len);
		}
		data += plen;
		size -= plen;
	}
	return 0;
}
