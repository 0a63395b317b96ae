/* NVMe/TCP ports: one listening socket per port, accepted on a reactor and
 * handed round-robin to the reactors; and what the discovery log says
 * about a TCP port. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "lib/log.h"
#include "net/tcp_internal.h"
#include "net/tcp_tls.h"

struct tcp_listener {
	struct nvmg_tcp *tcp;
	struct nvmg_port *port;
	struct tcp_reactor *tr;   /* the reactor that accepts */
	int fd;
	struct nvmg_ev ev;
	struct nvmg_ticker retry; /* re-arm after EMFILE and friends */
	atomic_bool stopping;
	atomic_bool closed;
	bool removed;             /* port removed by a reload: fd may be reused */
	struct sockaddr_storage peer; /* of the accept in flight (one at a time) */
	socklen_t peer_len;
};

struct adopt_msg {
	struct tcp_reactor *tr;
	int fd;
	struct nvmg_port *port;
	struct tcp_ho *ho;
};

static void accept_arm(struct tcp_listener *l);

static void adopt_msg_run(void *arg)
{
	struct adopt_msg *m = arg;

	nvmg_tcp_conn_create(m->tr, m->fd, m->port, m->ho);
	free(m);
}

/* Out of the pool before the close: eviction may shut fd down until then. */
static void drop(struct nvmg_tcp *tcp, int fd, struct tcp_ho *ho)
{
	tcp_ho_done(&tcp->half_open, ho);
	close(fd);
}

static void hand_off(struct tcp_listener *l, int fd, struct tcp_ho *ho)
{
	struct nvmg_tcp *tcp = l->tcp;
	unsigned i = atomic_fetch_add(&tcp->next_reactor, 1) % tcp->nr_reactors;
	struct tcp_reactor *tr = &tcp->reactors[i];
	struct adopt_msg *m;

	if (tr == l->tr) {
		nvmg_tcp_conn_create(tr, fd, l->port, ho);
		return;
	}
	m = malloc(sizeof(*m));
	if (!m) {
		drop(tcp, fd, ho);
		return;
	}
	*m = (struct adopt_msg){ tr, fd, l->port, ho };
	if (nvmg_reactor_post(tr->r, adopt_msg_run, m)) {
		free(m);
		drop(tcp, fd, ho);
	}
}

static void retry_tick(struct nvmg_ticker *t, uint64_t now)
{
	struct tcp_listener *l = nvmg_container_of(t, struct tcp_listener, retry);

	(void)now;
	nvmg_reactor_del_ticker(l->tr->r, t);
	accept_arm(l);
}

static void accept_done(struct nvmg_ev *ev, int res, uint32_t flags)
{
	struct tcp_listener *l = nvmg_container_of(ev, struct tcp_listener, ev);
	struct nvmg_tcp *tcp = l->tcp;
	struct tcp_ho_addr addr;
	struct tcp_ho *ho;

	(void)flags;
	if (atomic_load(&l->stopping)) {
		if (res >= 0)
			close(res);
		close(l->fd);
		atomic_store(&l->closed, true);
		return;
	}
	if (res < 0) {
		if (res == -EINTR || res == -EAGAIN || res == -ECONNABORTED) {
			accept_arm(l);
			return;
		}
		log_err("port %u: accept: %s", l->port->portid, strerror(-res));
		nvmg_reactor_add_ticker(l->tr->r, &l->retry);
		return;
	}
	/* Sockets that have not finished ICReq + Connect are bounded, so a
	 * flood of idle sockets cannot starve real hosts: a new one may evict
	 * the oldest of the address holding the most (tcp_halfopen.h). */
	tcp_ho_addr_of((struct sockaddr *)&l->peer, &addr);
	ho = tcp_ho_admit(&tcp->half_open, &addr, res, nvmg_now_ms());
	if (ho)
		hand_off(l, res, ho);
	else
		close(res);
	accept_arm(l);
}

