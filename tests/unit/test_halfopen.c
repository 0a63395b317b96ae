/* net/tcp_halfopen.c: which half-open socket is evicted when a new one
 * comes, and the per-address cap on sockets without progress. The fds are
 * tags (the pool only hands them to its evict callback). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include "tests/unit/check.h"
#include "lib/log.h"
#include "net/tcp_halfopen.h"

struct victims {
	int fd[64];
	unsigned n;
};

static void record(struct tcp_ho *victim, void *arg)
{
	struct victims *v = arg;

	v->fd[v->n++] = victim->fd;
}

static struct tcp_ho_addr v4(const char *s)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct tcp_ho_addr a;

	inet_pton(AF_INET, s, &sin.sin_addr);
	tcp_ho_addr_of((struct sockaddr *)&sin, &a);
	return a;
}

/* The last victim, or -1 when none since the previous call. */
static int victim(struct victims *v, unsigned *seen)
{
	if (v->n == *seen)
		return -1;
	return v->fd[(*seen = v->n) - 1];
}

static void test_per_address_cap(void)
{
	struct tcp_ho_pool p;
	struct victims v = { .n = 0 };
	struct tcp_ho *ho[8];
	struct tcp_ho_addr a = v4("127.0.0.2"), b = v4("127.0.0.1");
	unsigned seen = 0, held;
	uint64_t evicted;

	CHECK(!tcp_ho_pool_init(&p, 100, 3, record, &v));
	for (int i = 0; i < 3; i++)
		ho[i] = tcp_ho_admit(&p, &a, 10 + i, 1000 + (uint64_t)i);
	CHECK(victim(&v, &seen) == -1);
	/* A fourth within the grace is a burst of real connects: admitted,
	 * nobody evicted (the cap waits for a socket old enough). */
	ho[3] = tcp_ho_admit(&p, &a, 13, 1003);
	CHECK(victim(&v, &seen) == -1);
	/* Past the grace the next from that address pushes out its oldest. */
	ho[4] = tcp_ho_admit(&p, &a, 14, 1000 + TCP_HO_GRACE_MS);
	CHECK(victim(&v, &seen) == 10);
	/* Another address has its own cap. */
	ho[5] = tcp_ho_admit(&p, &b, 20, 1001 + TCP_HO_GRACE_MS);
	CHECK(victim(&v, &seen) == -1);
	/* A socket that sent ICReq no longer counts against the cap: a host
	 * opens all its queues' sockets before the first Connect. */
	tcp_ho_progress(&p, ho[2], 1002 + TCP_HO_GRACE_MS);
	ho[6] = tcp_ho_admit(&p, &a, 15, 1003 + TCP_HO_GRACE_MS);
	CHECK(victim(&v, &seen) == 11);
	ho[7] = tcp_ho_admit(&p, &a, 16, 1004 + TCP_HO_GRACE_MS);
	CHECK(victim(&v, &seen) == 13);
	tcp_ho_counts(&p, &held, &evicted);
	CHECK(held == 5 && evicted == 3);
	/* Evicted entries are out of the pool; their owners still free them. */
	for (int i = 0; i < 8; i++)
		tcp_ho_done(&p, ho[i]);
	tcp_ho_counts(&p, &held, &evicted);
	CHECK(held == 0 && evicted == 3);
	tcp_ho_pool_destroy(&p);
}

static void test_pool_full(void)
{
	struct tcp_ho_pool p;
	struct victims v = { .n = 0 };
	struct tcp_ho *ho[16];
	struct tcp_ho_addr a = v4("10.0.0.1"), b = v4("10.0.0.2"), c = v4("10.0.0.3");
	unsigned seen = 0, held, k = 0;
	uint64_t evicted;

	CHECK(!tcp_ho_pool_init(&p, 6, 100, record, &v));
	/* b's socket is the oldest, but a holds the most: a pays. */
	ho[k++] = tcp_ho_admit(&p, &b, 20, 100);
	ho[k++] = tcp_ho_admit(&p, &a, 10, 101);
	ho[k++] = tcp_ho_admit(&p, &a, 11, 102);
	ho[k++] = tcp_ho_admit(&p, &a, 12, 103);
	ho[k++] = tcp_ho_admit(&p, &b, 21, 104);
	ho[k++] = tcp_ho_admit(&p, &c, 30, 105);
	CHECK(victim(&v, &seen) == -1);
	ho[k++] = tcp_ho_admit(&p, &c, 31, 106);
	CHECK(victim(&v, &seen) == 10);
	/* a and b hold two each now: the tie goes to the older socket, b's. */
	ho[k++] = tcp_ho_admit(&p, &c, 32, 107);
	CHECK(victim(&v, &seen) == 20);
	/* c holds three now, the most: even its own newcomer evicts from c. */
	ho[k++] = tcp_ho_admit(&p, &c, 33, 108);
	CHECK(victim(&v, &seen) == 30);
	/* Sockets that showed progress go last, whatever their address holds:
	 * only c has any without progress left once a's and b's progress. */
	for (unsigned i = 0; i < k; i++)
		if (ho[i]->src && ho[i]->fd < 30)
			tcp_ho_progress(&p, ho[i], 109);
	ho[k++] = tcp_ho_admit(&p, &a, 13, 110);
	CHECK(victim(&v, &seen) == 31);
	ho[k++] = tcp_ho_admit(&p, &a, 14, 111);
	CHECK(victim(&v, &seen) == 32);
	/* a holds two without progress, c one: a's oldest of those pays,
	 * not its older sockets that sent ICReq. */
	ho[k++] = tcp_ho_admit(&p, &b, 22, 112);
	CHECK(victim(&v, &seen) == 13);
	tcp_ho_counts(&p, &held, &evicted);
	CHECK(held == 6 && evicted == 6);
	for (unsigned i = 0; i < k; i++)
		tcp_ho_done(&p, ho[i]);
	tcp_ho_pool_destroy(&p);
}

static void test_only_proven_left(void)
{
	struct tcp_ho_pool p;
	struct victims v = { .n = 0 };
	struct tcp_ho *ho[8];
	struct tcp_ho_addr a = v4("10.0.0.1"), b = v4("10.0.0.2");
	unsigned seen = 0;

	CHECK(!tcp_ho_pool_init(&p, 3, 100, record, &v));
	ho[0] = tcp_ho_admit(&p, &b, 20, 100);
	ho[1] = tcp_ho_admit(&p, &a, 10, 101);
	ho[2] = tcp_ho_admit(&p, &a, 11, 102);
	for (int i = 0; i < 3; i++)
		tcp_ho_progress(&p, ho[i], 103);
	/* Every socket is past ICReq: the address holding the most pays. */
	ho[3] = tcp_ho_admit(&p, &b, 21, 104);
	CHECK(victim(&v, &seen) == 10);
	for (int i = 0; i < 4; i++)
		tcp_ho_done(&p, ho[i]);
	tcp_ho_pool_destroy(&p);
}

static void test_v4_mapped_is_v4(void)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
	struct tcp_ho_addr a, b = v4("192.0.2.7");

	inet_pton(AF_INET6, "::ffff:192.0.2.7", &s6.sin6_addr);
	tcp_ho_addr_of((struct sockaddr *)&s6, &a);
	CHECK(!memcmp(&a, &b, sizeof(a)));
}

int main(void)
{
	nvmg_log_set_level(NVMG_LOG_ERROR); /* the eviction lines are warnings */
	test_per_address_cap();
	test_pool_full();
	test_only_proven_left();
	test_v4_mapped_is_v4();
	return check_report("test_halfopen");
}
