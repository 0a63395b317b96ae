/* nvmegate-perf: NVMe/TCP initiator load generator (see perf.h). */
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <json-c/json.h>

#include "lib/parse.h"
#include "tools/perf/perf.h"

static struct perf_shared g_sh;

static void usage(FILE *f)
{
	fprintf(f,
"usage: " PERF_NAME " -a ADDR -n SUBNQN [options]\n"
"NVMe/TCP initiator load generator.\n"
"  -a, --addr ADDR        target address (IPv4, IPv6 or host name)\n"
"  -s, --port PORT        target TCP port (default 4420)\n"
"  -n, --subnqn NQN       subsystem NQN\n"
"  -N, --nsid NSID        namespace ID (default 1)\n"
"  -q, --queues N         I/O queues, one TCP connection each (default 1)\n"
"  -d, --qd N             queue depth per I/O queue (default 32)\n"
"  -b, --bs BYTES         I/O size, k/m suffixes allowed (default 4096)\n"
"  -w, --workload W       randread|randwrite|read|write|randrw|rw (default randread)\n"
"  -M, --rwmixread PCT    read percentage for randrw/rw (default 70)\n"
"  -t, --time SECONDS     measured run time (default 10)\n"
"      --ramp SECONDS     unmeasured warm-up before the run (default 0)\n"
"  -T, --threads N        I/O threads, each with one io_uring (default 1)\n"
"  -g, --hdgst            enable header digests\n"
"      --tls --psk KEY     TLS 1.3 with the PSK KEY (NVMeTLSkey-1:01|02:...:),\n"
"                          identity version 1 (--tls-identity-v0: version 0);\n"
"                          libnvme's derivation (--tls-rfc8446: RFC 8446's);\n"
"                          records by our own layer after the handshake\n"
"                          (--tls-openssl-records: OpenSSL's throughout)\n"
"  -G, --ddgst            enable data digests\n"
"      --verify           write a self-describing pattern, check it on reads\n"
"      --prefill          write the whole range once before the run\n"
"      --seed N           pattern seed (a read-only --verify run then also\n"
"                         checks the seed)\n"
"      --size BYTES       limit the LBA range to the first BYTES\n"
"      --hostnqn NQN      host NQN (default /etc/nvme/hostnqn or generated)\n"
"      --hostid UUID      host identifier (default derived from the NQN)\n"
"      --kato MS          keep-alive timeout, 0 disables (default 30000)\n"
"      --io-timeout SEC   fail when an I/O is outstanding this long (default 30)\n"
"      --json             print one JSON object with the results\n"
"      --poll             busy-poll for completions instead of sleeping, so\n"
"                         that latency includes no wake-up of this side\n"
"  -h, --help             this text\n");
}

/* A count: decimal, 0x hex or 0 octal (seeds read well in hex). */
static int parse_u64(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long x;

	errno = 0;
	if (!*s || *s == '-')
		return -1;
	x = strtoull(s, &end, 0);
	if (errno || *end)
		return -1;
	*v = x;
	return 0;
}

static int parse_uint(const char *opt, const char *s, uint64_t min, uint64_t max, bool size,
		      uint64_t *v)
{
	int ret = size ? nvmg_parse_size(s, v) : parse_u64(s, v);

	if (ret < 0 || *v < min || *v > max) {
		perf_err("invalid %s '%s' (expected %" PRIu64 "..%" PRIu64 ")", opt, s, min, max);
		return -1;
	}
	return 0;
}

static int parse_secs(const char *opt, const char *s, double min, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(*v) || *v < min || *v > 1e7) {
		perf_err("invalid %s '%s'", opt, s);
		return -1;
	}
	return 0;
}

static void random_bytes(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t r = getrandom(p, len, 0);

		if (r <= 0) {
			/* cannot really happen; fall back to something */
			for (size_t i = 0; i < len; i++)
				p[i] = (uint8_t)(perf_now_ns() >> (i % 8));
			return;
		}
		p += r;
		len -= (size_t)r;
	}
}

static bool read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	bool ok = false;

	if (!f)
		return false;
	if (fgets(buf, (int)len, f)) {
		buf[strcspn(buf, " \t\r\n")] = 0;
		ok = buf[0] != 0;
	}
	fclose(f);
	return ok;
}

