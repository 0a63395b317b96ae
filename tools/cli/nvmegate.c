/* nvmegate: control a running nvmegated over its Unix socket. Arguments
 * are checked here first (exit 2 with a message), then sent as one JSON
 * line; the daemon answers with one JSON line. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "lib/parse.h"
#include "tools/cli/cli.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define DEFAULT_SOCKET "/run/nvmegate/control.sock"
#define REPLY_TIMEOUT_S 60
#define MAX_REPLY (64u << 20)

/* "<3>" when stderr is the journal (the unit's ExecReload= runs us): the
 * sd-daemon(3) prefix that makes journald store the line at priority err.
 * JOURNAL_STREAM names the stream's device and inode; an inherited value
 * with stderr redirected elsewhere does not count. */
static const char *err_prefix(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st))
		return "";
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino ? "<3>" : "";
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: nvmegate [-s SOCKET] [--json] COMMAND [ARGS]\n"
		"  status                         daemon summary\n"
		"  list                           subsystems, namespaces, ports, connected hosts\n"
		"  stats [--prometheus]           per namespace and per connection statistics\n"
		"  ns add NQN NSID PATH [--readonly] [--lba-size 512|4096]\n"
		"  ns remove NQN NSID\n"
		"  ns resize NQN NSID [SIZE]      SIZE in bytes (K/M/G/T suffix); none: re-read\n"
		"  host allow NQN HOSTNQN\n"
		"  host deny NQN HOSTNQN\n"
		"  port add PORTID ADDR SERVICE [NQN...]  listen (ADDR numeric; NQNs it exports)\n"
		"  port remove PORTID             close the port and its connections\n"
		"  ana set PORTID GRPID STATE     optimized, non-optimized, inaccessible,\n"
		"                                 persistent-loss or change (hosts are told)\n"
		"  save [FILE]                    write the running config (default: the daemon's file)\n"
		"  reload                         re-read the daemon's config file (like SIGHUP)\n"
		"  -s, --socket PATH   control socket (default $NVMEGATE_SOCKET or " DEFAULT_SOCKET ")\n"
		"  -j, --json          print the daemon's JSON answer\n"
		"Exit status: 0 done, 1 failed or daemon unreachable, 2 bad arguments.\n");
}

static int bad(const char *fmt, const char *arg)
{
	fprintf(stderr, "%snvmegate: ", err_prefix());
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'nvmegate --help'.\n");
	return EXIT_USAGE;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v;

	if (nvmg_parse_u64(s, &v) || v > max)
		return false;
	*out = v;
	return true;
}

/* The daemon takes a JSON integer: a size must fit an int64. */
static bool parse_size(const char *s, uint64_t *out)
{
	uint64_t v;

	if (nvmg_parse_size(s, &v) || v > (uint64_t)INT64_MAX)
		return false;
	*out = v;
	return true;
}

