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

#endif