static void host_identity(struct perf_opts *o, const char *hostnqn, const char *hostid)
{
	static const char uuid_pfx[] = "nqn.2014-08.org.nvmexpress:uuid:";
	char line[NVME_NQN_LENGTH + 64];
	bool have_id = false;

	if (hostnqn) {
		snprintf(o->hostnqn, sizeof(o->hostnqn), "%s", hostnqn);
	} else if (read_line("/etc/nvme/hostnqn", line, sizeof(line))) {
		if (strlen(line) > PERF_NQN_MAX) {
			perf_err("/etc/nvme/hostnqn holds an NQN longer than %d bytes", PERF_NQN_MAX);
			exit(2);
		}
		memcpy(o->hostnqn, line, strlen(line) + 1);
		if (!hostid && read_line("/etc/nvme/hostid", line, sizeof(line)) &&
		    nvmg_parse_uuid(line, o->hostid) == 0)
			have_id = true;
	} else {
		uint8_t u[16];

		random_bytes(u, sizeof(u));
		u[6] = (u[6] & 0x0f) | 0x40;
		u[8] = (u[8] & 0x3f) | 0x80;
		snprintf(o->hostnqn, sizeof(o->hostnqn),
			 "%s%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 uuid_pfx, u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
			 u[10], u[11], u[12], u[13], u[14], u[15]);
	}
	if (hostid) {
		have_id = true; /* validated by the caller */
	} else if (!have_id && !strncmp(o->hostnqn, uuid_pfx, sizeof(uuid_pfx) - 1) &&
		   nvmg_parse_uuid(o->hostnqn + sizeof(uuid_pfx) - 1, o->hostid) == 0) {
		have_id = true;
	}
	if (!have_id)
		random_bytes(o->hostid, sizeof(o->hostid));
}

enum {
	OPT_RAMP = 256, OPT_VERIFY, OPT_PREFILL, OPT_HOSTNQN, OPT_HOSTID, OPT_SIZE, OPT_JSON, OPT_POLL,
	OPT_KATO, OPT_SEED, OPT_IO_TIMEOUT, OPT_TLS, OPT_PSK, OPT_TLS_V0, OPT_TLS_RFC, OPT_TLS_OPENSSL,
};

