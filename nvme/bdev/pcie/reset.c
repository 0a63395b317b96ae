/* The slow path, on one service thread per controller: controller resets
 * (CSTS.CFS, commands that time out even after Abort) and device removal
 * (VFIO's device request, or registers reading all ones). Reactors never
 * block on either: they see resetting/gone, touch no register and fail
 * I/O (EAGAIN while resetting: Namespace Not Ready; ENODEV once gone:
 * Internal Error; both without DNR, which hosts retry a few times). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "lib/log.h"
#include "nvme/bdev/pcie/pcie.h"


struct quiesce_msg {
	struct pcie_qpair *qp;
	int res;
	bool reset_rings;
	pthread_mutex_t *lock;
	pthread_cond_t *cond;
	unsigned *left;
};

static void quiesce_on_reactor(void *arg)
{
	struct quiesce_msg *m = arg;

	pcie_qp_abort_all(m->qp, m->res, m->reset_rings);
	pthread_mutex_lock(m->lock);
	--*m->left;
	pthread_cond_signal(m->cond);
	pthread_mutex_unlock(m->lock);
}

/* Runs pcie_qp_abort_all on every queue's own reactor and waits: once
 * all ran, no reactor is inside a handler that saw the controller usable.
 * Gives up after 5 s (reactors already stopped at exit). */
static void quiesce(struct pcie_ctrlr *c, int res, bool reset_rings)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
	struct quiesce_msg *msgs = calloc(c->nr_ioq, sizeof(*msgs));
	unsigned left = 0;
	struct timespec until;

	if (!msgs) {
		log_err("pcie %s: out of memory quiescing queues", c->bdf);
		return;
	}
	pthread_mutex_lock(&c->admin_lock);
	for (unsigned i = 0; i < c->nr_ioq; i++) {
		if (!c->ioq[i])
			continue;
		msgs[i] = (struct quiesce_msg){ c->ioq[i], res, reset_rings, &lock, &cond, &left };
		pthread_mutex_lock(&lock);
		left++;
		pthread_mutex_unlock(&lock);
		if (nvmg_reactor_post(c->ioq[i]->r, quiesce_on_reactor, &msgs[i])) {
			pthread_mutex_lock(&lock);
			left--;
			pthread_mutex_unlock(&lock);
		}
	}
	pthread_mutex_unlock(&c->admin_lock);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&lock);
	while (left && !pthread_cond_timedwait(&cond, &lock, &until))
		;
	if (left) {
		log_err("pcie %s: %u reactor(s) did not answer the quiesce request", c->bdf, left);
		/* msgs may still be read by a late reactor: leak them. */
		pthread_mutex_unlock(&lock);
		return;
	}
	pthread_mutex_unlock(&lock);
	free(msgs);
}

/* The kernel wants the device back (or it vanished): fail I/O, let go of
 * the device, keep the daemon serving everything else. */
static void handle_removal(struct pcie_ctrlr *c)
{
	log_err("pcie %s: device removed: its namespaces fail I/O from now on", c->bdf);
	atomic_store(&c->gone, true);
	quiesce(c, -ENODEV, false);
	pthread_mutex_lock(&c->admin_lock);
	nvmg_vfio_release_device(&c->vfio);
	pthread_mutex_unlock(&c->admin_lock);
}

/* Controller reset: disable (the device drops every queue and command),
 * fail outstanding commands with a retryable status, enable, and re-create
 * every reactor's queues on the same memory. */
static void do_reset(struct pcie_ctrlr *c)
{
	char err[256] = "";
	unsigned granted = 0;
	int ret;

	atomic_store(&c->resetting, true);
	if (nvmg_vfio_rd32(&c->vfio, NVME_REG_CSTS) == UINT32_MAX) {
		handle_removal(c);
		return;
	}
	log_warn("pcie %s: resetting the controller", c->bdf);
	ret = pcie_ctrlr_disable(c);
	quiesce(c, -EAGAIN, true);
	if (ret) {
		snprintf(err, sizeof(err), "controller did not stop: %s", strerror(-ret));
		goto dead;
	}
	pthread_mutex_lock(&c->admin_lock);
	pcie_qp_reset_rings(&c->admin);
	ret = pcie_ctrlr_enable(c, err, sizeof(err));
	pthread_mutex_unlock(&c->admin_lock);
	if (ret)
		goto dead;
	ret = pcie_ctrlr_set_queues(c, &granted);
	if (ret || granted < c->nr_ioq) {
		snprintf(err, sizeof(err), "Number of Queues after reset: %s%d", ret < 0 ? "error " : "status 0x", ret);
		goto dead;
	}
	for (unsigned i = 0; i < c->nr_ioq; i++) {
		if (c->ioq[i] && pcie_ctrlr_create_queue(c, c->ioq[i])) {
			snprintf(err, sizeof(err), "re-creating I/O queue %u failed", c->ioq[i]->qid);
			goto dead;
		}
	}
	atomic_store(&c->resetting, false);
	log_warn("pcie %s: controller reset done", c->bdf);
	return;
dead:
	log_err("pcie %s: reset failed (%s): its namespaces fail I/O until restart", c->bdf, err);
	atomic_store(&c->gone, true);
	atomic_store(&c->resetting, false);
}

