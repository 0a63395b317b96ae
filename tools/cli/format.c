/* Output of the nvmegate CLI: tables for people, Prometheus text for a
 * node_exporter textfile collector. Input is the daemon's JSON result. */
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "lib/log.h"
#include "tools/cli/cli.h"

/* Room for the escaped form of an NQN (256 bytes) or a peer address. */
#define ESC_LEN NVMG_ESCAPED_SIZE(256)

static struct json_object *get(struct json_object *o, const char *k)
{
	struct json_object *v = NULL;

	json_object_object_get_ex(o, k, &v);
	return v;
}

static const char *gs(struct json_object *o, const char *k)
{
	struct json_object *v = get(o, k);

	return v ? json_object_get_string(v) : "-";
}

/* A string that came from a host (its NQN, its address) as the log shows
 * it: no control byte of a hostile NQN reaches the terminal. */
static const char *esc(const char *s, char *buf)
{
	return nvmg_escape(buf, ESC_LEN, s, strlen(s));
}

static long long gi(struct json_object *o, const char *k)
{
	return json_object_get_int64(get(o, k));
}

static double gd(struct json_object *o, const char *k)
{
	return json_object_get_double(get(o, k));
}

static size_t alen(struct json_object *a)
{
	return a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

static const char *human_bytes(unsigned long long b, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)b;
	unsigned u = 0;

	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
	return buf;
}

void cli_print_status(struct json_object *r)
{
	printf("nvmegated %s (pid %lld), up %llds, config %s\n", gs(r, "version"), gi(r, "pid"),
	       gi(r, "uptime_s"), gs(r, "config"));
	printf("%lld subsystems, %lld namespaces, %lld ports, %lld controllers, %lld connections, "
	       "%lld reactors, %lld changes applied\n",
	       gi(r, "subsystems"), gi(r, "namespaces"), gi(r, "ports"), gi(r, "controllers"),
	       gi(r, "connections"), gi(r, "reactors"), gi(r, "changes"));
}

void cli_print_list(struct json_object *r)
{
	struct json_object *subs = get(r, "subsystems"), *ports = get(r, "ports"),
			   *ctrls = get(r, "controllers");
	char b[32], e1[ESC_LEN], e2[ESC_LEN], e3[ESC_LEN];

	printf("SUBSYSTEMS\n");
	for (size_t i = 0; i < alen(subs); i++) {
		struct json_object *s = json_object_array_get_idx(subs, i), *nss = get(s, "namespaces"),
				   *hosts = get(s, "allowed_hosts");

		printf("%s  serial %s  hosts: ", esc(gs(s, "nqn"), e1), esc(gs(s, "serial"), e2));
		if (json_object_get_boolean(get(s, "allow_any_host")))
			printf("any");
		for (size_t j = 0; j < alen(hosts); j++)
			printf("%s%s", j ? ", " : "",
			       esc(json_object_get_string(json_object_array_get_idx(hosts, j)), e1));
		if (!json_object_get_boolean(get(s, "allow_any_host")) && !alen(hosts))
			printf("none");
		printf("\n  %-6s %-12s %-6s %-3s %s\n", "NSID", "SIZE", "LBA", "RO", "PATH");
		for (size_t j = 0; j < alen(nss); j++) {
			struct json_object *n = json_object_array_get_idx(nss, j);

			printf("  %-6lld %-12s %-6lld %-3s %s\n", gi(n, "nsid"),
			       human_bytes((unsigned long long)gi(n, "bytes"), b, sizeof(b)), gi(n, "lba_size"),
			       json_object_get_boolean(get(n, "readonly")) ? "yes" : "no", gs(n, "path"));
			if (gi(n, "unserved_bytes") > 0)
				printf("  %-6s warning: the last %lld bytes of %s are not served (not a whole "
				       "%lld-byte block)\n", "", gi(n, "unserved_bytes"), gs(n, "path"),
				       gi(n, "lba_size"));
		}
	}
	printf("\nPORTS\n%-6s %-6s %-24s %-7s %s\n", "PORT", "FAMILY", "ADDRESS", "SERVICE", "SUBSYSTEMS");
	for (size_t i = 0; i < alen(ports); i++) {
		struct json_object *p = json_object_array_get_idx(ports, i), *ss = get(p, "subsystems");

		printf("%-6lld %-6s %-24s %-7s ", gi(p, "portid"), gs(p, "adrfam"), gs(p, "traddr"),
		       gs(p, "trsvcid"));
		for (size_t j = 0; j < alen(ss); j++)
			printf("%s%s", j ? ", " : "",
			       esc(json_object_get_string(json_object_array_get_idx(ss, j)), e1));
		printf("%s\n", alen(ss) ? "" : "(discovery only)");
	}
	printf("\nCONNECTED HOSTS\n%-7s %-5s %-40s %s\n", "CNTLID", "PORT", "SUBSYSTEM", "HOST");
	for (size_t i = 0; i < alen(ctrls); i++) {
		struct json_object *c = json_object_array_get_idx(ctrls, i), *qs = get(c, "queues");

		printf("%-7lld %-5s %-40s %s\n", gi(c, "cntlid"), gs(c, "port"), esc(gs(c, "subsystem"), e1),
		       esc(gs(c, "host"), e2));
		for (size_t j = 0; j < alen(qs); j++) {
			struct json_object *q = json_object_array_get_idx(qs, j);

			printf("        queue %-3lld size %-4lld reactor %-3lld from %s, %llds\n", gi(q, "qid"),
			       gi(q, "size"), gi(q, "reactor"), esc(gs(q, "peer"), e3), gi(q, "connected_s"));
		}
	}
	if (!alen(ctrls))
		printf("(none)\n");
}