static int parse_opts(int argc, char **argv, struct perf_opts *o)
{
	static const struct option lopts[] = {
		{ "addr", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 's' },
		{ "subnqn", required_argument, NULL, 'n' },
		{ "nsid", required_argument, NULL, 'N' },
		{ "queues", required_argument, NULL, 'q' },
		{ "qd", required_argument, NULL, 'd' },
		{ "queue-depth", required_argument, NULL, 'd' },
		{ "bs", required_argument, NULL, 'b' },
		{ "block-size", required_argument, NULL, 'b' },
		{ "workload", required_argument, NULL, 'w' },
		{ "rwmixread", required_argument, NULL, 'M' },
		{ "time", required_argument, NULL, 't' },
		{ "threads", required_argument, NULL, 'T' },
		{ "hdgst", no_argument, NULL, 'g' },
		{ "ddgst", no_argument, NULL, 'G' },
		{ "ramp", required_argument, NULL, OPT_RAMP },
		{ "verify", no_argument, NULL, OPT_VERIFY },
		{ "prefill", no_argument, NULL, OPT_PREFILL },
		{ "hostnqn", required_argument, NULL, OPT_HOSTNQN },
		{ "hostid", required_argument, NULL, OPT_HOSTID },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "poll", no_argument, NULL, OPT_POLL },
		{ "kato", required_argument, NULL, OPT_KATO },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "io-timeout", required_argument, NULL, OPT_IO_TIMEOUT },
		{ "tls", no_argument, NULL, OPT_TLS },
		{ "psk", required_argument, NULL, OPT_PSK },
		{ "tls-identity-v0", no_argument, NULL, OPT_TLS_V0 },
		{ "tls-rfc8446", no_argument, NULL, OPT_TLS_RFC },
		{ "tls-openssl-records", no_argument, NULL, OPT_TLS_OPENSSL },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *hostnqn = NULL, *hostid = NULL;
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->port = "4420";
	o->nsid = 1;
	o->queues = 1;
	o->qd = 32;
	o->threads = 1;
	o->bs = 4096;
	o->workload = "randread";
	o->read_pct = 70;
	o->time_s = 10;
	o->io_timeout_s = 30;
	o->kato_ms = 30000;

	while ((c = getopt_long(argc, argv, "a:s:n:N:q:d:b:w:M:t:T:gGh", lopts, NULL)) != -1) {
		switch (c) {
		case 'a': o->addr = optarg; break;
		case 's':
			if (parse_uint("port", optarg, 1, 65535, false, &v) < 0)
				return -1;
			o->port = optarg;
			break;
		case 'n': o->subnqn = optarg; break;
		case 'N':
			if (parse_uint("nsid", optarg, 1, 0xfffffffe, false, &v) < 0)
				return -1;
			o->nsid = (uint32_t)v;
			break;
		case 'q':
			if (parse_uint("queue count", optarg, 1, 1024, false, &v) < 0)
				return -1;
			o->queues = (unsigned)v;
			break;
		case 'd':
			if (parse_uint("queue depth", optarg, 1, 4096, false, &v) < 0)
				return -1;
			o->qd = (unsigned)v;
			break;
		case 'b':
			if (parse_uint("block size", optarg, 512, 64ull << 20, true, &v) < 0)
				return -1;
			o->bs = (uint32_t)v;
			break;
		case 'w': o->workload = optarg; break;
		case 'M':
			if (parse_uint("read percentage", optarg, 0, 100, false, &v) < 0)
				return -1;
			o->read_pct = (unsigned)v;
			break;
		case 't':
			if (parse_secs("time", optarg, 0.001, &o->time_s) < 0)
				return -1;
			break;
		case 'T':
			if (parse_uint("thread count", optarg, 1, 256, false, &v) < 0)
				return -1;
			o->threads = (unsigned)v;
			break;
		case 'g': o->hdgst = true; break;
		case 'G': o->ddgst = true; break;
		case OPT_RAMP:
			if (parse_secs("ramp", optarg, 0, &o->ramp_s) < 0)
				return -1;
			break;
		case OPT_VERIFY: o->verify = true; break;
		case OPT_PREFILL: o->prefill = true; break;
		case OPT_HOSTNQN:
			if (strlen(optarg) > PERF_NQN_MAX) {
				perf_err("host NQN longer than %d bytes", PERF_NQN_MAX);
				return -1;
			}
			hostnqn = optarg;
			break;
		case OPT_HOSTID:
			if (nvmg_parse_uuid(optarg, o->hostid) < 0) {
				perf_err("invalid host ID '%s' (expected a UUID)", optarg);
				return -1;
			}
			hostid = optarg;
			break;
		case OPT_SIZE:
			if (parse_uint("size", optarg, 512, UINT64_MAX, true, &v) < 0)
				return -1;
			o->size = v;
			break;
		case OPT_JSON: o->json = true; break;
		case OPT_POLL: o->poll = true; break;
		case OPT_KATO:
			if (parse_uint("kato", optarg, 0, UINT32_MAX, false, &v) < 0)
				return -1;
			o->kato_ms = (uint32_t)v;
			break;
		case OPT_SEED:
			if (parse_uint("seed", optarg, 1, UINT32_MAX, false, &v) < 0)
				return -1;
			o->seed = (uint32_t)v;
			o->seed_set = true;
			break;
		case OPT_TLS: o->tls = true; break;
		case OPT_PSK: o->psk = optarg; break;
		case OPT_TLS_V0: o->tls_identity_v0 = true; break;
		case OPT_TLS_RFC: o->tls_rfc8446 = true; break;
		case OPT_TLS_OPENSSL: o->tls_openssl_records = true; break;
		case OPT_IO_TIMEOUT:
			if (parse_secs("io-timeout", optarg, 0.1, &o->io_timeout_s) < 0)
				return -1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		perf_err("unexpected argument '%s'", argv[optind]);
		return -1;
	}
	if (!o->addr || !o->subnqn) {
		perf_err("-a ADDR and -n SUBNQN are required");
		usage(stderr);
		return -1;
	}
	if (strlen(o->subnqn) > PERF_NQN_MAX) {
		perf_err("subsystem NQN longer than %d bytes", PERF_NQN_MAX);
		return -1;
	}
	if (!strcmp(o->workload, "randread")) {
		o->rw = RW_READ, o->random = true;
	} else if (!strcmp(o->workload, "randwrite")) {
		o->rw = RW_WRITE, o->random = true;
	} else if (!strcmp(o->workload, "read")) {
		o->rw = RW_READ, o->random = false;
	} else if (!strcmp(o->workload, "write")) {
		o->rw = RW_WRITE, o->random = false;
	} else if (!strcmp(o->workload, "randrw")) {
		o->rw = RW_MIXED, o->random = true;
	} else if (!strcmp(o->workload, "rw")) {
		o->rw = RW_MIXED, o->random = false;
	} else {
		perf_err("unknown workload '%s' (randread|randwrite|read|write|randrw|rw)", o->workload);
		return -1;
	}
	if (o->bs % 512) {
		perf_err("block size %u is not a multiple of 512", o->bs);
		return -1;
	}
	if (o->threads > o->queues)
		o->threads = o->queues;
	if (!o->seed_set) {
		random_bytes(&o->seed, sizeof(o->seed));
		if (!o->seed)
			o->seed = 1;
	}
	host_identity(o, hostnqn, hostid);
	return 0;
}