void pcie_ctrlr_request_reset(struct pcie_ctrlr *c, const char *why)
{
	uint64_t one = 1;

	if (atomic_exchange(&c->reset_req, true))
		return;
	log_err("pcie %s: %s: requesting a controller reset", c->bdf, why);
	if (write(c->wake_efd, &one, sizeof(one)) != sizeof(one))
		log_err("pcie %s: cannot wake the service thread", c->bdf);
}

void pcie_ctrlr_request_abort(struct pcie_ctrlr *c, uint16_t sqid, uint16_t cid)
{
	uint64_t one = 1;

	pthread_mutex_lock(&c->abort_lock);
	if (c->nr_aborts < sizeof(c->aborts) / sizeof(c->aborts[0]))
		c->aborts[c->nr_aborts++] = (uint32_t)cid << 16 | sqid;
	pthread_mutex_unlock(&c->abort_lock);
	if (write(c->wake_efd, &one, sizeof(one)) != sizeof(one))
		log_err("pcie %s: cannot wake the service thread", c->bdf);
}

/* Abort is best effort: if the command still does not complete, the next
 * timeout resets the controller. */
static void send_aborts(struct pcie_ctrlr *c)
{
	uint32_t todo[sizeof(c->aborts) / sizeof(c->aborts[0])];
	unsigned n;

	pthread_mutex_lock(&c->abort_lock);
	n = c->nr_aborts;
	memcpy(todo, c->aborts, n * sizeof(todo[0]));
	c->nr_aborts = 0;
	pthread_mutex_unlock(&c->abort_lock);
	for (unsigned i = 0; i < n; i++) {
		struct nvmg_sqe cmd;
		int ret;

		memset(&cmd, 0, sizeof(cmd));
		cmd.opcode = nvme_admin_abort_cmd;
		cmd.cdw10 = htole32(todo[i]);
		ret = pcie_admin(c, &cmd, NULL);
		if (ret)
			log_warn("pcie %s: Abort of queue %u command %u: %s%d", c->bdf, todo[i] & 0xffff,
				 todo[i] >> 16, ret < 0 ? "error " : "status 0x", ret);
	}
}

static void *svc_main(void *arg)
{
	struct pcie_ctrlr *c = arg;
	struct pollfd pfd[2] = { { .fd = c->wake_efd, .events = POLLIN }, { .fd = c->req_efd, .events = POLLIN } };
	uint64_t v;

	while (!atomic_load(&c->stop)) {
		if (poll(pfd, c->req_efd >= 0 ? 2 : 1, -1) < 0)
			continue;
		if (pfd[0].revents & POLLIN && read(c->wake_efd, &v, sizeof(v)) < 0)
			continue;
		if (atomic_load(&c->stop))
			break;
		if (c->req_efd >= 0 && pfd[1].revents & POLLIN) {
			if (read(c->req_efd, &v, sizeof(v)) == sizeof(v) && !atomic_load(&c->gone))
				handle_removal(c);
			close(c->req_efd);
			c->req_efd = -1;
		}
		if (atomic_exchange(&c->reset_req, false) && !atomic_load(&c->gone))
			do_reset(c);
		else if (!atomic_load(&c->gone) && !atomic_load(&c->resetting))
			send_aborts(c);
	}
	return NULL;
}

int pcie_svc_start(struct pcie_ctrlr *c)
{
	int ret;

	c->wake_efd = eventfd(0, EFD_CLOEXEC);
	if (c->wake_efd < 0)
		return -errno;
	c->req_efd = eventfd(0, EFD_CLOEXEC);
	if (c->req_efd >= 0 && nvmg_vfio_set_req(&c->vfio, c->req_efd)) {
		log_warn("pcie %s: no VFIO device request channel: removal waits for exit", c->bdf);
		close(c->req_efd);
		c->req_efd = -1;
	}
	ret = pthread_create(&c->svc, NULL, svc_main, c);
	if (ret)
		return -ret;
	c->svc_running = true;
	return 0;
}

void pcie_svc_stop(struct pcie_ctrlr *c)
{
	uint64_t one = 1;

	if (c->svc_running) {
		atomic_store(&c->stop, true);
		if (write(c->wake_efd, &one, sizeof(one)) != sizeof(one))
			log_err("pcie %s: cannot stop the service thread", c->bdf);
		pthread_join(c->svc, NULL);
		c->svc_running = false;
	}
	if (c->req_efd >= 0) {
		if (!atomic_load(&c->gone))
			nvmg_vfio_set_req(&c->vfio, -1);
		close(c->req_efd);
		c->req_efd = -1;
	}
	if (c->wake_efd >= 0)
		close(c->wake_efd);
	c->wake_efd = -1;
}

