/* Control commands that change the configuration: they edit the running
 * configuration's JSON, then apply it exactly like SIGHUP would, so the
 * validator names the problem and `save` writes what runs. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "daemon/control.h"
#include "daemon/control_internal.h"
#include "daemon/daemon.h"
#include "lib/log.h"
#include "nvme/subsys.h"

/* ---- responses, arguments and daemon state (shared with control_show.c) ---- */

struct json_object *ctl_ok(struct json_object *result)
{
	struct json_object *r = json_object_new_object();

	json_object_object_add(r, "ok", json_object_new_boolean(1));
	json_object_object_add(r, "result", result ? result : json_object_new_object());
	return r;
}

struct json_object *ctl_fail(bool usage, const char *fmt, ...)
{
	struct json_object *r = json_object_new_object();
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(r, "ok", json_object_new_boolean(0));
	json_object_object_add(r, "error", json_object_new_string(msg));
	json_object_object_add(r, "usage", json_object_new_boolean(usage));
	return r;
}

int ctl_str(struct json_object *req, const char *key, bool required, const char **out,
	    struct json_object **fail)
{
	struct json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(req, key, &v) || json_object_is_type(v, json_type_null)) {
		if (required)
			*fail = ctl_fail(true, "missing argument \"%s\"", key);
		return required ? -EINVAL : 0;
	}
	if (!json_object_is_type(v, json_type_string) || !json_object_get_string_len(v)) {
		*fail = ctl_fail(true, "argument \"%s\" must be a non-empty string", key);
		return -EINVAL;
	}
	*out = json_object_get_string(v);
	return 0;
}

int ctl_u64(struct json_object *req, const char *key, bool required, uint64_t max, uint64_t *out,
	    struct json_object **fail)
{
	struct json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(req, key, &v) || json_object_is_type(v, json_type_null)) {
		if (required)
			*fail = ctl_fail(true, "missing argument \"%s\"", key);
		return required ? -EINVAL : 0;
	}
	errno = 0;
	x = json_object_get_int64(v);
	if (!json_object_is_type(v, json_type_int) || errno || x < 0 || (uint64_t)x > max) {
		*fail = ctl_fail(true, "argument \"%s\" must be an integer from 0 to %llu", key,
				 (unsigned long long)max);
		return -EINVAL;
	}
	*out = (uint64_t)x;
	return 0;
}

uint64_t ctl_changes(struct nvmg_daemon *d)
{
	uint64_t n;

	pthread_mutex_lock(&d->lock);
	n = d->changes;
	pthread_mutex_unlock(&d->lock);
	return n;
}

/* ---- editing the running configuration ---- */

typedef struct json_object *(*edit_fn)(struct json_object *root, struct json_object *req,
				       char *done, size_t donelen);

static struct json_object *arr_get(struct json_object *obj, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_array)) {
		v = json_object_new_array();
		json_object_object_add(obj, key, v);
	}
	return v;
}

static struct json_object *find_subsys(struct json_object *root, const char *nqn)
{
	struct json_object *arr = arr_get(root, "subsystems"), *nqn_v;

	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *s = json_object_array_get_idx(arr, i);

		if (json_object_object_get_ex(s, "nqn", &nqn_v) &&
		    !strcmp(json_object_get_string(nqn_v), nqn))
			return s;
	}
	return NULL;
}

/* Index of the element of arr whose key (or the element itself, for
 * strings) equals want, or -1. */
static long find_in(struct json_object *arr, const char *key, struct json_object *want)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *e = json_object_array_get_idx(arr, i), *v = e;

		if (key && !json_object_object_get_ex(e, key, &v))
			continue;
		if (json_object_is_type(want, json_type_int) ? json_object_get_int64(v) ==
							      json_object_get_int64(want)
							: !strcmp(json_object_get_string(v),
								  json_object_get_string(want)))
			return (long)i;
	}
	return -1;
}

/* Where the entry of a number key (portid, grpid) is in arr, or -1. */
static long find_num(struct json_object *arr, const char *key, uint64_t num)
{
	struct json_object *v = json_object_new_int64((int64_t)num);
	long i = find_in(arr, key, v);

	json_object_put(v);
	return i;
}

