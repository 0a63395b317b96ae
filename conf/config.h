/* The validated configuration model. conf/ turns a JSON file (a superset of
 * `nvmetcli save` output) into this; nothing else parses JSON. The model is
 * plain data: the daemon compares two models to apply a reload. */
#ifndef NVMG_CONFIG_H
#define NVMG_CONFIG_H

#include <stdbool.h>
#include <string.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/log.h"
#include "lib/secret.h"

#define NVMG_NQN_MAX 223 /* NVMe Base 2.0: NQNs are at most 223 bytes */
/* ANA group IDs run 1..this, the Linux target's NVMET_MAX_ANAGRPS: a config
 * written for it fits ours. Identify Controller ANAGRPMAX and NANAGRPID. */
#define NVMG_CONF_ANAGRPMAX 128


struct nvmg_conf_ns {
	uint32_t nsid;
	bool enable;
	bool readonly;          /* our extension: "readonly": true */
	char *path;             /* device.path: file, block device or mem:SIZE */
	bool has_uuid, has_nguid, has_eui64;
	uint8_t uuid[16];       /* device.uuid */
	uint8_t nguid[16];      /* device.nguid; all zero means unset */
	uint8_t eui64[8];       /* device.eui64 (optional) */
	uint32_t lba_size;      /* our extension "lba_size": 512 (default) or 4096 */
	uint32_t anagrpid;      /* "ana_grpid" (or nvmetcli's "ana": {"grpid"}):
				 * 1..NVMG_CONF_ANAGRPMAX, default 1 */
};

/* One "hosts" entry: a host NQN and the secrets it must prove it knows. */
struct nvmg_conf_host {
	char *nqn;
	/* "dhchap": {"key", "ctrl_key", "hash", "dhgroup"}, as nvmetcli saves it */
	bool has_dhchap_key, has_dhchap_ctrl_key;
	struct nvmg_secret dhchap_key;      /* the host's: it must prove it (DHHC-1) */
	struct nvmg_secret dhchap_ctrl_key; /* ours: we prove it back (bidirectional) */
	uint8_t dhchap_hash;    /* NVMe HashID: 1 SHA-256, 2 SHA-384, 3 SHA-512 */
	uint8_t dhchap_dhgroup; /* NVMe DH group ID: 0 null, 1..5 ffdhe2048..8192 */
	/* "psk": our extension, a TLS PSK in the interchange format */
	bool has_psk;
	struct nvmg_secret psk;
};

struct nvmg_conf_subsys {
	char *nqn;
	bool allow_any_host;
	char **allowed_hosts;   /* host NQNs */
	size_t nr_allowed_hosts;
	char *serial;           /* NULL: derived from the NQN */
	char *model;            /* NULL: "nvmegate" */
	uint32_t version;       /* NVMe VS encoding, default 2.0.0 (0x20000) */
	uint16_t cntlid_min, cntlid_max;
	struct nvmg_conf_ns *ns;
	size_t nr_ns;
};

/* One "ports[].ana_groups" entry: {"grpid": N, "ana": {"state": NAME}}.
 * state is an enum nvme_ana_state value (NVME_ANA_STATE_*, numerically). */
struct nvmg_conf_ana_group {
	uint32_t grpid;
	int state;
};

enum nvmg_adrfam { NVMG_ADRFAM_IPV4, NVMG_ADRFAM_IPV6 };

/* "nvmegate": {"fuse": {"aliases": {NQN: NAME}}}: the folder a subsystem
 * gets in the FUSE mount instead of its NQN. Kept under "nvmegate" so the
 * "subsystems" objects stay exactly what nvmetcli reads and writes. */
struct nvmg_conf_alias {
	char *nqn;
	char *name;
};

/* addr.treq as written: nvmetcli's "not specified" is the default. */
enum nvmg_treq { NVMG_TREQ_UNSPECIFIED, NVMG_TREQ_REQUIRED, NVMG_TREQ_NOT_REQUIRED };

/* One "ports[].referrals" entry, nvmetcli's shape: {"name", "enable",
 * "addr": {"trtype", "adrfam", "traddr", "trsvcid", "treq", "tsas",
 * "portid"}}: another discovery service the Discovery log points to. */
struct nvmg_conf_referral {
	char *name;
	bool enabled;
	uint16_t portid;        /* addr.portid: the referred port's */
	int trtype;             /* addr.trtype: NVMF_TRTYPE_TCP (the only one) */
	enum nvmg_adrfam adrfam;
	char *traddr;           /* canonical numeric address */
	uint16_t trsvcid;
	int treq;               /* enum nvmg_treq, as written */
	bool tls;               /* addr.tsas "tls1.3" */
};

struct nvmg_conf_port {
	uint16_t portid;
	char trtype[16];        /* addr.trtype, lower case: a registered transport */
	enum nvmg_adrfam adrfam;
	char *traddr;           /* numeric address; 0.0.0.0 / :: are wildcards */
	uint16_t trsvcid;
	uint32_t inline_data_size; /* param.inline_data_size, default 16384 */
	/* addr.tsas "tls1.3" and addr.treq (TP 8011): TLS offered, and
	 * whether a plain connection is refused */
	bool tls, tls_required;
	enum nvmg_treq treq;    /* as written, for the check above */
	char **subsystems;      /* NQNs exported on this port; none = discovery only */
	size_t nr_subsystems;
	/* ANA group states on this port, as written. Group 1 not listed is
	 * optimized; any other group not listed is inaccessible here (the
	 * Linux target's defaults). */
	struct nvmg_conf_ana_group *ana_groups;
	size_t nr_ana_groups;
	struct nvmg_conf_referral *referrals;
	size_t nr_referrals;
};

