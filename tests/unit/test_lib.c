/* Unit tests for the runtime layer (lib/): the parsers the config and the
 * tools share, the per-reactor buffer pool, and the reactor's messages,
 * defers and tickers. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "tests/unit/check.h"
#include "lib/bufpool.h"
#include "lib/log.h"
#include "lib/parse.h"
#include "lib/reactor.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define POISON_OUT 0x5a5a5a5a5a5a5a5aull

/* ---- escaping peer-supplied strings for logs and terminals ---- */

static void test_escape(void)
{
	/* A host NQN that would end the log line, colour it and forge another. */
	static const char evil[] = "nqn.x\n\x1b[31mnvmegated 1.0 ready\r\\ \x7f\xc3\xa9";
	char out[NVMG_ESCAPED_SIZE(sizeof(evil))], small[8];

	CHECK(!strcmp(nvmg_escape(out, sizeof(out), evil, sizeof(evil)),
		      "nqn.x\\x0a\\x1b[31mnvmegated 1.0 ready\\x0d\\\\ \\x7f\\xc3\\xa9"));
	for (const char *p = out; *p; p++)
		CHECK(*p >= 0x20 && *p < 0x7f);
	/* Stops at len bytes or at a NUL, whichever is first. */
	CHECK(!strcmp(nvmg_escape(out, sizeof(out), "abcdef", 3), "abc"));
	CHECK(!strcmp(nvmg_escape(out, sizeof(out), "ab\0cd", 5), "ab"));
	CHECK(!strcmp(nvmg_escape(out, sizeof(out), "", 5), ""));
	/* A short buffer cuts before an escape, never inside one. */
	CHECK(!strcmp(nvmg_escape(small, sizeof(small), "abcd\n", 5), "abcd"));
	CHECK(!strcmp(nvmg_escape(small, sizeof(small), "abc\n", 4), "abc\\x0a"));
	CHECK(!strcmp(nvmg_escape(small, 1, "abc", 3), ""));
}

/* ---- parsers ---- */

static void test_hexval(void)
{
	for (char c = '0'; c <= '9'; c++)
		CHECK(nvmg_hexval(c) == c - '0');
	for (char c = 'a'; c <= 'f'; c++) {
		CHECK(nvmg_hexval(c) == c - 'a' + 10);
		CHECK(nvmg_hexval((char)(c - 'a' + 'A')) == c - 'a' + 10);
	}
	/* The neighbours of each range in ASCII. */
	static const char bad[] = { '/', ':', '@', 'G', '`', 'g', '-', ' ', '\0' };

	for (size_t i = 0; i < sizeof(bad); i++)
		CHECK(nvmg_hexval(bad[i]) == -1);
}

