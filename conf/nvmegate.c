/* "nvmegate": our own settings, kept out of nvmetcli's sections so that
 * those stay exactly what nvmetcli reads and writes. */
#include "conf/sections.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

typedef struct nvmg_conf conf_t;

/* ---- "fuse": {"mountpoint": PATH, "aliases": {SUBSYSTEM_NQN: FOLDER}} ---- */

/* A subsystem's folder in the FUSE mount: one path component. */
static int check_folder_name(struct nvmg_dec *d, const char *name)
{
	size_t len = strlen(name);

	if (!len)
		return nvmg_dec_fail(d, "must not be empty");
	if (len > NAME_MAX)
		return nvmg_dec_fail(d, "is %zu bytes long (a folder name has at most %d)", len,
				     NAME_MAX);
	if (!strcmp(name, ".") || !strcmp(name, "..") || strchr(name, '/'))
		return nvmg_dec_fail(d, "is not a folder name (no \"/\", \".\" or \"..\")");
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return nvmg_dec_fail(d, "contains a control character");
	return 0;
}

static const char *folder_of(const conf_t *conf, const char *nqn)
{
	for (size_t i = 0; i < conf->nr_fuse_aliases; i++)
		if (!strcmp(conf->fuse_aliases[i].nqn, nqn))
			return conf->fuse_aliases[i].name;
	return nqn;
}

static int dec_alias(struct nvmg_dec *d, conf_t *conf, const char *nqn, struct json_object *v)
{
	struct nvmg_conf_alias *a = &conf->fuse_aliases[conf->nr_fuse_aliases];
	struct nvmg_dec_quoted q;
	const char *str = NULL;
	bool known = false;
	int ret;

	for (size_t i = 0; i < conf->nr_subsys && !known; i++)
		known = !strcmp(conf->subsys[i].nqn, nqn);
	if (!known)
		return nvmg_dec_fail(d, "no subsystem has this NQN");
	if ((ret = nvmg_dec_str(d, v, &str)) || (ret = check_folder_name(d, str)))
		return ret;
	for (size_t j = 0; j < conf->nr_fuse_aliases; j++)
		if (!strcmp(conf->fuse_aliases[j].name, str))
			return nvmg_dec_fail(d, "%s is also the alias of %s", nvmg_dec_quote(&q, str),
					     conf->fuse_aliases[j].nqn);
	if ((ret = nvmg_dec_strdup(d, nqn, &a->nqn)) || (ret = nvmg_dec_strdup(d, str, &a->name)))
		return ret;
	conf->nr_fuse_aliases++;
	return 0;
}

/* An object keyed by the user's NQNs: no table can list its keys. */
static int dec_aliases(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
		       void *base)
{
	conf_t *conf = base;
	int ret;

	(void)k;
	if (!json_object_is_type(v, json_type_object))
		return nvmg_dec_fail(d, "expected an object");
	if (json_object_object_length(v) &&
	    !(conf->fuse_aliases = calloc((size_t)json_object_object_length(v),
					  sizeof(*conf->fuse_aliases))))
		return nvmg_dec_oom(d);
	json_object_object_foreach(v, nqn, val) {
		size_t old = nvmg_dec_push_key(d, nqn);

		if ((ret = dec_alias(d, conf, nqn, val)))
			return ret;
		nvmg_dec_pop(d, old);
	}
	return 0;
}

static int check_path_max(struct nvmg_dec *d, const struct nvmg_dec_key *k, void *base)
{
	(void)k;
	if (strlen(((conf_t *)base)->fuse_mountpoint) >= PATH_MAX)
		return nvmg_dec_fail(d, "is longer than %d bytes", PATH_MAX - 1);
	return 0;
}

/* Every subsystem needs a distinct folder: its alias, else its NQN. */
static int check_folders(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
			 void *base)
{
	const conf_t *conf = base;
	struct nvmg_dec_quoted q;

	(void)k, (void)v;
	for (size_t i = 0; i < conf->nr_subsys; i++) {
		const char *name = folder_of(conf, conf->subsys[i].nqn);

		if (name == conf->subsys[i].nqn && strchr(name, '/'))
			return nvmg_dec_fail(d, "subsystem %s has a \"/\" in its NQN: give it a "
					     "folder name in aliases", nvmg_dec_quote(&q, name));
		for (size_t j = 0; j < i; j++)
			if (!strcmp(name, folder_of(conf, conf->subsys[j].nqn)))
				return nvmg_dec_fail(d, "subsystems %s and %s would share the "
						     "folder %s", conf->subsys[j].nqn,
						     conf->subsys[i].nqn, nvmg_dec_quote(&q, name));
	}
	return 0;
}

static const struct nvmg_dec_key fuse_keys[] = {
	{ .key = "mountpoint", .type = NVMG_DEC_STR, NVMG_DEC_FIELD(conf_t, fuse_mountpoint),
	  .flags = NVMG_DEC_REQUIRED | NVMG_DEC_NONEMPTY, .check = check_path_max },
	{ .key = "aliases", .type = NVMG_DEC_CUSTOM, .fn = dec_aliases },
	{ .type = NVMG_DEC_CHECK, .fn = check_folders },
};
static const struct nvmg_dec_table fuse = NVMG_DEC_TABLE(fuse_keys);

/* ---- "control": {"socket": PATH, "group": NAME}: the nvmegate CLI's socket ---- */

static int check_sun_path(struct nvmg_dec *d, const struct nvmg_dec_key *k, void *base)
{
	struct sockaddr_un sun;

	(void)k;
	if (strlen(((conf_t *)base)->control_socket) >= sizeof(sun.sun_path))
		return nvmg_dec_fail(d, "is longer than %zu bytes (a Unix socket path)",
				     sizeof(sun.sun_path) - 1);
	return 0;
}

