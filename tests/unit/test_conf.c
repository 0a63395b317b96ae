/* conf/: the decoder tables through nvmg_conf_parse(). Every error path of
 * the tables, the warnings for nvmetcli keys we do not implement, the env
 * callbacks, and an nvmetcli save decoded into the model. JSON is written
 * with ' for " to stay readable. */
#include "conf/config.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <nvme/types.h>

static char err[512];
static int warns;
static char last_warn[512];
static int path_calls, trtype_calls;
static char path_shown[128];
static uint32_t path_lba;

static void on_warn(void *ctx, const char *msg)
{
	(void)ctx;
	warns++;
	snprintf(last_warn, sizeof(last_warn), "%s", msg);
}

/* Paths under "bad:" are refused, as a backend would refuse them. */
static int on_path(const char *path, const char *shown, uint32_t lba_size, char *why,
		   size_t len)
{
	path_calls++;
	snprintf(path_shown, sizeof(path_shown), "%s", shown);
	path_lba = lba_size;
	if (strncmp(path, "bad:", 4))
		return 0;
	snprintf(why, len, "%s is not a device", shown);
	return -EINVAL;
}

static int on_trtype(void *ctx, const char *trtype, const char *shown, char *why, size_t len)
{
	(void)ctx;
	trtype_calls++;
	if (!strcasecmp(trtype, "tcp"))
		return 0;
	snprintf(why, len, "transport %s is not registered", shown);
	return -EINVAL;
}

static const struct nvmg_conf_env env = {
	.warn = on_warn, .check_path = on_path, .check_trtype = on_trtype,
};

static int parse(const char *sq, struct nvmg_conf **out)
{
	char *json = strdup(sq);
	int ret;

	for (char *p = json; *p; p++)
		if (*p == '\'')
			*p = '"';
	err[0] = '\0';
	warns = 0;
	last_warn[0] = '\0';
	ret = nvmg_conf_parse(json, out, err, sizeof(err), &env);
	free(json);
	return ret;
}

/* The config fails with exactly MSG. */
#define FAILS(json, msg) fails(__LINE__, json, msg)
static void fails(int line, const char *json, const char *msg)
{
	struct nvmg_conf *conf = NULL;
	int ret = parse(json, &conf);

	CHECK(ret == -EINVAL && !conf);
	CHECK(!strcmp(err, msg));
	if (strcmp(err, msg))
		fprintf(stderr, "line %d: got   \"%s\"\n          want  \"%s\"\n", line, err, msg);
	nvmg_conf_free(conf);
}

/* The config loads, with WARNINGS warnings. */
#define LOADS(json, warnings) loads(__LINE__, json, warnings)
static struct nvmg_conf *loads(int line, const char *json, int warnings)
{
	struct nvmg_conf *conf = NULL;
	int ret = parse(json, &conf);

	CHECK(ret == 0 && conf);
	CHECK(warns == warnings);
	if (ret || warns != warnings)
		fprintf(stderr, "line %d: ret %d, %d warnings (last \"%s\"), err \"%s\"\n", line,
			ret, warns, last_warn, err);
	return conf;
}

#define SUB(x) "{'subsystems':[{'nqn':'nqn.a'" x "}]}"
#define NS(x) SUB(",'namespaces':[" x "]")
#define NS1(x) NS("{'nsid':1,'device':{'path':'mem:1M'}" x "}")
#define ATTR(x) SUB(",'attr':{" x "}")
#define PORTS(x) "{'subsystems':[{'nqn':'nqn.a'},{'nqn':'nqn.b'}],'ports':[" x "]}"
#define ADDR(x) PORTS("{'portid':1,'addr':{" x "}}")
#define TCP(x) ADDR("'trtype':'tcp','traddr':'10.0.0.1','trsvcid':4420" x)
#define PORT1(x) PORTS("{'portid':1,'addr':{'trtype':'tcp','traddr':'10.0.0.1'," \
		       "'trsvcid':4420}" x "}")
#define GATE(x) "{'subsystems':[{'nqn':'nqn.a'},{'nqn':'nqn.b'}],'nvmegate':{" x "}}"

static void test_top_level(void)
{
	struct nvmg_conf *conf;

	FAILS("[]", "the top level must be a JSON object");
	FAILS("null", "the top level must be a JSON object");
	FAILS("{'hosts':[],}", "invalid JSON at line 1, column 13: unexpected character");
	FAILS("{'hosts':[]", "invalid JSON at line 1, column 12: unexpected end of data");
	FAILS("{'host':[]}", "host: unknown key");
	/* Unknown keys win over errors of known ones, in the file's order. */
	FAILS("{'hosts':5,'x\\u0001y':1,'z':2}", "x?y: unknown key");
	conf = LOADS("{}", 0);
	CHECK(conf && !conf->nr_hosts && !conf->nr_ports && !conf->nr_subsys);
	/* The "nvmegate" defaults hold without the section. */
	CHECK(conf && conf->log_level == NVMG_LOG_INFO && conf->reactors == 0 &&
	      conf->handshake_timeout_ms == 10000 && conf->max_pending_sockets == 128 &&
	      conf->icreq_timeout_ms == 5000 && conf->max_pending_per_address == 32 &&
	      conf->max_queues_per_host == 1024 && conf->poll_us == 50 &&
	      conf->tcp_user_timeout_ms == 30000 && !conf->fuse_mountpoint);
	nvmg_conf_free(conf);
}