static void test_size_accepts(void)
{
	static const struct {
		const char *s;
		uint64_t v;
	} ok[] = {
		{ "1", 1 },
		{ "4096", 4096 },
		{ "007", 7 }, /* decimal, not octal */
		{ "4k", 4096 },
		{ "4K", 4096 },
		{ "1m", 1ull << 20 },
		{ "64M", 64ull << 20 },
		{ "2g", 2ull << 30 },
		{ "2G", 2ull << 30 },
		{ "3t", 3ull << 40 },
		{ "3T", 3ull << 40 },
		{ "18446744073709551615", UINT64_MAX },
		/* The largest value each suffix allows. */
		{ "18014398509481983K", (UINT64_MAX >> 10) << 10 },
		{ "17592186044415M", (UINT64_MAX >> 20) << 20 },
		{ "17179869183G", (UINT64_MAX >> 30) << 30 },
		{ "16777215T", (UINT64_MAX >> 40) << 40 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		uint64_t v = POISON_OUT;

		CHECK(nvmg_parse_size(ok[i].s, &v) == 0);
		CHECK(v == ok[i].v);
		if (v != ok[i].v)
			fprintf(stderr, "  size '%s' gave %llu\n", ok[i].s, (unsigned long long)v);
	}
}

static void test_size_rejects(void)
{
	static const char *const bad[] = {
		"", "0", "00", "0K", "0T",
		"K", "k", "M", "T",
		"-1", "+1", "-0", " 1", "1 ", "\t1",
		"1KB", "1KiB", "1kb", "1KK", "1x", "1P", "1E", "1.5M", "1e3", "1,000", "0x10", "x",
		/* one past the largest value: plain and at each suffix */
		"18446744073709551616", "99999999999999999999999",
		"18014398509481984K", "17592186044416M", "17179869184G", "16777216T",
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		uint64_t v = POISON_OUT;

		CHECK(nvmg_parse_size(bad[i], &v) == -EINVAL);
		CHECK(v == POISON_OUT);
		if (v != POISON_OUT)
			fprintf(stderr, "  size '%s' was accepted\n", bad[i]);
	}
	CHECK(nvmg_parse_size(NULL, &(uint64_t){ 0 }) == -EINVAL);
	CHECK(nvmg_parse_size("1", NULL) == -EINVAL);
}

static void test_u64(void)
{
	static const char *const bad[] = {
		"", "-0", "-1", "+1", " 1", "1 ", "1k", "1K", "0x1", "1.0", "18446744073709551616",
	};
	uint64_t v = POISON_OUT;

	CHECK(nvmg_parse_u64("0", &v) == 0 && v == 0);
	CHECK(nvmg_parse_u64("010", &v) == 0 && v == 10);
	CHECK(nvmg_parse_u64("4294967295", &v) == 0 && v == UINT32_MAX);
	CHECK(nvmg_parse_u64("18446744073709551615", &v) == 0 && v == UINT64_MAX);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		v = POISON_OUT;
		CHECK(nvmg_parse_u64(bad[i], &v) == -EINVAL);
		CHECK(v == POISON_OUT);
	}
	CHECK(nvmg_parse_u64(NULL, &v) == -EINVAL);
}

static const uint8_t uuid_bytes[16] = {
	0x0d, 0x6f, 0xf0, 0xc1, 0x5b, 0x6c, 0x4d, 0x0e, 0x9d, 0x0b, 0x2a, 0x1f, 0x2b, 0x9c, 0x4e, 0x11,
};

static void test_uuid_accepts(void)
{
	static const char *const ok[] = {
		"0d6ff0c1-5b6c-4d0e-9d0b-2a1f2b9c4e11",
		"0D6FF0C1-5B6C-4D0E-9D0B-2A1F2B9C4E11",
		"0d6fF0C1-5b6C-4d0E-9D0b-2A1f2B9c4E11",
	};

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		uint8_t u[16] = { 0 };

		CHECK(nvmg_parse_uuid(ok[i], u) == 0);
		CHECK(!memcmp(u, uuid_bytes, 16));
	}
}

