/* FUSE requests over io_uring (Linux 6.14+: CONFIG_FUSE_IO_URING and the
 * fuse module parameter enable_uring).
 *
 * libfuse 3.14 mounts and runs the session as before; its session I/O goes
 * through the hooks below (fuse_session_custom_io), which pass everything
 * through and only add FUSE_OVER_IO_URING to our INIT reply when the
 * kernel's INIT offered it (the kernel offers it only while enable_uring
 * is on). libfuse cannot ask for the flag itself: conn->want is 32 bits
 * and 3.14 maps each known capability to an INIT bit by name.
 *
 * With the flag taken, every reactor owns the kernel's per-CPU queues
 * qid % reactors: an SQE128 io_uring of its own (the reactors' rings are
 * 64-byte-SQE rings) whose fd the reactor polls, so FUSE requests wake the
 * reactor like any of its I/O and are run on it, with no thread hand-off.
 * Each queue has a few entries: a header buffer (struct
 * fuse_uring_req_header) and a payload buffer registered with
 * FUSE_IO_URING_CMD_REGISTER; a request arrives as the completion of the
 * entry's command, and the answer goes back with
 * FUSE_IO_URING_CMD_COMMIT_AND_FETCH, which also waits for the next one.
 *
 * Read, write, fsync and fallocate are NVMe commands issued right here
 * (transport.c), block-aligned reads and writes straight in the entry's
 * payload. Reads up to a stripe and whole-block writes run on this
 * reactor (writes through their stripe's gate, gate.c); larger reads and
 * partial-block writes on their stripes' reactors (which order
 * read-modify-write). Whichever reactor finishes a request
 * commits it through its own ring: the kernel finds the request by queue
 * and commit id, and the entry's next request then arrives on that ring. Everything else (lookup, getattr, readdir, open, xattrs...) is
 * rare: the request is rebuilt in /dev/fuse form and given to a private
 * libfuse session of the reactor whose replies land in the entry, so
 * ops.c stays the one implementation of the file system for both paths.
 *
 * The kernel keeps serving /dev/fuse for FORGET, INTERRUPT and requests
 * sent before every queue had an entry: libfuse's loop keeps running. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fuse.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
#include <unistd.h>
#include "lib/log.h"
#include "lib/reactor.h"
#include "fuse/internal.h"

/* The FUSE io_uring ABI (include/uapi/linux/fuse.h, protocol 7.42), for
 * build hosts whose kernel headers predate it (Debian 12: 6.1). */
#ifndef FUSE_OVER_IO_URING
#define FUSE_OVER_IO_URING (1ULL << 41)
#endif
#ifndef FUSE_URING_IN_OUT_HEADER_SZ
#define FUSE_URING_IN_OUT_HEADER_SZ 128
#define FUSE_URING_OP_IN_OUT_SZ 128
struct fuse_uring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;  /* the request's unique, echoed by the commit */
	uint32_t payload_sz; /* bytes used in the payload buffer */
	uint32_t padding;
	uint64_t reserved;
};
struct fuse_uring_req_header {
	char in_out[FUSE_URING_IN_OUT_HEADER_SZ]; /* fuse_in_header / fuse_out_header */
	char op_in[FUSE_URING_OP_IN_OUT_SZ];      /* the opcode's own header */
	struct fuse_uring_ent_in_out ring_ent_in_out;
};
enum fuse_uring_cmd {
	FUSE_IO_URING_CMD_INVALID = 0,
	FUSE_IO_URING_CMD_REGISTER = 1,
	FUSE_IO_URING_CMD_COMMIT_AND_FETCH = 2,
};
struct fuse_uring_cmd_req { /* in the SQE's 80-byte command area */
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};
#endif

/* Entries per CPU queue: a QD32 job on one CPU still finds free ones; the
 * total stays far below NVMG_FUSE_NR_OPS on big machines. */
#define URING_ENTS_MAX 32
#define URING_ENTS_TOTAL 128
#define URING_ENTS_MIN 2

struct fuse_uent {
	struct fuse_uring *u;      /* the ring its last command went through */
	struct fuse_uring_req_header *hdr;
	uint8_t *payload;
	struct iovec iov[2];       /* what REGISTER hands the kernel */
	uint16_t qid;
	struct fuse_uent *lnext;   /* u->done: answered on another reactor */
};

