/* Building the target model from a validated config, and applying
 * namespace changes from a reload. Called from the main thread. */
#ifndef NVMG_SUBSYS_H
#define NVMG_SUBSYS_H

#include "conf/config.h"
#include "nvme/core.h"

int nvmg_target_build(struct nvmg_target *t, const struct nvmg_conf *conf, char *err, size_t errlen);
/* Apply every difference: namespaces, allowed hosts, subsystems, ports and
 * their exports, raising the events hosts are owed. Returns 0 or -errno
 * with err filled; a failing step leaves its own part unchanged. */
int nvmg_target_reload(struct nvmg_target *t, const struct nvmg_conf *conf, char *err, size_t errlen);
/* reconfig.c: subsystems and ports added/removed/readdressed and port
 * exports; *changed says whether the discovery log changed. */
int nvmg_target_reconfig(struct nvmg_target *t, const struct nvmg_conf *conf, bool *changed,
			 char *err, size_t errlen);
/* Building blocks shared by subsys.c and reconfig.c. */
/* NULL-terminated copies of string arrays; NULL when out of memory. */
char **nvmg_strv_dup(char *const *v, size_t n);
void nvmg_strv_free(char **v);
/* Tear down the matching controllers of s (see nvmg_subsys_ctrls). */
void nvmg_subsys_kill_ctrls(struct nvmg_subsys *s,
			    bool (*match)(const struct nvmg_ctrl *c, const void *arg), const void *arg,
			    const char *why);
int nvmg_subsys_build(struct nvmg_target *t, struct nvmg_subsys **out,
		      const struct nvmg_conf_subsys *c, char *err, size_t errlen);
void nvmg_subsys_free(struct nvmg_subsys *s);
/* ns_table.c: the namespaces the reactors look up without s->lock. */
struct nvmg_ns_table {
	size_t nr;
	struct nvmg_ns *ns[]; /* sorted by nsid; no references of their own */
};
/* An empty table with room for cap namespaces; NULL when out of memory. */
struct nvmg_ns_table *nvmg_ns_table_alloc(size_t cap);
/* With s->lock held, after s->ns changed: fill tab (room for s->nr_ns)
 * from s->ns and publish it (NULL: no namespaces). Returns the table it
 * replaces, for nvmg_ns_retire. */
struct nvmg_ns_table *nvmg_subsys_publish_ns(struct nvmg_subsys *s, struct nvmg_ns_table *tab);
/* Without s->lock, once nss[0..n) left s->ns and old was replaced: waits
 * until every reactor of t passed a quiescent point (t NULL: no reactor
 * can have seen them), frees old and drops the table's reference to each
 * namespace; commands still running keep theirs. May block briefly. */
void nvmg_ns_retire(struct nvmg_target *t, struct nvmg_ns **nss, size_t n, struct nvmg_ns_table *old);
/* The enabled referrals of c as the log reports them (calloc'ed, zeroed
 * padding so that two builds compare with memcmp). */
int nvmg_referrals_build(const struct nvmg_conf_port *c, struct nvmg_referral **out, size_t *nr);
bool nvmg_referrals_same(const struct nvmg_port *p, const struct nvmg_referral *r, size_t nr);
/* A port served by the registered transport that c->trtype names. Returns
 * 0 or -errno with err filled. */
int nvmg_port_build(struct nvmg_target *t, struct nvmg_port **out, const struct nvmg_conf_port *c,
		    char *err, size_t errlen);
void nvmg_port_free(struct nvmg_port *p);
/* Change a namespace's size (bytes; 0 re-reads the backend's size) and
 * raise the namespace-attribute event. *blocks gets the new NSZE. Returns 0
 * or -errno with err filled. */
int nvmg_target_resize_ns(struct nvmg_target *t, const char *nqn, uint32_t nsid, uint64_t bytes,
			  uint64_t *blocks, char *err, size_t errlen);
/* Flush every namespace's backend (shutdown). Returns 0 or the first error. */
int nvmg_target_flush_all(struct nvmg_target *t);
void nvmg_target_destroy(struct nvmg_target *t);

#endif