static void test_uuid_rejects(void)
{
	static const char *const bad[] = {
		"",
		"0d6ff0c1-5b6c-4d0e-9d0b-2a1f2b9c4e1",    /* 35 characters */
		"0d6ff0c1-5b6c-4d0e-9d0b-2a1f2b9c4e111",  /* 37 */
		"0d6ff0c15b6c4d0e9d0b2a1f2b9c4e11",       /* no dashes */
		"0d6ff0c1-5b6c-4d0e-9d0b2a1f2b9c4e11-",   /* last dash moved to the end */
		"0d6ff0c-15b6c-4d0e-9d0b-2a1f2b9c4e11",   /* first dash one early */
		"0d6ff0c15-b6c-4d0e-9d0b-2a1f2b9c4e11",   /* first dash one late */
		"0d6ff0c1-5b6c4-d0e-9d0b-2a1f2b9c4e11",   /* second dash one late */
		"0d6ff0c1-5b6c-4d0e9-d0b-2a1f2b9c4e11",   /* third dash one late */
		"0d6ff0c1:5b6c:4d0e:9d0b:2a1f2b9c4e11",   /* colons */
		"0d6ff0c1-5b6c-4d0e-9d0b-2a1f2b9c4e1g",   /* non-hex at the end */
		"g d6ff0c1-5b6c-4d0e-9d0b-2a1f2b9c4e1",   /* non-hex at the start */
		"0d6ff0c1-5b6c-4d0e-9d0b--a1f2b9c4e11",   /* a dash where a digit goes */
		"0d6ff0c1-5b6c-4d0e-9d0b-2a1f2b9c4e1\n",
		"{0d6ff0c1-5b6c-4d0e-9d0b-2a1f2b9c4e1}",
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		uint8_t u[16];

		memset(u, 0xa5, sizeof(u));
		CHECK(nvmg_parse_uuid(bad[i], u) == -EINVAL);
		CHECK(u[0] == 0xa5 && u[15] == 0xa5);
		if (u[0] != 0xa5)
			fprintf(stderr, "  uuid '%s' was accepted\n", bad[i]);
	}
	CHECK(nvmg_parse_uuid(NULL, (uint8_t[16]){ 0 }) == -EINVAL);
}

static void test_hex_id(void)
{
	static const uint8_t want[4] = { 0x00, 0x1a, 0xB2, 0xff };
	static const char *const ok[] = {
		"001ab2ff", "001AB2FF", "00-1a-b2-ff", "00:1a:b2:ff", "00-1a:b2ff", "001a-b2ff",
	};
	static const char *const bad[] = {
		"", "001ab2f", "001ab2ff0", "001ab2", "001ab2fg", "g01ab2ff",
		"-001ab2ff", "001ab2ff-", "001ab2ff:", "00--1ab2ff", "00-:1ab2ff", "0-01ab2ff",
		"00 1a b2 ff", "00.1a.b2.ff", "001ab2ff ",
	};

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		uint8_t id[4] = { 0 };

		CHECK(nvmg_parse_hex_id(ok[i], id, sizeof(id)) == 0);
		CHECK(!memcmp(id, want, sizeof(id)));
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		uint8_t id[4];

		memset(id, 0xa5, sizeof(id));
		CHECK(nvmg_parse_hex_id(bad[i], id, sizeof(id)) == -EINVAL);
		/* Not even the bytes before the fault. */
		CHECK(id[0] == 0xa5 && id[1] == 0xa5 && id[2] == 0xa5 && id[3] == 0xa5);
		if (id[0] != 0xa5)
			fprintf(stderr, "  hex id '%s' was accepted\n", bad[i]);
	}
}

/* ---- buffer pool ---- */

#define KIB 1024u
#define MIB (1024u * 1024u)

static int in_arena(struct nvmg_bufpool *p, const void *buf)
{
	void *base;
	size_t size;

	if (nvmg_bufpool_arena(p, &base, &size))
		return 0;
	return (const char *)buf >= (char *)base && (const char *)buf < (char *)base + size;
}

static int aligned(const void *buf)
{
	return ((uintptr_t)buf & 4095) == 0;
}

static void test_bufpool_classes(void)
{
	/* len -> the class size it takes from the arena */
	static const struct {
		size_t len, class;
	} c[] = {
		{ 0, 4 * KIB }, { 1, 4 * KIB }, { 4 * KIB, 4 * KIB }, { 4 * KIB + 1, 8 * KIB },
		{ 8 * KIB, 8 * KIB }, { 33 * KIB, 64 * KIB }, { 512 * KIB + 1, MIB }, { MIB, MIB },
	};
	struct nvmg_bufpool p = { 0 };
	void *b[ARRAY_SIZE(c)];

	/* Kept until the end, so each get takes new arena memory. */
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		size_t before = p.arena_used;

		b[i] = nvmg_buf_get(&p, c[i].len);
		CHECK(b[i] != NULL);
		CHECK(in_arena(&p, b[i]));
		CHECK(aligned(b[i]));
		CHECK(p.arena_used - before == c[i].class);
		/* The whole class is usable (ASan would stop an overrun). */
		memset(b[i], 0xab, c[i].class);
	}
	for (size_t i = 0; i < ARRAY_SIZE(c); i++)
		nvmg_buf_put(&p, b[i], c[i].len);
	CHECK(nvmg_buf_get(&p, MIB + 1) == NULL);
	CHECK(nvmg_buf_get(&p, SIZE_MAX) == NULL);
	nvmg_buf_put(&p, NULL, 4096); /* a no-op */
	nvmg_bufpool_drain(&p);
}

