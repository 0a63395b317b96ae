/* NVMe/TCP Transport 1.0 PDU layouts. Neither libnvme 1.3 nor the uapi
 * headers define them, so they live here. All fields little endian. */
#ifndef NVMG_TCP_PDU_H
#define NVMG_TCP_PDU_H

#include <stdint.h>
#include "nvme/spec.h"

enum nvmg_tcp_pdu_type {
	NVMG_TCP_ICREQ = 0x00,
	NVMG_TCP_ICRESP = 0x01,
	NVMG_TCP_H2C_TERM = 0x02,
	NVMG_TCP_C2H_TERM = 0x03,
	NVMG_TCP_CMD = 0x04,
	NVMG_TCP_RSP = 0x05,
	NVMG_TCP_H2C_DATA = 0x06,
	NVMG_TCP_C2H_DATA = 0x07,
	NVMG_TCP_R2T = 0x09,
};

enum nvmg_tcp_pdu_flags {
	NVMG_TCP_F_HDGST = 0x01,
	NVMG_TCP_F_DDGST = 0x02,
	NVMG_TCP_F_DATA_LAST = 0x04,
	NVMG_TCP_F_DATA_SUCCESS = 0x08,
};

/* ICReq/ICResp DGST byte. */
#define NVMG_TCP_HDGST_ENABLE 0x01
#define NVMG_TCP_DDGST_ENABLE 0x02

/* Fatal Error Status of H2C/C2HTermReq. */
enum nvmg_tcp_fes {
	NVMG_TCP_FES_INVALID_HEADER = 0x01,
	NVMG_TCP_FES_PDU_SEQUENCE = 0x02,
	NVMG_TCP_FES_HDGST_ERROR = 0x03,
	NVMG_TCP_FES_DATA_OUT_OF_RANGE = 0x04,
	NVMG_TCP_FES_R2T_LIMIT = 0x05, /* data transfer limit exceeded */
	NVMG_TCP_FES_UNSUPPORTED_PARAM = 0x06,
};

struct nvmg_tcp_hdr {
	uint8_t type;
	uint8_t flags;
	uint8_t hlen;
	uint8_t pdo;
	uint32_t plen;
} __attribute__((packed));

struct nvmg_tcp_icreq {
	struct nvmg_tcp_hdr hdr;
	uint16_t pfv;
	uint8_t hpda;
	uint8_t digest;
	uint32_t maxr2t;
	uint8_t rsvd[112];
} __attribute__((packed));

struct nvmg_tcp_icresp {
	struct nvmg_tcp_hdr hdr;
	uint16_t pfv;
	uint8_t cpda;
	uint8_t digest;
	uint32_t maxh2cdata;
	uint8_t rsvd[112];
} __attribute__((packed));

struct nvmg_tcp_term {
	struct nvmg_tcp_hdr hdr;
	uint16_t fes;
	uint32_t fei;
	uint8_t rsvd[10];
} __attribute__((packed));

struct nvmg_tcp_cmd {
	struct nvmg_tcp_hdr hdr;
	struct nvmg_sqe sqe;
} __attribute__((packed));

struct nvmg_tcp_rsp {
	struct nvmg_tcp_hdr hdr;
	struct nvmg_cqe cqe;
} __attribute__((packed));

/* H2CData, C2HData and R2T share one 24-byte header shape. */
struct nvmg_tcp_data {
	struct nvmg_tcp_hdr hdr;
	uint16_t cccid;
	uint16_t ttag; /* reserved in C2HData */
	uint32_t offset;
	uint32_t length;
	uint32_t rsvd;
} __attribute__((packed));

#define NVMG_TCP_TERM_MAX_DATA 128 /* offending header bytes echoed back */

_Static_assert(sizeof(struct nvmg_tcp_icreq) == 128, "ICReq");
_Static_assert(sizeof(struct nvmg_tcp_icresp) == 128, "ICResp");
_Static_assert(sizeof(struct nvmg_tcp_term) == 24, "TermReq");
_Static_assert(sizeof(struct nvmg_tcp_cmd) == 72, "CapsuleCmd");
_Static_assert(sizeof(struct nvmg_tcp_rsp) == 24, "CapsuleResp");
_Static_assert(sizeof(struct nvmg_tcp_data) == 24, "data PDU");

#endif
