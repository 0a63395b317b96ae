/* Self-describing data pattern. Every logical block starts with a header
 * (magic, LBA, generation, seed, base) and the rest of the block holds
 * base + i * STEP in its i-th 8-byte word, so a block can be checked both
 * against what this run wrote and, in a later read-only run, on its own. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tools/perf/perf.h"

#define VMAGIC 0x667265706776766eull /* "nvvgperf" */
#define VSTEP 0x9e3779b97f4a7c15ull

struct vhdr {
	uint64_t magic;
	uint64_t lba;
	uint32_t gen;
	uint32_t seed;
	uint64_t base;
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static uint64_t base_of(uint64_t lba, uint32_t gen, uint32_t seed)
{
	return mix(lba * 0x100000001b3ull ^ ((uint64_t)gen << 32 | seed));
}

void verify_fill(uint8_t *buf, uint32_t len, uint32_t lba_size, uint64_t slba,
		 uint32_t gen, uint32_t seed)
{
	for (uint32_t off = 0; off < len; off += lba_size) {
		uint64_t *w = (uint64_t *)(buf + off);
		struct vhdr h = {
			.magic = VMAGIC,
			.lba = slba + off / lba_size,
			.gen = gen,
			.seed = seed,
		};
		h.base = base_of(h.lba, gen, seed);
		memcpy(w, &h, sizeof(h));
		for (uint32_t i = sizeof(h) / 8; i < lba_size / 8; i++)
			w[i] = h.base + i * VSTEP;
	}
}

enum vresult verify_block(const uint8_t *blk, uint32_t lba_size, uint64_t lba,
			  uint32_t gen, uint32_t seed, char *why, size_t whylen)
{
	const uint64_t *w = (const uint64_t *)blk;
	struct vhdr h;

	memcpy(&h, blk, sizeof(h));
	if (h.magic != VMAGIC) {
		uint32_t i;

		for (i = 0; i < lba_size / 8 && !w[i]; i++)
			;
		if (i == lba_size / 8) {
			if (!gen)
				return V_UNWRITTEN;
			snprintf(why, whylen, "block is all zeroes, expected generation %u", gen);
			return V_MISMATCH;
		}
		snprintf(why, whylen, "no pattern header (first word 0x%016" PRIx64 ")", w[0]);
		return V_MISMATCH;
	}
	if (h.lba != lba) {
		snprintf(why, whylen, "block holds the data of LBA %" PRIu64, h.lba);
		return V_MISMATCH;
	}
	if (gen && h.gen != gen) {
		snprintf(why, whylen, "generation %u, expected %u (stale or lost write)", h.gen, gen);
		return V_MISMATCH;
	}
	if (seed && h.seed != seed) {
		snprintf(why, whylen, "seed 0x%08x, expected 0x%08x", h.seed, seed);
		return V_MISMATCH;
	}
	if (h.base != base_of(h.lba, h.gen, h.seed)) {
		snprintf(why, whylen, "corrupt pattern header");
		return V_MISMATCH;
	}
	for (uint32_t i = sizeof(h) / 8; i < lba_size / 8; i++) {
		uint64_t exp = h.base + i * VSTEP;

		if (w[i] != exp) {
			snprintf(why, whylen, "byte %u: 0x%016" PRIx64 ", expected 0x%016" PRIx64,
				 i * 8, w[i], exp);
			return V_MISMATCH;
		}
	}
	return V_OK;
}