static void test_bufpool_reuse(void)
{
	struct nvmg_bufpool p = { 0 };
	void *a = nvmg_buf_get(&p, 4096);
	void *b = nvmg_buf_get(&p, 8192);
	size_t used = p.arena_used;

	CHECK(a && b && a != b);
	nvmg_buf_put(&p, a, 4096);
	nvmg_buf_put(&p, b, 8192);
	CHECK(p.nr_free[0] == 1 && p.nr_free[1] == 1);
	/* Each comes back from its own class, and the arena does not grow. */
	CHECK(nvmg_buf_get(&p, 3000) == a);
	CHECK(nvmg_buf_get(&p, 5000) == b);
	CHECK(p.arena_used == used);
	CHECK(p.nr_free[0] == 0 && p.nr_free[1] == 0);
	/* A class with nothing free takes new memory, not a larger buffer. */
	nvmg_buf_put(&p, b, 8192);
	void *c = nvmg_buf_get(&p, 4096);

	CHECK(c != b && c != a);
	CHECK(p.arena_used == used + 4096);
	nvmg_buf_put(&p, a, 4096);
	nvmg_buf_put(&p, c, 4096);
	nvmg_bufpool_drain(&p);
}

static void test_bufpool_arena_exhausted(void)
{
	enum { IN_ARENA = NVMG_BUF_ARENA_SIZE / MIB, EXTRA = 70 };
	static void *buf[IN_ARENA + EXTRA];
	struct nvmg_bufpool p = { 0 };
	int arena = 0, aligned_all = 1;

	for (int i = 0; i < IN_ARENA + EXTRA; i++) {
		buf[i] = nvmg_buf_get(&p, MIB);
		CHECK(buf[i] != NULL);
		arena += in_arena(&p, buf[i]);
		aligned_all &= aligned(buf[i]);
	}
	/* The first ones fill the arena, the rest are malloc'd, all aligned
	 * for O_DIRECT. */
	CHECK(arena == IN_ARENA);
	CHECK(in_arena(&p, buf[IN_ARENA - 1]) && !in_arena(&p, buf[IN_ARENA]));
	CHECK(p.arena_used == NVMG_BUF_ARENA_SIZE);
	CHECK(aligned_all);
	/* A small buffer too falls back once the arena is full. */
	void *small = nvmg_buf_get(&p, 4096);

	CHECK(small && !in_arena(&p, small) && aligned(small));
	nvmg_buf_put(&p, small, 4096);
	CHECK(nvmg_buf_get(&p, 4096) == small);
	nvmg_buf_put(&p, small, 4096);

	/* Malloc'd buffers stay idle up to 64 MiB per class, the rest are
	 * freed (LeakSanitizer would see them otherwise); arena buffers are
	 * always kept. */
	for (int i = IN_ARENA; i < IN_ARENA + EXTRA; i++)
		nvmg_buf_put(&p, buf[i], MIB);
	CHECK(p.nr_free[NVMG_BUF_CLASSES - 1] == 64);
	for (int i = 0; i < IN_ARENA; i++)
		nvmg_buf_put(&p, buf[i], MIB);
	CHECK(p.nr_free[NVMG_BUF_CLASSES - 1] == 64 + IN_ARENA);
	/* Too large for any class: freed, not pooled. */
	void *big = malloc(2 * MIB);

	CHECK(big != NULL);
	nvmg_buf_put(&p, big, 2 * MIB);
	CHECK(p.nr_free[NVMG_BUF_CLASSES - 1] == 64 + IN_ARENA);

	nvmg_bufpool_drain(&p);
	CHECK(p.arena == NULL && p.arena_used == 0);
	for (int c = 0; c < NVMG_BUF_CLASSES; c++)
		CHECK(p.nr_free[c] == 0 && SLIST_EMPTY(&p.free[c]));
	/* A drained pool works again, with a new arena. */
	void *again = nvmg_buf_get(&p, 4096);

	CHECK(again && in_arena(&p, again));
	nvmg_buf_put(&p, again, 4096);
	nvmg_bufpool_drain(&p);
}