static void test_types(void)
{
	/* OBJECT and ARRAY */
	FAILS("{'hosts':{}}", "hosts: expected an array");
	FAILS("{'hosts':[5]}", "hosts[0]: expected an object");
	FAILS("{'nvmegate':[]}", "nvmegate: expected an object");
	FAILS(SUB(",'attr':'x'"), "subsystems[0].attr: expected an object");
	/* STR */
	FAILS(ATTR("'serial':5"), "subsystems[0].attr.serial: expected a string");
	FAILS(ATTR("'serial':'a\\u0000b'"), "subsystems[0].attr.serial: contains a NUL character");
	FAILS(ATTR("'model':''"), "subsystems[0].attr.model: must not be empty");
	/* NQN */
	FAILS("{'subsystems':[{'nqn':1}]}", "subsystems[0].nqn: expected a string");
	FAILS("{'subsystems':[{'nqn':''}]}", "subsystems[0].nqn: must not be empty");
	FAILS("{'subsystems':[{'nqn':'a\\tb'}]}",
	      "subsystems[0].nqn: NQN contains a control character");
	char big[400];
	snprintf(big, sizeof(big), "{'subsystems':[{'nqn':'%0224d'}]}", 0);
	FAILS(big, "subsystems[0].nqn: NQN is 224 bytes long (at most 223)");
	/* BOOL */
	FAILS(NS1(",'readonly':[]"), "subsystems[0].namespaces[0].readonly: expected a boolean");
	FAILS(NS1(",'readonly':'maybe'"), "subsystems[0].namespaces[0].readonly: \"maybe\" is "
	      "not a boolean (use true/false or 1/0)");
	FAILS(NS1(",'enable':2"), "subsystems[0].namespaces[0].enable: 2 is not a boolean "
	      "(use true/false or 1/0)");
	/* INT */
	FAILS(NS("{'nsid':true}"), "subsystems[0].namespaces[0].nsid: expected an integer");
	FAILS(NS("{'nsid':'1x'}"), "subsystems[0].namespaces[0].nsid: \"1x\" is not an integer");
	FAILS(NS("{'nsid':1.5}"), "subsystems[0].namespaces[0].nsid: expected an integer");
	FAILS(NS("{'nsid':0}"),
	      "subsystems[0].namespaces[0].nsid: 0 is out of range (1..4294967294)");
	FAILS(NS("{'nsid':'0xFFFFFFFF'}"),
	      "subsystems[0].namespaces[0].nsid: 0xFFFFFFFF is out of range (1..4294967294)");
	FAILS(NS("{'nsid':99999999999999999999}"), "subsystems[0].namespaces[0].nsid: "
	      "18446744073709551615 is out of range (1..4294967294)"); /* json-c's text */
	FAILS(TCP(",'trsvcid':'0'"), "ports[0].addr.trsvcid: 0 is out of range (1..65535)");
	FAILS(GATE("'reactors':257"), "nvmegate.reactors: 257 is out of range (0..256)");
	FAILS(GATE("'poll_us':1001"), "nvmegate.poll_us: 1001 is out of range (0..1000)");
	FAILS(GATE("'handshake_timeout_ms':99"),
	      "nvmegate.handshake_timeout_ms: 99 is out of range (100..600000)");
	FAILS(GATE("'icreq_timeout_ms':99"), "nvmegate.icreq_timeout_ms: 99 is out of range (100..600000)");
	FAILS(GATE("'max_pending_per_address':0"),
	      "nvmegate.max_pending_per_address: 0 is out of range (1..65536)");
	FAILS(ATTR("'cntlid_min':'65520'"),
	      "subsystems[0].attr.cntlid_min: 65520 is out of range (1..65519)");
	FAILS(PORT1(",'param':{'inline_data_size':-2}"),
	      "ports[0].param.inline_data_size: -2 is out of range (-1..1048576)");
	/* ENUM */
	FAILS(TCP(",'adrfam':'ib'"), "ports[0].addr.adrfam: address family \"ib\" is not "
	      "supported (only ipv4 or ipv6)");
	FAILS(TCP(",'adrfam':4"), "ports[0].addr.adrfam: expected a string");
	FAILS(GATE("'log_level':'loud'"),
	      "nvmegate.log_level: \"loud\" is not a log level (error, warn, info or debug)");
	/* CUSTOM */
	FAILS(ATTR("'version':true"), "subsystems[0].attr.version: expected a string");
	FAILS(ATTR("'version':'3.0'"), "subsystems[0].attr.version: \"3.0\" is not a supported "
	      "NVMe version (1.0 to 2.x, as MAJOR.MINOR or MAJOR.MINOR.TERTIARY)");
	FAILS(NS1(",'lba_size':1024"), "subsystems[0].namespaces[0].lba_size: 1024 is not "
	      "512 or 4096");
	FAILS(NS("{'nsid':1,'device':{'path':'mem:1M','uuid':'xyz'}}"),
	      "subsystems[0].namespaces[0].device.uuid: \"xyz\" is not a UUID "
	      "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
	FAILS(NS("{'nsid':1,'device':{'path':'mem:1M','nguid':'12'}}"),
	      "subsystems[0].namespaces[0].device.nguid: \"12\" is not an NGUID "
	      "(32 hex digits, dashes allowed)");
	FAILS(NS("{'nsid':1,'device':{'path':'mem:1M','eui64':5}}"),
	      "subsystems[0].namespaces[0].device.eui64: expected a string");
	FAILS(TCP(",'traddr':'10.0.0.300'"),
	      "ports[0].addr.traddr: \"10.0.0.300\" is not an IPv4 address");
	FAILS(TCP(",'adrfam':'ipv6'"), "ports[0].addr.traddr: \"10.0.0.1\" is not an IPv6 address");
	FAILS(ADDR("'trtype':'tcpxxxxxxxxxxxxxxxx','traddr':'::1','trsvcid':1"),
	      "ports[0].addr.trtype: transport \"tcpxxxxxxxxxxxxxxxx\" is not registered");
}

static void test_values(void)
{
	struct nvmg_conf *conf;

	/* nvmetcli's spellings: strings, hex, "1"/"0", "yes", JSON numbers */
	conf = LOADS(NS("{'nsid':'0x10','enable':'yes','readonly':1,'lba_size':'4096',"
			"'device':{'path':'mem:1M','eui64':'0011223344556677'}}"), 0);
	if (conf) {
		const struct nvmg_conf_ns *ns = &conf->subsys[0].ns[0];

		CHECK(ns->nsid == 16 && ns->enable && ns->readonly && ns->lba_size == 4096);
		CHECK(ns->has_eui64 && ns->eui64[7] == 0x77 && !ns->has_uuid && !ns->has_nguid);
		CHECK(path_lba == 4096);
	}
	nvmg_conf_free(conf);
	conf = LOADS(ATTR("'allow_any_host':true,'version':1.3,'serial':'S1','model':'M',"
			  "'cntlid_min':'5','cntlid_max':10"), 0);
	if (conf) {
		const struct nvmg_conf_subsys *s = &conf->subsys[0];

		CHECK(s->allow_any_host && s->version == 0x10300);
		CHECK(!strcmp(s->serial, "S1") && !strcmp(s->model, "M"));
		CHECK(s->cntlid_min == 5 && s->cntlid_max == 10);
	}
	nvmg_conf_free(conf);
	conf = LOADS(SUB(""), 0);
	if (conf) {
		const struct nvmg_conf_subsys *s = &conf->subsys[0];

		CHECK(s->version == 0x20000 && s->cntlid_min == 1 && s->cntlid_max == 0xFFEF);
		CHECK(!s->serial && !s->model && !s->nr_ns && !s->nr_allowed_hosts);
	}
	nvmg_conf_free(conf);
	conf = LOADS(ADDR("'trtype':'TCP','traddr':'0:0::1','trsvcid':'4420'"), 0);
	if (conf) {
		const struct nvmg_conf_port *p = &conf->ports[0];

		/* adrfam from the address, canonical spelling, lower-case trtype */
		CHECK(p->adrfam == NVMG_ADRFAM_IPV6 && !strcmp(p->traddr, "::1"));
		CHECK(!strcmp(p->trtype, "tcp") && p->trsvcid == 4420);
		CHECK(p->inline_data_size == 16384 && !p->nr_subsystems);
	}
	nvmg_conf_free(conf);
	conf = LOADS(PORT1(",'param':{'inline_data_size':'-1'}"), 0);
	CHECK(conf && conf->ports[0].inline_data_size == 16384);
	nvmg_conf_free(conf);
	conf = LOADS(PORT1(",'param':{'inline_data_size':0}"), 0);
	CHECK(conf && conf->ports[0].inline_data_size == 0);
	nvmg_conf_free(conf);
	conf = LOADS(GATE("'reactors':'2','log_level':'Warning','handshake_timeout_ms':100,"
			  "'max_pending_sockets':1,'max_queues_per_host':'1048576',"
			  "'icreq_timeout_ms':'600000','max_pending_per_address':65536,"
			  "'poll_us':0"), 0);
	CHECK(conf && conf->reactors == 2 && conf->log_level == NVMG_LOG_WARN && conf->poll_us == 0 &&
	      conf->handshake_timeout_ms == 100 && conf->max_pending_sockets == 1 &&
	      conf->max_queues_per_host == 1048576 && conf->icreq_timeout_ms == 600000 &&
	      conf->max_pending_per_address == 65536);
	nvmg_conf_free(conf);
	conf = LOADS(GATE("'log_level':'DEBUG','fuse':{'mountpoint':'/mnt','aliases':"
			  "{'nqn.b':'disk'}},'control':{'socket':'/run/s','group':'wheel'}"), 0);
	if (conf) {
		CHECK(conf->log_level == NVMG_LOG_DEBUG && !strcmp(conf->fuse_mountpoint, "/mnt"));
		CHECK(conf->nr_fuse_aliases == 1 && !strcmp(conf->fuse_aliases[0].nqn, "nqn.b") &&
		      !strcmp(conf->fuse_aliases[0].name, "disk"));
		CHECK(!strcmp(conf->control_socket, "/run/s") &&
		      !strcmp(conf->control_group, "wheel"));
	}
	nvmg_conf_free(conf);
}

static void test_required(void)
{
	FAILS("{'hosts':[{}]}", "hosts[0].nqn: missing required key");
	FAILS("{'subsystems':[{}]}", "subsystems[0].nqn: missing required key");
	FAILS(NS("{}"), "subsystems[0].namespaces[0].nsid: missing required key");
	FAILS(NS("{'nsid':1}"), "subsystems[0].namespaces[0].device.path: missing required key "
	      "(an enabled namespace needs a path)");
	FAILS(NS("{'nsid':1,'device':{'path':''}}"),
	      "subsystems[0].namespaces[0].device.path: must not be empty");
	FAILS(PORTS("{}"), "ports[0].portid: missing required key");
	FAILS(PORTS("{'portid':1}"), "ports[0].addr: missing required key");
	FAILS(ADDR(""), "ports[0].addr.trtype: missing required key");
	FAILS(ADDR("'trtype':'tcp'"), "ports[0].addr.traddr: missing required key");
	FAILS(ADDR("'trtype':'tcp','traddr':'::'"), "ports[0].addr.trsvcid: missing required key");
	FAILS(GATE("'fuse':{}"), "nvmegate.fuse.mountpoint: missing required key");
	FAILS(GATE("'fuse':{'mountpoint':''}"), "nvmegate.fuse.mountpoint: must not be empty");
	FAILS(GATE("'control':{'group':''}"), "nvmegate.control.group: must not be empty");
	/* A disabled namespace needs no path; nvmetcli saves it as "(null)". */
	struct nvmg_conf *conf = LOADS(NS("{'nsid':1,'enable':0,'device':{'path':'(null)'}}"), 0);
	CHECK(conf && !conf->subsys[0].ns[0].path && !conf->subsys[0].ns[0].enable);
	nvmg_conf_free(conf);
}

static void test_unknown_keys(void)
{
	FAILS("{'hosts':[{'nqn':'h','name':1}]}", "hosts[0].name: unknown key");
	FAILS(SUB(",'nsid':1"), "subsystems[0].nsid: unknown key");
	FAILS(ATTR("'serail':'x'"), "subsystems[0].attr.serail: unknown key");
	FAILS(NS("{'nsid':1,'device':{'path':'mem:1M','size':1}}"),
	      "subsystems[0].namespaces[0].device.size: unknown key");
	FAILS(NS1(",'naemspace':1"), "subsystems[0].namespaces[0].naemspace: unknown key");
	FAILS(PORT1(",'param':{'x':1}"), "ports[0].param.x: unknown key");
	FAILS(TCP(",'traddress':1"), "ports[0].addr.traddress: unknown key");
	FAILS(PORT1(",'name':1"), "ports[0].name: unknown key");
	FAILS(GATE("'fuse':{'mountpoint':'/m','alias':{}}"), "nvmegate.fuse.alias: unknown key");
	FAILS(GATE("'control':{'path':'/s'}"), "nvmegate.control.path: unknown key");
	FAILS(GATE("'threads':1"), "nvmegate.threads: unknown key");
}

/* nvmetcli keys we accept without implementing: one warning each, with the
 * key path, unless the value is what nvmetcli writes when it is off. */
static void test_warned_keys(void)
{
	struct nvmg_conf *conf;
	static const struct {
		const char *json, *warning;
	} cases[] = {
		{ ATTR("'firmware':'6.1'"), "subsystems[0].attr.firmware: not implemented, ignored" },
		{ ATTR("'pi_enable':'1'"), "subsystems[0].attr.pi_enable: not implemented, ignored" },
		{ ATTR("'qid_max':'4'"), "subsystems[0].attr.qid_max: not implemented, ignored" },
		{ ATTR("'ieee_oui':'0x1'"), "subsystems[0].attr.ieee_oui: not implemented, ignored" },
		{ ATTR("'tbkas':true"), "subsystems[0].attr.tbkas: not implemented, ignored" },
		{ NS1(",'buffered_io':'1'"),
		  "subsystems[0].namespaces[0].buffered_io: not implemented, ignored" },
		{ NS1(",'resv':{'enable':1,'x':0}"),
		  "subsystems[0].namespaces[0].resv: not implemented, ignored" },
		{ SUB(",'passthru':{'enable':1}"), "subsystems[0].passthru: not implemented, ignored" },
		{ SUB(",'passthru':[5]"), "subsystems[0].passthru: not implemented, ignored" },
		{ PORT1(",'param':{'mdts':'5'}"), "ports[0].param.mdts: not implemented, ignored" },
		{ PORT1(",'param':{'pi_enable':1}"),
		  "ports[0].param.pi_enable: not implemented, ignored" },
		{ TCP(",'portid':2"), "ports[0].addr.portid: differs from portid, ignored" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		conf = loads(__LINE__, cases[i].json, 1);
		CHECK(!strcmp(last_warn, cases[i].warning));
		if (strcmp(last_warn, cases[i].warning))
			fprintf(stderr, "case %zu: warned \"%s\"\n", i, last_warn);
		nvmg_conf_free(conf);
	}
	/* What nvmetcli writes for "off": no warning. */
	conf = LOADS(NS1(",'ana_grpid':1,'buffered_io':'0','p2pmem':false,'resv_enable':'n',"
			 "'ana':{'grpid':'1'},'resv':{'enable':'0'}"), 0);
	nvmg_conf_free(conf);
	conf = LOADS(ATTR("'qid_max':'128','ieee_oui':'0x000000','vendor_id':0,'tbkas':'0'"), 0);
	nvmg_conf_free(conf);
	conf = LOADS(PORT1(",'referrals':[],'ana_groups':[{'grpid':'1','ana':{'state':"
			   "'Optimized'}}],'param':{'max_queue_size':'-1','mdts':-1}"), 0);
	nvmg_conf_free(conf);
	conf = LOADS(TCP(",'treq':'not specified','tsas':'','portid':'1'"), 0);
	nvmg_conf_free(conf);
	conf = LOADS(SUB(",'passthru':[{'enable':0,'device':{'path':''}}]"), 0);
	nvmg_conf_free(conf);
	/* A warned key's own type is still checked where it has one. */
	FAILS(PORT1(",'referrals':{}"), "ports[0].referrals: expected an array");
	FAILS(PORT1(",'ana_groups':1"), "ports[0].ana_groups: expected an array");
	/* Several: each once, and the load goes on. */
	conf = LOADS(NS1(",'ana_grpid':1,'buffered_io':1,'p2pmem':1"), 2);
	nvmg_conf_free(conf);
}

/* ANA groups, nvmetcli's shape: per port states, per namespace group. */
static void test_ana_groups(void)
{
	struct nvmg_conf *conf;

	conf = LOADS("{'subsystems':[{'nqn':'nqn.a','namespaces':[{'nsid':1,'device':{'path':"
		     "'mem:1M'},'ana_grpid':'3'},{'nsid':2,'device':{'path':'mem:1M'},"
		     "'ana':{'grpid':0}}]}],'ports':[{'portid':1,'addr':{'trtype':'tcp',"
		     "'traddr':'10.0.0.1','trsvcid':4420},'ana_groups':[{'grpid':3,'ana':"
		     "{'state':'persistent-loss'}},{'grpid':'1','ana':{'state':'non-optimized'}},"
		     "{'grpid':9}]}]}", 0);
	if (conf) {
		CHECK(conf->subsys[0].ns[0].anagrpid == 3);
		CHECK(conf->subsys[0].ns[1].anagrpid == 1); /* 0: the default group */
		CHECK(conf->ports[0].nr_ana_groups == 3);
		CHECK(conf->ports[0].ana_groups[0].grpid == 3 &&
		      conf->ports[0].ana_groups[0].state == NVME_ANA_STATE_PERSISTENT_LOSS);
		CHECK(conf->ports[0].ana_groups[1].state == NVME_ANA_STATE_NONOPTIMIZED);
		CHECK(conf->ports[0].ana_groups[2].state == NVME_ANA_STATE_OPTIMIZED);
	}
	nvmg_conf_free(conf);
	conf = LOADS(NS1(""), 0);
	CHECK(conf && conf->subsys[0].ns[0].anagrpid == 1);
	nvmg_conf_free(conf);
	FAILS(NS1(",'ana_grpid':2"), "subsystems[0].namespaces[0].ana_grpid: ANA group 2 is "
	      "defined on no port (ports[].ana_groups)");
	FAILS(NS1(",'ana':{'grpid':'2'}"), "subsystems[0].namespaces[0].ana.grpid: ANA group 2 is "
	      "defined on no port (ports[].ana_groups)");
	FAILS(PORT1(",'ana_groups':[{'grpid':2,'ana':{'state':'Active'}}]"),
	      "ports[0].ana_groups[0].ana.state: ANA state \"Active\" is not one of "
	      "\"optimized\", \"non-optimized\", \"inaccessible\", \"persistent-loss\" or "
	      "\"change\"");
	FAILS(PORT1(",'ana_groups':[{'grpid':129}]"),
	      "ports[0].ana_groups[0].grpid: 129 is out of range (1..128)");
	FAILS(PORT1(",'ana_groups':[{'grpid':1,'state':'optimized'}]"),
	      "ports[0].ana_groups[0].state: unknown key");
}

/* Security settings: refusing is safer than serving without them. */
static void test_refused_keys(void)
{
	struct nvmg_conf *conf;

	/* TLS required without TLS offered would refuse every host. */
	FAILS(TCP(",'treq':'required'"), "ports[0].addr.treq: \"required\" needs \"tsas\": "
	      "\"tls1.3\"");
	FAILS(TCP(",'tsas':'tls1.2'"), "ports[0].addr.tsas: \"tls1.2\" is not supported (only "
	      "\"tls1.3\" or \"none\")");
	conf = LOADS(TCP(",'tsas':'tls1.3','treq':'required'"), 0);
	CHECK(conf->ports[0].tls && conf->ports[0].tls_required);
	nvmg_conf_free(conf);
	conf = LOADS(TCP(",'tsas':'tls1.3','treq':'not required'"), 0);
	CHECK(conf->ports[0].tls && !conf->ports[0].tls_required);
	nvmg_conf_free(conf);
	/* nvmetcli's default treq on a TLS port: required, never the clear. */
	conf = LOADS(TCP(",'tsas':'tls1.3','treq':'not specified'"), 0);
	CHECK(conf->ports[0].tls && conf->ports[0].tls_required);
	nvmg_conf_free(conf);
	conf = LOADS(TCP(",'treq':'not required'"), 0);
	CHECK(!conf->ports[0].tls && !conf->ports[0].tls_required);
	nvmg_conf_free(conf);
}

/* "dhchap": the keys nvme gen-dhchap-key prints, checked; nvmetcli's hash
 * and group names. K32 is bytes 0..31 with its CRC (as in test_secret.c). */
#define K32 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR"
#define DHCHAP(x) "{'hosts':[{'nqn':'h','dhchap':{" x "}}]}"
static void test_dhchap(void)
{
	struct nvmg_conf *conf;

	conf = LOADS(DHCHAP("'key':'DHHC-1:01:" K32 ":','ctrl_key':'DHHC-1:00:" K32 ":',"
			    "'hash':'hmac(sha512)','dhgroup':'ffdhe8192'"), 0);
	CHECK(conf && conf->hosts[0].has_dhchap_key && conf->hosts[0].has_dhchap_ctrl_key);
	CHECK(conf && conf->hosts[0].dhchap_key.hash == 1 && conf->hosts[0].dhchap_key.len == 32 &&
	      conf->hosts[0].dhchap_key.key[31] == 31 && conf->hosts[0].dhchap_ctrl_key.hash == 0);
	CHECK(conf && conf->hosts[0].dhchap_hash == 3 && conf->hosts[0].dhchap_dhgroup == 5);
	nvmg_conf_free(conf);
	/* nvmetcli's save of a host without keys: no authentication. */
	conf = LOADS(DHCHAP("'key':'','ctrl_key':'','hash':'hmac(sha256)','dhgroup':'null'"), 0);
	CHECK(conf && !conf->hosts[0].has_dhchap_key && !conf->hosts[0].has_dhchap_ctrl_key);
	nvmg_conf_free(conf);
	/* Unset hash and group: SHA-256 and null, nvmetcli's defaults. */
	conf = LOADS(DHCHAP("'key':'DHHC-1:00:" K32 ":'"), 0);
	CHECK(conf && conf->hosts[0].has_dhchap_key && conf->hosts[0].dhchap_hash == 1 &&
	      conf->hosts[0].dhchap_dhgroup == 0);
	nvmg_conf_free(conf);

	FAILS(DHCHAP("'key':'DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaS:'"),
	      "hosts[0].dhchap.key: the key's CRC does not match (a typing error?)");
	FAILS(DHCHAP("'ctrl_key':'DHHC-1:04:" K32 ":','key':'DHHC-1:00:" K32 ":'"),
	      "hosts[0].dhchap.ctrl_key: hash 04 is not 00 (none), 01, 02 or 03 "
	      "(SHA-256/384/512)");
	FAILS(DHCHAP("'key':'DHHC-1:02:" K32 ":'"),
	      "hosts[0].dhchap.key: the key is 32 bytes long; a DHHC-1:02 key must be 48");
	FAILS(DHCHAP("'key':'secret'"), "hosts[0].dhchap.key: not a DHHC-1 secret (DHHC-1:HH:BASE64:)");
	FAILS(DHCHAP("'key':'','ctrl_key':'DHHC-1:00:" K32 ":'"),
	      "hosts[0].dhchap.ctrl_key: a controller key needs a host key (\"key\")");
	FAILS(DHCHAP("'hash':'sha256'"),
	      "hosts[0].dhchap.hash: hash \"sha256\" is not hmac(sha256), hmac(sha384) or "
	      "hmac(sha512)");
	FAILS(DHCHAP("'dhgroup':'ffdhe1024'"),
	      "hosts[0].dhchap.dhgroup: DH group \"ffdhe1024\" is not null, ffdhe2048, ffdhe3072, "
	      "ffdhe4096, ffdhe6144 or ffdhe8192");
	FAILS(DHCHAP("'pin':'1'"), "hosts[0].dhchap.pin: unknown key");
	FAILS("{'hosts':[{'nqn':'h','dhchap':'x'}]}", "hosts[0].dhchap: expected an object");
	/* dhchap is checked before nqn */
	FAILS("{'hosts':[{'dhchap':{'key':1}}]}", "hosts[0].dhchap.key: expected a string");
}

static void test_duplicates(void)
{
	struct nvmg_conf *conf;

	FAILS("{'hosts':[{'nqn':'h'},{'nqn':'h2'},{'nqn':'h2'}]}",
	      "hosts[2].nqn: duplicate host NQN (also hosts[1])");
	FAILS("{'subsystems':[{'nqn':'a'},{'nqn':'a'}]}",
	      "subsystems[1].nqn: duplicate NQN \"a\" (also subsystems[0])");
	FAILS("{'subsystems':[{'nqn':'nqn.2014-08.org.nvmexpress.discovery'}]}",
	      "subsystems[0].nqn: \"nqn.2014-08.org.nvmexpress.discovery\" is the discovery "
	      "subsystem NQN");
	FAILS(SUB(",'allowed_hosts':['h','h']"),
	      "subsystems[0].allowed_hosts[1]: duplicate host \"h\"");
	FAILS(SUB(",'attr':{'allow_any_host':1},'allowed_hosts':['h']"),
	      "subsystems[0].allowed_hosts: must be empty when attr.allow_any_host is set");
	FAILS(NS("{'nsid':1,'device':{'path':'mem:1M'}},{'nsid':2,'device':{'path':'mem:1M'}},"
		 "{'nsid':1,'device':{'path':'mem:1M'}}"),
	      "subsystems[0].namespaces[2].nsid: duplicate nsid 1");
	FAILS(NS("{'nsid':1,'device':{'path':'mem:1M','uuid':'6f2d8a41-0c3b-4e57-9a1d-"
		 "2b7c4e5f6a80'}},{'nsid':2,'device':{'path':'mem:1M','uuid':'6f2d8a41-0c3b-"
		 "4e57-9a1d-2b7c4e5f6a80'}}"),
	      "subsystems[0].namespaces[1].device.uuid: duplicate uuid (also nsid 1)");
	FAILS(NS("{'nsid':1,'device':{'path':'m','nguid':'00112233-4455-6677-8899-aabbccddeeff'}},"
		 "{'nsid':2,'device':{'path':'m','nguid':'00112233445566778899AABBCCDDEEFF'}}"),
	      "subsystems[0].namespaces[1].device.nguid: duplicate nguid (also nsid 1)");
	FAILS(NS("{'nsid':1,'device':{'path':'m','eui64':'0000000000000001'}},{'nsid':2,"
		 "'device':{'path':'m','eui64':'00-00-00-00-00-00-00-01'}}"),
	      "subsystems[0].namespaces[1].device.eui64: duplicate eui64 (also nsid 1)");
	/* All-zero identifiers are "not set": never duplicates. */
	conf = LOADS(NS("{'nsid':1,'device':{'path':'m','nguid':'00000000-0000"
		"-0000-0000-000000000000'}},{'nsid':2,'device':{'path':'m','nguid':'0000000000000"
		"0000000000000000000'}}"), 0);
	CHECK(conf && !conf->subsys[0].ns[0].has_nguid);
	nvmg_conf_free(conf);
	FAILS(ATTR("'cntlid_min':10,'cntlid_max':9"),
	      "subsystems[0].attr.cntlid_max: cntlid_min 10 is greater than cntlid_max 9");
	FAILS(ATTR("'cntlid_min':65519,'cntlid_max':'0x0'"),
	      "subsystems[0].attr.cntlid_max: 0x0 is out of range (1..65519)");
	FAILS(ATTR("'cntlid_min':'65519','cntlid_max':65520"),
	      "subsystems[0].attr.cntlid_max: 65520 is out of range (1..65519)");
	/* Without cntlid_max, the message names cntlid_min (against the default). */
	FAILS(ATTR("'cntlid_max':1,'cntlid_min':2"),
	      "subsystems[0].attr.cntlid_max: cntlid_min 2 is greater than cntlid_max 1");
	/* ports */
	FAILS(PORTS("{'portid':1,'addr':{'trtype':'tcp','traddr':'10.0.0.1','trsvcid':1}},"
		    "{'portid':1,'addr':{'trtype':'tcp','traddr':'10.0.0.2','trsvcid':1}}"),
	      "ports[1].portid: duplicate portid 1 (also ports[0])");
	FAILS(PORTS("{'portid':1,'addr':{'trtype':'tcp','traddr':'::1','trsvcid':1}},"
		    "{'portid':2,'addr':{'trtype':'tcp','traddr':'0::1','trsvcid':'1'}}"),
	      "ports[1].addr: duplicate address [::1]:1 (also ports[0])");
	FAILS(PORTS("{'portid':1,'addr':{'trtype':'tcp','traddr':'0.0.0.0','trsvcid':1}},"
		    "{'portid':2,'addr':{'trtype':'tcp','traddr':'10.0.0.1','trsvcid':1}}"),
	      "ports[1].addr: 10.0.0.1:1 overlaps 0.0.0.0:1 of ports[0]");
	conf = LOADS(PORTS("{'portid':1,'addr':{'trtype':'tcp','traddr':'0.0.0.0','trsvcid':1}},"
			   "{'portid':2,'addr':{'trtype':'tcp','traddr':'::','trsvcid':1}},"
			   "{'portid':3,'addr':{'trtype':'tcp','traddr':'10.0.0.1','trsvcid':2}}"), 0);
	CHECK(conf && conf->nr_ports == 3);
	nvmg_conf_free(conf);
	FAILS(PORT1(",'subsystems':['nqn.b','nqn.a','nqn.b']"),
	      "ports[0].subsystems[2]: duplicate subsystem \"nqn.b\"");
	FAILS(PORT1(",'subsystems':['nqn.c']"),
	      "ports[0].subsystems[0]: unknown subsystem \"nqn.c\" (not in subsystems)");
	FAILS(PORT1(",'subsystems':[1]"), "ports[0].subsystems[0]: expected a string");
	/* FUSE folders */
	FAILS(GATE("'fuse':{'mountpoint':'/m','aliases':{'nqn.a':'x','nqn.b':'x'}}"),
	      "nvmegate.fuse.aliases.nqn.b: \"x\" is also the alias of nqn.a");
	FAILS(GATE("'fuse':{'mountpoint':'/m','aliases':{'nqn.a':'nqn.b'}}"),
	      "nvmegate.fuse: subsystems nqn.a and nqn.b would share the folder \"nqn.b\"");
	FAILS(GATE("'fuse':{'mountpoint':'/m','aliases':{'nqn.c':'c'}}"),
	      "nvmegate.fuse.aliases.nqn.c: no subsystem has this NQN");
	FAILS(GATE("'fuse':{'mountpoint':'/m','aliases':{'nqn.a':'..'}}"),
	      "nvmegate.fuse.aliases.nqn.a: is not a folder name (no \"/\", \".\" or \"..\")");
	FAILS(GATE("'fuse':{'mountpoint':'/m','aliases':{'nqn.a':''}}"),
	      "nvmegate.fuse.aliases.nqn.a: must not be empty");
	FAILS(GATE("'fuse':{'mountpoint':'/m','aliases':{'nqn.a':'a\\u0001'}}"),
	      "nvmegate.fuse.aliases.nqn.a: contains a control character");
	FAILS(GATE("'fuse':{'mountpoint':'/m','aliases':[]}"),
	      "nvmegate.fuse.aliases: expected an object");
	FAILS("{'subsystems':[{'nqn':'a/b'}],'nvmegate':{'fuse':{'mountpoint':'/m'}}}",
	      "nvmegate.fuse: subsystem \"a/b\" has a \"/\" in its NQN: give it a folder name "
	      "in aliases");
}

/* The daemon's checks: called at the key, their reason after its path. */
static void test_env(void)
{
	struct nvmg_conf *conf;
	char text[512];

	path_calls = trtype_calls = 0;
	FAILS(NS("{'nsid':1,'lba_size':4096,'device':{'path':'bad:x'}}"),
	      "subsystems[0].namespaces[0].device.path: \"bad:x\" is not a device");
	CHECK(path_calls == 1 && !strcmp(path_shown, "\"bad:x\"") && path_lba == 4096);
	FAILS(ADDR("'trtype':'rdma','traddr':'::1','trsvcid':1"),
	      "ports[0].addr.trtype: transport \"rdma\" is not registered");
	CHECK(trtype_calls == 1);
	/* A disabled namespace without a path is not shown to the backends. */
	path_calls = 0;
	conf = LOADS(NS("{'nsid':1,'enable':false,'device':{'path':''}}"), 0);
	CHECK(conf && path_calls == 0);
	nvmg_conf_free(conf);
	/* No env: no warnings, any path, any transport that fits. */
	snprintf(text, sizeof(text), "{\"subsystems\":[{\"nqn\":\"a\",\"attr\":{\"firmware\":"
		 "\"1\"}}],\"ports\":[{\"portid\":1,\"addr\":{\"trtype\":\"rdma\","
		 "\"traddr\":\"::1\",\"trsvcid\":1}}]}");
	CHECK(nvmg_conf_parse(text, &conf, err, sizeof(err), NULL) == 0);
	CHECK(conf && !strcmp(conf->ports[0].trtype, "rdma"));
	nvmg_conf_free(conf);
}

/* tests/configs/nvmetcli-full.json, a save from a kernel with every
 * feature: it decodes into the model, with one warning (firmware). */
static void test_nvmetcli_save(void)
{
	static const char save[] =
		"{'hosts':[{'dhchap':{'ctrl_key':'','dhgroup':'null','hash':'hmac(sha256)',"
		"'key':''},'nqn':'nqn.2014-08.org.nvmexpress:uuid:5a1f3e2c'}],"
		"'ports':[{'addr':{'adrfam':'ipv6','traddr':'::1','treq':'not specified',"
		"'trsvcid':'4420','trtype':'tcp','tsas':'none'},"
		"'ana_groups':[{'ana':{'state':'optimized'},'grpid':1}],"
		"'param':{'inline_data_size':'-1','max_queue_size':'-1','mdts':'-1',"
		"'pi_enable':'0'},'portid':7,'referrals':[],"
		"'subsystems':['nqn.2014-08.org.nvmexpress:NVMf:uuid:0b7c2d4e']}],"
		"'subsystems':[{'allowed_hosts':['nqn.2014-08.org.nvmexpress:uuid:5a1f3e2c'],"
		"'attr':{'allow_any_host':'0','cntlid_max':'65519','cntlid_min':'1',"
		"'firmware':'6.1.0-18','ieee_oui':'0x000000','model':'Linux','pi_enable':'0',"
		"'qid_max':'128','serial':'3d1c5f0a9b2e7c44','subsys_vendor_id':'0x0','tbkas':'0',"
		"'vendor_id':'0x0','version':'1.3'},"
		"'namespaces':[{'ana':{'grpid':'1'},'ana_grpid':1,'device':{"
		"'nguid':'00000000-0000-0000-0000-000000000000','path':'/dev/nullb0',"
		"'uuid':'6f2d8a41-0c3b-4e57-9a1d-2b7c4e5f6a80'},'enable':1,'nsid':1,"
		"'resv':{'enable':'0'}},{'ana':{'grpid':'1'},'ana_grpid':1,'device':{"
		"'nguid':'00000000-0000-0000-0000-000000000000','path':'(null)',"
		"'uuid':'19e4b7c2-5d3a-4f60-8b21-9c0d7e6f5a43'},'enable':0,'nsid':2,"
		"'resv':{'enable':'0'}}],"
		"'nqn':'nqn.2014-08.org.nvmexpress:NVMf:uuid:0b7c2d4e',"
		"'passthru':[{'admin_timeout':0,'clear_ids':1,'device':{'path':''},'enable':0,"
		"'io_timeout':0}]}]}";
	struct nvmg_conf *conf = LOADS(save, 1);

	CHECK(!strcmp(last_warn, "subsystems[0].attr.firmware: not implemented, ignored"));
	if (!conf)
		return;
	CHECK(conf->nr_hosts == 1 && !strcmp(conf->hosts[0].nqn, "nqn.2014-08.org.nvmexpress:uuid:5a1f3e2c"));
	CHECK(conf->nr_ports == 1 && conf->nr_subsys == 1);
	const struct nvmg_conf_port *p = &conf->ports[0];
	CHECK(p->portid == 7 && !strcmp(p->trtype, "tcp") && p->adrfam == NVMG_ADRFAM_IPV6);
	CHECK(!strcmp(p->traddr, "::1") && p->trsvcid == 4420 && p->inline_data_size == 16384);
	CHECK(p->nr_subsystems == 1 &&
	      !strcmp(p->subsystems[0], "nqn.2014-08.org.nvmexpress:NVMf:uuid:0b7c2d4e"));
	const struct nvmg_conf_subsys *s = &conf->subsys[0];
	CHECK(!strcmp(s->nqn, "nqn.2014-08.org.nvmexpress:NVMf:uuid:0b7c2d4e"));
	CHECK(!s->allow_any_host && s->nr_allowed_hosts == 1 &&
	      !strcmp(s->allowed_hosts[0], conf->hosts[0].nqn));
	CHECK(!strcmp(s->serial, "3d1c5f0a9b2e7c44") && !strcmp(s->model, "Linux"));
	CHECK(s->version == 0x10300 && s->cntlid_min == 1 && s->cntlid_max == 65519);
	CHECK(s->nr_ns == 2);
	const struct nvmg_conf_ns *n0 = &s->ns[0], *n1 = &s->ns[1];
	CHECK(n0->nsid == 1 && n0->enable && !n0->readonly && n0->lba_size == 512);
	CHECK(!strcmp(n0->path, "/dev/nullb0") && n0->has_uuid && !n0->has_nguid &&
	      !n0->has_eui64 && n0->uuid[0] == 0x6f && n0->uuid[15] == 0x80);
	CHECK(n1->nsid == 2 && !n1->enable && !n1->path && n1->has_uuid && n1->uuid[0] == 0x19);
	CHECK(!conf->fuse_mountpoint && !conf->control_socket && !conf->nr_fuse_aliases);
	nvmg_conf_free(conf);
}

/* ports[].referrals as nvmetcli saves them: decoded, each key checked. */
#define REF(x) PORT1(",'referrals':[{'name':'r1','enable':1,'addr':{" x "}}]")
#define REFADDR "'trtype':'tcp','adrfam':'ipv4','traddr':'10.0.0.2','trsvcid':'8009'"
static void test_referrals(void)
{
	struct nvmg_conf *conf;
	const struct nvmg_conf_referral *r;

	conf = LOADS(REF(REFADDR ",'treq':'not specified','portid':'3','tsas':'none'"), 0);
	if (conf) {
		CHECK(conf->ports[0].nr_referrals == 1);
		r = &conf->ports[0].referrals[0];
		CHECK(!strcmp(r->name, "r1") && r->enabled && r->portid == 3);
		CHECK(r->adrfam == NVMG_ADRFAM_IPV4 && !strcmp(r->traddr, "10.0.0.2"));
		CHECK(r->trsvcid == 8009 && r->treq == NVMG_TREQ_UNSPECIFIED && !r->tls);
		nvmg_conf_free(conf);
	}
	/* IPv6 guessed from the address, canonical form; "enabled" too. */
	conf = LOADS(PORT1(",'referrals':[{'name':'r','enabled':'0','addr':{'trtype':'TCP',"
			   "'traddr':'fe80:0::1','trsvcid':8009,'treq':'required'}}]"), 0);
	if (conf) {
		r = &conf->ports[0].referrals[0];
		CHECK(!r->enabled && r->adrfam == NVMG_ADRFAM_IPV6 && !strcmp(r->traddr, "fe80::1"));
		CHECK(r->treq == NVMG_TREQ_REQUIRED);
		nvmg_conf_free(conf);
	}
	FAILS(PORT1(",'referrals':[{'addr':{" REFADDR "}}]"),
	      "ports[0].referrals[0].name: missing required key");
	FAILS(PORT1(",'referrals':[{'name':'r','addr':{" REFADDR "}},{'name':'r','addr':{"
		    REFADDR "}}]"),
	      "ports[0].referrals[1].name: duplicate referral \"r\" (also referrals[0])");
	FAILS(PORT1(",'referrals':[{'name':'r'}]"), "ports[0].referrals[0].addr: missing required key");
	FAILS(REF("'trtype':'rdma','traddr':'10.0.0.2','trsvcid':8009"),
	      "ports[0].referrals[0].addr.trtype: transport \"rdma\" is not supported in a "
	      "referral (only \"tcp\")");
	FAILS(REF("'trtype':'tcp','adrfam':'ipv6','traddr':'10.0.0.2','trsvcid':8009"),
	      "ports[0].referrals[0].addr.traddr: \"10.0.0.2\" is not an IPv6 address");
	FAILS(REF("'trtype':'tcp','traddr':'10.0.0.2','trsvcid':0"),
	      "ports[0].referrals[0].addr.trsvcid: 0 is out of range (1..65535)");
	FAILS(REF("'trtype':'tcp','traddr':'10.0.0.2'"),
	      "ports[0].referrals[0].addr.trsvcid: missing required key");
	FAILS(REF(REFADDR ",'treq':'maybe'"),
	      "ports[0].referrals[0].addr.treq: \"maybe\" is not supported (only \"required\", "
	      "\"not required\" or \"not specified\")");
	FAILS(REF(REFADDR ",'port':1"), "ports[0].referrals[0].addr.port: unknown key");
}

int main(void)
{
	test_top_level();
	test_types();
	test_values();
	test_required();
	test_unknown_keys();
	test_warned_keys();
	test_referrals();
	test_ana_groups();
	test_refused_keys();
	test_dhchap();
	test_duplicates();
	test_env();
	test_nvmetcli_save();
	return check_report("test_conf");
}
