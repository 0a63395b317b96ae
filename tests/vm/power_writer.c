/* The guest side of tests/vm/test_vm_power.py: writes self-describing 4 KiB
 * blocks and reports each one as acknowledged only once it must survive a
 * power cut; after the cut, reads the blocks back for the host to compare.
 *
 *   power-writer write TARGET MODE TAG SEED NBLOCKS ACKFILE
 *   power-writer check FILE TAG NBLOCKS
 *
 * MODE (what acknowledges a write, i.e. when it must be durable; one kind
 * per run, so that no other sync makes up for a broken one):
 *   tcp-flush  TARGET is an NVMe namespace block device (nvme-tcp host), the
 *              volatile write cache on: a Write when a later Flush completes;
 *   tcp-fua    the same, each Write with FUA: when it completes;
 *   tcp-nowce  the same after Set Features VWC WCE=0: each plain Write when
 *              it completes.
 *              Commands go through the passthrough ioctl, so nothing but
 *              these reaches the target (the block layer adds flushes).
 *   fuse-fsync TARGET is the FUSE file: a pwrite when a later fsync returns;
 *   fuse-dsync the same, each pwritev2(RWF_DSYNC) when it returns.
 * Acknowledged writes are reported as "A TAG BLOCK SEQ HOW" lines on ACKFILE
 * (the guest's serial port to a host file; HOW: F for FUA or RWF_DSYNC, S
 * for Flush or fsync, W for WCE off), written after the ack point, so the
 * host knows a lower bound of what must be on the medium. SEQ grows by one
 * per write; a block may hold a newer SEQ than acknowledged, never an older.
 *
 * check prints "C TAG BLOCK SEQ" for every block holding a valid record of
 * TAG and "X TAG BLOCK" for a non-zero block that is not one (torn, foreign).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/nvme_ioctl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#define BS 4096
#define MAGIC 0x315257504d47564eull /* "NVMGPWR1" */

struct hdr {
	uint64_t magic;
	uint32_t tag, block;
	uint64_t seq;
};

static uint64_t rng;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint32_t sum32(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;

	while (n--)
		h = (h ^ *p++) * 16777619u;
	return h;
}

static void fill(uint8_t *b, uint32_t tag, uint32_t block, uint64_t seq)
{
	struct hdr h = { MAGIC, tag, block, seq };
	uint64_t x = seq * 0x9e3779b97f4a7c15ull + block + 1;

	memcpy(b, &h, sizeof(h));
	for (size_t i = sizeof(h); i < BS - 4; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(b + i, &x, BS - 4 - i < 8 ? BS - 4 - i : 8);
	}
	uint32_t s = sum32(b, BS - 4);
	memcpy(b + BS - 4, &s, 4);
}