/* What a reactor registers for fixed I/O is the arena: a range counts
 * only when it lies wholly inside. */
static void test_bufpool_holds(void)
{
	struct nvmg_bufpool p = { 0 };
	void *base;
	size_t size;

	CHECK(!nvmg_bufpool_holds(&p, &p, 1)); /* no arena yet */
	void *a = nvmg_buf_get(&p, 128 * KIB);

	CHECK(a && nvmg_bufpool_arena(&p, &base, &size) == 0);
	CHECK(nvmg_bufpool_holds(&p, a, 128 * KIB));
	CHECK(nvmg_bufpool_holds(&p, (char *)a + 100, 4 * KIB));
	CHECK(nvmg_bufpool_holds(&p, base, size));
	CHECK(!nvmg_bufpool_holds(&p, base, size + 1));
	CHECK(nvmg_bufpool_holds(&p, (char *)base + size - 4096, 4096));
	CHECK(!nvmg_bufpool_holds(&p, (char *)base + size - 4096, 4097));
	CHECK(!nvmg_bufpool_holds(&p, (char *)base - 1, 2));
	CHECK(!nvmg_bufpool_holds(&p, (char *)base + size, 1));
	CHECK(!nvmg_bufpool_holds(&p, base, SIZE_MAX));
	void *m = malloc(4096);

	CHECK(m && !nvmg_bufpool_holds(&p, m, 4096));
	free(m);
	nvmg_buf_put(&p, a, 128 * KIB);
	nvmg_bufpool_drain(&p);
}

static void test_bufpool_poisons_idle_arena_buffers(void)
{
#if defined(__SANITIZE_ADDRESS__)
	struct nvmg_bufpool p = { 0 };
	char *b = nvmg_buf_get(&p, 8192);

	CHECK(!__asan_region_is_poisoned(b, 8192));
	nvmg_buf_put(&p, b, 8192);
	/* All but the free-list link: a write after put is caught. */
	CHECK(__asan_address_is_poisoned(b + 64));
	CHECK(__asan_address_is_poisoned(b + 8191));
	CHECK(!__asan_address_is_poisoned(b)); /* the link */
	/* Not yet handed out either. */
	CHECK(__asan_address_is_poisoned(b + 8192));
	CHECK(nvmg_buf_get(&p, 8192) == b);
	CHECK(!__asan_region_is_poisoned(b, 8192));
	nvmg_buf_put(&p, b, 8192);
	nvmg_bufpool_drain(&p);
#endif
}

/* ---- reactor ---- */

static int wait_sem(sem_t *s)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	while (sem_timedwait(s, &ts))
		if (errno != EINTR)
			return -1;
	return 0;
}

#define PRODUCERS 2
#define PER_PRODUCER 20000

struct order_test {
	struct nvmg_reactor *r;
	sem_t done;
	unsigned next[PRODUCERS]; /* reactor thread only */
	unsigned wrong_thread, out_of_order, received;
};

struct order_msg {
	struct order_test *t;
	unsigned producer, seq;
};

