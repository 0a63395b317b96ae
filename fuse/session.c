/* The FUSE front end's life cycle: mount, libfuse's multi-threaded
 * session loop, namespace-change notices, unmount.
 *
 * libfuse 3.14's loop with clone_fd gives every worker thread its own
 * /dev/fuse descriptor; a worker hands each request to the reactors and
 * goes back to reading, and the reply is written by the reactor that
 * finishes the request (fuse_reply_* is thread-safe and writes to the
 * descriptor the request came from). Signals stay with the main thread:
 * libfuse's handlers are not installed. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>
#include "lib/log.h"
#include "fuse/internal.h"

/* Workers only read a request and hand it off, so a few suffice; each one
 * more is one more thread the kernel may wake per request. About one per
 * reactor measured best (2 reactors: 2 workers beat 1 and 8 by ~8%). */
#define LOOP_MIN_THREADS 2
#define LOOP_MAX_THREADS 16
#define UNMOUNT_GRACE_MS 500     /* for the kernel to end an unused mount */
#define ABORT_WAIT_MS 5000

static void fuse_log_cb(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	if (level <= FUSE_LOG_ERR)
		log_err("libfuse: %s", msg);
	else if (level <= FUSE_LOG_NOTICE)
		log_info("libfuse: %s", msg);
	else
		log_debug("libfuse: %s", msg);
}

/* INIT: take what the kernel offers, within what we serve. */
static void ll_init(void *userdata, struct fuse_conn_info *conn)
{
	struct nvmg_fuse *fs = userdata;

	fs->proto_minor = conn->proto_minor;
	/* libfuse already capped max_write to its buffer (1 MiB where the
	 * kernel has FUSE_MAX_PAGES, 4.20+, else 128 KiB); max_pages follows
	 * it. Larger requests would only be split again at MDTS. */
	if (conn->max_write > NVMG_FUSE_MAX_IO)
		conn->max_write = NVMG_FUSE_MAX_IO;
	fs->max_write = conn->max_write;
	/* Asynchronous direct I/O (libaio, io_uring, loop devices) arrives
	 * as many requests in flight; allow a queue's worth in the kernel. */
	conn->max_background = 128;
	conn->congestion_threshold = 96;
	/* Data never sits in the page cache (FOPEN_DIRECT_IO), so the
	 * cache-coherence features have nothing to do. */
	conn->want &= ~(unsigned)(FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_WRITEBACK_CACHE);
	/* FOPEN_PARALLEL_DIRECT_WRITES arrived with protocol 7.36 (Linux 6.0);
	 * older kernels ignore the bit anyway, but do not claim it. */
	fs->parallel_dio = conn->proto_minor >= 36;
	log_info("FUSE: kernel protocol 7.%u, max_write %u KiB, async direct I/O %s, parallel "
		 "direct writes %s", conn->proto_minor, conn->max_write >> 10,
		 conn->want & FUSE_CAP_ASYNC_DIO ? "on" : "off", fs->parallel_dio ? "on" : "off");
}

static void *loop_main(void *arg)
{
	struct nvmg_fuse *fs = arg;
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	unsigned threads = fs->nr_queues;
	int ret;

	if (!cfg) {
		log_err("FUSE: out of memory");
		sem_post(&fs->loop_done);
		return NULL;
	}
	threads = threads < LOOP_MIN_THREADS ? LOOP_MIN_THREADS
		  : threads > LOOP_MAX_THREADS ? LOOP_MAX_THREADS : threads;
	fuse_loop_cfg_set_clone_fd(cfg, 1);
	fuse_loop_cfg_set_max_threads(cfg, threads);
	/* Keep idle workers: creating threads per burst costs more. */
	fuse_loop_cfg_set_idle_threads(cfg, threads);
	/* Named for top -H; libfuse's workers inherit the name. */
	pthread_setname_np(pthread_self(), "nvmg-fuse");
	ret = fuse_session_loop_mt(fs->se, cfg);
	if (ret < 0 && ret != -ENODEV)
		log_err("FUSE: session loop: %s", strerror(-ret));
	if (!atomic_load(&fs->stopping))
		log_warn("FUSE: %s was unmounted from outside; NVMe/TCP goes on", fs->mountpoint);
	fuse_loop_cfg_destroy(cfg);
	sem_post(&fs->loop_done);
	return NULL;
}

static bool wait_loop(struct nvmg_fuse *fs, unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (sem_timedwait(&fs->loop_done, &ts)) {
		if (errno != EINTR)
			return false;
	}
	return true;
}

/* Reload hook: tell the kernel a namespace came, went or changed, so the
 * folder listing, the name and the size are fresh at once. */
