/* Spec structures that libnvme 1.3's <nvme/types.h> does not define:
 * the submission/completion queue entries, the SGL descriptor and the
 * Fabrics command layouts. Everything else comes from <nvme/types.h>. */
#ifndef NVMG_SPEC_H
#define NVMG_SPEC_H

#include <stdint.h>
#include <nvme/types.h>

/* Common 64-byte submission queue entry (NVMe Base 2.0, Figure 88). */
struct nvmg_sgl_desc {
	uint64_t addr;
	uint32_t length;
	uint8_t rsvd[3];
	uint8_t type; /* bits 7:4 descriptor type, 3:0 subtype */
} __attribute__((packed));

struct nvmg_sqe {
	uint8_t opcode;
	uint8_t flags; /* 1:0 FUSE, 7:6 PSDT */
	uint16_t cid;
	uint32_t nsid;
	uint32_t cdw2;
	uint32_t cdw3;
	uint64_t mptr;
	struct nvmg_sgl_desc dptr;
	uint32_t cdw10;
	uint32_t cdw11;
	uint32_t cdw12;
	uint32_t cdw13;
	uint32_t cdw14;
	uint32_t cdw15;
} __attribute__((packed));

/* Fabrics commands overlay the SQE: opcode 7Fh, FCTYPE at byte 4. */
struct nvmg_fabrics_cmd {
	uint8_t opcode;
	uint8_t rsvd1;
	uint16_t cid;
	uint8_t fctype;
	uint8_t rsvd2[35];
	uint8_t ts[24];
} __attribute__((packed));

struct nvmg_connect_cmd {
	uint8_t opcode;
	uint8_t rsvd1;
	uint16_t cid;
	uint8_t fctype;
	uint8_t rsvd2[19];
	struct nvmg_sgl_desc dptr;
	uint16_t recfmt;
	uint16_t qid;
	uint16_t sqsize;
	uint8_t cattr;
	uint8_t rsvd3;
	uint32_t kato;
	uint8_t rsvd4[12];
} __attribute__((packed));

struct nvmg_prop_cmd {
	uint8_t opcode;
	uint8_t rsvd1;
	uint16_t cid;
	uint8_t fctype;
	uint8_t rsvd2[35];
	uint8_t attrib; /* bits 2:0 size: 0 = 4 bytes, 1 = 8 bytes */
	uint8_t rsvd3[3];
	uint32_t offset;
	uint64_t value; /* Property Set only */
	uint8_t rsvd4[8];
} __attribute__((packed));

struct nvmg_cqe {
	uint64_t result; /* DW0 (and DW1 for Property Get of 8 bytes) */
	uint16_t sqhd;
	uint16_t sqid;
	uint16_t cid;
	uint16_t status; /* bit 0 phase, 15:1 status field */
} __attribute__((packed));

_Static_assert(sizeof(struct nvmg_sqe) == 64, "SQE is 64 bytes");
_Static_assert(sizeof(struct nvmg_connect_cmd) == 64, "Connect is 64 bytes");
_Static_assert(sizeof(struct nvmg_prop_cmd) == 64, "Property cmd is 64 bytes");
_Static_assert(sizeof(struct nvmg_cqe) == 16, "CQE is 16 bytes");
_Static_assert(sizeof(struct nvmf_connect_data) == 1024, "Connect data");

/* PSDT (CDW0 bits 15:14): fabrics allow only SGLs. */
#define NVMG_PSDT_MASK 0xc0
#define NVMG_PSDT_SGL_MPTR_CONTIG 0x40
#define NVMG_PSDT_SGL_MPTR_SGL 0x80

/* SGL descriptor type byte (type << 4 | subtype). */
#define NVMG_SGL_DATA_BLOCK_OFFSET 0x01   /* in-capsule data */
#define NVMG_SGL_TRANSPORT_DATA_BLOCK 0x5a /* transport (R2T/C2HData) */

/* Connect CATTR bit 2: SQ flow control disabled. */
#define NVMG_CONNECT_CATTR_DISABLE_SQFC 0x04