struct nvmg_conf {
	struct nvmg_conf_host *hosts; /* the "hosts" list */
	size_t nr_hosts;
	struct nvmg_conf_port *ports;
	size_t nr_ports;
	struct nvmg_conf_subsys *subsys;
	size_t nr_subsys;
	/* "nvmegate": our own settings */
	unsigned reactors;          /* 0 = one per online CPU */
	enum nvmg_log_level log_level;
	unsigned handshake_timeout_ms; /* ICReq + Connect deadline, default 10000 */
	unsigned max_pending_sockets;  /* half-open sockets, default 128 */
	unsigned icreq_timeout_ms;     /* ICReq (TLS: handshake) deadline, default 5000 */
	unsigned max_pending_per_address; /* sockets without ICReq per address, default 32 */
	unsigned max_queues_per_host;  /* live queues per host NQN, default 1024 */
	bool kernel_tls;               /* TLS records by the kernel where it can, default on */
	unsigned poll_us;              /* reactors' busy-poll ceiling, 0 = never (default 50) */
	unsigned tcp_user_timeout_ms;  /* unacknowledged sends drop a host after, default 30000 */
	/* "nvmegate": {"fuse": {"mountpoint": PATH, "aliases": {...}}} */
	char *fuse_mountpoint;         /* NULL: no FUSE front end. nvmg_conf_load makes
					* a relative path absolute against the config
					* file's folder. */
	struct nvmg_conf_alias *fuse_aliases;
	size_t nr_fuse_aliases;
	/* "nvmegate": {"control": {"socket": PATH, "group": NAME}} */
	char *control_socket;          /* NULL: $RUNTIME_DIRECTORY/control.sock under
					* systemd, else /run/nvmegate/control.sock
					* as root, else none (daemon/control.c).
					* Made absolute like fuse_mountpoint. */
	char *control_group;           /* NULL: root (the daemon's user) only */
	/* "nvmegate": {"reservation_owner": [NQN, ...]}: subsystems whose
	 * reservations this node serves though other nodes serve them too */
	char **resv_owner;
	size_t nr_resv_owner;
};

/* Whether this node serves reservation commands for s: always, unless
 * its cntlid range is narrower than the default (the mark of a subsystem
 * that several nodes serve, each its own range), then only when
 * "reservation_owner" names it. */
static inline bool nvmg_conf_resv_served(const struct nvmg_conf *conf,
					 const struct nvmg_conf_subsys *s)
{
	if ((!s->cntlid_min || s->cntlid_min == 1) && (!s->cntlid_max || s->cntlid_max == 0xffef))
		return true;
	for (size_t i = 0; i < conf->nr_resv_owner; i++)
		if (!strcmp(conf->resv_owner[i], s->nqn))
			return true;
	return false;
}

/* What a config is checked against that conf/ does not own: the backends'
 * device path syntax and the registered transports. The daemon fills it;
 * any member may be NULL (no warnings; any path; any trtype). */
typedef void (*nvmg_conf_warn_fn)(void *ctx, const char *msg);
struct nvmg_conf_env {
	/* Keys we know of but do not implement yet are accepted; each is
	 * reported once through warn(ctx, msg). */
	nvmg_conf_warn_fn warn;
	void *ctx;
	/* 0, or -EINVAL with the reason in err; shown is the path quoted for
	 * the message. lba_size is the namespace's. */
	int (*check_path)(const char *path, const char *shown, uint32_t lba_size, char *err,
			  size_t errlen);
	/* 0 if trtype (as written) names a transport that serves ports, or
	 * -EINVAL with the reason in err. */
	int (*check_trtype)(void *ctx, const char *trtype, const char *shown, char *err,
			    size_t errlen);
};

/* Parse and validate FILE. On success returns 0 and *out (free with
 * nvmg_conf_free). On failure returns a negative errno and writes one line,
 * naming the key and the problem, to err (e.g.
 * "subsystems[0].namespaces[1].nsid: duplicate nsid 1"). */
int nvmg_conf_load(const char *file, struct nvmg_conf **out, char *err, size_t errlen,
		   const struct nvmg_conf_env *env);
/* nvmg_conf_load that also returns the file's text (free it) on success. */
int nvmg_conf_load_text(const char *file, struct nvmg_conf **out, char **text, char *err,
			size_t errlen, const struct nvmg_conf_env *env);
int nvmg_conf_parse(const char *json, struct nvmg_conf **out, char *err, size_t errlen,
		    const struct nvmg_conf_env *env);
/* nvmg_conf_parse, with relative paths resolved as if the text were read
 * from FILE (the control socket's edits of the running config). */
int nvmg_conf_parse_at(const char *json, const char *file, struct nvmg_conf **out, char *err,
		       size_t errlen, const struct nvmg_conf_env *env);
void nvmg_conf_free(struct nvmg_conf *conf);

#endif