struct fuse_uring {
	struct nvmg_fuse *fs;
	struct nvmg_reactor *r;
	struct io_uring ring;      /* SQE128; submitted only by r's thread */
	bool ring_ok;
	struct fuse_uent *ents;
	unsigned nr_ents;
	size_t payload_sz;
	struct nvmg_ev poll_ev;    /* on r's ring: our ring has completions */
	bool poll_armed;
	bool closing;              /* then the flush defer closes the ring */
	struct nvmg_defer flush;   /* submit the turn's commits at once */
	_Atomic(struct fuse_uent *) done;
	struct nvmg_msg done_msg;
	/* The private libfuse session for the rare requests. */
	struct fuse_session *shadow;
	int shadow_fd;             /* identifies the session in the hooks */
	struct fuse_uent *capture; /* where its reply goes */
	bool captured;
	uint8_t *req;              /* a request rebuilt in /dev/fuse form */
	size_t req_cap;
	uint64_t served;           /* requests, for the log at the end */
	sem_t sem;
	int result;
};

static void commit(struct fuse_uring *u, struct fuse_uent *ent);

/* ------------------------------------------------------------ hooks */

static ssize_t main_read(int fd, void *buf, size_t len, void *userdata)
{
	struct nvmg_fuse *fs = userdata;
	ssize_t n = read(fd, buf, len);
	const struct fuse_in_header *in = buf;

	/* INIT is the first request, read on the main thread before the
	 * loop starts; afterwards this is one well-predicted test. */
	if (fs->init_req || n < (ssize_t)(sizeof(*in) + sizeof(struct fuse_init_in)) ||
	    in->opcode != FUSE_INIT)
		return n;
	const struct fuse_init_in *ii = (const void *)(in + 1);
	uint64_t flags = ii->flags;

	if (ii->minor >= 36 && (flags & FUSE_INIT_EXT))
		flags |= (uint64_t)ii->flags2 << 32;
	fs->uring_offered = (flags & FUSE_OVER_IO_URING) != 0;
	fs->init_unique = in->unique;
	fs->init_req = malloc((size_t)n);
	if (fs->init_req) {
		memcpy(fs->init_req, buf, (size_t)n);
		fs->init_req_len = (size_t)n;
	}
	return n;
}

static ssize_t main_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct nvmg_fuse *fs = userdata;
	const struct fuse_out_header *oh = iov[0].iov_base;
	struct fuse_init_out io;
	struct iovec v[2];

	if (!fs->uring_offered || fs->uring_negotiated || !fs->init_req || count != 2 ||
	    iov[0].iov_len != sizeof(*oh) || oh->unique != fs->init_unique || oh->error ||
	    iov[1].iov_len < offsetof(struct fuse_init_out, flags2) + sizeof(io.flags2) ||
	    iov[1].iov_len > sizeof(io))
		return writev(fd, iov, count);
	/* Our INIT reply: libfuse's, plus the one flag it cannot set. */
	memset(&io, 0, sizeof(io));
	memcpy(&io, iov[1].iov_base, iov[1].iov_len);
	io.flags |= FUSE_INIT_EXT;
	io.flags2 |= (uint32_t)(FUSE_OVER_IO_URING >> 32);
	v[0] = iov[0];
	v[1] = (struct iovec){ &io, iov[1].iov_len };
	ssize_t n = writev(fd, v, 2);

	fs->uring_negotiated = n > 0;
	return n;
}

const struct fuse_custom_io nvmg_fuse_session_io = {
	.writev = main_writev,
	.read = main_read,
};

static struct fuse_uring *shadow_owner(struct nvmg_fuse *fs, int fd)
{
	for (unsigned i = 0; i < fs->nr_uring; i++)
		if (fs->uring[i].shadow_fd == fd)
			return &fs->uring[i];
	return NULL;
}

/* A shadow session's reply: into the entry being served, header and
 * payload as the commit wants them. */