static const struct nvmg_dec_key control_keys[] = {
	{ .key = "socket", .type = NVMG_DEC_STR, NVMG_DEC_FIELD(conf_t, control_socket),
	  .flags = NVMG_DEC_NONEMPTY, .check = check_sun_path },
	{ .key = "group", .type = NVMG_DEC_STR, NVMG_DEC_FIELD(conf_t, control_group),
	  .flags = NVMG_DEC_NONEMPTY },
};
static const struct nvmg_dec_table control = NVMG_DEC_TABLE(control_keys);

/* ---- "reservation_owner": [NQN, ...] ---- */

/* A subsystem served by several nodes (told by its cntlid range, which
 * such nodes must split) has no shared reservation state: this node
 * serves reservation commands only for those named here (README). */
static const struct nvmg_dec_key resv_owner = { .type = NVMG_DEC_NQN };

static int check_resv_owners(struct nvmg_dec *d, const struct nvmg_dec_key *k,
			     struct json_object *v, void *base)
{
	const conf_t *conf = base;
	struct nvmg_dec_quoted q;

	(void)k, (void)v;
	for (size_t i = 0; i < conf->nr_resv_owner; i++) {
		const char *nqn = conf->resv_owner[i];
		size_t j = 0;

		while (j < conf->nr_subsys && strcmp(conf->subsys[j].nqn, nqn))
			j++;
		if (j == conf->nr_subsys) {
			nvmg_dec_push_key(d, "reservation_owner");
			nvmg_dec_push_idx(d, i);
			return nvmg_dec_fail(d, "%s is not a subsystem of this config",
					     nvmg_dec_quote(&q, nqn));
		}
	}
	return 0;
}

/* ---- the section ---- */

static const struct nvmg_dec_enum log_levels = {
	"", " is not a log level (error, warn, info or debug)",
	{ { "error", NVMG_LOG_ERROR }, { "warn", NVMG_LOG_WARN }, { "info", NVMG_LOG_INFO },
	  { "debug", NVMG_LOG_DEBUG }, { "warning", NVMG_LOG_WARN } },
};

static const struct nvmg_dec_key nvmegate_keys[] = {
	{ .key = "reactors", .type = NVMG_DEC_INT, NVMG_DEC_FIELD(conf_t, reactors),
	  .min = 0, .max = 256 }, /* 0: one per online CPU */
	{ .key = "handshake_timeout_ms", .type = NVMG_DEC_INT,
	  NVMG_DEC_FIELD(conf_t, handshake_timeout_ms), .min = 100, .max = 600000, .dflt = 10000 },
	{ .key = "max_pending_sockets", .type = NVMG_DEC_INT,
	  NVMG_DEC_FIELD(conf_t, max_pending_sockets), .min = 1, .max = 65536, .dflt = 128 },
	/* A host sends ICReq at once, after its TLS handshake on a TLS port
	 * (tlshd in an emulated guest may take a second or two): an idle
	 * socket gives its slot back soon. Capped at handshake_timeout_ms by
	 * the transport. */
	{ .key = "icreq_timeout_ms", .type = NVMG_DEC_INT,
	  NVMG_DEC_FIELD(conf_t, icreq_timeout_ms), .min = 100, .max = 600000, .dflt = 5000 },
	/* A quarter of the default pool: four flooding addresses before the
	 * pool is full, and far more than a host's one socket at a time. */
	{ .key = "max_pending_per_address", .type = NVMG_DEC_INT,
	  NVMG_DEC_FIELD(conf_t, max_pending_per_address), .min = 1, .max = 65536, .dflt = 32 },
	{ .key = "max_queues_per_host", .type = NVMG_DEC_INT,
	  NVMG_DEC_FIELD(conf_t, max_queues_per_host), .min = 1, .max = 1048576, .dflt = 1024 },
	{ .key = "kernel_tls", .type = NVMG_DEC_BOOL, NVMG_DEC_FIELD(conf_t, kernel_tls), .dflt = 1 },
	/* How long a reactor that just had work may spin on its ring before
	 * sleeping (lib/reactor.h); above a millisecond it only burns CPU. */
	{ .key = "poll_us", .type = NVMG_DEC_INT, NVMG_DEC_FIELD(conf_t, poll_us), .min = 0,
	  .max = 1000, .dflt = 50 }, /* NVMG_REACTOR_POLL_US_DEFAULT */
	/* A host whose sends stay unacknowledged (gone, or no longer
	 * reading: zero window) this long is dropped (TCP_USER_TIMEOUT):
	 * the default, the Linux host's own I/O timeout, is six of its
	 * default keep-alive periods; 0 leaves it to the kernel (~15 min). */
	{ .key = "tcp_user_timeout_ms", .type = NVMG_DEC_INT,
	  NVMG_DEC_FIELD(conf_t, tcp_user_timeout_ms), .min = 0, .max = 600000, .dflt = 30000 },
	{ .key = "log_level", .type = NVMG_DEC_ENUM, NVMG_DEC_FIELD(conf_t, log_level),
	  .names = &log_levels, .dflt = NVMG_LOG_INFO },
	{ .key = "fuse", .type = NVMG_DEC_OBJECT, .sub = &fuse },
	{ .key = "control", .type = NVMG_DEC_OBJECT, .sub = &control },
	{ .key = "reservation_owner", .type = NVMG_DEC_ARRAY, NVMG_DEC_FIELD(conf_t, resv_owner),
	  .aux = offsetof(conf_t, nr_resv_owner), .elem = &resv_owner, .esize = sizeof(char *) },
	{ .type = NVMG_DEC_CHECK, .fn = check_resv_owners },
};

const struct nvmg_dec_table nvmg_conf_nvmegate = NVMG_DEC_TABLE(nvmegate_keys);