/* The configuration as `save` writes it and the validator reads it. */
static char *config_text(struct json_object *root)
{
	return strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
							   JSON_C_TO_STRING_NOSLASHESCAPE));
}

static struct json_object *run_edit(struct nvmg_daemon *d, struct json_object *req, edit_fn fn)
{
	struct json_object *root, *resp;
	char err[600] = "", done[300] = "";
	/* done and err quote the request's arguments: a client of a group
	 * socket must not write raw lines into root's log either. */
	char edone[NVMG_ESCAPED_SIZE(sizeof(done))], eerr[NVMG_ESCAPED_SIZE(sizeof(err))];
	char *text;
	int ret;

	pthread_mutex_lock(&d->lock);
	root = json_tokener_parse(d->running_json);
	if (!root) {
		pthread_mutex_unlock(&d->lock);
		return ctl_fail(false, "out of memory");
	}
	resp = fn(root, req, done, sizeof(done));
	if (resp) { /* the edit itself refused */
		pthread_mutex_unlock(&d->lock);
		json_object_put(root);
		return resp;
	}
	text = config_text(root);
	json_object_put(root);
	if (!text) {
		pthread_mutex_unlock(&d->lock);
		return ctl_fail(false, "out of memory");
	}
	ret = nvmg_daemon_apply_locked(d, text, err, sizeof(err));
	pthread_mutex_unlock(&d->lock);
	if (ret) {
		log_warn("control: %s refused: %s", nvmg_escape(edone, sizeof(edone), done, sizeof(done)),
			 nvmg_escape(eerr, sizeof(eerr), err, sizeof(err)));
		/* -EINVAL is the validator's: the arguments made a bad config. */
		return ctl_fail(ret == -EINVAL, "%s", err);
	}
	log_info("control: %s", nvmg_escape(edone, sizeof(edone), done, sizeof(done)));
	return ctl_ok(NULL);
}

static struct json_object *edit_ns_add(struct json_object *root, struct json_object *req,
				       char *done, size_t donelen)
{
	struct json_object *fail = NULL, *s, *ns, *dev, *nsid_v, *nss;
	const char *nqn, *path;
	uint64_t nsid, lba = 0, ro = 0;

	if (ctl_str(req, "nqn", true, &nqn, &fail) || ctl_u64(req, "nsid", true, 0xfffffffe, &nsid, &fail) ||
	    ctl_str(req, "path", true, &path, &fail) || ctl_u64(req, "lba_size", false, 4096, &lba, &fail) ||
	    ctl_u64(req, "readonly", false, 1, &ro, &fail))
		return fail;
	if (!nsid)
		return ctl_fail(true, "nsid must be 1 or more");
	if (!(s = find_subsys(root, nqn)))
		return ctl_fail(true, "no subsystem %s", nqn);
	nss = arr_get(s, "namespaces");
	nsid_v = json_object_new_int64((int64_t)nsid);
	if (find_in(nss, "nsid", nsid_v) >= 0) {
		json_object_put(nsid_v);
		return ctl_fail(true, "subsystem %s already has namespace %llu", nqn,
				(unsigned long long)nsid);
	}
	ns = json_object_new_object();
	dev = json_object_new_object();
	json_object_object_add(dev, "path", json_object_new_string(path));
	json_object_object_add(ns, "nsid", nsid_v);
	json_object_object_add(ns, "enable", json_object_new_int(1));
	json_object_object_add(ns, "device", dev);
	if (ro)
		json_object_object_add(ns, "readonly", json_object_new_boolean(1));
	if (lba)
		json_object_object_add(ns, "lba_size", json_object_new_int64((int64_t)lba));
	json_object_array_add(nss, ns);
	snprintf(done, donelen, "subsystem %s: add namespace %llu (%s)", nqn,
		 (unsigned long long)nsid, path);
	return NULL;
}