static void order_fn(void *arg)
{
	struct order_msg *m = arg;
	struct order_test *t = m->t;

	if (nvmg_reactor_self() != t->r)
		t->wrong_thread++;
	if (m->seq != t->next[m->producer]++)
		t->out_of_order++;
	if (++t->received == PRODUCERS * PER_PRODUCER)
		sem_post(&t->done);
	free(m);
}

struct producer {
	struct order_test *t;
	unsigned id;
	int failed;
};

static void *produce(void *arg)
{
	struct producer *pr = arg;

	for (unsigned i = 0; i < PER_PRODUCER; i++) {
		struct order_msg *m = malloc(sizeof(*m));

		*m = (struct order_msg){ pr->t, pr->id, i };
		if (nvmg_reactor_post(pr->t->r, order_fn, m))
			pr->failed++;
	}
	return NULL;
}

static void test_reactor_messages_in_order(struct nvmg_reactor *r)
{
	struct order_test t = { .r = r };
	struct producer pr[PRODUCERS];
	pthread_t th[PRODUCERS];

	sem_init(&t.done, 0, 0);
	for (unsigned i = 0; i < PRODUCERS; i++) {
		pr[i] = (struct producer){ &t, i, 0 };
		pthread_create(&th[i], NULL, produce, &pr[i]);
	}
	for (unsigned i = 0; i < PRODUCERS; i++) {
		pthread_join(th[i], NULL);
		CHECK(pr[i].failed == 0);
	}
	CHECK(wait_sem(&t.done) == 0);
	CHECK(t.received == PRODUCERS * PER_PRODUCER);
	CHECK(t.wrong_thread == 0);
	CHECK(t.out_of_order == 0);
	sem_destroy(&t.done);
}

/* A caller-owned message that sends itself again from its fn. */
struct resend_test {
	struct nvmg_msg msg;
	struct nvmg_reactor *r;
	unsigned runs;
	sem_t done;
};

static void resend_fn(void *arg)
{
	struct resend_test *t = arg;

	if (++t->runs < 100)
		nvmg_reactor_send(t->r, &t->msg);
	else
		sem_post(&t->done);
}

static void test_reactor_send_again_from_fn(struct nvmg_reactor *r)
{
	struct resend_test t = { .r = r };

	sem_init(&t.done, 0, 0);
	t.msg.fn = resend_fn;
	t.msg.arg = &t;
	nvmg_reactor_send(r, &t.msg);
	CHECK(wait_sem(&t.done) == 0);
	/* Not freed by the reactor (ASan would report a bad free). */
	CHECK(t.runs == 100);
	sem_destroy(&t.done);
}

/* Defers: each runs once at the end of the turn that queued it, however
 * often it was queued; one queued by a defer still runs in that turn. */
struct defer_test {
	struct nvmg_reactor *r;
	struct nvmg_defer a, b, c;
	char log[16];
	unsigned n;
	int queued_in_fn;
	sem_t done;
};

static void defer_note(struct defer_test *t, char ch)
{
	if (t->n + 1 < sizeof(t->log))
		t->log[t->n++] = ch;
}

static void marker_fn(void *arg)
{
	struct defer_test *t = arg;

	defer_note(t, 'M');
	sem_post(&t->done);
}

static void defer_c(struct nvmg_defer *d)
{
	struct defer_test *t = nvmg_container_of(d, struct defer_test, c);

	defer_note(t, 'c');
}

static void defer_a(struct nvmg_defer *d)
{
	struct defer_test *t = nvmg_container_of(d, struct defer_test, a);

	t->queued_in_fn |= d->queued; /* cleared before fn: fn may queue it again */
	defer_note(t, 'a');
}

static void defer_b(struct nvmg_defer *d)
{
	struct defer_test *t = nvmg_container_of(d, struct defer_test, b);

	defer_note(t, 'b');
	/* The marker is a message, so it runs in a later turn: c, queued
	 * here, must run before it. */
	nvmg_reactor_post(t->r, marker_fn, t);
	nvmg_reactor_defer(t->r, &t->c);
}