/* ---- controller bring-up --------------------------------------------- */

static int identify(struct perf_conn *c, uint32_t nsid, uint8_t cns, void *buf, const char *what)
{
	struct nvmg_sqe sqe;
	struct nvmg_cqe cqe;
	char sbuf[128];
	int rc;

	memset(&sqe, 0, sizeof(sqe));
	memset(buf, 0, NVME_IDENTIFY_DATA_SIZE);
	sqe.opcode = nvme_admin_identify;
	sqe.nsid = htole32(nsid);
	sqe.cdw10 = htole32(cns);
	rc = conn_sync_cmd(c, &sqe, NULL, 0, buf, NVME_IDENTIFY_DATA_SIZE, &cqe, what);
	if (rc > 0)
		perf_err("%s: %s", what, perf_status_str((uint16_t)rc, sbuf, sizeof(sbuf)));
	return rc ? -1 : 0;
}

static uint32_t cc_value(void)
{
	return (1u << NVME_CC_EN_SHIFT) | (6u << NVME_CC_IOSQES_SHIFT) | (4u << NVME_CC_IOCQES_SHIFT);
}

static int bring_up(const struct perf_opts *o, struct perf_ctrl *ctrl)
{
	struct perf_conn *a = &ctrl->admin;
	struct nvme_id_ctrl idc;
	struct nvme_id_ns idns;
	uint64_t csts = 0, t0, tmo_ms;
	unsigned fmt;

	if (conn_open(a, o, 0) < 0)
		return -1;
	if (conn_fabrics_connect(a, o, 0, 31, 0xffff, o->kato_ms, &ctrl->cntlid) < 0)
		return -1;
	if (conn_prop_get(a, NVME_REG_CAP, true, &ctrl->cap) < 0)
		return -1;
	if (conn_prop_set(a, NVME_REG_CC, cc_value()) < 0)
		return -1;
	tmo_ms = NVME_CAP_TO(ctrl->cap) * 500ull;
	if (tmo_ms < 2000)
		tmo_ms = 2000;
	if (tmo_ms > 60000)
		tmo_ms = 60000;
	t0 = perf_now_ns();
	for (;;) {
		if (conn_prop_get(a, NVME_REG_CSTS, false, &csts) < 0)
			return -1;
		if (NVME_CSTS_CFS(csts)) {
			perf_err("controller fatal status after enable (CSTS 0x%" PRIx64 ")", csts);
			return -1;
		}
		if (NVME_CSTS_RDY(csts))
			break;
		if (perf_now_ns() - t0 > tmo_ms * 1000000ull) {
			perf_err("controller not ready %" PRIu64 " ms after CC.EN=1 (CSTS 0x%" PRIx64 ")",
				 tmo_ms, csts);
			return -1;
		}
		usleep(10000);
	}

	if (identify(a, 0, NVME_IDENTIFY_CNS_CTRL, &idc, "Identify Controller") < 0)
		return -1;
	uint32_t ioccsz = le32toh(idc.ioccsz);
	uint64_t mps = 4096ull << NVME_CAP_MPSMIN(ctrl->cap);

	ctrl->incap_max = ioccsz * 16 > 64 ? ioccsz * 16 - 64 : 0;
	ctrl->mdts_bytes = idc.mdts ? mps << idc.mdts : 0;
	memcpy(ctrl->subnqn, idc.subnqn, NVME_NQN_LENGTH);
	ctrl->subnqn[NVME_NQN_LENGTH] = 0;
	memcpy(ctrl->mn, idc.mn, 40);
	ctrl->mn[40] = 0;
	for (int i = 39; i >= 0 && (ctrl->mn[i] == ' ' || !ctrl->mn[i]); i--)
		ctrl->mn[i] = 0;

	if (identify(a, o->nsid, NVME_IDENTIFY_CNS_NS, &idns, "Identify Namespace") < 0)
		return -1;
	ctrl->nsze = le64toh(idns.nsze);
	if (!ctrl->nsze) {
		perf_err("namespace %u is not active (Identify Namespace NSZE 0)", o->nsid);
		return -1;
	}
	fmt = idns.flbas & 0xf;
	if (idns.nlbaf > 16)
		fmt |= ((idns.flbas >> 5) & 0x3) << 4;
	if (idns.lbaf[fmt].ds < 9 || idns.lbaf[fmt].ds > 20) {
		perf_err("namespace %u: unsupported LBA data size 2^%u (FLBAS 0x%x)", o->nsid,
			 idns.lbaf[fmt].ds, idns.flbas);
		return -1;
	}
	ctrl->lba_size = 1u << idns.lbaf[fmt].ds;
	if (le16toh(idns.lbaf[fmt].ms))
		perf_warn("namespace %u has %u bytes of metadata per block; not transferred",
			  o->nsid, le16toh(idns.lbaf[fmt].ms));

	/* Number of Queues (optional for the target; failures are ignored). */
	struct nvmg_sqe sqe;
	struct nvmg_cqe cqe;
	int rc;

	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = nvme_admin_set_features;
	sqe.cdw10 = htole32(NVME_FEAT_FID_NUM_QUEUES);
	sqe.cdw11 = htole32((o->queues - 1) | (o->queues - 1) << 16);
	rc = conn_sync_cmd(a, &sqe, NULL, 0, NULL, 0, &cqe, "Set Features (Number of Queues)");
	if (rc < 0)
		return -1;
	if (rc == 0) {
		uint32_t dw0 = (uint32_t)le64toh(cqe.result);
		unsigned nsq = (dw0 & 0xffff) + 1, ncq = (dw0 >> 16) + 1;

		if (nsq < o->queues || ncq < o->queues) {
			perf_err("target grants only %u I/O queues, %u requested", nsq < ncq ? nsq : ncq,
				 o->queues);
			return -1;
		}
	}
	return 0;
}

