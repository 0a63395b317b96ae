/* Write gates: let a block-aligned write run on the reactor that received
 * it (its FUSE io_uring queue's) instead of its stripe's reactor, without
 * losing the read-modify-write ordering that the stripe's reactor keeps.
 *
 * A read-modify-write (RMW) reads a block, merges bytes into it and writes
 * it back: a whole-block write landing in between would be undone. The
 * stripe's reactor orders RMW against every write it runs itself; a write
 * running elsewhere ("away") is ordered by a gate, a counter shared by the
 * two sides, hashed from (subsystem, namespace, stripe):
 *
 *   away write:  enter (count +1); if an RMW holds the gate, leave and go
 *                to the stripe's reactor after all; else write, then leave.
 *   RMW:         hold (RMW +1); if away writes are in, wait until the last
 *                one leaves (it tells the stripe's reactor); then read,
 *                merge, write; release.
 *
 * Both sides change the same atomic word, so whichever comes second sees
 * the first: an RMW never reads before an away write to its stripe has
 * landed, and no away write starts while an RMW holds the gate. A hash
 * collision only sends a write the long way round. */
#include <errno.h>
#include <stdlib.h>
#include "fuse/internal.h"

#define AWAY_MASK 0xffffu
#define RMW_ONE (1u << 16)

int nvmg_fuse_gates_init(struct nvmg_fuse *fs)
{
	fs->gates = aligned_alloc(64, NVMG_FUSE_GATES * sizeof(*fs->gates));
	if (!fs->gates)
		return -ENOMEM;
	for (unsigned i = 0; i < NVMG_FUSE_GATES; i++)
		atomic_init(&fs->gates[i].word, 0);
	return 0;
}

void nvmg_fuse_gates_free(struct nvmg_fuse *fs)
{
	free(fs->gates);
	fs->gates = NULL;
}

struct fuse_gate *nvmg_fuse_gate(struct nvmg_fuse *fs, size_t sub, uint32_t nsid, uint64_t stripe)
{
	uint64_t h = (stripe ^ ((uint64_t)nsid << 40) ^ ((uint64_t)sub << 52)) * 0x9e3779b97f4a7c15ull;

	return &fs->gates[h >> (64 - NVMG_FUSE_GATES_SHIFT)];
}

bool nvmg_fuse_gate_enter(struct fuse_gate *g, bool *wake)
{
	uint32_t old = atomic_fetch_add(&g->word, 1);

	*wake = false;
	if (!(old >> 16))
		return true;
	*wake = nvmg_fuse_gate_leave(g);
	return false;
}

bool nvmg_fuse_gate_leave(struct fuse_gate *g)
{
	uint32_t old = atomic_fetch_sub(&g->word, 1);

	return (old & AWAY_MASK) == 1 && (old >> 16);
}

bool nvmg_fuse_gate_hold(struct fuse_gate *g)
{
	return !(atomic_fetch_add(&g->word, RMW_ONE) & AWAY_MASK);
}

bool nvmg_fuse_gate_clear(struct fuse_gate *g)
{
	return !(atomic_load(&g->word) & AWAY_MASK);
}

void nvmg_fuse_gate_release(struct fuse_gate *g)
{
	atomic_fetch_sub(&g->word, RMW_ONE);
}