static ssize_t shadow_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct fuse_uring *u = shadow_owner(userdata, fd);
	struct fuse_uent *ent = u ? u->capture : NULL;
	size_t total = 0, hdr = 0, pay = 0;

	for (int i = 0; i < count; i++)
		total += iov[i].iov_len;
	if (!ent) /* a late or unexpected reply: nobody waits for it */
		return (ssize_t)total;
	for (int i = 0; i < count; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t len = iov[i].iov_len;

		if (hdr < sizeof(struct fuse_out_header)) {
			size_t n = sizeof(struct fuse_out_header) - hdr;

			n = n < len ? n : len;
			memcpy(ent->hdr->in_out + hdr, p, n);
			hdr += n, p += n, len -= n;
		}
		if (len && pay + len <= u->payload_sz)
			memcpy(ent->payload + pay, p, len);
		pay += len;
	}
	if (hdr < sizeof(struct fuse_out_header) || pay > u->payload_sz) {
		struct fuse_out_header *oh = (void *)ent->hdr->in_out;

		oh->error = -EIO;
		pay = 0;
	}
	ent->hdr->ring_ent_in_out.payload_sz = (uint32_t)pay;
	u->captured = true;
	return (ssize_t)total;
}

static ssize_t shadow_read(int fd, void *buf, size_t len, void *userdata)
{
	(void)fd, (void)buf, (void)len, (void)userdata;
	errno = ENODEV; /* never read: requests come from the ring */
	return -1;
}

static const struct fuse_custom_io shadow_io = {
	.writev = shadow_writev,
	.read = shadow_read,
};

/* ---------------------------------------------------------- requests */

/* Anything but the data path: through the reactor's private libfuse
 * session, which answers synchronously (ops.c's metadata operations). */
static void serve_shadow(struct fuse_uring *u, struct fuse_uent *ent)
{
	const struct fuse_in_header *in = (const void *)ent->hdr->in_out;
	uint32_t pay = ent->hdr->ring_ent_in_out.payload_sz;
	size_t arg0 = in->len - sizeof(*in) - pay;
	struct fuse_buf fb = { 0 };

	if (in->len < sizeof(*in) + pay || arg0 > FUSE_URING_OP_IN_OUT_SZ || pay > u->payload_sz) {
		log_err("FUSE: io_uring request %" PRIu32 " of %" PRIu32 " bytes does not add up",
			in->opcode, in->len);
		nvmg_fuse_uring_reply(ent, EIO, NULL, 0);
		return;
	}
	if (u->req_cap < in->len) {
		uint8_t *p = realloc(u->req, in->len);

		if (!p) {
			nvmg_fuse_uring_reply(ent, ENOMEM, NULL, 0);
			return;
		}
		u->req = p;
		u->req_cap = in->len;
	}
	memcpy(u->req, in, sizeof(*in));
	memcpy(u->req + sizeof(*in), ent->hdr->op_in, arg0);
	memcpy(u->req + sizeof(*in) + arg0, ent->payload, pay);
	fb.mem = u->req;
	fb.size = in->len;
	u->capture = ent;
	u->captured = false;
	fuse_session_process_buf(u->shadow, &fb);
	u->capture = NULL;
	if (!u->captured) {
		log_err("FUSE: io_uring request opcode %" PRIu32 " got no answer", in->opcode);
		nvmg_fuse_uring_reply(ent, EIO, NULL, 0);
		return;
	}
	commit(u, ent);
}

static void answer(struct fuse_uent *ent, int ret, const void *data, size_t len)
{
	nvmg_fuse_uring_reply(ent, ret < 0 ? -ret : 0, ret < 0 ? NULL : data, ret < 0 ? 0 : len);
}

static bool aligned(const struct fuse_geo *g, uint64_t off, uint64_t len, size_t cap)
{
	uint64_t lmask = (1ull << g->lba_shift) - 1;

	return !(off & lmask) && ((len + lmask) & ~lmask) <= cap;
}