static void queue_defers(void *arg)
{
	struct defer_test *t = arg;

	nvmg_reactor_defer(t->r, &t->a);
	nvmg_reactor_defer(t->r, &t->b);
	nvmg_reactor_defer(t->r, &t->a); /* already queued: no second run */
	defer_note(t, 'q');
	/* Nothing ran yet: defers wait for the end of the turn. */
	if (t->a.queued && t->b.queued)
		defer_note(t, 'Q');
}

static void test_reactor_defer(struct nvmg_reactor *r)
{
	struct defer_test t = { .r = r };

	sem_init(&t.done, 0, 0);
	t.a.fn = defer_a;
	t.b.fn = defer_b;
	t.c.fn = defer_c;
	CHECK(nvmg_reactor_post(r, queue_defers, &t) == 0);
	CHECK(wait_sem(&t.done) == 0);
	t.log[t.n] = '\0';
	/* q Q, then a, b and c once each in that turn (in no promised
	 * order), then the marker M from a later turn. */
	CHECK(t.n == 6);
	CHECK(!strncmp(t.log, "qQ", 2));
	CHECK(t.log[5] == 'M');
	CHECK(memchr(t.log + 2, 'a', 3) && memchr(t.log + 2, 'b', 3) && memchr(t.log + 2, 'c', 3));
	if (t.n != 6 || t.log[5] != 'M')
		fprintf(stderr, "  defer log: %s\n", t.log);
	CHECK(!t.queued_in_fn);
	CHECK(!t.a.queued && !t.b.queued && !t.c.queued);
	sem_destroy(&t.done);
}

/* Tickers: one that removes itself in its fn does not stop the others
 * of that tick, and is not called again. */
struct tick_test {
	struct nvmg_reactor *r;
	struct nvmg_ticker first, quitter, last, never;
	unsigned n_first, n_quitter, n_last;
	int wrong_thread;
	sem_t done;
};

/* Each of first and last removes itself on its second call; the second
 * of them to get there ends the test. */
static void tick_count(struct tick_test *t, struct nvmg_ticker *tk, unsigned *n)
{
	if (nvmg_reactor_self() != t->r)
		t->wrong_thread = 1;
	if (++*n == 2 && tk != &t->quitter) {
		nvmg_reactor_del_ticker(t->r, tk);
		if (t->n_first == 2 && t->n_last == 2)
			sem_post(&t->done);
	}
}

static void tick_first(struct nvmg_ticker *tk, uint64_t now)
{
	struct tick_test *t = nvmg_container_of(tk, struct tick_test, first);

	(void)now;
	tick_count(t, tk, &t->n_first);
}

static void tick_quitter(struct nvmg_ticker *tk, uint64_t now)
{
	struct tick_test *t = nvmg_container_of(tk, struct tick_test, quitter);

	(void)now;
	tick_count(t, tk, &t->n_quitter);
	nvmg_reactor_del_ticker(t->r, tk);
	nvmg_reactor_del_ticker(t->r, tk); /* twice: a no-op */
}

static void tick_last(struct nvmg_ticker *tk, uint64_t now)
{
	struct tick_test *t = nvmg_container_of(tk, struct tick_test, last);

	(void)now;
	tick_count(t, tk, &t->n_last);
}

static void add_tickers(void *arg)
{
	struct tick_test *t = arg;

	/* Never added: removing it is a no-op. */
	nvmg_reactor_del_ticker(t->r, &t->never);
	/* Each added at one end, so the quitter is between the other two
	 * whichever end that is. */
	nvmg_reactor_add_ticker(t->r, &t->first);
	nvmg_reactor_add_ticker(t->r, &t->quitter);
	nvmg_reactor_add_ticker(t->r, &t->last);
}