static struct json_object *edit_ns_remove(struct json_object *root, struct json_object *req,
					  char *done, size_t donelen)
{
	struct json_object *fail = NULL, *s, *nss, *want;
	const char *nqn;
	uint64_t nsid;
	long i;

	if (ctl_str(req, "nqn", true, &nqn, &fail) || ctl_u64(req, "nsid", true, 0xfffffffe, &nsid, &fail))
		return fail;
	if (!(s = find_subsys(root, nqn)))
		return ctl_fail(true, "no subsystem %s", nqn);
	nss = arr_get(s, "namespaces");
	want = json_object_new_int64((int64_t)nsid);
	i = find_in(nss, "nsid", want);
	json_object_put(want);
	if (i < 0)
		return ctl_fail(true, "subsystem %s has no namespace %llu", nqn, (unsigned long long)nsid);
	json_object_array_del_idx(nss, (size_t)i, 1);
	snprintf(done, donelen, "subsystem %s: remove namespace %llu", nqn, (unsigned long long)nsid);
	return NULL;
}

static struct json_object *edit_host(struct json_object *root, struct json_object *req, char *done,
				     size_t donelen, bool allow)
{
	struct json_object *fail = NULL, *s, *attr, *any, *hosts, *want;
	const char *nqn, *host;
	long i;

	if (ctl_str(req, "nqn", true, &nqn, &fail) || ctl_str(req, "host", true, &host, &fail))
		return fail;
	if (!(s = find_subsys(root, nqn)))
		return ctl_fail(true, "no subsystem %s", nqn);
	if (json_object_object_get_ex(s, "attr", &attr) &&
	    json_object_object_get_ex(attr, "allow_any_host", &any) &&
	    (json_object_get_boolean(any) && strcmp(json_object_get_string(any), "0")))
		return ctl_fail(true, "subsystem %s allows any host (attr.allow_any_host); per-host "
				"access needs it off", nqn);
	hosts = arr_get(s, "allowed_hosts");
	want = json_object_new_string(host);
	i = find_in(hosts, NULL, want);
	if (allow && i >= 0) {
		json_object_put(want);
		return ctl_fail(true, "host %s is already allowed on %s", host, nqn);
	}
	if (!allow && i < 0) {
		json_object_put(want);
		return ctl_fail(true, "host %s is not allowed on %s", host, nqn);
	}
	if (allow) {
		struct json_object *all = arr_get(root, "hosts"), *h;

		json_object_array_add(hosts, want);
		/* nvmetcli restores allowed_hosts as links to the "hosts" list. */
		if (find_in(all, "nqn", want) < 0) {
			h = json_object_new_object();
			json_object_object_add(h, "nqn", json_object_new_string(host));
			json_object_array_add(all, h);
		}
	} else {
		json_object_put(want);
		json_object_array_del_idx(hosts, (size_t)i, 1);
	}
	snprintf(done, donelen, "subsystem %s: %s host %s", nqn, allow ? "allow" : "deny", host);
	return NULL;
}

static struct json_object *edit_host_allow(struct json_object *root, struct json_object *req,
					   char *done, size_t donelen)
{
	return edit_host(root, req, done, donelen, true);
}

static struct json_object *edit_host_deny(struct json_object *root, struct json_object *req,
					  char *done, size_t donelen)
{
	return edit_host(root, req, done, donelen, false);
}

static struct json_object *edit_port_add(struct json_object *root, struct json_object *req,
					  char *done, size_t donelen)
{
	struct json_object *fail = NULL, *ports = arr_get(root, "ports"), *p, *addr, *subs, *v;
	const char *traddr;
	uint64_t portid, svc;
	char svcs[8];

	if (ctl_u64(req, "portid", true, 65535, &portid, &fail) ||
	    ctl_str(req, "traddr", true, &traddr, &fail) ||
	    ctl_u64(req, "trsvcid", true, 65535, &svc, &fail))
		return fail;
	v = json_object_new_int64((int64_t)portid);
	if (find_in(ports, "portid", v) >= 0) {
		json_object_put(v);
		return ctl_fail(true, "port %llu already exists", (unsigned long long)portid);
	}
	if (json_object_object_get_ex(req, "subsystems", &subs)) {
		if (!json_object_is_type(subs, json_type_array)) {
			json_object_put(v);
			return ctl_fail(true, "argument \"subsystems\" must be an array of NQNs");
		}
		subs = json_object_get(subs);
	} else {
		subs = json_object_new_array();
	}
	snprintf(svcs, sizeof(svcs), "%llu", (unsigned long long)svc);
	addr = json_object_new_object();
	json_object_object_add(addr, "trtype", json_object_new_string("tcp"));
	json_object_object_add(addr, "adrfam", json_object_new_string(strchr(traddr, ':') ? "ipv6" : "ipv4"));
	json_object_object_add(addr, "traddr", json_object_new_string(traddr));
	json_object_object_add(addr, "trsvcid", json_object_new_string(svcs));
	p = json_object_new_object();
	json_object_object_add(p, "portid", v);
	json_object_object_add(p, "addr", addr);
	json_object_object_add(p, "referrals", json_object_new_array());
	json_object_object_add(p, "subsystems", subs);
	json_object_array_add(ports, p);
	snprintf(done, donelen, "add port %llu (%s:%s)", (unsigned long long)portid, traddr, svcs);
	return NULL;
}