static void serve(struct fuse_uring *u, struct fuse_uent *ent)
{
	struct nvmg_fuse *fs = u->fs;
	const struct fuse_in_header *in = (const void *)ent->hdr->in_out;
	const void *arg = ent->hdr->op_in;
	struct fuse_reply_to to = { .ent = ent };
	struct fuse_write_out wout = { 0 };
	enum fuse_op_kind kind = FOP_ZERO;
	struct fuse_geo g;
	uint64_t len = 0;
	int ret;

	u->served++;
	switch (in->opcode) {
	case FUSE_READ: {
		const struct fuse_read_in *ri = arg;

		len = ri->size;
		ret = nvmg_fuse_check_read(fs, in->nodeid, (int64_t)ri->offset, &len, &g);
		if (ret) {
			answer(ent, ret, NULL, 0);
			return;
		}
		if (aligned(&g, ri->offset, len, u->payload_sz))
			to.inplace = ent->payload;
		nvmg_fuse_submit(fs, to, FOP_READ, &g, ri->offset, len, NULL, false);
		return;
	}
	case FUSE_WRITE: {
		const struct fuse_write_in *wi = arg;

		len = wi->size;
		if (len > ent->hdr->ring_ent_in_out.payload_sz) {
			answer(ent, -EINVAL, NULL, 0);
			return;
		}
		ret = nvmg_fuse_check_write(fs, in->nodeid, (int64_t)wi->offset, &len, &g);
		if (ret) {
			answer(ent, ret, &wout, sizeof(wout));
			return;
		}
		if (aligned(&g, wi->offset, len, u->payload_sz) && !(len & ((1ull << g.lba_shift) - 1)))
			to.inplace = ent->payload;
		nvmg_fuse_submit(fs, to, FOP_WRITE, &g, wi->offset, len, ent->payload,
				 (wi->flags & O_DSYNC) != 0);
		return;
	}
	case FUSE_FSYNC:
		ret = nvmg_fuse_geo(fs, in->nodeid, &g);
		if (ret)
			answer(ent, ret, NULL, 0);
		else
			nvmg_fuse_submit(fs, to, FOP_FLUSH, &g, 0, 0, NULL, false);
		return;
	case FUSE_FALLOCATE: {
		const struct fuse_fallocate_in *fi = arg;

		ret = nvmg_fuse_check_fallocate(fs, in->nodeid, (int)fi->mode, (int64_t)fi->offset,
						(int64_t)fi->length, &g, &kind, &len);
		if (ret)
			answer(ent, ret < 0 ? ret : 0, NULL, 0);
		else
			nvmg_fuse_submit(fs, to, kind, &g, fi->offset, len, NULL, false);
		return;
	}
	default:
		serve_shadow(u, ent);
		return;
	}
}

/* ------------------------------------------------------------ the ring */

static struct io_uring_sqe *cmd_sqe(struct fuse_uring *u, struct fuse_uent *ent, uint32_t op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	struct fuse_uring_cmd_req *req;

	/* One command per entry at most, and the ring has a slot for each,
	 * so this is only a safety net. */
	if (!sqe && io_uring_submit(&u->ring) >= 0)
		sqe = io_uring_get_sqe(&u->ring);
	if (!sqe) {
		log_err("FUSE: io_uring queue %u: no room for a command; entry lost", ent->qid);
		return NULL;
	}
	memset((void *)sqe, 0, sizeof(*sqe));
	memset((uint8_t *)sqe->cmd, 0, 128 - offsetof(struct io_uring_sqe, cmd)); /* SQE128 */
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = fuse_session_fd(u->fs->se);
	sqe->cmd_op = op;
	req = (struct fuse_uring_cmd_req *)sqe->cmd;
	req->qid = ent->qid;
	io_uring_sqe_set_data(sqe, ent);
	nvmg_reactor_defer(u->r, &u->flush);
	return sqe;
}

static void commit(struct fuse_uring *u, struct fuse_uent *ent)
{
	struct io_uring_sqe *sqe;

	if (!u->ring_ok || u->closing)
		return; /* the connection is gone: nobody waits for the answer */
	sqe = cmd_sqe(u, ent, FUSE_IO_URING_CMD_COMMIT_AND_FETCH);

	if (sqe)
		((struct fuse_uring_cmd_req *)sqe->cmd)->commit_id = ent->hdr->ring_ent_in_out.commit_id;
}

static void flush(struct nvmg_defer *d)
{
	struct fuse_uring *u = nvmg_container_of(d, struct fuse_uring, flush);
	int ret;

	if (u->closing) {
		/* The poll has ended and this defer is off the reactor's list:
		 * after the post, nothing on this thread touches u again. The
		 * connection is gone, so the kernel has ended every entry. */
		if (!u->poll_armed && u->ring_ok) {
			io_uring_queue_exit(&u->ring);
			u->ring_ok = false;
			sem_post(&u->sem);
		}
		return;
	}
	ret = u->ring_ok ? io_uring_submit(&u->ring) : 0;
	if (ret < 0)
		log_err("FUSE: io_uring queue on reactor %u: submit: %s", nvmg_reactor_id(u->r),
			strerror(-ret));
}