static void shutdown_ctrl(struct perf_ctrl *ctrl)
{
	union {
		struct nvmg_sqe sqe;
		struct nvmg_prop_cmd p;
	} u;
	struct nvmg_cqe cqe;

	memset(&u, 0, sizeof(u));
	u.p.opcode = nvme_admin_fabrics;
	u.p.fctype = nvme_fabrics_type_property_set;
	u.p.offset = htole32(NVME_REG_CC);
	u.p.value = htole64(cc_value() | NVME_CC_SHN_NORMAL << NVME_CC_SHN_SHIFT);
	if (conn_sync_cmd(&ctrl->admin, &u.sqe, NULL, 0, NULL, 0, &cqe, "Property Set CC.SHN") != 0)
		return;
	for (int i = 0; i < 100; i++) {
		memset(&u, 0, sizeof(u));
		u.p.opcode = nvme_admin_fabrics;
		u.p.fctype = nvme_fabrics_type_property_get;
		u.p.offset = htole32(NVME_REG_CSTS);
		if (conn_sync_cmd(&ctrl->admin, &u.sqe, NULL, 0, NULL, 0, &cqe, "Property Get CSTS") != 0)
			return;
		if (((le64toh(cqe.result) >> NVME_CSTS_SHST_SHIFT) & NVME_CSTS_SHST_MASK) ==
		    NVME_CSTS_SHST_CMPLT)
			return;
		usleep(10000);
	}
}

/* ---- reporting ---------------------------------------------------------- */

struct dir_result {
	uint64_t ios, bytes;
	double iops, mibps;
	double avg, min, max, p50, p90, p99, p999; /* microseconds */
};

static void dir_result(const struct perf_hist *h, uint64_t ios, uint64_t bytes, double secs,
		       struct dir_result *r)
{
	memset(r, 0, sizeof(*r));
	r->ios = ios;
	r->bytes = bytes;
	if (secs > 0) {
		r->iops = (double)ios / secs;
		r->mibps = (double)bytes / secs / (1024.0 * 1024.0);
	}
	if (h->count) {
		r->avg = (double)h->sum_ns / (double)h->count / 1000.0;
		r->min = (double)h->min_ns / 1000.0;
		r->max = (double)h->max_ns / 1000.0;
		r->p50 = (double)hist_percentile(h, 50) / 1000.0;
		r->p90 = (double)hist_percentile(h, 90) / 1000.0;
		r->p99 = (double)hist_percentile(h, 99) / 1000.0;
		r->p999 = (double)hist_percentile(h, 99.9) / 1000.0;
	}
}

