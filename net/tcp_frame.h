/* NVMe/TCP framing, shared by the target (net/) and the load generator
 * (tools/perf/): the checks on a received PDU header (type, HLEN, flags,
 * PLEN, PDO, digests), the data span it carries, and the common header
 * and digests of a PDU to send.
 *
 * Pure functions of the bytes and of what ICReq/ICResp negotiated. A
 * check returns an enum nvmg_pdu_err; the caller maps it: the target to
 * a C2HTermReq's FES and FEI, the load generator to a message. The
 * checks run once per PDU on the I/O path, so they are inline; only the
 * names and messages live in tcp_frame.c. */
#ifndef NVMG_TCP_FRAME_H
#define NVMG_TCP_FRAME_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "net/crc32c.h"
#include "net/tcp_pdu.h"

enum nvmg_pdu_err {
	NVMG_PDU_OK = 0,
	NVMG_PDU_ETYPE,   /* a type this end does not receive */
	NVMG_PDU_EHLEN,   /* HLEN is not the type's */
	NVMG_PDU_EFLAGS,  /* HDGSTF clear with header digests on (strict: any flag out of place) */
	NVMG_PDU_EPLEN,   /* PLEN too short for the header, or for PDO and one data byte */
	NVMG_PDU_EPDO,    /* data would start inside the header */
	NVMG_PDU_EDDGSTF, /* DDGSTF disagrees with the negotiated data digest */
	NVMG_PDU_EDATAL,  /* DATAL is 0 or not the length PLEN carries */
	NVMG_PDU_EHDGST,  /* header digest mismatch */
	NVMG_PDU_EDDGST,  /* data digest mismatch */
};

#define NVMG_PDU_BIT(type) (1u << (type))
/* What a controller and a host receive. */
#define NVMG_PDU_TO_CTRL                                                                           \
	(NVMG_PDU_BIT(NVMG_TCP_ICREQ) | NVMG_PDU_BIT(NVMG_TCP_H2C_TERM) | NVMG_PDU_BIT(NVMG_TCP_CMD) | \
	 NVMG_PDU_BIT(NVMG_TCP_H2C_DATA))
#define NVMG_PDU_TO_HOST                                                                          \
	(NVMG_PDU_BIT(NVMG_TCP_ICRESP) | NVMG_PDU_BIT(NVMG_TCP_C2H_TERM) | NVMG_PDU_BIT(NVMG_TCP_RSP) | \
	 NVMG_PDU_BIT(NVMG_TCP_C2H_DATA) | NVMG_PDU_BIT(NVMG_TCP_R2T))

#define NVMG_PDU_DGST_LEN 4u

/* HLEN of each PDU type; 0 for a type NVMe/TCP 1.0 does not define. */
static inline uint32_t nvmg_pdu_hlen(uint8_t type)
{
	switch (type) {
	case NVMG_TCP_ICREQ:
	case NVMG_TCP_ICRESP:
		return sizeof(struct nvmg_tcp_icreq);
	case NVMG_TCP_H2C_TERM:
	case NVMG_TCP_C2H_TERM:
		return sizeof(struct nvmg_tcp_term);
	case NVMG_TCP_CMD:
		return sizeof(struct nvmg_tcp_cmd);
	case NVMG_TCP_RSP:
		return sizeof(struct nvmg_tcp_rsp);
	case NVMG_TCP_H2C_DATA:
	case NVMG_TCP_C2H_DATA:
	case NVMG_TCP_R2T:
		return sizeof(struct nvmg_tcp_data);
	default:
		return 0;
	}
}

/* Digests cover every PDU but the connection's own (ICReq, ICResp, TermReq). */
static inline bool nvmg_pdu_has_digests(uint8_t type)
{
	return type >= NVMG_TCP_CMD && type <= NVMG_TCP_R2T;
}

