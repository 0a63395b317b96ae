/* The target's transports: registered by name, resolved from a port's
 * trtype, and each port served through its own. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "nvme/core.h"

int nvmg_target_register_transport(struct nvmg_target *t, const struct nvmg_transport *tr,
				   void *ctx)
{
	if (nvmg_target_find_transport(t, tr->name))
		return -EEXIST;
	if (t->nr_transports == NVMG_MAX_TRANSPORTS)
		return -ENOSPC;
	t->transports[t->nr_transports++] = (struct nvmg_transport_reg){ tr, ctx };
	return 0;
}

const struct nvmg_transport_reg *nvmg_target_find_transport(const struct nvmg_target *t,
							     const char *name)
{
	for (unsigned i = 0; i < t->nr_transports; i++)
		if (!strcasecmp(t->transports[i].ops->name, name))
			return &t->transports[i];
	return NULL;
}

static bool serves_ports(const struct nvmg_transport *tr)
{
	return tr->enable_port && tr->disable_port;
}

int nvmg_target_check_trtype(const struct nvmg_target *t, const char *trtype, const char *shown,
			     char *err, size_t errlen)
{
	const struct nvmg_transport_reg *reg = nvmg_target_find_transport(t, trtype);
	char names[NVMG_MAX_TRANSPORTS * 24] = "";
	size_t used = 0;

	if (reg && serves_ports(reg->ops))
		return 0;
	for (unsigned i = 0; i < t->nr_transports; i++) {
		const struct nvmg_transport *tr = t->transports[i].ops;
		int n;

		if (!serves_ports(tr))
			continue;
		n = snprintf(names + used, sizeof(names) - used, "%s%s", used ? ", " : "", tr->name);
		if (n < 0 || (size_t)n >= sizeof(names) - used)
			break;
		used += (size_t)n;
	}
	if (used)
		snprintf(err, errlen, "transport %s is not supported (only %s)", shown, names);
	else
		snprintf(err, errlen, "transport %s is not supported (no transport serves ports)",
			 shown);
	return -EINVAL;
}

int nvmg_port_enable(struct nvmg_port *p, char *err, size_t errlen)
{
	return p->transport->enable_port(p->transport_ctx, p, err, errlen);
}

void nvmg_port_disable(struct nvmg_port *p)
{
	p->transport->disable_port(p->transport_ctx, p);
}

int nvmg_target_enable_ports(struct nvmg_target *t, char *err, size_t errlen)
{
	for (size_t i = 0; i < t->nr_ports; i++) {
		int ret = nvmg_port_enable(t->ports[i], err, errlen);

		if (ret) {
			while (i-- > 0)
				nvmg_port_disable(t->ports[i]);
			return ret;
		}
	}
	return 0;
}