static double round3(double v)
{
	return round(v * 1000.0) / 1000.0;
}

static void json_dir(json_object *o, const struct dir_result *r)
{
	json_object_object_add(o, "ios", json_object_new_int64((int64_t)r->ios));
	json_object_object_add(o, "bytes", json_object_new_int64((int64_t)r->bytes));
	json_object_object_add(o, "iops", json_object_new_double(round3(r->iops)));
	json_object_object_add(o, "mibps", json_object_new_double(round3(r->mibps)));
	json_object_object_add(o, "avg_lat_us", json_object_new_double(round3(r->avg)));
	json_object_object_add(o, "min_lat_us", json_object_new_double(round3(r->min)));
	json_object_object_add(o, "max_lat_us", json_object_new_double(round3(r->max)));
	json_object_object_add(o, "p50_lat_us", json_object_new_double(round3(r->p50)));
	json_object_object_add(o, "p90_lat_us", json_object_new_double(round3(r->p90)));
	json_object_object_add(o, "p99_lat_us", json_object_new_double(round3(r->p99)));
	json_object_object_add(o, "p999_lat_us", json_object_new_double(round3(r->p999)));
}

static void print_dir(const char *name, const struct dir_result *r)
{
	printf("%-6s %11.1f %10.2f %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f\n", name, r->iops,
	       r->mibps, r->avg, r->p50, r->p90, r->p99, r->p999, r->max);
}

static void report(const struct perf_opts *o, const struct perf_ctrl *ctrl,
		   const struct perf_stats *st, bool failed, bool interrupted)
{
	struct perf_hist all;
	struct dir_result rd, wr, tot;
	double secs = st->runtime_s;

	hist_init(&all);
	hist_merge(&all, &st->hist[0]);
	hist_merge(&all, &st->hist[1]);
	dir_result(&st->hist[0], st->ios[0], st->bytes[0], secs, &rd);
	dir_result(&st->hist[1], st->ios[1], st->bytes[1], secs, &wr);
	dir_result(&all, st->ios[0] + st->ios[1], st->bytes[0] + st->bytes[1], secs, &tot);

	if (o->json) {
		json_object *j = json_object_new_object(), *jr, *jw;

		json_c_set_serialization_double_format("%.3f", JSON_C_OPTION_THREAD);

		json_object_object_add(j, "workload", json_object_new_string(o->workload));
		json_object_object_add(j, "bs", json_object_new_int64(o->bs));
		json_object_object_add(j, "qd", json_object_new_int64(o->qd));
		json_object_object_add(j, "queues", json_object_new_int64(o->queues));
		json_object_object_add(j, "threads", json_object_new_int64(o->threads));
		json_object_object_add(j, "read_pct",
				       json_object_new_int64(o->rw == RW_READ ? 100 :
							     o->rw == RW_WRITE ? 0 : o->read_pct));
		json_object_object_add(j, "hdgst", json_object_new_boolean(o->hdgst));
		json_object_object_add(j, "ddgst", json_object_new_boolean(o->ddgst));
		json_object_object_add(j, "lba_size", json_object_new_int64(ctrl->lba_size));
		json_object_object_add(j, "runtime_s", json_object_new_double(round3(secs)));
		json_dir(j, &tot);
		jr = json_object_new_object();
		json_dir(jr, &rd);
		json_object_object_add(j, "read", jr);
		jw = json_object_new_object();
		json_dir(jw, &wr);
		json_object_object_add(j, "write", jw);
		json_object_object_add(j, "errors", json_object_new_int64((int64_t)st->errors));
		json_object_object_add(j, "verify", json_object_new_boolean(o->verify));
		json_object_object_add(j, "verified_blocks", json_object_new_int64((int64_t)st->verified));
		json_object_object_add(j, "verify_errors",
				       json_object_new_int64((int64_t)st->verify_errors));
		json_object_object_add(j, "unwritten_blocks",
				       json_object_new_int64((int64_t)st->unwritten));
		json_object_object_add(j, "seed", json_object_new_int64(o->seed));
		json_object_object_add(j, "failed", json_object_new_boolean(failed));
		json_object_object_add(j, "interrupted", json_object_new_boolean(interrupted));
		printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
		json_object_put(j);
		return;
	}
	printf("%s bs=%u qd=%u queues=%u threads=%u%s%s runtime=%.2fs%s\n", o->workload, o->bs,
	       o->qd, o->queues, o->threads, o->hdgst ? " hdgst" : "", o->ddgst ? " ddgst" : "",
	       secs, interrupted ? " (interrupted)" : "");
	printf("%-6s %11s %10s %10s %10s %10s %10s %10s %10s\n", "", "IOPS", "MiB/s", "avg(us)",
	       "p50(us)", "p90(us)", "p99(us)", "p99.9(us)", "max(us)");
	if (rd.ios)
		print_dir("read", &rd);
	if (wr.ios)
		print_dir("write", &wr);
	print_dir("total", &tot);
	printf("errors: %" PRIu64, st->errors);
	if (o->verify)
		printf("  verify: %" PRIu64 " blocks checked, %" PRIu64 " mismatches, %" PRIu64
		       " never written (seed 0x%08x)", st->verified, st->verify_errors, st->unwritten,
		       o->seed);
	printf("%s\n", failed ? "  FAILED" : "");
}

