/* JSON config loader: reads the file, and decodes it with the sections'
 * tables (conf/hosts.c, subsystems.c, ports.c, nvmegate.c) over the walker
 * of conf/decode.c. The file is a superset of `nvmetcli save` output; every
 * message names the full key path so the user can find the offending line. */
#include "conf/config.h"
#include "conf/sections.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CONF_FILE_MAX (16 << 20) /* far beyond any real config; bounds the read */

typedef struct nvmg_conf conf_t;

/* Subsystems before ports: ports refer to subsystems by NQN, and the FUSE
 * aliases in "nvmegate" to both. */
static const struct nvmg_dec_key root_keys[] = {
	{ .key = "hosts", .type = NVMG_DEC_ARRAY, NVMG_DEC_FIELD(conf_t, hosts),
	  .aux = offsetof(conf_t, nr_hosts), .elem = &nvmg_conf_host,
	  .esize = sizeof(struct nvmg_conf_host) },
	{ .key = "subsystems", .type = NVMG_DEC_ARRAY, NVMG_DEC_FIELD(conf_t, subsys),
	  .aux = offsetof(conf_t, nr_subsys), .elem = &nvmg_conf_subsys,
	  .esize = sizeof(struct nvmg_conf_subsys) },
	{ .key = "ports", .type = NVMG_DEC_ARRAY, NVMG_DEC_FIELD(conf_t, ports),
	  .aux = offsetof(conf_t, nr_ports), .elem = &nvmg_conf_port,
	  .esize = sizeof(struct nvmg_conf_port) },
	{ .type = NVMG_DEC_CHECK, .fn = nvmg_conf_ana_check },
	{ .key = "nvmegate", .type = NVMG_DEC_OBJECT, .sub = &nvmg_conf_nvmegate },
};
static const struct nvmg_dec_table root_table = NVMG_DEC_TABLE(root_keys);

/* buf must be NUL-terminated at buf[len]. */
static int parse_buf(const char *buf, size_t len, struct nvmg_conf **out, char *err,
		     size_t errlen, const struct nvmg_conf_env *env)
{
	struct nvmg_dec c = { .err = err, .errlen = errlen, .env = env };
	struct json_tokener *tok;
	struct json_object *root;
	struct nvmg_conf *conf;
	int ret;

	*out = NULL;
	if (len > INT_MAX - 1)
		return nvmg_dec_fail_code(&c, -EFBIG, "config is too large");
	tok = json_tokener_new();
	if (!tok)
		return nvmg_dec_oom(&c);
	/* Strict: the format is nvmetcli's (Python json), so no comments or
	 * trailing commas that only this parser would understand. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	/* len + 1 feeds the terminating NUL, which ends a top-level value. */
	root = json_tokener_parse_ex(tok, buf, (int)len + 1);
	if (!root) {
		enum json_tokener_error e = json_tokener_get_error(tok);
		size_t end = json_tokener_get_parse_end(tok), line = 1, col = 1;

		for (size_t i = 0; i < end && i < len; i++, col++)
			if (buf[i] == '\n')
				line++, col = 0;
		json_tokener_free(tok);
		if (e == json_tokener_success) /* the document is just "null" */
			return nvmg_dec_fail(&c, "the top level must be a JSON object");
		if (e == json_tokener_continue)
			return nvmg_dec_fail(&c, "invalid JSON at line %zu, column %zu: unexpected end "
					"of data", line, col);
		return nvmg_dec_fail(&c, "invalid JSON at line %zu, column %zu: %s", line, col,
			    json_tokener_error_desc(e));
	}
	json_tokener_free(tok);

	conf = calloc(1, sizeof(*conf));
	if (!conf) {
		json_object_put(root);
		return nvmg_dec_oom(&c);
	}
	c.root = conf;
	if (!json_object_is_type(root, json_type_object))
		ret = nvmg_dec_fail(&c, "the top level must be a JSON object");
	else
		ret = nvmg_dec_element(&c, root, &root_table, conf);
	json_object_put(root);
	if (ret) {
		nvmg_conf_free(conf);
		return ret;
	}
	*out = conf;
	return 0;
}

int nvmg_conf_parse(const char *json, struct nvmg_conf **out, char *err, size_t errlen,
		    const struct nvmg_conf_env *env)
{
	return parse_buf(json, strlen(json), out, err, errlen, env);
}

/* A relative mountpoint belongs next to the config file, wherever the
 * daemon was started from: `make run` keeps both under run/. */
static int absolute_path(struct nvmg_dec *c, const char *file, const char *key, size_t max, char **mnt)
{
	const char *slash = strrchr(file, '/');
	char *dir, *real, *abs = NULL;
	int n;

	dir = slash ? strndup(file, (size_t)(slash - file) + (slash == file)) : strdup(".");
	if (!dir)
		return nvmg_dec_oom(c);
	real = realpath(dir, NULL);
	if (!real) {
		int e = errno;

		free(dir);
		return nvmg_dec_fail_code(c, -e, "%s: cannot resolve the config file's folder: %s", key,
				 strerror(e));
	}
	n = asprintf(&abs, "%s%s%s", real, strcmp(real, "/") ? "/" : "", *mnt);
	free(real);
	free(dir);
	if (n < 0)
		return nvmg_dec_oom(c);
	if (strlen(abs) >= max) {
		free(abs);
		return nvmg_dec_fail(c, "%s: %s is longer than %zu bytes", key, abs, max - 1);
	}
	free(*mnt);
	*mnt = abs;
	return 0;
}