static void stats_row(const char *what, struct json_object *st)
{
	struct json_object *lat = get(st, "latency_us");
	char rb[32], wb[32];

	printf("%-44s %10lld %10lld %10s %10s %6lld %9.1f %9.1f %9.1f\n", what, gi(st, "read_cmds"),
	       gi(st, "write_cmds"), human_bytes((unsigned long long)gi(st, "read_bytes"), rb, sizeof(rb)),
	       human_bytes((unsigned long long)gi(st, "write_bytes"), wb, sizeof(wb)), gi(st, "errors"),
	       gd(lat, "p50"), gd(lat, "p99"), gd(lat, "p999"));
}

static void stats_header(const char *first)
{
	printf("%-44s %10s %10s %10s %10s %6s %9s %9s %9s\n", first, "READS", "WRITES", "READ",
	       "WRITTEN", "ERRORS", "P50(us)", "P99(us)", "P99.9(us)");
}

void cli_print_stats(struct json_object *r)
{
	struct json_object *nss = get(r, "namespaces"), *ctrls = get(r, "controllers");
	char what[256], e[ESC_LEN];

	stats_header("NAMESPACE");
	for (size_t i = 0; i < alen(nss); i++) {
		struct json_object *n = json_object_array_get_idx(nss, i);

		snprintf(what, sizeof(what), "%.36s n%lld", esc(gs(n, "subsystem"), e), gi(n, "nsid"));
		stats_row(what, get(n, "stats"));
	}
	printf("\n");
	stats_header("CONNECTION (cntlid/queue peer)");
	for (size_t i = 0; i < alen(ctrls); i++) {
		struct json_object *c = json_object_array_get_idx(ctrls, i), *qs = get(c, "queues");

		for (size_t j = 0; j < alen(qs); j++) {
			struct json_object *q = json_object_array_get_idx(qs, j);

			if (!get(q, "stats"))
				continue;
			snprintf(what, sizeof(what), "%lld/%lld %s", gi(c, "cntlid"), gi(q, "qid"),
				 esc(gs(q, "peer"), e));
			stats_row(what, get(q, "stats"));
		}
	}
	if (get(r, "tcp"))
		printf("\nhalf-open NVMe/TCP sockets: %lld (evicted since start: %lld)\n",
		       gi(get(r, "tcp"), "half_open"), gi(get(r, "tcp"), "half_open_evicted"));
}

/* Label values escape backslash, quote and newline; a host's control and
 * non-ASCII bytes are first written as the log writes them ("\x1b"), so
 * the label holds that text and a scrape stays valid UTF-8. */
static void label(const char *raw)
{
	char buf[ESC_LEN];
	const char *s = esc(raw, buf);

	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			printf("\\%c", *s);
		else if (*s == '\n')
			printf("\\n");
		else
			putchar(*s);
	}
}