static void die(const char *what)
{
	fprintf(stderr, "power-writer: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* The ack lines of one ack point, in writes of at most ~1 KiB: a tty
 * write that size is not interleaved with another writer's. */
struct acks {
	int fd;
	char buf[1024];
	size_t len;
};

static void ack_flush(struct acks *a)
{
	if (a->len && write(a->fd, a->buf, a->len) < 0)
		die("ack write");
	a->len = 0;
}

static void ack(struct acks *a, uint32_t tag, uint32_t block, uint64_t seq, char how)
{
	if (a->len > sizeof(a->buf) - 64)
		ack_flush(a);
	a->len += (size_t)snprintf(a->buf + a->len, sizeof(a->buf) - a->len, "A %u %u %llu %c\n", tag, block,
				   (unsigned long long)seq, how);
}

static int nvme_io(int fd, int admin, uint8_t opc, uint32_t nsid, void *buf, uint32_t len, uint32_t cdw10,
		   uint32_t cdw11, uint32_t cdw12)
{
	struct nvme_passthru_cmd c = {
		.opcode = opc, .nsid = nsid, .addr = (uintptr_t)buf, .data_len = len,
		.cdw10 = cdw10, .cdw11 = cdw11, .cdw12 = cdw12, .timeout_ms = 30000,
	};
	int r = ioctl(fd, admin ? NVME_IOCTL_ADMIN_CMD : NVME_IOCTL_IO_CMD, &c);

	if (r) {
		fprintf(stderr, "power-writer: nvme opcode %#x: %s\n", opc, r < 0 ? strerror(errno) : "status");
		if (r > 0)
			fprintf(stderr, "power-writer: status %#x\n", r);
		exit(1);
	}
	return 0;
}

static _Noreturn void do_write(const char *target, const char *mode, uint32_t tag, uint64_t seed, uint32_t nblocks,
		    const char *ackpath)
{
	int tcp = !strncmp(mode, "tcp", 3), wce = strcmp(mode, "tcp-nowce") != 0;
	int each = !wce || !strcmp(mode, "tcp-fua") || !strcmp(mode, "fuse-dsync");
	int fd = open(target, O_RDWR | (tcp ? 0 : O_DIRECT));
	uint32_t pend_b[64], npend = 0, nsid = 0;
	uint64_t pend_s[64], seq = 0, writes = 0, flushes = 0, fuas = 0;
	struct acks a = { .fd = open(ackpath, O_WRONLY | O_NOCTTY) };
	uint8_t *b;

	if (fd < 0)
		die(target);
	if (a.fd < 0)
		die(ackpath);
	if (posix_memalign((void **)&b, BS, BS))
		die("memalign");
	if (!each && strcmp(mode, "tcp-flush") && strcmp(mode, "fuse-fsync")) {
		fprintf(stderr, "power-writer: unknown mode %s\n", mode);
		exit(2);
	}
	rng = seed * 2654435761u + tag + 1;
	if (tcp) {
		int r = ioctl(fd, NVME_IOCTL_ID);

		if (r <= 0)
			die("NVME_IOCTL_ID");
		nsid = (uint32_t)r;
		/* Set Features, Volatile Write Cache (FID 6): WCE bit 0 */
		nvme_io(fd, 1, 0x09, 0, NULL, 0, 0x06, wce ? 1 : 0, 0);
	}
	a.len = (size_t)snprintf(a.buf, sizeof(a.buf), "S %u %s\n", tag, mode);
	ack_flush(&a);
	for (;;) {
		uint32_t blk = (uint32_t)(next_rand() % nblocks);
		int fua = each;

		fill(b, tag, blk, ++seq);
		if (tcp) {
			nvme_io(fd, 0, 0x01, nsid, b, BS, blk, 0, fua && wce ? 1u << 30 : 0);
		} else {
			struct iovec v = { b, BS };

			if (pwritev2(fd, &v, 1, (off_t)blk * BS, fua ? RWF_DSYNC : 0) != BS)
				die("pwritev2");
		}
		writes++;
		if (fua) {
			fuas++;
			ack(&a, tag, blk, seq, wce ? 'F' : 'W');
			ack_flush(&a);
		} else {
			pend_b[npend] = blk;
			pend_s[npend++] = seq;
		}
		if (npend && (npend == 64 || next_rand() % 6 == 0)) {
			if (tcp)
				nvme_io(fd, 0, 0x00, nsid, NULL, 0, 0, 0, 0);
			else if (fsync(fd))
				die("fsync");
			flushes++;
			for (uint32_t i = 0; i < npend; i++)
				ack(&a, tag, pend_b[i], pend_s[i], 'S');
			ack_flush(&a);
			npend = 0;
		}
		if (writes % 200 == 0)
			fprintf(stderr, "power-writer %u: %llu writes, %llu FUA/DSYNC, %llu flushes\n", tag,
				(unsigned long long)writes, (unsigned long long)fuas, (unsigned long long)flushes);
	}
}

static int do_check(const char *path, uint32_t tag, uint32_t nblocks)
{
	int fd = open(path, O_RDONLY);
	uint8_t b[BS], z[BS] = { 0 }, want[BS];
	uint32_t valid = 0, bad = 0;

	if (fd < 0)
		die(path);
	for (uint32_t blk = 0; blk < nblocks; blk++) {
		struct hdr h;

		if (pread(fd, b, BS, (off_t)blk * BS) != BS)
			die("pread");
		if (!memcmp(b, z, BS))
			continue;
		memcpy(&h, b, sizeof(h));
		if (h.magic == MAGIC && h.tag == tag && h.block == blk) {
			fill(want, tag, blk, h.seq);
			if (!memcmp(b, want, BS)) {
				printf("C %u %u %llu\n", tag, blk, (unsigned long long)h.seq);
				valid++;
				continue;
			}
		}
		printf("X %u %u\n", tag, blk);
		bad++;
	}
	printf("T %u %u %u\n", tag, valid, bad);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 8 && !strcmp(argv[1], "write"))
		do_write(argv[2], argv[3], (uint32_t)strtoul(argv[4], NULL, 0),
				strtoull(argv[5], NULL, 0), (uint32_t)strtoul(argv[6], NULL, 0), argv[7]);
	if (argc == 5 && !strcmp(argv[1], "check"))
		return do_check(argv[2], (uint32_t)strtoul(argv[3], NULL, 0), (uint32_t)strtoul(argv[4], NULL, 0));
	fprintf(stderr, "usage: power-writer write TARGET MODE TAG SEED NBLOCKS ACKFILE\n"
			"       power-writer check FILE TAG NBLOCKS\n");
	return 2;
}