static void take_done(void *arg)
{
	struct fuse_uring *u = arg;
	struct fuse_uent *ent = atomic_exchange(&u->done, NULL);

	while (ent) {
		struct fuse_uent *next = ent->lnext;

		commit(u, ent);
		ent = next;
	}
}

/* The ring of the reactor running this, or NULL. */
static struct fuse_uring *ring_here(struct nvmg_fuse *fs)
{
	struct nvmg_reactor *self = nvmg_reactor_self();
	unsigned id = self ? nvmg_reactor_id(self) : 0;

	if (!self)
		return NULL;
	if (id < fs->nr_uring && fs->uring[id].r == self)
		return fs->uring[id].ring_ok ? &fs->uring[id] : NULL;
	for (unsigned i = 0; i < fs->nr_uring; i++)
		if (fs->uring[i].r == self)
			return fs->uring[i].ring_ok ? &fs->uring[i] : NULL;
	return NULL;
}

void nvmg_fuse_uring_reply(struct fuse_uent *ent, int err, const void *data, size_t len)
{
	struct fuse_uring *u = ent->u, *here;
	struct fuse_out_header *oh = (void *)ent->hdr->in_out;
	uint64_t unique = ((const struct fuse_in_header *)(void *)ent->hdr->in_out)->unique;
	struct fuse_uent *old;

	if (err)
		len = 0;
	if (len && data != ent->payload)
		memcpy(ent->payload, data, len);
	oh->unique = unique;
	oh->error = -err;
	oh->len = (uint32_t)(sizeof(*oh) + len);
	ent->hdr->ring_ent_in_out.payload_sz = (uint32_t)len;
	/* The kernel finds the request by queue and commit id, whichever ring
	 * the commit comes through, and hands the entry's next request to the
	 * ring that committed it. So the reactor that finished the request
	 * commits it itself, and the entry moves there: no hand-back. */
	here = ring_here(u->fs);
	if (here) {
		ent->u = here;
		commit(here, ent);
		return;
	}
	/* Not on a reactor: the entry's ring takes it through a message; the
	 * one pushing onto an empty stack sends it, and it takes the stack. */
	old = atomic_load_explicit(&u->done, memory_order_relaxed);
	do {
		ent->lnext = old;
	} while (!atomic_compare_exchange_weak(&u->done, &old, ent));
	if (!old)
		nvmg_reactor_send(u->r, &u->done_msg);
}

unsigned nvmg_fuse_uring_home(const struct fuse_uent *ent)
{
	return (unsigned)(ent->u - ent->u->fs->uring);
}

static void poll_arm(struct fuse_uring *u)
{
	struct io_uring_sqe *sqe = nvmg_reactor_sqe(u->r);

	io_uring_prep_poll_add(sqe, u->ring.ring_fd, POLLIN);
	io_uring_sqe_set_data(sqe, &u->poll_ev);
	u->poll_armed = true;
}

static void poll_done(struct nvmg_ev *ev, int res, uint32_t flags)
{
	struct fuse_uring *u = nvmg_container_of(ev, struct fuse_uring, poll_ev);
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	(void)flags;
	u->poll_armed = false;
	if (u->closing) {
		nvmg_reactor_defer(u->r, &u->flush);
		return;
	}
	if (res < 0 && res != -EINTR) {
		/* Nothing wakes this reactor for its FUSE queues any more. */
		log_err("FUSE: io_uring queue on reactor %u: poll: %s", nvmg_reactor_id(u->r),
			strerror(-res));
		return;
	}
	io_uring_for_each_cqe(&u->ring, head, cqe) {
		struct fuse_uent *ent = io_uring_cqe_get_data(cqe);

		n++;
		ent->u = u; /* it came back through this ring */
		if (cqe->res >= 0)
			serve(u, ent);
		else if (cqe->res != -ENOTCONN && cqe->res != -ECONNABORTED &&
			 cqe->res != -ECANCELED)
			log_err("FUSE: io_uring queue %u: %s", ent->qid, strerror(-cqe->res));
		/* Otherwise the connection is gone and the entry with it. */
	}
	io_uring_cq_advance(&u->ring, n);
	poll_arm(u);
}