static void ns_changed(void *ctx, struct nvmg_subsys *s, uint32_t nsid)
{
	struct nvmg_fuse *fs = ctx;
	char name[16];

	for (size_t i = 0; i < fs->nr_subs; i++) {
		fuse_ino_t dir = nvmg_fuse_dir_ino(i);

		if (fs->subs[i].s != s)
			continue;
		snprintf(name, sizeof(name), "n%" PRIu32, nsid);
		/* -ENOENT: the kernel had nothing cached; fine. */
		fuse_lowlevel_notify_inval_entry(fs->se, dir, name, strlen(name));
		fuse_lowlevel_notify_inval_inode(fs->se, dir | nsid, -1, 0);
		fuse_lowlevel_notify_inval_inode(fs->se, dir, 0, 0);
		log_info("FUSE: %s/%s/%s follows namespace %" PRIu32 " of %s", fs->mountpoint,
			 fs->subs[i].name, name, nsid, s->nqn);
	}
}

static void fs_free(struct nvmg_fuse *fs)
{
	for (size_t i = 0; i < fs->nr_subs; i++)
		free((char *)fs->subs[i].name);
	free(fs->subs);
	for (size_t i = 0; i < fs->nr_aliases; i++) {
		free(fs->alias_nqns[i]);
		free(fs->alias_names[i]);
	}
	free(fs->alias_nqns);
	free(fs->alias_names);
	free(fs->mountpoint);
	free(fs->init_req);
	free(fs);
}

/* A subsystem's folder: its alias, else its NQN. */
static const char *folder_name(const struct nvmg_fuse *fs, const char *nqn)
{
	for (size_t j = 0; j < fs->nr_aliases; j++)
		if (!strcmp(fs->alias_nqns[j], nqn))
			return fs->alias_names[j];
	return nqn;
}

static int fs_alloc(struct nvmg_target *t, const struct nvmg_conf *conf, struct nvmg_fuse **out)
{
	struct nvmg_fuse *fs = calloc(1, sizeof(*fs));

	if (!fs)
		return -ENOMEM;
	fs->tgt = t;
	clock_gettime(CLOCK_REALTIME, &fs->mtime);
	fs->mountpoint = strdup(conf->fuse_mountpoint);
	fs->cap_subs = t->nr_subsys + NVMG_FUSE_SUBS_SPARE;
	fs->subs = calloc(fs->cap_subs, sizeof(*fs->subs));
	fs->alias_nqns = calloc(conf->nr_fuse_aliases + 1, sizeof(char *));
	fs->alias_names = calloc(conf->nr_fuse_aliases + 1, sizeof(char *));
	if (!fs->mountpoint || !fs->subs || !fs->alias_nqns || !fs->alias_names)
		goto nomem;
	for (size_t i = 0; i < conf->nr_fuse_aliases; i++) {
		fs->alias_nqns[i] = strdup(conf->fuse_aliases[i].nqn);
		fs->alias_names[i] = strdup(conf->fuse_aliases[i].name);
		fs->nr_aliases++;
		if (!fs->alias_nqns[i] || !fs->alias_names[i])
			goto nomem;
	}
	for (size_t i = 0; i < t->nr_subsys; i++) {
		fs->subs[i].s = t->subsys[i];
		fs->subs[i].name = strdup(folder_name(fs, t->subsys[i]->nqn));
		fs->nr_subs++;
		if (!fs->subs[i].name)
			goto nomem;
	}
	*out = fs;
	return 0;
nomem:
	fs_free(fs);
	return -ENOMEM;
}