/* One request, one reply. Returns the reply or NULL (message printed). */
static struct json_object *call(const char *path, struct json_object *req)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { REPLY_TIMEOUT_S, 0 };
	const char *text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	struct json_object *resp;
	size_t len = 0, cap = 0;
	char *buf = NULL;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "%snvmegate: socket path %s is too long\n", err_prefix(), path);
		return NULL;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		fprintf(stderr, "%snvmegate: cannot reach nvmegated at %s: %s\n", err_prefix(), path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (send(fd, text, strlen(text), MSG_NOSIGNAL) < 0 || send(fd, "\n", 1, MSG_NOSIGNAL) < 0) {
		fprintf(stderr, "%snvmegate: send to %s: %s\n", err_prefix(), path, strerror(errno));
		close(fd);
		return NULL;
	}
	for (;;) {
		ssize_t r;

		if (cap - len < 4096) {
			char *nb;

			cap = cap ? cap * 2 : 65536;
			if (cap > MAX_REPLY || !(nb = realloc(buf, cap))) {
				fprintf(stderr, "%snvmegate: reply too large\n", err_prefix());
				goto fail;
			}
			buf = nb;
		}
		r = recv(fd, buf + len, cap - len - 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "%snvmegate: no reply from nvmegated: %s\n", err_prefix(),
				errno == EAGAIN ? "timed out" : strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	resp = json_tokener_parse(buf);
	free(buf);
	if (!resp || !json_object_is_type(resp, json_type_object)) {
		fprintf(stderr, "%snvmegate: malformed reply from nvmegated\n", err_prefix());
		json_object_put(resp);
		return NULL;
	}
	return resp;
fail:
	free(buf);
	close(fd);
	return NULL;
}

static void add_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

static void add_int(struct json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_int64((int64_t)v));
}

/* Build the request for argv (after the global options). Returns 0 or an
 * exit status (message printed). */
static int build(int argc, char **argv, struct json_object *req, bool *prometheus)
{
	const char *cmd = argv[0], *sub = argc > 1 ? argv[1] : NULL;
	uint64_t v;

#define NEED(n, what)                                                       \
	do {                                                                \
		if (argc != (n))                                            \
			return bad("%s", "usage: nvmegate " what);          \
	} while (0)

	if (!strcmp(cmd, "status") || !strcmp(cmd, "list") || !strcmp(cmd, "reload")) {
		if (argc != 1)
			return bad("'%s' takes no arguments", cmd);
		add_str(req, "cmd", cmd);
		return 0;
	}
	if (!strcmp(cmd, "stats")) {
		if (argc > 2 || (argc == 2 && strcmp(argv[1], "--prometheus")))
			return bad("%s", "usage: nvmegate stats [--prometheus]");
		*prometheus = argc == 2;
		add_str(req, "cmd", "stats");
		return 0;
	}
	if (!strcmp(cmd, "save")) {
		if (argc > 2)
			return bad("%s", "usage: nvmegate save [FILE]");
		add_str(req, "cmd", "save");
		if (argc == 2) {
			char *abs = argv[1][0] == '/' ? strdup(argv[1]) : NULL;

			/* The daemon has its own working folder. */
			if (!abs) {
				char cwd[4096];

				if (!getcwd(cwd, sizeof(cwd)) ||
				    asprintf(&abs, "%s/%s", cwd, argv[1]) < 0)
					abs = NULL;
			}
			if (!abs)
				return bad("cannot resolve %s", argv[1]);
			add_str(req, "file", abs);
			free(abs);
		}
		return 0;
	}
	if (!strcmp(cmd, "ns") && sub && !strcmp(sub, "add")) {
		int i;

		if (argc < 5)
			return bad("%s", "usage: nvmegate ns add NQN NSID PATH [--readonly] [--lba-size N]");
		add_str(req, "cmd", "ns-add");
		add_str(req, "nqn", argv[2]);
		if (!parse_u64(argv[3], 0xfffffffe, &v) || !v)
			return bad("NSID must be a number from 1 to 4294967294, not '%s'", argv[3]);
		add_int(req, "nsid", v);
		add_str(req, "path", argv[4]);
		for (i = 5; i < argc; i++) {
			if (!strcmp(argv[i], "--readonly")) {
				add_int(req, "readonly", 1);
			} else if (!strcmp(argv[i], "--lba-size") && i + 1 < argc) {
				if (!parse_u64(argv[++i], 4096, &v) || (v != 512 && v != 4096))
					return bad("--lba-size must be 512 or 4096, not '%s'", argv[i]);
				add_int(req, "lba_size", v);
			} else {
				return bad("unexpected argument '%s'", argv[i]);
			}
		}
		return 0;
	}
	if (!strcmp(cmd, "ns") && sub && (!strcmp(sub, "remove") || !strcmp(sub, "resize"))) {
		bool resize = !strcmp(sub, "resize");

		if (resize ? argc != 4 && argc != 5 : argc != 4)
			return bad("%s", resize ? "usage: nvmegate ns resize NQN NSID [SIZE]"
						: "usage: nvmegate ns remove NQN NSID");
		add_str(req, "cmd", resize ? "ns-resize" : "ns-remove");
		add_str(req, "nqn", argv[2]);
		if (!parse_u64(argv[3], 0xfffffffe, &v) || !v)
			return bad("NSID must be a number from 1 to 4294967294, not '%s'", argv[3]);
		add_int(req, "nsid", v);
		if (argc == 5) {
			if (!parse_size(argv[4], &v))
				return bad("SIZE must be a positive number of bytes (K, M, G, T suffixes), not '%s'",
					   argv[4]);
			add_int(req, "size", v);
		}
		return 0;
	}
	if (!strcmp(cmd, "host") && sub && (!strcmp(sub, "allow") || !strcmp(sub, "deny"))) {
		NEED(4, "host allow|deny NQN HOSTNQN");
		add_str(req, "cmd", !strcmp(sub, "allow") ? "host-allow" : "host-deny");
		add_str(req, "nqn", argv[2]);
		add_str(req, "host", argv[3]);
		return 0;
	}
	if (!strcmp(cmd, "port") && sub && !strcmp(sub, "add")) {
		struct json_object *subs;

		if (argc < 5)
			return bad("%s", "usage: nvmegate port add PORTID ADDR SERVICE [NQN...]");
		add_str(req, "cmd", "port-add");
		if (!parse_u64(argv[2], 65535, &v))
			return bad("PORTID must be a number from 0 to 65535, not '%s'", argv[2]);
		add_int(req, "portid", v);
		add_str(req, "traddr", argv[3]);
		if (!parse_u64(argv[4], 65535, &v) || !v)
			return bad("SERVICE must be a TCP port number from 1 to 65535, not '%s'", argv[4]);
		add_int(req, "trsvcid", v);
		subs = json_object_new_array();
		for (int i = 5; i < argc; i++)
			json_object_array_add(subs, json_object_new_string(argv[i]));
		json_object_object_add(req, "subsystems", subs);
		return 0;
	}
	if (!strcmp(cmd, "port") && sub && !strcmp(sub, "remove")) {
		NEED(3, "port remove PORTID");
		add_str(req, "cmd", "port-remove");
		if (!parse_u64(argv[2], 65535, &v))
			return bad("PORTID must be a number from 0 to 65535, not '%s'", argv[2]);
		add_int(req, "portid", v);
		return 0;
	}
	if (!strcmp(cmd, "ana") && sub && !strcmp(sub, "set")) {
		static const char *const states[] = { "optimized", "non-optimized", "inaccessible",
						      "persistent-loss", "change" };
		size_t i;

		NEED(5, "ana set PORTID GRPID STATE");
		add_str(req, "cmd", "ana-set");
		if (!parse_u64(argv[2], 65535, &v))
			return bad("PORTID must be a number from 0 to 65535, not '%s'", argv[2]);
		add_int(req, "portid", v);
		if (!parse_u64(argv[3], 128, &v) || !v)
			return bad("GRPID must be an ANA group from 1 to 128, not '%s'", argv[3]);
		add_int(req, "grpid", v);
		for (i = 0; i < sizeof(states) / sizeof(states[0]) && strcmp(argv[4], states[i]); i++)
			;
		if (i == sizeof(states) / sizeof(states[0]))
			return bad("STATE must be optimized, non-optimized, inaccessible, "
				   "persistent-loss or change, not '%s'", argv[4]);
		add_str(req, "state", argv[4]);
		return 0;
	}
	if (!strcmp(cmd, "ns") || !strcmp(cmd, "host") || !strcmp(cmd, "port") ||
	    !strcmp(cmd, "ana"))
		return bad("'%s' needs a subcommand (see --help)", cmd);
	return bad("unknown command '%s'", cmd);
#undef NEED
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *path = getenv("NVMEGATE_SOCKET");
	struct json_object *req, *resp, *v, *result;
	bool json = false, prometheus = false;
	const char *cmd;
	int opt, ret;

	/* '+': options after the command belong to it (ns add ... --readonly). */
	while ((opt = getopt_long(argc, argv, "+s:jh", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			path = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	/* --json is also accepted after the command: `nvmegate list --json`. */
	for (int i = optind, j = optind; i <= argc; i++) {
		if (i < argc && (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j"))) {
			json = true;
			continue;
		}
		argv[j++] = argv[i];
		if (i == argc)
			argc = j - 1;
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!path || !*path)
		path = DEFAULT_SOCKET;
	req = json_object_new_object();
	ret = build(argc - optind, argv + optind, req, &prometheus);
	if (ret) {
		json_object_put(req);
		return ret;
	}
	resp = call(path, req);
	json_object_put(req);
	if (!resp)
		return EXIT_FAILED;
	if (!json_object_object_get_ex(resp, "ok", &v) || !json_object_get_boolean(v)) {
		struct json_object *e = NULL, *u = NULL;

		json_object_object_get_ex(resp, "error", &e);
		json_object_object_get_ex(resp, "usage", &u);
		fprintf(stderr, "%snvmegate: %s\n", err_prefix(), e ? json_object_get_string(e) : "failed");
		ret = u && json_object_get_boolean(u) ? EXIT_USAGE : EXIT_FAILED;
		if (json)
			printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY |
									   JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(resp);
		return ret;
	}
	json_object_object_get_ex(resp, "result", &result);
	cmd = argv[optind];
	if (json)
		printf("%s\n", json_object_to_json_string_ext(result, JSON_C_TO_STRING_PRETTY |
								   JSON_C_TO_STRING_NOSLASHESCAPE));
	else if (prometheus)
		cli_print_prometheus(result);
	else if (!strcmp(cmd, "status"))
		cli_print_status(result);
	else if (!strcmp(cmd, "list"))
		cli_print_list(result);
	else if (!strcmp(cmd, "stats"))
		cli_print_stats(result);
	else if (json_object_object_get_ex(result, "file", &v))
		printf("saved %s\n", json_object_get_string(v));
	else if (json_object_object_get_ex(result, "blocks", &v))
		printf("namespace resized: %s blocks\n", json_object_get_string(v));
	json_object_put(resp);
	return 0;
}