/* ---- main ------------------------------------------------------------------- */

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&g_sh.stop, true);
}

int main(int argc, char **argv)
{
	static struct perf_opts o;
	static struct perf_ctrl ctrl;
	struct perf_conn *conns = NULL;
	struct perf_thread *th = NULL;
	pthread_barrier_t start_barrier, prefill_barrier;
	struct perf_stats total;
	struct sigaction sa;
	sigset_t block, old;
	uint64_t ns_bytes, range, next_ka, lpu;
	bool interrupted;
	int rc = 1;

	if (parse_opts(argc, argv, &o) < 0)
		return 2;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	ctrl.admin.fd = -1;
	if (bring_up(&o, &ctrl) < 0)
		goto out;

	ns_bytes = ctrl.nsze * ctrl.lba_size;
	range = ns_bytes;
	if (o.size) {
		if (o.size > ns_bytes)
			perf_warn("--size %" PRIu64 " exceeds the namespace (%" PRIu64 " bytes); using the whole namespace",
				  o.size, ns_bytes);
		else
			range = o.size;
	}
	if (o.bs % ctrl.lba_size) {
		perf_err("block size %u is not a multiple of the LBA size %u", o.bs, ctrl.lba_size);
		goto out;
	}
	lpu = o.bs / ctrl.lba_size;
	if (lpu > 65536) {
		perf_err("block size %u is more than 65536 logical blocks", o.bs);
		goto out;
	}
	if (ctrl.mdts_bytes && o.bs > ctrl.mdts_bytes) {
		perf_err("block size %u exceeds the controller's MDTS (%" PRIu64 " bytes)", o.bs,
			 ctrl.mdts_bytes);
		goto out;
	}
	if (o.qd > NVME_CAP_MQES(ctrl.cap)) {
		perf_err("queue depth %u exceeds what CAP.MQES allows (%u)", o.qd,
			 (unsigned)NVME_CAP_MQES(ctrl.cap));
		goto out;
	}
	g_sh.o = &o;
	g_sh.ctrl = &ctrl;
	g_sh.units = range / o.bs;
	g_sh.lbas_per_unit = (uint32_t)lpu;
	if (!g_sh.units) {
		perf_err("LBA range (%" PRIu64 " bytes) is smaller than the block size", range);
		goto out;
	}
	if (o.verify) {
		if (g_sh.units < (uint64_t)o.queues * o.qd) {
			perf_err("--verify needs at least queues*qd = %u blocks of %u bytes in the range, it has %" PRIu64,
				 o.queues * o.qd, o.bs, g_sh.units);
			goto out;
		}
		if (g_sh.units > (1ull << 31)) {
			perf_err("--verify tracks every block; limit the range with --size");
			goto out;
		}
		g_sh.ustate = calloc(g_sh.units, sizeof(*g_sh.ustate));
		if (!g_sh.ustate) {
			perf_err("out of memory for verify state");
			goto out;
		}
	}
	if (!o.json) {
		printf("%s: %s port %s, %s cntlid %u (%s), nsid %u: %" PRIu64 " x %u B (%.1f MiB), range %.1f MiB, in-capsule %u B, MAXH2CDATA %u\n",
		       PERF_NAME, o.addr, o.port, ctrl.subnqn, ctrl.cntlid,
		       ctrl.mn[0] ? ctrl.mn : "?", o.nsid, ctrl.nsze, ctrl.lba_size,
		       (double)ns_bytes / 1048576.0, (double)range / 1048576.0, ctrl.incap_max,
		       ctrl.admin.maxh2cdata);
		fflush(stdout);
	}

	conns = calloc(o.queues, sizeof(*conns));
	th = calloc(o.threads, sizeof(*th));
	if (!conns || !th) {
		perf_err("out of memory");
		goto out;
	}
	for (unsigned i = 0; i < o.queues; i++)
		conns[i].fd = -1;
	for (unsigned i = 0; i < o.queues; i++) {
		uint16_t qid = (uint16_t)(i + 1);

		if (conn_open(&conns[i], &o, qid) < 0 ||
		    conn_fabrics_connect(&conns[i], &o, qid, (uint16_t)o.qd, ctrl.cntlid, 0, NULL) < 0 ||
		    conn_handoff(&conns[i]) < 0)
			goto out;
	}

	/* Queue i belongs to thread i % threads. */
	for (unsigned t = 0; t < o.threads; t++) {
		th[t].sh = &g_sh;
		th[t].idx = t;
		th[t].conns = calloc(o.queues, sizeof(*th[t].conns));
		th[t].gq = calloc(o.queues, sizeof(*th[t].gq));
		if (!th[t].conns || !th[t].gq) {
			perf_err("out of memory");
			goto out;
		}
	}
	for (unsigned i = 0; i < o.queues; i++) {
		struct perf_thread *t = &th[i % o.threads];

		t->conns[t->nq] = conns[i];
		t->gq[t->nq++] = i;
	}

	pthread_barrier_init(&start_barrier, NULL, o.threads + 1);
	pthread_barrier_init(&prefill_barrier, NULL, o.threads);
	g_sh.barrier = &start_barrier;
	g_sh.prefill_barrier = &prefill_barrier;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (unsigned t = 0; t < o.threads; t++) {
		int err = pthread_create(&th[t].tid, NULL, engine_thread, &th[t]);

		if (err) {
			perf_err("pthread_create: %s", strerror(err));
			exit(1);
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_barrier_wait(&start_barrier);

	/* Keep-alive while the threads run. */
	next_ka = perf_now_ns() + (uint64_t)o.kato_ms * 500000ull;
	while (atomic_load(&g_sh.threads_done) < o.threads) {
		usleep(20000);
		if (o.kato_ms && perf_now_ns() >= next_ka && !atomic_load(&g_sh.failed)) {
			if (conn_keep_alive(&ctrl.admin) < 0) {
				perf_err("admin queue failed; stopping");
				atomic_store(&g_sh.failed, 1);
				atomic_store(&g_sh.stop, true);
			}
			next_ka = perf_now_ns() + (uint64_t)o.kato_ms * 500000ull;
		}
	}
	interrupted = atomic_load(&g_sh.stop) && !atomic_load(&g_sh.failed);

	memset(&total, 0, sizeof(total));
	hist_init(&total.hist[0]);
	hist_init(&total.hist[1]);
	for (unsigned t = 0; t < o.threads; t++) {
		struct perf_stats *s = &th[t].st;

		pthread_join(th[t].tid, NULL);
		for (int d = 0; d < 2; d++) {
			total.ios[d] += s->ios[d];
			total.bytes[d] += s->bytes[d];
			hist_merge(&total.hist[d], &s->hist[d]);
		}
		total.errors += s->errors;
		total.verified += s->verified;
		total.verify_errors += s->verify_errors;
		total.unwritten += s->unwritten;
		if (s->runtime_s > total.runtime_s)
			total.runtime_s = s->runtime_s;
	}
	pthread_barrier_destroy(&start_barrier);
	pthread_barrier_destroy(&prefill_barrier);
	for (unsigned i = 0; i < o.queues; i++)
		conn_close(&conns[i]);
	if (!atomic_load(&g_sh.failed))
		shutdown_ctrl(&ctrl);

	report(&o, &ctrl, &total, atomic_load(&g_sh.failed), interrupted);
	fflush(stdout);
	if (atomic_load(&g_sh.failed))
		perf_err("run failed (see the errors above)");
	else if (total.errors || total.verify_errors)
		perf_err("%" PRIu64 " I/O errors, %" PRIu64 " verify mismatches", total.errors,
			 total.verify_errors);
	else
		rc = 0;
out:
	if (conns)
		for (unsigned i = 0; i < o.queues; i++)
			conn_close(&conns[i]);
	conn_close(&ctrl.admin);
	if (th)
		for (unsigned t = 0; t < o.threads; t++) {
			free(th[t].conns);
			free(th[t].gq);
		}
	free(th);
	free(conns);
	free(g_sh.ustate);
	return rc;
}