static int session_open(struct nvmg_fuse *fs, char *err, size_t errlen)
{
	struct fuse_lowlevel_ops ops = nvmg_fuse_ll_ops;
	char opts[128];
	char *argv[] = { "nvmegated", "-o", opts, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	int placeholder;

	ops.init = ll_init;
	/* fsname carries our pid: the next start tells a stale mount (its
	 * daemon gone) from a live one by reading mountinfo alone. The kernel
	 * enforces the file modes (0444 for read-only namespaces). */
	snprintf(opts, sizeof(opts), "fsname=nvmegate:%d,subtype=nvmegate,default_permissions",
		 (int)getpid());
	fs->se = fuse_session_new(&args, &ops, sizeof(ops), fs);
	fuse_opt_free_args(&args);
	if (!fs->se) {
		snprintf(err, errlen, "FUSE: cannot create a session (see libfuse's message above)");
		return -EINVAL;
	}
	/* Our hooks on the session's /dev/fuse I/O (uring.c): they see INIT
	 * and can ask for FUSE over io_uring in its reply. The descriptor
	 * given here is a placeholder that the mount replaces. */
	placeholder = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (placeholder < 0 || fuse_session_custom_io(fs->se, &nvmg_fuse_session_io, placeholder)) {
		if (placeholder >= 0)
			close(placeholder);
		log_warn("FUSE: cannot hook the session's I/O: FUSE over io_uring is off");
		placeholder = -1;
	}
	if (fuse_session_mount(fs->se, fs->mountpoint)) {
		snprintf(err, errlen, "FUSE: cannot mount at %s (see libfuse's message above)",
			 fs->mountpoint);
		fuse_session_destroy(fs->se); /* closes the placeholder */
		fs->se = NULL;
		return -EIO;
	}
	if (placeholder >= 0)
		close(placeholder);
	if (nvmg_fuse_mount_dev(fs->mountpoint, &fs->dev))
		log_warn("FUSE: %s: mount not found in mountinfo", fs->mountpoint);
	return 0;
}

/* INIT is the kernel's first request: answer it here, before the loop,
 * so that the io_uring queues (which need an initialized connection) are
 * in place before any worker runs. */
static int session_init(struct nvmg_fuse *fs, char *err, size_t errlen)
{
	struct fuse_buf buf = { 0 };
	int ret;

	do {
		ret = fuse_session_receive_buf(fs->se, &buf);
	} while (ret == -EINTR);
	if (ret <= 0) {
		snprintf(err, errlen, "FUSE: no INIT from the kernel: %s",
			 ret ? strerror(-ret) : "end of connection");
		free(buf.mem);
		return ret ? ret : -ENODEV;
	}
	fuse_session_process_buf(fs->se, &buf);
	free(buf.mem);
	if (!fs->max_write) {
		snprintf(err, errlen, "FUSE: INIT failed (see libfuse's message above)");
		return -EPROTO;
	}
	nvmg_fuse_uring_start(fs);
	return 0;
}

int nvmg_fuse_start(struct nvmg_target *t, const struct nvmg_conf *conf, struct nvmg_fuse **out,
		    char *err, size_t errlen)
{
	struct nvmg_fuse *fs = NULL;
	int ret;

	*out = NULL;
	if (!conf->fuse_mountpoint)
		return 0;
	fuse_set_log_func(fuse_log_cb);
	ret = nvmg_fuse_prepare_mountpoint(conf->fuse_mountpoint, err, errlen);
	if (ret)
		return ret;
	ret = fs_alloc(t, conf, &fs);
	if (ret) {
		snprintf(err, errlen, "FUSE: out of memory");
		return ret;
	}
	sem_init(&fs->loop_done, 0, 0);
	ret = nvmg_fuse_transport_start(fs, err, errlen);
	if (!ret)
		ret = session_open(fs, err, errlen);
	if (!ret)
		ret = session_init(fs, err, errlen);
	if (!ret) {
		ret = -pthread_create(&fs->loop_thread, NULL, loop_main, fs);
		if (ret)
			snprintf(err, errlen, "FUSE: cannot start the session thread: %s",
				 strerror(-ret));
		else
			fs->loop_started = true;
	}
	if (ret) {
		nvmg_fuse_stop(fs);
		return ret;
	}
	t->ns_changed_ctx = fs;
	t->ns_changed = ns_changed;
	log_info("FUSE: %zu subsystem%s mounted at %s", fs->nr_subs, fs->nr_subs == 1 ? "" : "s",
		 fs->mountpoint);
	*out = fs;
	return 0;
}

static bool running(struct nvmg_subsys *const *v, size_t n, const struct nvmg_subsys *s)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == s)
			return true;
	return false;
}

/* A new subsystem gets a folder (a new entry: its inode numbers are new,
 * so nothing cached for an old one with the same name applies). */
static void sub_add(struct nvmg_fuse *fs, struct nvmg_subsys *s)
{
	size_t n = atomic_load(&fs->nr_subs);
	struct fuse_sub *sub = &fs->subs[n];
	char err[256] = "";

	if (n == fs->cap_subs) {
		log_warn("FUSE: no room for %s: %zu folders since start; it shows after a restart",
			 s->nqn, n);
		return;
	}
	memset(sub, 0, sizeof(*sub));
	sub->s = s;
	sub->name = strdup(folder_name(fs, s->nqn));
	if (!sub->name || nvmg_fuse_sub_attach(fs, sub, err, sizeof(err))) {
		log_err("FUSE: %s: %s", s->nqn, sub->name ? err : "out of memory");
		nvmg_fuse_sub_detach(sub);
		free((char *)sub->name);
		sub->name = NULL;
		return;
	}
	/* Release: a worker that sees the count sees the entry whole. */
	atomic_store(&fs->nr_subs, n + 1);
	log_info("FUSE: %s/%s follows new subsystem %s", fs->mountpoint, sub->name, s->nqn);
}