static void accept_arm(struct tcp_listener *l)
{
	struct io_uring_sqe *sqe = nvmg_reactor_sqe(l->tr->r);

	l->peer_len = sizeof(l->peer);
	io_uring_prep_accept(sqe, l->fd, (struct sockaddr *)&l->peer, &l->peer_len, SOCK_CLOEXEC);
	io_uring_sqe_set_data(sqe, &l->ev);
}

static void accept_arm_msg(void *arg)
{
	accept_arm(arg);
}

static int listener_open(struct nvmg_tcp *tcp, struct nvmg_port *p, bool v6only, int *fd_out)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1, ret;

	memset(&ss, 0, sizeof(ss));
	if (p->adrfam == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)atoi(p->trsvcid));
		if (inet_pton(AF_INET6, p->traddr, &s6->sin6_addr) != 1)
			return -EINVAL;
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)atoi(p->trsvcid));
		if (inet_pton(AF_INET, p->traddr, &s4->sin_addr) != 1)
			return -EINVAL;
		sl = sizeof(*s4);
	}
	fd = socket(p->adrfam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (p->adrfam == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(int));
	if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 128)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	(void)tcp;
	*fd_out = fd;
	return 0;
}

static void log_listening(const struct tcp_listener *l)
{
	log_info("listening on %s%s%s:%s (port %u, %zu subsystem%s)",
		 l->port->adrfam == AF_INET6 ? "[" : "", l->port->traddr,
		 l->port->adrfam == AF_INET6 ? "]" : "", l->port->trsvcid, l->port->portid,
		 l->port->nr_subsys, l->port->nr_subsys == 1 ? "" : "s");
}