/* The FLAGS bits a type defines (NVMe/TCP 1.0, PDU common header). */
static inline uint8_t nvmg_pdu_defined_flags(uint8_t type)
{
	switch (type) {
	case NVMG_TCP_CMD:
		return NVMG_TCP_F_HDGST | NVMG_TCP_F_DDGST;
	case NVMG_TCP_RSP:
	case NVMG_TCP_R2T:
		return NVMG_TCP_F_HDGST;
	case NVMG_TCP_H2C_DATA:
		return NVMG_TCP_F_HDGST | NVMG_TCP_F_DDGST | NVMG_TCP_F_DATA_LAST;
	case NVMG_TCP_C2H_DATA:
		return NVMG_TCP_F_HDGST | NVMG_TCP_F_DDGST | NVMG_TCP_F_DATA_LAST |
		       NVMG_TCP_F_DATA_SUCCESS;
	default:
		return 0;
	}
}

/* Header bytes on the wire, its digest included, of a type the caller knows. */
static inline uint32_t nvmg_pdu_hdr_total(uint8_t type, bool hdgst)
{
	return nvmg_pdu_hlen(type) + (hdgst && nvmg_pdu_has_digests(type) ? NVMG_PDU_DGST_LEN : 0);
}

/* The common header, as soon as its 8 bytes are in: a type in `types`
 * (NVMG_PDU_BIT of each), its HLEN, HDGSTF set where header digests are
 * on, and PLEN covering the header. Sets *hdr_total to the header bytes
 * to wait for, digest included.
 *
 * strict also refuses what a lenient receiver lets pass, as Linux's nvmet
 * and so the target do: HDGSTF set with header digests off, a flag the
 * type does not define, a TermReq longer than its 128 bytes of data. The
 * load generator reads strictly: it is there to find target bugs. A
 * TermReq's other flags are let through so that its FES is read. */
static inline enum nvmg_pdu_err nvmg_pdu_check_hdr(const struct nvmg_tcp_hdr *h, uint32_t types,
						   bool hdgst, bool strict, uint32_t *hdr_total)
{
	uint32_t hlen = nvmg_pdu_hlen(h->type);
	bool dg = nvmg_pdu_has_digests(h->type);
	uint32_t plen = le32toh(h->plen);

	if (h->type >= 32 || !(types & NVMG_PDU_BIT(h->type)) || !hlen)
		return NVMG_PDU_ETYPE;
	if (h->hlen != hlen)
		return NVMG_PDU_EHLEN;
	*hdr_total = hlen + (dg && hdgst ? NVMG_PDU_DGST_LEN : 0);
	if (dg && hdgst && !(h->flags & NVMG_TCP_F_HDGST))
		return NVMG_PDU_EFLAGS;
	if (strict && dg &&
	    ((!hdgst && (h->flags & NVMG_TCP_F_HDGST)) || (h->flags & ~nvmg_pdu_defined_flags(h->type))))
		return NVMG_PDU_EFLAGS;
	if (plen < *hdr_total)
		return NVMG_PDU_EPLEN;
	if (strict && (h->type == NVMG_TCP_H2C_TERM || h->type == NVMG_TCP_C2H_TERM) &&
	    plen > hlen + NVMG_TCP_TERM_MAX_DATA)
		return NVMG_PDU_EPLEN;
	return NVMG_PDU_OK;
}

/* The digest field that follows a header of h->hlen bytes, as sent. */
static inline uint32_t nvmg_pdu_hdgst_field(const struct nvmg_tcp_hdr *h)
{
	uint32_t v;

	memcpy(&v, (const uint8_t *)h + h->hlen, NVMG_PDU_DGST_LEN);
	return le32toh(v);
}

/* The header digest a header of h->hlen bytes should carry. */
static inline uint32_t nvmg_pdu_hdgst(const struct nvmg_tcp_hdr *h)
{
	return nvmg_crc32c(h, h->hlen);
}