/* After a reload: folders for added subsystems, none for removed ones
 * (removed ones are retired, not freed, so sub->s stays readable). */
static void follow_subsystems(struct nvmg_fuse *fs)
{
	struct nvmg_target *t = fs->tgt;
	struct nvmg_subsys **now;
	size_t n, known = atomic_load(&fs->nr_subs);
	bool changed = false;

	pthread_rwlock_rdlock(&t->model_lock);
	n = t->nr_subsys;
	now = calloc(n + 1, sizeof(*now));
	if (now)
		memcpy(now, t->subsys, n * sizeof(*now));
	pthread_rwlock_unlock(&t->model_lock);
	if (!now) {
		log_err("FUSE: out of memory following subsystem changes");
		return;
	}
	for (size_t i = 0; i < known; i++) {
		struct fuse_sub *sub = &fs->subs[i];

		if (atomic_load(&sub->gone) || running(now, n, sub->s))
			continue;
		atomic_store(&sub->gone, true);
		fuse_lowlevel_notify_inval_entry(fs->se, NVMG_FUSE_ROOT, sub->name,
						 strlen(sub->name));
		log_info("FUSE: %s/%s removed with its subsystem", fs->mountpoint, sub->name);
		changed = true;
	}
	for (size_t i = 0; i < n; i++) {
		bool have = false;

		for (size_t j = 0; j < known && !have; j++)
			have = fs->subs[j].s == now[i] && !atomic_load(&fs->subs[j].gone);
		if (!have) {
			sub_add(fs, now[i]);
			changed = true;
		}
	}
	free(now);
	if (changed)
		fuse_lowlevel_notify_inval_inode(fs->se, NVMG_FUSE_ROOT, 0, 0);
}

void nvmg_fuse_reload(struct nvmg_fuse *fs, const struct nvmg_conf *conf)
{
	bool same;

	if (!fs) {
		if (conf->fuse_mountpoint)
			log_warn("reload: a FUSE mount needs a restart");
		return;
	}
	same = conf->fuse_mountpoint && !strcmp(conf->fuse_mountpoint, fs->mountpoint) &&
	       conf->nr_fuse_aliases == fs->nr_aliases;
	for (size_t i = 0; same && i < fs->nr_aliases; i++)
		same = !strcmp(conf->fuse_aliases[i].nqn, fs->alias_nqns[i]) &&
		       !strcmp(conf->fuse_aliases[i].name, fs->alias_names[i]);
	if (!same)
		log_warn("reload: FUSE mountpoint or alias changes need a restart; keeping %s",
			 fs->mountpoint);
	follow_subsystems(fs);
}

void nvmg_fuse_stop(struct nvmg_fuse *fs)
{
	bool loop_ended = true;

	if (!fs)
		return;
	if (fs->tgt->ns_changed_ctx == fs) {
		fs->tgt->ns_changed = NULL;
		fs->tgt->ns_changed_ctx = NULL;
	}
	atomic_store(&fs->stopping, true);
	if (fs->se) {
		fuse_session_exit(fs->se);
		/* Detach now so the path is free whatever happens next; an
		 * unused file system then ends and its readers see ENODEV. */
		if (umount2(fs->mountpoint, MNT_DETACH) && errno != EINVAL)
			log_warn("FUSE: unmount %s: %s", fs->mountpoint, strerror(errno));
		if (fs->loop_started && !wait_loop(fs, UNMOUNT_GRACE_MS)) {
			/* Still in use (open files, a loop device): abort the
			 * connection so its users get ENOTCONN, not a hang. */
			int ret = nvmg_fuse_abort_conn(fs->dev);

			if (ret)
				log_err("FUSE: %s is still in use and its connection cannot be "
					"aborted: %s", fs->mountpoint, strerror(-ret));
			else
				log_warn("FUSE: %s was still in use: connection aborted",
					 fs->mountpoint);
			loop_ended = wait_loop(fs, ABORT_WAIT_MS);
		}
		if (fs->loop_started && loop_ended)
			pthread_join(fs->loop_thread, NULL);
	}
	if (!loop_ended) {
		/* Workers may still hold requests: freeing would be unsafe.
		 * Process exit reclaims everything. */
		log_err("FUSE: session loop did not end; leaving it to process exit");
		return;
	}
	nvmg_fuse_transport_stop(fs);
	nvmg_fuse_uring_stop(fs);
	if (fs->se) {
		/* The connection is gone, so this only closes the descriptor
		 * (and frees libfuse's copy of the mountpoint). */
		fuse_session_unmount(fs->se);
		fuse_session_destroy(fs->se);
		log_info("FUSE: %s unmounted", fs->mountpoint);
	}
	sem_destroy(&fs->loop_done);
	fs_free(fs);
}
