/* NVMe/TCP framing: names and messages (the checks are inline in
 * tcp_frame.h). Depends on nothing but libc, so that the load generator
 * links this object alone out of the net archive. */
#include <stdio.h>
#include "net/tcp_frame.h"

const char *nvmg_pdu_type_name(uint8_t type)
{
	switch (type) {
	case NVMG_TCP_ICREQ: return "ICReq";
	case NVMG_TCP_ICRESP: return "ICResp";
	case NVMG_TCP_H2C_TERM: return "H2CTermReq";
	case NVMG_TCP_C2H_TERM: return "C2HTermReq";
	case NVMG_TCP_CMD: return "CapsuleCmd";
	case NVMG_TCP_RSP: return "CapsuleResp";
	case NVMG_TCP_H2C_DATA: return "H2CData";
	case NVMG_TCP_C2H_DATA: return "C2HData";
	case NVMG_TCP_R2T: return "R2T";
	default: return "unknown";
	}
}

const char *nvmg_pdu_fes_name(uint16_t fes)
{
	switch (fes) {
	case NVMG_TCP_FES_INVALID_HEADER: return "Invalid PDU Header Field";
	case NVMG_TCP_FES_PDU_SEQUENCE: return "PDU Sequence Error";
	case NVMG_TCP_FES_HDGST_ERROR: return "Header Digest Error";
	case NVMG_TCP_FES_DATA_OUT_OF_RANGE: return "Data Transfer Out of Range";
	case NVMG_TCP_FES_R2T_LIMIT: return "Data Transfer Limit Exceeded";
	case NVMG_TCP_FES_UNSUPPORTED_PARAM: return "Unsupported Parameter";
	default: return "Unknown FES";
	}
}

const char *nvmg_pdu_err_str(enum nvmg_pdu_err err, const struct nvmg_tcp_hdr *h, bool hdgst,
			     bool ddgst, char *buf, size_t len)
{
	const char *name = nvmg_pdu_type_name(h->type);
	uint32_t plen = le32toh(h->plen);

	switch (err) {
	case NVMG_PDU_OK:
		snprintf(buf, len, "%s PDU is well formed", name);
		break;
	case NVMG_PDU_ETYPE:
		snprintf(buf, len, "unexpected %s PDU (type 0x%02x hlen %u plen %u)", name, h->type,
			 h->hlen, plen);
		break;
	case NVMG_PDU_EHLEN:
		snprintf(buf, len, "%s PDU with HLEN %u, expected %u", name, h->hlen,
			 nvmg_pdu_hlen(h->type));
		break;
	case NVMG_PDU_EFLAGS:
		snprintf(buf, len, "%s PDU with flags 0x%02x (defined 0x%02x), but header digest is %s",
			 name, h->flags, nvmg_pdu_defined_flags(h->type), hdgst ? "enabled" : "disabled");
		break;
	case NVMG_PDU_EPLEN:
		snprintf(buf, len, "%s PDU with PLEN %u (HLEN %u PDO %u%s)", name, plen, h->hlen, h->pdo,
			 hdgst && nvmg_pdu_has_digests(h->type) ? ", header digest" : "");
		break;
	case NVMG_PDU_EPDO:
		snprintf(buf, len, "%s PDU with PDO %u, expected at least %u", name, h->pdo,
			 nvmg_pdu_hdr_total(h->type, hdgst));
		break;
	case NVMG_PDU_EDDGSTF:
		snprintf(buf, len, "%s PDU DDGSTF flag %s, but data digest is %s", name,
			 (h->flags & NVMG_TCP_F_DDGST) ? "set" : "clear", ddgst ? "enabled" : "disabled");
		break;
	case NVMG_PDU_EDATAL: {
		const struct nvmg_tcp_data *d = (const void *)h;

		snprintf(buf, len, "%s PLEN %u != PDO %u + DATAL %u%s", name, plen, h->pdo,
			 le32toh(d->length), ddgst ? " + 4 (data digest)" : "");
		break;
	}
	case NVMG_PDU_EHDGST:
		snprintf(buf, len, "header digest error in %s PDU: got 0x%08x, expected 0x%08x", name,
			 nvmg_pdu_hdgst_field(h), nvmg_pdu_hdgst(h));
		break;
	case NVMG_PDU_EDDGST:
		snprintf(buf, len, "data digest error in %s PDU", name);
		break;
	default:
		snprintf(buf, len, "%s PDU: framing error %d", name, (int)err);
		break;
	}
	return buf;
}
