/* The QD1 latency floor of this machine: a request/response ping-pong over
 * loopback TCP with an NVMe/TCP 4 KiB read's sizes (a 72-byte command
 * capsule out; a 24-byte C2HData header, 4 KiB of data and a 24-byte
 * response capsule back), with no NVMe in it. Both ends busy-poll
 * non-blocking sockets (--block: both block in recv), so what remains is
 * the kernel's TCP path and the copies. bench/latency.py compares
 * nvmegated's QD1 read latency to this. --busy-poll US sets SO_BUSY_POLL
 * on both sockets, to see whether the kernel's busy polling helps a
 * blocking receiver here (it needs a NAPI context: loopback has none).
 *
 *   pingpong [-n IOS] [--warmup IOS] [--cpus SERVER,CLIENT] [--block] [--busy-poll US]
 *
 * Prints one JSON object: round trips, average and p99 in microseconds. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REQ_BYTES 72
#define RESP_BYTES (24 + 4096 + 24)

static bool block;
static int busy_poll_us;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity");
}

/* Busy-polling unless --block: MSG_DONTWAIT and retry on EAGAIN. */
static int recv_all(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, buf + got, len - got, block ? 0 : MSG_DONTWAIT);

		if (n > 0)
			got += (size_t)n;
		else if (n == 0)
			return -1;
		else if (errno != EAGAIN && errno != EINTR)
			return -1;
	}
	return 0;
}

static int send_all(int fd, const char *buf, size_t len)
{
	size_t put = 0;

	while (put < len) {
		ssize_t n = send(fd, buf + put, len - put, MSG_NOSIGNAL | (block ? 0 : MSG_DONTWAIT));

		if (n > 0)
			put += (size_t)n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
	}
	return 0;
}

static void nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (busy_poll_us && setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL, &busy_poll_us,
				       sizeof(busy_poll_us)))
		die("SO_BUSY_POLL");
}

static void serve(int lfd, int cpu)
{
	static char req[REQ_BYTES], resp[RESP_BYTES];
	int fd;

	pin(cpu);
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		die("accept");
	nodelay(fd);
	while (recv_all(fd, req, sizeof(req)) == 0)
		if (send_all(fd, resp, sizeof(resp)))
			break;
	_exit(0);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static char req[REQ_BYTES], resp[RESP_BYTES];
	unsigned long n = 100000, warmup = 10000;
	int cpu_srv = -1, cpu_cli = -1, lfd, fd, status;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t salen = sizeof(sa);
	uint64_t *lat, sum = 0;
	pid_t pid;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			n = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
			warmup = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--cpus") && i + 1 < argc &&
			 sscanf(argv[i + 1], "%d,%d", &cpu_srv, &cpu_cli) == 2)
			i++;
		else if (!strcmp(argv[i], "--block"))
			block = true;
		else if (!strcmp(argv[i], "--busy-poll") && i + 1 < argc)
			busy_poll_us = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: %s [-n IOS] [--warmup IOS] [--cpus S,C] [--block] [--busy-poll US]\n",
				argv[0]);
			return 2;
		}
	}
	if (!n)
		return 2;
	lat = calloc(n, sizeof(*lat));
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (!lat || lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(lfd, 1) || getsockname(lfd, (struct sockaddr *)&sa, &salen))
		die("listen");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0)
		serve(lfd, cpu_srv);
	close(lfd);
	pin(cpu_cli);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		die("connect");
	nodelay(fd);
	for (unsigned long i = 0; i < warmup + n; i++) {
		uint64_t t0 = now_ns();

		if (send_all(fd, req, sizeof(req)) || recv_all(fd, resp, sizeof(resp)))
			die("ping-pong");
		if (i >= warmup)
			lat[i - warmup] = now_ns() - t0;
	}
	close(fd);
	waitpid(pid, &status, 0);
	for (unsigned long i = 0; i < n; i++)
		sum += lat[i];
	qsort(lat, n, sizeof(*lat), cmp_u64);
	printf("{\"ios\": %lu, \"block\": %s, \"busy_poll_us\": %d, \"avg_lat_us\": %.3f, \"p50_lat_us\": %.3f, "
	       "\"p99_lat_us\": %.3f}\n", n, block ? "true" : "false", busy_poll_us, (double)sum / n / 1000.0,
	       lat[n / 2] / 1000.0, lat[(n * 99) / 100] / 1000.0);
	free(lat);
	return 0;
}
