/* What the libFuzzer harnesses of tests/fuzz/ share: an assertion that
 * stops the run (libFuzzer keeps the input as a crash), a reader of the
 * fuzzer's bytes, and what any NVMe status we return must look like. */
#ifndef NVMG_FUZZ_H
#define NVMG_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nvme/spec.h"

#define FUZZ_CHECK(cond)                                                                    \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "%s:%d: %s: FAILED %s\n", __FILE__, __LINE__, __func__, \
				#cond);                                                     \
			abort();                                                            \
		}                                                                           \
	} while (0)

/* The fuzzer's input, consumed front to back; past its end reads give 0s. */
struct fuzz_in {
	const uint8_t *p;
	size_t left;
};

static inline void fuzz_take(struct fuzz_in *in, void *out, size_t n)
{
	size_t k = n < in->left ? n : in->left;

	memcpy(out, in->p, k);
	memset((uint8_t *)out + k, 0, n - k);
	in->p += k;
	in->left -= k;
}

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	uint8_t v;

	fuzz_take(in, &v, 1);
	return v;
}

static inline uint16_t fuzz_u16(struct fuzz_in *in)
{
	uint16_t v;

	fuzz_take(in, &v, 2);
	return v;
}

/* A status the target completes with (libnvme's layout: SC in bits 7:0,
 * SCT in 10:8, DNR): Generic, Command Specific or Media and Data
 * Integrity; never CRD or More, which the target does not set; never a
 * Success code with DNR. */
static inline bool fuzz_status_ok(uint16_t st)
{
	uint16_t sct = (st >> NVME_SCT_SHIFT) & NVME_SCT_MASK;

	if (st & ~(NVME_SC_MASK | (NVME_SCT_MASK << NVME_SCT_SHIFT) | NVME_SC_DNR))
		return false;
	if (sct > NVME_SCT_MEDIA)
		return false;
	return (st & ~NVME_SC_DNR) || !(st & NVME_SC_DNR);
}

#endif