static struct json_object *edit_port_remove(struct json_object *root, struct json_object *req,
					     char *done, size_t donelen)
{
	struct json_object *fail = NULL, *ports = arr_get(root, "ports");
	uint64_t portid;
	long i;

	if (ctl_u64(req, "portid", true, 65535, &portid, &fail))
		return fail;
	i = find_num(ports, "portid", portid);
	if (i < 0)
		return ctl_fail(true, "no port %llu", (unsigned long long)portid);
	json_object_array_del_idx(ports, (size_t)i, 1);
	snprintf(done, donelen, "remove port %llu", (unsigned long long)portid);
	return NULL;
}

/* ports[].ana_groups[grpid].ana.state, in nvmetcli's shape; the group's
 * entry is added if the port does not list it yet. The validator checks
 * the group range and the state name, and the reload raises the ANA
 * change event. */
static struct json_object *edit_ana_set(struct json_object *root, struct json_object *req,
					char *done, size_t donelen)
{
	struct json_object *fail = NULL, *ports = arr_get(root, "ports"), *v, *groups, *g, *ana;
	const char *state;
	uint64_t portid, grpid;
	long i;

	if (ctl_u64(req, "portid", true, 65535, &portid, &fail) ||
	    ctl_u64(req, "grpid", true, UINT32_MAX, &grpid, &fail) ||
	    ctl_str(req, "state", true, &state, &fail))
		return fail;
	i = find_num(ports, "portid", portid);
	if (i < 0)
		return ctl_fail(true, "no port %llu", (unsigned long long)portid);
	groups = arr_get(json_object_array_get_idx(ports, (size_t)i), "ana_groups");
	v = json_object_new_int64((int64_t)grpid);
	i = find_in(groups, "grpid", v);
	if (i < 0) {
		g = json_object_new_object();
		json_object_object_add(g, "grpid", v);
		json_object_array_add(groups, g);
	} else {
		json_object_put(v);
		g = json_object_array_get_idx(groups, (size_t)i);
	}
	if (!json_object_object_get_ex(g, "ana", &ana) || !json_object_is_type(ana, json_type_object)) {
		ana = json_object_new_object();
		json_object_object_add(g, "ana", ana);
	}
	json_object_object_add(ana, "state", json_object_new_string(state));
	snprintf(done, donelen, "port %llu: ANA group %llu %s", (unsigned long long)portid,
		 (unsigned long long)grpid, state);
	return NULL;
}

/* ---- commands that act directly ---- */

static struct json_object *cmd_ns_resize(struct nvmg_daemon *d, struct json_object *req)
{
	struct json_object *fail = NULL, *res;
	uint64_t nsid, size = 0, blocks = 0;
	const char *nqn;
	char err[400];
	int ret;