static const struct metric {
	const char *name, *key, *help;
} metrics[] = {
	{ "reads_total", "read_cmds", "Read commands completed" },
	{ "writes_total", "write_cmds", "Write commands completed" },
	{ "other_commands_total", "other_cmds", "Other I/O commands completed" },
	{ "read_bytes_total", "read_bytes", "Bytes read" },
	{ "written_bytes_total", "write_bytes", "Bytes written" },
	{ "errors_total", "errors", "Commands completed with an error status" },
};

static const char *const quantiles[][2] = { { "0.5", "p50" }, { "0.9", "p90" }, { "0.99", "p99" },
					    { "0.999", "p999" } };

static void prom_labels_ns(struct json_object *n)
{
	printf("{subsystem=\"");
	label(gs(n, "subsystem"));
	printf("\",nsid=\"%lld\"", gi(n, "nsid"));
}

static void prom_labels_q(struct json_object *c, struct json_object *q)
{
	printf("{subsystem=\"");
	label(gs(c, "subsystem"));
	printf("\",host=\"");
	label(gs(c, "host"));
	printf("\",cntlid=\"%lld\",qid=\"%lld\",peer=\"", gi(c, "cntlid"), gi(q, "qid"));
	label(gs(q, "peer"));
	printf("\"");
}

static void prom_family(const char *scope, struct json_object *nss, struct json_object *ctrls)
{
	for (size_t m = 0; m < sizeof(metrics) / sizeof(metrics[0]) + 1; m++) {
		bool lat = m == sizeof(metrics) / sizeof(metrics[0]);

		if (lat)
			printf("# HELP nvmegate_%s_latency_seconds I/O command latency, submission to completion\n"
			       "# TYPE nvmegate_%s_latency_seconds summary\n", scope, scope);
		else
			printf("# HELP nvmegate_%s_%s %s\n# TYPE nvmegate_%s_%s counter\n", scope,
			       metrics[m].name, metrics[m].help, scope, metrics[m].name);
		for (size_t i = 0; i < alen(nss ? nss : ctrls); i++) {
			struct json_object *o = json_object_array_get_idx(nss ? nss : ctrls, i);
			struct json_object *qs = nss ? NULL : get(o, "queues");
			size_t nq = nss ? 1 : alen(qs);

			for (size_t j = 0; j < nq; j++) {
				struct json_object *q = nss ? NULL : json_object_array_get_idx(qs, j);
				struct json_object *st = get(nss ? o : q, "stats"), *l = get(st, "latency_us");

				if (!st)
					continue;
				if (!lat) {
					printf("nvmegate_%s_%s", scope, metrics[m].name);
					nss ? prom_labels_ns(o) : prom_labels_q(o, q);
					printf("} %lld\n", gi(st, metrics[m].key));
					continue;
				}
				for (size_t k = 0; k < 4; k++) {
					printf("nvmegate_%s_latency_seconds", scope);
					nss ? prom_labels_ns(o) : prom_labels_q(o, q);
					printf(",quantile=\"%s\"} %.9f\n", quantiles[k][0], gd(l, quantiles[k][1]) / 1e6);
				}
				printf("nvmegate_%s_latency_seconds_sum", scope);
				nss ? prom_labels_ns(o) : prom_labels_q(o, q);
				printf("} %.9f\n", gd(l, "sum_us") / 1e6);
				printf("nvmegate_%s_latency_seconds_count", scope);
				nss ? prom_labels_ns(o) : prom_labels_q(o, q);
				printf("} %lld\n", gi(l, "count"));
			}
		}
	}
}

void cli_print_prometheus(struct json_object *r)
{
	struct json_object *tcp = get(r, "tcp");

	prom_family("namespace", get(r, "namespaces"), NULL);
	prom_family("queue", NULL, get(r, "controllers"));
	if (!tcp)
		return;
	printf("# HELP nvmegate_tcp_half_open_sockets NVMe/TCP sockets accepted whose Connect is not done\n"
	       "# TYPE nvmegate_tcp_half_open_sockets gauge\n"
	       "nvmegate_tcp_half_open_sockets %lld\n", gi(tcp, "half_open"));
	printf("# HELP nvmegate_tcp_half_open_evicted_total Half-open sockets closed to make room for newer ones\n"
	       "# TYPE nvmegate_tcp_half_open_evicted_total counter\n"
	       "nvmegate_tcp_half_open_evicted_total %lld\n", gi(tcp, "half_open_evicted"));
}
