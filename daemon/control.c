/* Control socket: listener, per-client buffering with deadlines, replies. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "daemon/control.h"
#include "daemon/control_internal.h"
#include "daemon/daemon.h"
#include "lib/log.h"
#include "lib/reactor.h"

/* Where the nvmegate CLI looks first: a root daemon started by hand with no
 * "control" key serves there, so `nvmegated -c FILE & nvmegate status`
 * works as it does under systemd (whose RuntimeDirectory is the same). */
#define DEFAULT_DIR "/run/nvmegate"
#define DEFAULT_SOCKET DEFAULT_DIR "/control.sock"

#define MAX_CLIENTS 16
#define MAX_REQUEST (64 * 1024)
#define REQUEST_TIMEOUT_MS 5000
#define SEND_TIMEOUT_S 5

struct client {
	int fd;             /* -1: free slot */
	char *buf;
	size_t len;
	uint64_t deadline_ms;
	bool discard;       /* answered (request too large): drain to EOF, then close */
};

struct nvmg_control {
	struct nvmg_daemon *d;
	int lfd;
	int stop_fd;        /* eventfd: ask the thread to exit */
	pthread_t thread;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct client clients[MAX_CLIENTS];
};

static void client_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	c->fd = -1;
	c->buf = NULL;
	c->len = 0;
	c->discard = false;
}

/* Blocking write with a send timeout: a CLI that stops reading cannot hold
 * the thread for longer than SEND_TIMEOUT_S. */
static void send_all(int fd, const char *p, size_t n)
{
	struct timeval tv = { SEND_TIMEOUT_S, 0 };
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* One response line; resp is consumed. */
static void send_resp(int fd, struct json_object *resp)
{
	const char *s = json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN);

	send_all(fd, s, strlen(s));
	send_all(fd, "\n", 1);
	json_object_put(resp);
}

static void reply(struct client *c, struct json_object *resp)
{
	send_resp(c->fd, resp);
	client_close(c);
}

static void handle_request(struct nvmg_control *ctl, struct client *c)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *req = NULL;
	char msg[160];

	if (tok) {
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
		req = json_tokener_parse_ex(tok, c->buf, (int)c->len);
		if (req && json_tokener_get_parse_end(tok) < c->len &&
		    strspn(c->buf + json_tokener_get_parse_end(tok), " \t\r\n") !=
			    c->len - json_tokener_get_parse_end(tok)) {
			json_object_put(req);
			req = NULL;
		}
	}
	if (!req || !json_object_is_type(req, json_type_object)) {
		snprintf(msg, sizeof(msg), "request is not a JSON object%s%s",
			 tok && !req ? ": " : "",
			 tok && !req ? json_tokener_error_desc(json_tokener_get_error(tok)) : "");
		json_object_put(req);
		if (tok)
			json_tokener_free(tok);
		reply(c, ctl_fail(true, "%s", msg));
		return;
	}
	json_tokener_free(tok);
	reply(c, nvmg_control_exec(ctl->d, req));
	json_object_put(req);
}

static void client_readable(struct nvmg_control *ctl, struct client *c)
{
	char tmp[4096];
	ssize_t r = recv(c->fd, tmp, sizeof(tmp), 0);
	char *nl;

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r < 0 || (r == 0 && c->discard)) {
		client_close(c);
		return;
	}
	if (c->discard)
		return;
	if (r == 0) {
		if (c->len) /* a request without its newline, ended by EOF */
			handle_request(ctl, c);
		else
			client_close(c);
		return;
	}
	if (c->len + (size_t)r > MAX_REQUEST) {
		/* Answer now, but read the rest before closing: closing with
		 * unread data resets the connection and loses the answer. */
		send_resp(c->fd, ctl_fail(true, "request is larger than 64 KiB"));
		fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
		shutdown(c->fd, SHUT_WR);
		c->discard = true;
		return;
	}
	char *nb = realloc(c->buf, c->len + (size_t)r + 1);

	if (!nb) {
		client_close(c);
		return;
	}
	c->buf = nb;
	memcpy(c->buf + c->len, tmp, (size_t)r);
	c->len += (size_t)r;
	c->buf[c->len] = '\0';
	nl = memchr(c->buf, '\n', c->len);
	if (nl) {
		c->len = (size_t)(nl - c->buf);
		c->buf[c->len] = '\0';
		handle_request(ctl, c);
	}
}