/* Bind p's socket and add its listener (not armed yet). */
static int listener_add(struct nvmg_tcp *tcp, struct nvmg_port *p, struct nvmg_port *const *all,
			size_t nr_all, char *err, size_t errlen)
{
	struct tcp_listener *l, **nl;
	bool v6only = false;
	int ret;

	nl = realloc(tcp->listeners, (tcp->nr_listeners + 1) * sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	tcp->listeners = nl;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	/* "::" is dual-stack like the kernel target's, unless a v4 port
	 * shares its port number. */
	for (size_t j = 0; j < nr_all; j++)
		if (all[j]->adrfam == AF_INET && !strcmp(all[j]->trsvcid, p->trsvcid))
			v6only = true;
	ret = listener_open(tcp, p, v6only, &l->fd);
	if (ret) {
		snprintf(err, errlen, "port %u (%s%s%s:%s): %s", p->portid,
			 p->adrfam == AF_INET6 ? "[" : "", p->traddr, p->adrfam == AF_INET6 ? "]" : "",
			 p->trsvcid, strerror(-ret));
		free(l);
		return ret;
	}
	l->tcp = tcp;
	l->port = p;
	l->tr = &tcp->reactors[tcp->nr_listeners % tcp->nr_reactors];
	l->ev.fn = accept_done;
	l->retry.fn = retry_tick;
	tcp->listeners[tcp->nr_listeners++] = l;
	return 0;
}

struct close_port_msg {
	struct tcp_reactor *tr;
	struct nvmg_port *port;
};

static void close_port_run(void *arg)
{
	struct close_port_msg *m = arg;

	nvmg_tcp_reactor_close_port(m->tr, m->port);
	free(m);
}

static void sleep_ms(unsigned ms);

/* Wakes the pending accept, whose handler closes the socket. */
static void listener_stop(struct tcp_listener *l)
{
	atomic_store(&l->stopping, true);
	shutdown(l->fd, SHUT_RDWR);
}

/* Up to 2 s for the accept handler to have closed it; false if not. */
static bool listener_wait_closed(const struct tcp_listener *l)
{
	for (unsigned waited = 0; !atomic_load(&l->closed) && waited < 2000; waited += 10)
		sleep_ms(10);
	return atomic_load(&l->closed);
}

/* A port went away (reload, or a failed start-up). Its listener stops
 * (the accept handler closes the socket), then every reactor closes the
 * connections that came through it; adoptions posted before the close
 * arrive before it. */
void nvmg_tcp_disable_port(void *ctx, struct nvmg_port *p)
{
	struct nvmg_tcp *tcp = ctx;

	for (size_t i = 0; i < tcp->nr_listeners; i++) {
		struct tcp_listener *l = tcp->listeners[i];

		if (l->port != p || l->removed)
			continue;
		l->removed = true;
		listener_stop(l);
		if (!listener_wait_closed(l))
			log_warn("port %u: listener did not stop within 2 s", p->portid);
	}
	for (unsigned i = 0; i < tcp->nr_reactors; i++) {
		struct close_port_msg *m = malloc(sizeof(*m));

		if (!m) {
			log_err("port %u: out of memory closing its connections", p->portid);
			continue;
		}
		*m = (struct close_port_msg){ &tcp->reactors[i], p };
		if (nvmg_reactor_post(tcp->reactors[i].r, close_port_run, m))
			free(m);
	}
}

/* A new port (start-up, reload): bind it, then accept on its reactor. */
int nvmg_tcp_enable_port(void *ctx, struct nvmg_port *p, char *err, size_t errlen)
{
	struct nvmg_tcp *tcp = ctx;
	struct nvmg_target *t = tcp->tgt;
	struct tcp_listener *l;
	int ret;

	if (!tcp->started) {
		snprintf(err, errlen, "port %u: the tcp transport is not running", p->portid);
		return -ESHUTDOWN;
	}
	pthread_rwlock_rdlock(&t->model_lock);
	ret = listener_add(tcp, p, t->ports, t->nr_ports, err, errlen);
	pthread_rwlock_unlock(&t->model_lock);
	if (ret) {
		if (ret == -ENOMEM)
			snprintf(err, errlen, "out of memory");
		return ret;
	}
	l = tcp->listeners[tcp->nr_listeners - 1];
	ret = nvmg_reactor_post(l->tr->r, accept_arm_msg, l);
	if (ret) {
		snprintf(err, errlen, "port %u: cannot start listener: %s", p->portid, strerror(-ret));
		close(l->fd);
		free(l);
		tcp->nr_listeners--;
		return ret;
	}
	log_listening(l);
	return 0;
}

struct nvmg_tcp *nvmg_tcp_create(struct nvmg_target *t)
{
	struct nvmg_tcp *tcp = calloc(1, sizeof(*tcp));

	if (!tcp)
		return NULL;
	tcp->tgt = t;
	/* Without it TLS connections are refused, plain ones still served. */
	tcp->ssl_ctx = tcp_tls_ctx_new();
	if (!tcp->ssl_ctx)
		log_err("TLS: cannot create OpenSSL's server context");
	return tcp;
}

/* Under the pool's lock, so the fd is still the victim's: the connection
 * reads EOF and closes as when its host leaves. */
static void evict_half_open(struct tcp_ho *victim, void *arg)
{
	(void)arg;
	shutdown(victim->fd, SHUT_RDWR);
}

int nvmg_tcp_start(struct nvmg_tcp *tcp, const struct nvmg_tcp_opts *o)
{
	struct nvmg_target *t = tcp->tgt;
	int ret;

	tcp->opts = *o;
	if (tcp->opts.icreq_timeout_ms > tcp->opts.handshake_timeout_ms)
		tcp->opts.icreq_timeout_ms = tcp->opts.handshake_timeout_ms;
	tcp->reactors = calloc(t->nr_reactors, sizeof(*tcp->reactors));
	if (!tcp->reactors)
		return -ENOMEM;
	ret = tcp_ho_pool_init(&tcp->half_open, o->max_pending_sockets, o->max_pending_per_address,
			       evict_half_open, NULL);
	if (ret) {
		free(tcp->reactors);
		tcp->reactors = NULL;
		return ret;
	}
	tcp->half_open_ready = true;
	tcp->nr_reactors = t->nr_reactors;
	for (unsigned i = 0; i < t->nr_reactors; i++) {
		tcp->reactors[i].tcp = tcp;
		tcp->reactors[i].r = t->reactors[i];
	}
	tcp->started = true;
	return 0;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void drain_msg(void *arg)
{
	nvmg_tcp_reactor_drain(arg);
}

static void close_all_msg(void *arg)
{
	nvmg_tcp_reactor_close_all(arg);
}

static void wait_conns(struct nvmg_tcp *tcp, unsigned timeout_ms)
{
	for (unsigned waited = 0; atomic_load(&tcp->live_conns) && waited < timeout_ms; waited += 10)
		sleep_ms(10);
}

void nvmg_tcp_shutdown(struct nvmg_tcp *tcp, unsigned timeout_ms)
{
	if (!tcp->started)
		return;
	tcp->started = false;
	for (size_t i = 0; i < tcp->nr_listeners; i++) {
		struct tcp_listener *l = tcp->listeners[i];

		if (!l->removed)
			listener_stop(l);
	}
	for (unsigned i = 0; i < tcp->nr_reactors; i++)
		nvmg_reactor_post(tcp->reactors[i].r, drain_msg, &tcp->reactors[i]);
	wait_conns(tcp, timeout_ms);
	if (atomic_load(&tcp->live_conns)) {
		log_warn("%u connection%s still busy after %u ms, closing", atomic_load(&tcp->live_conns),
			 atomic_load(&tcp->live_conns) == 1 ? "" : "s", timeout_ms);
		for (unsigned i = 0; i < tcp->nr_reactors; i++)
			nvmg_reactor_post(tcp->reactors[i].r, close_all_msg, &tcp->reactors[i]);
		wait_conns(tcp, 5000);
	}
	for (size_t i = 0; i < tcp->nr_listeners; i++)
		if (!tcp->listeners[i]->removed)
			listener_wait_closed(tcp->listeners[i]);
}

void nvmg_tcp_destroy(struct nvmg_tcp *tcp)
{
	if (!tcp)
		return;
	for (size_t i = 0; i < tcp->nr_listeners; i++) {
		struct tcp_listener *l = tcp->listeners[i];

		if (!atomic_load(&l->closed))
			close(l->fd);
		free(l);
	}
	free(tcp->listeners);
	free(tcp->reactors);
	if (tcp->half_open_ready)
		tcp_ho_pool_destroy(&tcp->half_open);
	tcp_tls_ctx_free(tcp->ssl_ctx);
	free(tcp);
}

unsigned nvmg_tcp_live_conns(struct nvmg_tcp *tcp)
{
	return tcp ? atomic_load(&tcp->live_conns) : 0;
}

void nvmg_tcp_half_open(struct nvmg_tcp *tcp, unsigned *held, uint64_t *evicted)
{
	*held = 0;
	*evicted = 0;
	if (tcp && tcp->half_open_ready)
		tcp_ho_counts(&tcp->half_open, held, evicted);
}

/* ---- the discovery log entry of a TCP port ---- */

uint8_t nvmg_tcp_disc_adrfam(const struct nvmg_port *p)
{
	return p->adrfam == AF_INET6 ? NVMF_ADDR_FAMILY_IP6 : NVMF_ADDR_FAMILY_IP4;
}

uint8_t nvmg_tcp_disc_treq(const struct nvmg_port *p)
{
	bool tls = __atomic_load_n(&p->tls, __ATOMIC_RELAXED);

	/* A plain port says "not specified" as the Linux target reports it:
	 * nvme-cli (libnvme 1.3+) turns "not required" into a tls connect
	 * option that Linux 6.1 rejects, so connect-all would fail. A TLS
	 * port says what it enforces, so connect-all asks for TLS. */
	if (!tls)
		return NVMF_TREQ_NOT_SPECIFIED | NVMF_TREQ_DISABLE_SQFLOW;
	return (__atomic_load_n(&p->tls_required, __ATOMIC_RELAXED) ? NVMF_TREQ_REQUIRED
								     : NVMF_TREQ_NOT_REQUIRED) |
	       NVMF_TREQ_DISABLE_SQFLOW;
}

void nvmg_tcp_disc_tsas(const struct nvmg_port *p, union nvmf_tsas *tsas)
{
	tsas->tcp.sectype = __atomic_load_n(&p->tls, __ATOMIC_RELAXED) ? NVMF_TCP_SECTYPE_TLS13
								       : NVMF_TCP_SECTYPE_NONE;
}