/* Connect Invalid Parameters: DW0 names the field (IPO, IATTR bit 0 =
 * the field is in the Connect data rather than in the SQE). */
#define NVMG_IPO_SQE(off) ((uint32_t)(off))
#define NVMG_IPO_DATA(off) ((1u << 16) | (uint32_t)(off))

/* Internal status: libnvme's status field layout (SCT << 8 | SC, DNR). */
#define NVMG_STATUS(sct, sc) ((uint16_t)(((sct) << NVME_SCT_SHIFT) | (sc)))
#define NVMG_SC_GENERIC(sc) NVMG_STATUS(NVME_SCT_GENERIC, sc)
#define NVMG_SC_CMD(sc) NVMG_STATUS(NVME_SCT_CMD_SPECIFIC, sc)
#define NVMG_SC_MEDIA(sc) NVMG_STATUS(NVME_SCT_MEDIA, sc)

#define NVMG_DISC_NQN "nqn.2014-08.org.nvmexpress.discovery"

/* ---- In-band authentication (NVMe Base 2.x "Authentication", TP 8006):
 * libnvme 1.3 has only the FCTYPEs (05h Send, 06h Receive) and
 * NVME_SC_AUTH_REQUIRED. The layouts are the spec's, as Linux's
 * include/linux/nvme.h spells them. */

/* Authentication Send/Receive overlay the SQE: CDW10 holds SPSP0/SPSP1/SECP,
 * CDW11 the transfer (Send: TL) or allocation (Receive: AL) length. */
struct nvmg_auth_cmd {
	uint8_t opcode;
	uint8_t rsvd1;
	uint16_t cid;
	uint8_t fctype;
	uint8_t rsvd2[19];
	struct nvmg_sgl_desc dptr;
	uint8_t rsvd3;
	uint8_t spsp0;
	uint8_t spsp1;
	uint8_t secp;
	uint32_t tl_al;
	uint8_t rsvd4[16];
} __attribute__((packed));

#define NVMG_AUTH_SECP_DHCHAP 0xe9 /* SECP: the NVMe in-band authentication protocol */
#define NVMG_AUTH_SPSP 0x01        /* SPSP0 and SPSP1 of DH-HMAC-CHAP */

/* Connect response DW0: authentication required (ATR); ASCR, secure channel
 * concatenation, is not offered. */
#define NVMG_CONNECT_AUTHREQ_ATR (1u << 17)

/* Message header: AUTH-Type and AUTH-Id. */
#define NVMG_AUTH_COMMON_MESSAGES 0x00
#define NVMG_AUTH_DHCHAP_MESSAGES 0x01
#define NVMG_AUTH_MSG_NEGOTIATE 0x00
#define NVMG_AUTH_MSG_CHALLENGE 0x01
#define NVMG_AUTH_MSG_REPLY 0x02
#define NVMG_AUTH_MSG_SUCCESS1 0x03
#define NVMG_AUTH_MSG_SUCCESS2 0x04
#define NVMG_AUTH_MSG_FAILURE2 0xf0
#define NVMG_AUTH_MSG_FAILURE1 0xf1

#define NVMG_AUTH_DHCHAP_AUTHID 0x01 /* protocol descriptor AUTHID */
#define NVMG_AUTH_SC_NONE 0x00       /* SC_C: no secure channel concatenation */

/* HashIDs (1..3 SHA-256/384/512) and DH group IDs (0 null, 1..5
 * ffdhe2048..8192). */
#define NVMG_AUTH_HASH_SHA256 0x01
#define NVMG_AUTH_HASH_SHA512 0x03
#define NVMG_AUTH_DHGROUP_NULL 0x00
#define NVMG_AUTH_DHGROUP_8192 0x05