	if (ctl_str(req, "nqn", true, &nqn, &fail) || ctl_u64(req, "nsid", true, 0xfffffffe, &nsid, &fail) ||
	    ctl_u64(req, "size", false, (uint64_t)INT64_MAX, &size, &fail))
		return fail;
	pthread_mutex_lock(&d->lock);
	ret = nvmg_target_resize_ns(&d->target, nqn, (uint32_t)nsid, size, &blocks, err, sizeof(err));
	pthread_mutex_unlock(&d->lock);
	if (ret)
		return ctl_fail(ret == -ENOENT || ret == -EINVAL, "%s", err);
	res = json_object_new_object();
	json_object_object_add(res, "blocks", json_object_new_int64((int64_t)blocks));
	return ctl_ok(res);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Write text to file atomically (temp file, fsync, rename) and keep the
 * previous version as file.bak (a hard link to it, made first). */
static int save_file(const char *file, const char *text, char *err, size_t errlen)
{
	char tmp[PATH_MAX], bak[PATH_MAX], dir[PATH_MAX];
	const char *slash = strrchr(file, '/');
	int fd, ret;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", file) >= (int)sizeof(tmp) ||
	    snprintf(bak, sizeof(bak), "%s.bak", file) >= (int)sizeof(bak)) {
		snprintf(err, errlen, "%s: path too long", file);
		return -ENAMETOOLONG;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		return ret;
	}
	ret = write_all(fd, text, strlen(text));
	if (!ret)
		ret = write_all(fd, "\n", 1);
	if (!ret && fsync(fd))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	if (ret) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(-ret));
		unlink(tmp);
		return ret;
	}
	if (unlink(bak) && errno != ENOENT) {
		ret = -errno;
	} else if (link(file, bak) && errno != ENOENT) {
		ret = -errno;
	}
	if (ret) {
		snprintf(err, errlen, "cannot keep a backup %s: %s", bak, strerror(-ret));
		unlink(tmp);
		return ret;
	}
	if (rename(tmp, file)) {
		ret = -errno;
		snprintf(err, errlen, "cannot replace %s: %s", file, strerror(errno));
		unlink(tmp);
		return ret;
	}
	/* The rename is durable once the folder is. */
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - file) + (slash == file) : 1,
		 slash ? file : ".");
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	return 0;
}

static struct json_object *cmd_save(struct nvmg_daemon *d, struct json_object *req)
{
	struct json_object *fail = NULL, *root, *res;
	const char *file;
	char err[PATH_MAX + 100];
	char *text = NULL;
	int ret;

	if (ctl_str(req, "file", false, &file, &fail))
		return fail;
	if (!file)
		file = d->conf_file;
	pthread_mutex_lock(&d->lock);
	root = json_tokener_parse(d->running_json);
	if (root)
		text = config_text(root);
	json_object_put(root);
	ret = text ? save_file(file, text, err, sizeof(err)) : -ENOMEM;
	pthread_mutex_unlock(&d->lock);
	free(text);
	if (ret)
		return ctl_fail(false, "%s", ret == -ENOMEM ? "out of memory" : err);
	log_info("control: running configuration saved to %s",
		 nvmg_escape(err, sizeof(err), file, strlen(file)));
	res = json_object_new_object();
	json_object_object_add(res, "file", json_object_new_string(file));
	return ctl_ok(res);
}

static struct json_object *cmd_reload(struct nvmg_daemon *d, struct json_object *req)
{
	char err[600] = "";

	(void)req;
	if (nvmg_daemon_reload(d, "control", err, sizeof(err)))
		return ctl_fail(false, "%s: %s; the running configuration is unchanged", d->conf_file,
				err);
	return ctl_ok(NULL);
}

/* ---- dispatch ---- */

static const struct {
	const char *name;
	struct json_object *(*run)(struct nvmg_daemon *d, struct json_object *req);
	edit_fn edit;
} cmds[] = {
	{ "status", ctl_cmd_status, NULL },
	{ "list", ctl_cmd_list, NULL },
	{ "stats", ctl_cmd_stats, NULL },
	{ "ns-add", NULL, edit_ns_add },
	{ "ns-remove", NULL, edit_ns_remove },
	{ "ns-resize", cmd_ns_resize, NULL },
	{ "host-allow", NULL, edit_host_allow },
	{ "host-deny", NULL, edit_host_deny },
	{ "port-add", NULL, edit_port_add },
	{ "port-remove", NULL, edit_port_remove },
	{ "ana-set", NULL, edit_ana_set },
	{ "save", cmd_save, NULL },
	{ "reload", cmd_reload, NULL },
};

struct json_object *nvmg_control_exec(struct nvmg_daemon *d, struct json_object *req)
{
	const char *name;
	struct json_object *fail = NULL;

	if (ctl_str(req, "cmd", true, &name, &fail))
		return fail;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(cmds[i].name, name))
			continue;
		return cmds[i].run ? cmds[i].run(d, req) : run_edit(d, req, cmds[i].edit);
	}
	return ctl_fail(true, "unknown command \"%s\"", name);
}
