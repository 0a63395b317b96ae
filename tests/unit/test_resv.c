/* Unit tests for nvme/resv_ptpl.c: the Persist Through Power Loss state
 * file (names from NQNs, a round trip, refusal of a damaged file) and
 * nvme/resv.c's creation from it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tests/unit/check.h"
#include "nvme/resv_int.h"

static char dir[64];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
}

static void test_path_escapes_nqn(void)
{
	char *p = nvmg_resv_state_path("/d", "nqn.2026-11.io:a/../b c", 7);

	CHECK(p && !strcmp(p, "/d/nqn.2026-11.io:a%2F..%2Fb%20c-n7.resv"));
	free(p);
}

static void test_no_file_means_no_ptpl(void)
{
	struct nvmg_resv *r = NULL;
	char err[256] = "";

	CHECK(!nvmg_resv_create(&r, dir, "nqn.x:none", 1, err, sizeof(err)));
	CHECK(r && !r->ptpl && !r->nr_regs && !atomic_load(&r->rtype) && r->path);
	nvmg_resv_free(r);
	/* without a folder there is no PTPL at all */
	CHECK(!nvmg_resv_create(&r, NULL, "nqn.x:none", 1, err, sizeof(err)));
	CHECK(r && !r->path);
	nvmg_resv_free(r);
}

static void test_round_trip(void)
{
	struct nvmg_resv *r = NULL, *back = NULL;
	uint8_t a[16], b[16];
	char err[256] = "";
	struct stat st;

	for (int i = 0; i < 16; i++) {
		a[i] = (uint8_t)(i + 1);
		b[i] = (uint8_t)(0xf0 | i);
	}
	CHECK(!nvmg_resv_create(&r, dir, "nqn.x:rt", 3, err, sizeof(err)));
	nvmg_resv_add_reg(r, a, 0x1122334455667788ull);
	nvmg_resv_add_reg(r, b, 0);
	memcpy(r->holder, a, 16);
	atomic_store(&r->rtype, 4);
	r->gen = 41;
	r->ptpl = true;
	CHECK(!nvmg_resv_save(r));
	CHECK(!nvmg_resv_create(&back, dir, "nqn.x:rt", 3, err, sizeof(err)));
	CHECK(back && back->ptpl && back->gen == 41 && atomic_load(&back->rtype) == 4);
	CHECK(back && back->nr_regs == 2 && !memcmp(back->regs[0].hostid, a, 16) &&
	      back->regs[0].rkey == 0x1122334455667788ull && !memcmp(back->regs[1].hostid, b, 16) &&
	      back->regs[1].rkey == 0 && !memcmp(back->holder, a, 16));
	/* another namespace of the subsystem has its own file */
	nvmg_resv_free(back);
	CHECK(!nvmg_resv_create(&back, dir, "nqn.x:rt", 4, err, sizeof(err)));
	CHECK(back && !back->ptpl);
	nvmg_resv_free(back);
	/* off: the file goes, and nothing comes back */
	CHECK(!nvmg_resv_unsave(r));
	CHECK(stat(r->path, &st) && !nvmg_resv_unsave(r));
	CHECK(!nvmg_resv_create(&back, dir, "nqn.x:rt", 3, err, sizeof(err)));
	CHECK(back && !back->ptpl && !back->nr_regs);
	nvmg_resv_free(back);
	nvmg_resv_free(r);
}

static void test_damaged_file_refuses(void)
{
	static const char *bad[] = {
		"",
		"garbage\n",
		"nvmegate reservation state 1\nnsid 9\n",             /* another namespace's */
		"nvmegate reservation state 1\nnsid 5\nrtype 7\n",
		"nvmegate reservation state 1\nnsid 5\nrtype 1\n",    /* held by nobody */
		"nvmegate reservation state 1\nnsid 5\nreg 0102 1\n",
	};
	struct nvmg_resv *r = NULL;
	char path[128], err[256];

	snprintf(path, sizeof(path), "%s/nqn.x:bad-n5.resv", dir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(path, bad[i]);
		err[0] = '\0';
		r = NULL;
		CHECK(nvmg_resv_create(&r, dir, "nqn.x:bad", 5, err, sizeof(err)) < 0);
		CHECK(!r && strstr(err, path) && strstr(err, "fix or remove"));
	}
	write_file(path, "nvmegate reservation state 1\nnsid 5\ngen 2\nrtype 0\n");
	CHECK(!nvmg_resv_create(&r, dir, "nqn.x:bad", 5, err, sizeof(err)));
	CHECK(r && r->ptpl && r->gen == 2);
	nvmg_resv_free(r);
	unlink(path);
}

int main(void)
{
	char cmd[128];

	snprintf(dir, sizeof(dir), "/tmp/nvmg-test-resv-%d", (int)getpid());
	test_path_escapes_nqn();
	test_no_file_means_no_ptpl();
	test_round_trip();
	mkdir(dir, 0700);
	test_damaged_file_refuses();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	return check_report("test_resv");
}