static void accept_client(struct nvmg_control *ctl)
{
	int fd = accept4(ctl->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn("control: accept: %s", strerror(errno));
		return;
	}
	for (unsigned i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &ctl->clients[i];

		if (c->fd < 0) {
			c->fd = fd;
			c->deadline_ms = nvmg_now_ms() + REQUEST_TIMEOUT_MS;
			return;
		}
	}
	/* Every slot busy: say so rather than leave the CLI waiting. */
	struct client tmp = { .fd = fd };

	reply(&tmp, ctl_fail(true, "too many concurrent control connections, retry"));
}

static void *control_main(void *arg)
{
	struct nvmg_control *ctl = arg;

	for (;;) {
		struct pollfd pfd[MAX_CLIENTS + 2];
		struct client *who[MAX_CLIENTS + 2];
		unsigned n = 0;
		uint64_t now = nvmg_now_ms(), next = UINT64_MAX;
		int timeout;

		pfd[n] = (struct pollfd){ .fd = ctl->stop_fd, .events = POLLIN };
		who[n++] = NULL;
		pfd[n] = (struct pollfd){ .fd = ctl->lfd, .events = POLLIN };
		who[n++] = NULL;
		for (unsigned i = 0; i < MAX_CLIENTS; i++) {
			if (ctl->clients[i].fd < 0)
				continue;
			pfd[n] = (struct pollfd){ .fd = ctl->clients[i].fd, .events = POLLIN };
			who[n++] = &ctl->clients[i];
			if (ctl->clients[i].deadline_ms < next)
				next = ctl->clients[i].deadline_ms;
		}
		/* Wake only for a client's deadline: with no client the thread
		 * sleeps until a connection or stop_fd, so an idle daemon costs
		 * no CPU (a periodic tick here was its only idle wake-up). */
		timeout = next == UINT64_MAX ? -1 : next < now ? 0 : (int)(next - now + 1);
		if (poll(pfd, n, timeout) < 0 && errno != EINTR) {
			log_err("control: poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents)
			break;
		if (pfd[1].revents & POLLIN)
			accept_client(ctl);
		for (unsigned i = 2; i < n; i++)
			if (pfd[i].revents && who[i]->fd >= 0)
				client_readable(ctl, who[i]);
		now = nvmg_now_ms();
		for (unsigned i = 0; i < MAX_CLIENTS; i++) {
			struct client *c = &ctl->clients[i];

			if (c->fd >= 0 && now > c->deadline_ms) {
				if (c->discard)
					client_close(c);
				else
					reply(c, ctl_fail(true, "incomplete request (no newline within 5 s)"));
			}
		}
	}
	for (unsigned i = 0; i < MAX_CLIENTS; i++)
		client_close(&ctl->clients[i]);
	return NULL;
}

/* A live daemon answers on an existing socket; a stale file is replaced. */
static int claim_path(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, ret;

	if (lstat(path, &st)) {
		if (errno == ENOENT)
			return 0;
		ret = -errno;
		snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
		return ret;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "control socket %s: exists and is not a socket", path);
		return -EEXIST;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "control socket: %s", strerror(errno));
		return ret;
	}
	ret = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
	if (!ret) {
		snprintf(err, errlen, "control socket %s: another nvmegated is serving it", path);
		return -EADDRINUSE;
	}
	if (unlink(path) && errno != ENOENT) {
		ret = -errno;
		snprintf(err, errlen, "control socket %s: cannot remove the stale socket: %s", path,
			 strerror(errno));
		return ret;
	}
	return 0;
}

static int open_socket(struct nvmg_control *ctl, const char *group, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	gid_t gid = (gid_t)-1;
	mode_t old_mask;
	int ret;

	if (group) {
		struct group *g = getgrnam(group);

		if (!g) {
			snprintf(err, errlen, "nvmegate.control.group: no group named \"%s\"", group);
			return -ENOENT;
		}
		gid = g->gr_gid;
	}
	if ((ret = claim_path(ctl->path, err, errlen)))
		return ret;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", ctl->path);
	ctl->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->lfd < 0)
		goto fail;
	/* Born with mode 0600: nobody else can connect before the chmod. */
	old_mask = umask(0177);
	ret = bind(ctl->lfd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old_mask);
	if (ret)
		goto fail;
	if (group && (chown(ctl->path, (uid_t)-1, gid) || chmod(ctl->path, 0660)))
		goto fail;
	if (listen(ctl->lfd, 16))
		goto fail;
	return 0;
fail:
	ret = -errno;
	snprintf(err, errlen, "control socket %s: %s", ctl->path, strerror(errno));
	return ret;
}

/* The default folder, made 0755 (whatever the umask) so a "group" socket
 * in it stays reachable; an existing one is left as it is. */