/* Failure reason code and explanations. */
#define NVMG_AUTH_RESCODE_FAILED 0x01
#define NVMG_AUTH_FAIL_FAILED 0x01
#define NVMG_AUTH_FAIL_NOT_USABLE 0x02
#define NVMG_AUTH_FAIL_CONCAT_MISMATCH 0x03
#define NVMG_AUTH_FAIL_HASH_UNUSABLE 0x04
#define NVMG_AUTH_FAIL_DHGROUP_UNUSABLE 0x05
#define NVMG_AUTH_FAIL_INCORRECT_PAYLOAD 0x06
#define NVMG_AUTH_FAIL_INCORRECT_MESSAGE 0x07

/* AUTH_Negotiate: one 64-byte protocol descriptor per NAPD; its ID list has
 * the HashIDs in bytes 0..29 and the DH group IDs in bytes 30..59. */
struct nvmg_auth_protocol_desc {
	uint8_t authid;
	uint8_t rsvd;
	uint8_t halen;
	uint8_t dhlen;
	uint8_t idlist[60];
} __attribute__((packed));
#define NVMG_AUTH_MAX_HASH_IDS 30
#define NVMG_AUTH_MAX_DH_IDS 30

struct nvmg_auth_negotiate {
	uint8_t auth_type;
	uint8_t auth_id;
	uint16_t rsvd;
	uint16_t t_id;
	uint8_t sc_c;
	uint8_t napd;
	struct nvmg_auth_protocol_desc proto[];
} __attribute__((packed));

/* DH-HMAC-CHAP_Challenge: HL bytes of C1, then DHVLEN bytes of DH value. */
struct nvmg_auth_challenge {
	uint8_t auth_type;
	uint8_t auth_id;
	uint16_t rsvd1;
	uint16_t t_id;
	uint8_t hl;
	uint8_t rsvd2;
	uint8_t hashid;
	uint8_t dhgid;
	uint16_t dhvlen;
	uint32_t seqnum;
	uint8_t cval[];
} __attribute__((packed));

/* DH-HMAC-CHAP_Reply: HL bytes of response R1, HL bytes of challenge C2
 * (meaningful when CVALID), then DHVLEN bytes of DH value. */
struct nvmg_auth_reply {
	uint8_t auth_type;
	uint8_t auth_id;
	uint16_t rsvd1;
	uint16_t t_id;
	uint8_t hl;
	uint8_t rsvd2;
	uint8_t cvalid;
	uint8_t rsvd3;
	uint16_t dhvlen;
	uint32_t seqnum;
	uint8_t rval[];
} __attribute__((packed));

struct nvmg_auth_success1 {
	uint8_t auth_type;
	uint8_t auth_id;
	uint16_t rsvd1;
	uint16_t t_id;
	uint8_t hl;
	uint8_t rsvd2;
	uint8_t rvalid;
	uint8_t rsvd3[7];
	uint8_t rval[];
} __attribute__((packed));

struct nvmg_auth_success2 {
	uint8_t auth_type;
	uint8_t auth_id;
	uint16_t rsvd1;
	uint16_t t_id;
	uint8_t rsvd2[10];
} __attribute__((packed));

struct nvmg_auth_failure {
	uint8_t auth_type;
	uint8_t auth_id;
	uint16_t rsvd1;
	uint16_t t_id;
	uint8_t rescode;
	uint8_t rescode_exp;
} __attribute__((packed));

_Static_assert(sizeof(struct nvmg_auth_cmd) == 64, "Authentication Send/Receive are 64 bytes");
_Static_assert(sizeof(struct nvmg_auth_protocol_desc) == 64, "protocol descriptor");
_Static_assert(sizeof(struct nvmg_auth_negotiate) == 8, "AUTH_Negotiate header");
_Static_assert(sizeof(struct nvmg_auth_challenge) == 16, "Challenge header");
_Static_assert(sizeof(struct nvmg_auth_reply) == 16, "Reply header");
_Static_assert(sizeof(struct nvmg_auth_success1) == 16, "Success1 header");
_Static_assert(sizeof(struct nvmg_auth_success2) == 16, "Success2");
_Static_assert(sizeof(struct nvmg_auth_failure) == 8, "Failure1/2");

#endif