static void close_msg(void *arg)
{
	struct fuse_uring *u = arg;
	struct io_uring_sqe *sqe;

	u->closing = true;
	if (!u->poll_armed) {
		nvmg_reactor_defer(u->r, &u->flush);
		return;
	}
	/* The armed poll ends with -ECANCELED; then the flush defer closes. */
	sqe = nvmg_reactor_sqe(u->r);
	io_uring_prep_poll_remove(sqe, (uint64_t)(uintptr_t)&u->poll_ev);
	io_uring_sqe_set_data(sqe, NULL);
}

static int shadow_open(struct fuse_uring *u)
{
	struct nvmg_fuse *fs = u->fs;
	struct fuse_lowlevel_ops ops = nvmg_fuse_ll_ops;
	char *argv[] = { "nvmegated", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(1, argv);
	struct fuse_buf fb = { .mem = fs->init_req, .size = fs->init_req_len };
	int fd;

	ops.init = NULL; /* what INIT decided is the main session's */
	u->shadow = fuse_session_new(&args, &ops, sizeof(ops), fs);
	fuse_opt_free_args(&args);
	if (!u->shadow)
		return -ENOMEM;
	fd = eventfd(0, EFD_CLOEXEC); /* the session's own fd, never read */
	if (fd < 0)
		return -errno;
	if (fuse_session_custom_io(u->shadow, &shadow_io, fd)) {
		close(fd);
		return -EINVAL;
	}
	u->shadow_fd = fd;
	/* The session answers nothing before INIT: give it the kernel's
	 * (its reply, with nobody capturing, is dropped). */
	fuse_session_process_buf(u->shadow, &fb);
	return 0;
}

static void setup_msg(void *arg)
{
	struct fuse_uring *u = arg;
	unsigned depth = 1;
	int ret;

	/* Entries move between rings (see nvmg_fuse_uring_reply): room for all. */
	while (depth < u->fs->uring_ents)
		depth <<= 1;
	ret = io_uring_queue_init(depth, &u->ring, IORING_SETUP_SQE128);
	if (ret) {
		u->result = ret;
		sem_post(&u->sem);
		return;
	}
	u->ring_ok = true;
	for (unsigned i = 0; i < u->nr_ents; i++) {
		struct fuse_uent *ent = &u->ents[i];
		struct io_uring_sqe *sqe = cmd_sqe(u, ent, FUSE_IO_URING_CMD_REGISTER);

		if (!sqe)
			break;
		sqe->addr = (uint64_t)(uintptr_t)ent->iov;
		sqe->len = 2;
	}
	ret = io_uring_submit(&u->ring);
	u->result = ret < 0 ? ret : 0;
	poll_arm(u);
	sem_post(&u->sem);
}

/* The kernel has one queue per possible CPU and waits for an entry on
 * every one before it sends a single request over io_uring. */
static unsigned possible_cpus(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");
	char line[256] = "";
	unsigned long last = 0;

	if (!f)
		return (unsigned)get_nprocs_conf();
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	/* "0-3,8-11": the highest number counts, holes included. */
	for (char *p = line; *p >= '0' && *p <= '9';) {
		unsigned long v = strtoul(p, &p, 10);

		last = v > last ? v : last;
		if (*p != '-' && *p != ',')
			break;
		p++;
	}
	return line[0] ? (unsigned)last + 1 : (unsigned)get_nprocs_conf();
}

static int uring_alloc(struct nvmg_fuse *fs, unsigned cpus, unsigned per_q)
{
	/* The kernel's payload floor: max(8 KiB, max_write, max_pages). */
	size_t pay = fs->max_write > 8192 ? fs->max_write : 8192;

	pay = (pay + 4095) & ~(size_t)4095;
	fs->nr_uring = fs->nr_queues;
	fs->uring = calloc(fs->nr_uring, sizeof(*fs->uring));
	if (!fs->uring)
		return -ENOMEM;
	for (unsigned i = 0; i < fs->nr_uring; i++) {
		struct fuse_uring *u = &fs->uring[i];
		unsigned qids = cpus / fs->nr_uring + (i < cpus % fs->nr_uring);

		u->fs = fs;
		u->r = fs->tgt->reactors[i];
		u->poll_ev.fn = poll_done;
		u->flush.fn = flush;
		u->done_msg.fn = take_done;
		u->done_msg.arg = u;
		u->shadow_fd = -1;
		u->payload_sz = pay;
		sem_init(&u->sem, 0, 0);
		u->ents = calloc((size_t)qids * per_q, sizeof(*u->ents));
		if (!u->ents)
			return -ENOMEM;
		for (unsigned q = i, k = 0; q < cpus; q += fs->nr_uring) {
			for (unsigned e = 0; e < per_q; e++, k++) {
				struct fuse_uent *ent = &u->ents[k];

				ent->u = u;
				ent->qid = (uint16_t)q;
				if (posix_memalign((void **)&ent->hdr, 64, sizeof(*ent->hdr)) ||
				    posix_memalign((void **)&ent->payload, 4096, pay))
					return -ENOMEM;
				memset(ent->hdr, 0, sizeof(*ent->hdr));
				ent->iov[0] = (struct iovec){ ent->hdr, sizeof(*ent->hdr) };
				ent->iov[1] = (struct iovec){ ent->payload, pay };
				u->nr_ents++;
				fs->uring_ents++;
			}
		}
	}
	return 0;
}

static void uring_free(struct nvmg_fuse *fs)
{
	for (unsigned i = 0; i < fs->nr_uring; i++) {
		struct fuse_uring *u = &fs->uring[i];

		if (u->shadow)
			fuse_session_destroy(u->shadow); /* closes shadow_fd */
		for (unsigned e = 0; e < u->nr_ents; e++) {
			free(u->ents[e].hdr);
			free(u->ents[e].payload);
		}
		free(u->ents);
		free(u->req);
		sem_destroy(&u->sem);
	}
	free(fs->uring);
	fs->uring = NULL;
	fs->nr_uring = 0;
}

void nvmg_fuse_uring_start(struct nvmg_fuse *fs)
{
	unsigned cpus = possible_cpus(), per_q;
	int ret = 0;

	if (!fs->uring_negotiated) {
		log_info("FUSE: requests go through libfuse's loop on /dev/fuse (%s)",
			 !fs->init_req ? "INIT not seen" :
			 fs->uring_offered ? "the kernel refused FUSE_OVER_IO_URING" :
			 "the kernel does not offer FUSE over io_uring: Linux before 6.14, or "
			 "/sys/module/fuse/parameters/enable_uring is off");
		return;
	}
	per_q = URING_ENTS_TOTAL / cpus;
	per_q = per_q > URING_ENTS_MAX ? URING_ENTS_MAX : per_q < URING_ENTS_MIN ? URING_ENTS_MIN : per_q;
	ret = uring_alloc(fs, cpus, per_q);
	for (unsigned i = 0; !ret && i < fs->nr_uring; i++) {
		struct fuse_uring *u = &fs->uring[i];

		ret = shadow_open(u);
		if (ret)
			break;
		ret = nvmg_reactor_post(u->r, setup_msg, u);
		if (ret)
			break;
		sem_wait(&u->sem);
		ret = u->result;
	}
	if (ret) {
		/* The kernel sends nothing over io_uring until every queue has
		 * an entry; /dev/fuse and libfuse's loop go on serving. */
		log_err("FUSE: io_uring queues: %s; requests go through libfuse's loop on /dev/fuse",
			strerror(-ret));
		nvmg_fuse_uring_stop(fs);
		return;
	}
	log_info("FUSE: requests go over io_uring: %u queues (one per CPU) of %u entries of %zu KiB "
		 "on %u reactors", cpus, per_q, fs->uring[0].payload_sz >> 10, fs->nr_uring);
}

void nvmg_fuse_uring_stop(struct nvmg_fuse *fs)
{
	uint64_t served = 0;

	for (unsigned i = 0; i < fs->nr_uring; i++) {
		struct fuse_uring *u = &fs->uring[i];

		if (!u->ring_ok)
			continue;
		if (nvmg_reactor_post(u->r, close_msg, u)) {
			log_err("FUSE: cannot close the io_uring queue of reactor %u; left to exit",
				nvmg_reactor_id(u->r));
			return;
		}
		sem_wait(&u->sem);
		served += u->served; /* the reactor is done with u */
	}
	if (fs->nr_uring)
		log_info("FUSE: %" PRIu64 " requests were served over io_uring", served);
	uring_free(fs);
}