/* The whole header (hdr_total bytes) is in: its digest, if it has one. */
static inline enum nvmg_pdu_err nvmg_pdu_check_hdgst(const struct nvmg_tcp_hdr *h, bool hdgst)
{
	if (!hdgst || !nvmg_pdu_has_digests(h->type))
		return NVMG_PDU_OK;
	return nvmg_pdu_hdgst(h) == nvmg_pdu_hdgst_field(h) ? NVMG_PDU_OK : NVMG_PDU_EHDGST;
}

/* A PDU that never carries data: PLEN is its header's. */
static inline enum nvmg_pdu_err nvmg_pdu_check_no_data(const struct nvmg_tcp_hdr *h,
						       uint32_t hdr_total)
{
	return le32toh(h->plen) == hdr_total ? NVMG_PDU_OK : NVMG_PDU_EPLEN;
}

/* The data a checked header announces: *pad bytes between the header and
 * PDO, then *len data bytes, then the data digest if ddgst. PLEN equal to
 * the header means no data (PDO and DDGSTF are then not read). */
static inline enum nvmg_pdu_err nvmg_pdu_data_span(const struct nvmg_tcp_hdr *h, uint32_t hdr_total,
						   bool ddgst, uint32_t *pad, uint32_t *len)
{
	uint32_t plen = le32toh(h->plen), dd = ddgst ? NVMG_PDU_DGST_LEN : 0;

	*pad = 0;
	*len = 0;
	if (plen == hdr_total)
		return NVMG_PDU_OK;
	if (h->pdo < hdr_total)
		return NVMG_PDU_EPDO;
	if (plen < (uint32_t)h->pdo + dd + 1)
		return NVMG_PDU_EPLEN;
	if (ddgst != !!(h->flags & NVMG_TCP_F_DDGST))
		return NVMG_PDU_EDDGSTF;
	*pad = h->pdo - hdr_total;
	*len = plen - h->pdo - dd;
	return NVMG_PDU_OK;
}

/* H2CData and C2HData: DATAL is the data length PLEN carries, not 0. */
static inline enum nvmg_pdu_err nvmg_pdu_check_datal(const struct nvmg_tcp_data *d, uint32_t len)
{
	return len && le32toh(d->length) == len ? NVMG_PDU_OK : NVMG_PDU_EDATAL;
}

/* The data digest accumulated with nvmg_crc32c_update from
 * NVMG_CRC32C_INIT, against the 4 bytes that followed the data. */
static inline enum nvmg_pdu_err nvmg_pdu_check_ddgst(uint32_t crc, const void *field)
{
	uint32_t v;

	memcpy(&v, field, NVMG_PDU_DGST_LEN);
	return le32toh(v) == nvmg_crc32c_final(crc) ? NVMG_PDU_OK : NVMG_PDU_EDDGST;
}

/* The data digest field to send after len bytes of data. */
static inline uint32_t nvmg_pdu_ddgst(const void *data, size_t len)
{
	return htole32(nvmg_crc32c(data, len));
}

/* Where data starts after a header of hdr_total bytes, for a receiver
 * that wants it at a multiple of align bytes ((HPDA or CPDA + 1) * 4). */
static inline uint32_t nvmg_pdu_data_offset(uint32_t hdr_total, uint32_t align)
{
	return (hdr_total + align - 1) / align * align;
}

/* A command capsule's SGL against the in_len bytes of data it carries
 * (from nvmg_pdu_data_span) and the max_in the queue accepts in a
 * capsule: an NVMe status (SGL Descriptor Type Invalid, SGL Offset
 * Invalid, Data SGL Length Invalid) or 0 with *sgl_len the bytes the SGL
 * describes (in the capsule, or to move by R2T/C2HData). */