static void test_reactor_ticker_removes_itself(struct nvmg_reactor *r)
{
	struct tick_test t = { .r = r };

	sem_init(&t.done, 0, 0);
	t.first.fn = tick_first;
	t.quitter.fn = tick_quitter;
	t.last.fn = tick_last;
	CHECK(nvmg_reactor_post(r, add_tickers, &t) == 0);
	CHECK(wait_sem(&t.done) == 0);
	CHECK(t.n_last == 2);
	CHECK(t.n_first == 2);
	CHECK(t.n_quitter == 1);
	CHECK(!t.wrong_thread);
	sem_destroy(&t.done);
}

/* A quiescent point is between turns: synchronize must wait for a turn
 * that is running when it is called, and not for a reactor that sleeps. */
struct sync_test {
	struct nvmg_reactor *r;
	sem_t inside, release, returned;
	atomic_int left;      /* the blocking callback returned */
	int left_at_return;   /* what synchronize's caller saw */
};

static void sync_block_fn(void *arg)
{
	struct sync_test *t = arg;

	sem_post(&t->inside);
	sem_wait(&t->release);
	atomic_store(&t->left, 1);
}

static void *sync_thread(void *arg)
{
	struct sync_test *t = arg;

	nvmg_reactor_synchronize(&t->r, 1);
	t->left_at_return = atomic_load(&t->left);
	sem_post(&t->returned);
	return NULL;
}

static double cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_reactor_synchronize(struct nvmg_reactor *r)
{
	struct sync_test t = { .r = r };
	struct timespec ts = { .tv_sec = 0, .tv_nsec = 100 * 1000000L };
	pthread_t th;
	double cpu;

	sem_init(&t.inside, 0, 0);
	sem_init(&t.release, 0, 0);
	sem_init(&t.returned, 0, 0);
	CHECK(nvmg_reactor_post(r, sync_block_fn, &t) == 0);
	CHECK(wait_sem(&t.inside) == 0);
	CHECK(pthread_create(&th, NULL, sync_thread, &t) == 0);
	nanosleep(&ts, NULL);
	CHECK(sem_trywait(&t.returned) != 0); /* the turn is still running */
	sem_post(&t.release);
	CHECK(wait_sem(&t.returned) == 0);
	pthread_join(th, NULL);
	CHECK(t.left_at_return == 1);

	/* Idle now: the spin window runs out and the reactor sleeps, which
	 * is a quiescent state of its own, and burns no CPU. */
	nanosleep(&ts, NULL);
	cpu = cpu_seconds();
	nanosleep(&ts, NULL);
	nanosleep(&ts, NULL);
	CHECK(cpu_seconds() - cpu < 0.02);
	nvmg_reactor_synchronize(&r, 1);
	sem_destroy(&t.inside);
	sem_destroy(&t.release);
	sem_destroy(&t.returned);
}

static void test_reactor(void)
{
	int err = 0;
	struct nvmg_reactor *r = nvmg_reactor_create(0, &err);

	CHECK(r != NULL);
	if (!r)
		return;
	err = nvmg_reactor_start(r);
	CHECK(err == 0);
	if (err == 0) {
		CHECK(nvmg_reactor_self() == NULL); /* not on this thread */
		test_reactor_messages_in_order(r);
		test_reactor_send_again_from_fn(r);
		test_reactor_defer(r);
		test_reactor_ticker_removes_itself(r);
		test_reactor_synchronize(r);
		nvmg_reactor_stop(r);
	}
	nvmg_reactor_destroy(r);
}

int main(void)
{
	test_escape();
	test_hexval();
	test_size_accepts();
	test_size_rejects();
	test_u64();
	test_uuid_accepts();
	test_uuid_rejects();
	test_hex_id();
	test_bufpool_classes();
	test_bufpool_reuse();
	test_bufpool_arena_exhausted();
	test_bufpool_poisons_idle_arena_buffers();
	test_bufpool_holds();
	test_reactor();
	return check_report("test_lib");
}