/* Relative paths in "nvmegate" are relative to the config file's folder. */
static int absolute_paths(struct nvmg_dec *c, const char *file, struct nvmg_conf **out)
{
	struct sockaddr_un sun;
	int ret = 0;

	if ((*out)->fuse_mountpoint && (*out)->fuse_mountpoint[0] != '/')
		ret = absolute_path(c, file, "nvmegate.fuse.mountpoint", PATH_MAX,
				    &(*out)->fuse_mountpoint);
	if (!ret && (*out)->control_socket && (*out)->control_socket[0] != '/')
		ret = absolute_path(c, file, "nvmegate.control.socket", sizeof(sun.sun_path),
				    &(*out)->control_socket);
	if (ret) {
		nvmg_conf_free(*out);
		*out = NULL;
	}
	return ret;
}

int nvmg_conf_parse_at(const char *json, const char *file, struct nvmg_conf **out, char *err,
		       size_t errlen, const struct nvmg_conf_env *env)
{
	struct nvmg_dec c = { .err = err, .errlen = errlen };
	int ret = parse_buf(json, strlen(json), out, err, errlen, env);

	return ret ? ret : absolute_paths(&c, file, out);
}

int nvmg_conf_load(const char *file, struct nvmg_conf **out, char *err, size_t errlen,
		   const struct nvmg_conf_env *env)
{
	return nvmg_conf_load_text(file, out, NULL, err, errlen, env);
}

int nvmg_conf_load_text(const char *file, struct nvmg_conf **out, char **text, char *err,
			size_t errlen, const struct nvmg_conf_env *env)
{
	struct nvmg_dec c = { .err = err, .errlen = errlen };
	size_t len = 0, cap = 0;
	char *buf = NULL;
	struct stat st;
	int fd, ret;

	*out = NULL;
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return nvmg_dec_fail_code(&c, -errno, "cannot open %s: %s", file, strerror(errno));
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		return nvmg_dec_fail_code(&c, -EISDIR, "cannot read %s: %s", file, strerror(EISDIR));
	}
	/* Read to EOF rather than trusting st_size: pipes and /dev/stdin work too. */
	for (;;) {
		ssize_t r;

		if (cap - len < 2) {
			char *nb;

			cap = cap ? cap * 2 : 8192;
			if (cap > CONF_FILE_MAX + 2) {
				ret = nvmg_dec_fail_code(&c, -EFBIG, "%s is larger than %d bytes", file,
						CONF_FILE_MAX);
				goto out;
			}
			if (!(nb = realloc(buf, cap))) {
				ret = nvmg_dec_oom(&c);
				goto out;
			}
			buf = nb;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = nvmg_dec_fail_code(&c, -errno, "cannot read %s: %s", file, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', len)) {
		ret = nvmg_dec_fail(&c, "%s is not a text file (it contains a NUL byte)", file);
		goto out;
	}
	ret = parse_buf(buf, len, out, err, errlen, env);
	if (!ret)
		ret = absolute_paths(&c, file, out);
	if (!ret && text) {
		*text = buf;
		buf = NULL;
	}
out:
	free(buf);
	close(fd);
	return ret;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void nvmg_conf_free(struct nvmg_conf *conf)
{
	if (!conf)
		return;
	for (size_t i = 0; i < conf->nr_hosts; i++)
		nvmg_conf_host_free(&conf->hosts[i]);
	free(conf->hosts);
	for (size_t i = 0; i < conf->nr_ports; i++) {
		free(conf->ports[i].traddr);
		free_strv(conf->ports[i].subsystems, conf->ports[i].nr_subsystems);
		free(conf->ports[i].ana_groups);
		for (size_t j = 0; j < conf->ports[i].nr_referrals; j++) {
			free(conf->ports[i].referrals[j].name);
			free(conf->ports[i].referrals[j].traddr);
		}
		free(conf->ports[i].referrals);
	}
	free(conf->ports);
	for (size_t i = 0; i < conf->nr_subsys; i++) {
		struct nvmg_conf_subsys *s = &conf->subsys[i];

		free(s->nqn);
		free_strv(s->allowed_hosts, s->nr_allowed_hosts);
		free(s->serial);
		free(s->model);
		for (size_t j = 0; j < s->nr_ns; j++)
			free(s->ns[j].path);
		free(s->ns);
	}
	free(conf->subsys);
	free(conf->fuse_mountpoint);
	free(conf->control_socket);
	free(conf->control_group);
	free_strv(conf->resv_owner, conf->nr_resv_owner);
	for (size_t i = 0; i < conf->nr_fuse_aliases; i++) {
		free(conf->fuse_aliases[i].nqn);
		free(conf->fuse_aliases[i].name);
	}
	free(conf->fuse_aliases);
	free(conf);
}