static inline uint16_t nvmg_pdu_capsule_sgl(const struct nvmg_sgl_desc *sgl, uint32_t in_len,
					    uint32_t max_in, uint32_t *sgl_len)
{
	*sgl_len = 0;
	if (in_len) {
		if (sgl->type != NVMG_SGL_DATA_BLOCK_OFFSET)
			return NVMG_SC_GENERIC(NVME_SC_SGL_INVALID_TYPE) | NVME_SC_DNR;
		if (le64toh(sgl->addr) != 0)
			return NVMG_SC_GENERIC(NVME_SC_SGL_INVALID_OFFSET) | NVME_SC_DNR;
		if (in_len > max_in || le32toh(sgl->length) != in_len)
			return NVMG_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVME_SC_DNR;
		*sgl_len = in_len;
	} else if (sgl->type == NVMG_SGL_TRANSPORT_DATA_BLOCK) {
		*sgl_len = le32toh(sgl->length);
	} else if (sgl->type == NVMG_SGL_DATA_BLOCK_OFFSET) {
		if (le32toh(sgl->length))
			return NVMG_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVME_SC_DNR;
	} else if (sgl->type != 0 || le32toh(sgl->length)) {
		return NVMG_SC_GENERIC(NVME_SC_SGL_INVALID_TYPE) | NVME_SC_DNR;
	}
	return 0;
}

/* The common header of a PDU to send: HDGSTF and DDGSTF as negotiated
 * (DDGSTF only with data), PDO and PLEN for data_len bytes at pdo (PDO 0
 * without data). The caller fills the rest of the header, then calls
 * nvmg_pdu_put_hdgst. Returns the header bytes on the wire. */
static inline uint32_t nvmg_pdu_init_hdr(struct nvmg_tcp_hdr *h, uint8_t type, bool hdgst,
					 bool ddgst, uint32_t pdo, uint32_t data_len)
{
	bool dg = nvmg_pdu_has_digests(type);
	uint32_t hlen = nvmg_pdu_hlen(type), total = hlen + (dg && hdgst ? NVMG_PDU_DGST_LEN : 0);

	h->type = type;
	h->flags = dg && hdgst ? NVMG_TCP_F_HDGST : 0;
	h->hlen = (uint8_t)hlen;
	if (data_len) {
		bool dd = dg && ddgst;

		if (dd)
			h->flags |= NVMG_TCP_F_DDGST;
		h->pdo = (uint8_t)pdo;
		h->plen = htole32(pdo + data_len + (dd ? NVMG_PDU_DGST_LEN : 0));
	} else {
		h->pdo = 0;
		h->plen = htole32(total);
	}
	return total;
}

/* Writes the header digest after a finished header, if HDGSTF says so. */
static inline void nvmg_pdu_put_hdgst(struct nvmg_tcp_hdr *h)
{
	uint32_t crc;

	if (!(h->flags & NVMG_TCP_F_HDGST))
		return;
	crc = htole32(nvmg_pdu_hdgst(h));
	memcpy((uint8_t *)h + h->hlen, &crc, NVMG_PDU_DGST_LEN);
}

/* A TermReq (type H2C_TERM or C2H_TERM) whose data, the offending header,
 * is data_len bytes the caller copies after it. */
static inline void nvmg_pdu_init_term(struct nvmg_tcp_term *t, uint8_t type, uint16_t fes,
				      uint32_t fei, uint32_t data_len)
{
	memset(t, 0, sizeof(*t));
	t->hdr.type = type;
	t->hdr.hlen = sizeof(*t);
	t->hdr.plen = htole32((uint32_t)(sizeof(*t) + data_len));
	t->fes = htole16(fes);
	t->fei = htole32(fei);
}

/* Names for messages (tcp_frame.c). */
const char *nvmg_pdu_type_name(uint8_t type);
const char *nvmg_pdu_fes_name(uint16_t fes);
/* What err means for header h (the whole header for EHDGST and EDATAL),
 * read with the negotiated digests; returns buf. */
const char *nvmg_pdu_err_str(enum nvmg_pdu_err err, const struct nvmg_tcp_hdr *h, bool hdgst,
			     bool ddgst, char *buf, size_t len);

#endif