static int make_default_dir(char *err, size_t errlen)
{
	struct stat st;
	int ret;

	if (!mkdir(DEFAULT_DIR, 0755)) {
		if (!chmod(DEFAULT_DIR, 0755))
			return 0;
	} else if (errno == EEXIST && !stat(DEFAULT_DIR, &st)) {
		if (S_ISDIR(st.st_mode))
			return 0;
		errno = ENOTDIR;
	}
	ret = -errno;
	snprintf(err, errlen, "%s: %s", DEFAULT_DIR, strerror(-ret));
	return ret;
}

/* The configured path, $RUNTIME_DIRECTORY's under systemd, or (as root)
 * the default. Returns 1 with ctl->path set, 0 for no socket, or -errno. */
static int choose_path(struct nvmg_control *ctl, const struct nvmg_conf *conf, bool *is_default,
		       char *err, size_t errlen)
{
	const char *rundir = getenv("RUNTIME_DIRECTORY");

	*is_default = false;
	if (conf->control_socket) {
		snprintf(ctl->path, sizeof(ctl->path), "%s", conf->control_socket);
		return 1;
	}
	if (rundir) {
		/* RUNTIME_DIRECTORY may list several folders; we set one. */
		if (snprintf(ctl->path, sizeof(ctl->path), "%s/control.sock", rundir) >=
		    (int)sizeof(ctl->path)) {
			snprintf(err, errlen, "control socket: RUNTIME_DIRECTORY is too long");
			return -ENAMETOOLONG;
		}
		return 1;
	}
	if (geteuid() != 0)
		return 0; /* /run is root's */
	*is_default = true;
	snprintf(ctl->path, sizeof(ctl->path), "%s", DEFAULT_SOCKET);
	return 1;
}

int nvmg_control_start(struct nvmg_daemon *d, const struct nvmg_conf *conf, char *err,
		       size_t errlen)
{
	struct nvmg_control *ctl;
	bool is_default;
	int ret;

	d->control = NULL;
	ctl = calloc(1, sizeof(*ctl));
	if (!ctl) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ctl->d = d;
	ctl->lfd = -1;
	for (unsigned i = 0; i < MAX_CLIENTS; i++)
		ctl->clients[i].fd = -1;
	ret = choose_path(ctl, conf, &is_default, err, errlen);
	if (ret <= 0) {
		free(ctl);
		if (!ret)
			log_info("no control socket: the nvmegate CLI needs nvmegate.control.socket "
				 "in the config (or a root daemon, which serves %s)", DEFAULT_SOCKET);
		return ret;
	}
	if (is_default && (ret = make_default_dir(err, errlen))) {
		free(ctl);
		log_warn("control socket: %s; running without one (set nvmegate.control.socket)", err);
		err[0] = '\0';
		return 0;
	}
	ctl->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (ctl->stop_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "control: eventfd: %s", strerror(errno));
		free(ctl);
		return ret;
	}
	ret = open_socket(ctl, conf->control_group, err, errlen);
	if (!ret) {
		ret = -pthread_create(&ctl->thread, NULL, control_main, ctl);
		if (ret)
			snprintf(err, errlen, "control: thread: %s", strerror(-ret));
	}
	if (ret) {
		if (ctl->lfd >= 0) {
			close(ctl->lfd);
			unlink(ctl->path);
		}
		close(ctl->stop_fd);
		free(ctl);
		/* The default is a convenience: another daemon serving it (or no
		 * room for it) costs this one its CLI, not its start. */
		if (is_default) {
			log_warn("%s; this nvmegated runs without a control socket (set "
				 "nvmegate.control.socket to reach it with nvmegate -s)", err);
			err[0] = '\0';
			return 0;
		}
		return ret;
	}
	pthread_setname_np(ctl->thread, "nvmg-control");
	d->control = ctl;
	log_info("control socket %s (%s)", ctl->path,
		 conf->control_group ? "mode 0660, configured group" : "mode 0600");
	return 0;
}

void nvmg_control_stop(struct nvmg_daemon *d)
{
	struct nvmg_control *ctl = d->control;
	uint64_t one = 1;

	if (!ctl)
		return;
	if (write(ctl->stop_fd, &one, sizeof(one)) != sizeof(one))
		log_err("control: eventfd write: %s", strerror(errno));
	pthread_join(ctl->thread, NULL);
	close(ctl->lfd);
	unlink(ctl->path);
	close(ctl->stop_fd);
	free(ctl);
	d->control = NULL;
}
