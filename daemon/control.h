/* The control socket: a Unix stream socket served by its own thread, so
 * reactors never wait for a CLI. One JSON request line per connection,
 * one JSON response (daemon/control_cmds.c has the commands). */
#ifndef NVMG_CONTROL_H
#define NVMG_CONTROL_H

#include <stddef.h>
#include "conf/config.h"

struct nvmg_daemon;
struct json_object;

/* Open conf's control socket (or $RUNTIME_DIRECTORY/control.sock under
 * systemd, else /run/nvmegate/control.sock as root; none for other users)
 * and serve it. Sets d->control (NULL: no socket, logged). A live daemon
 * on a configured path refuses the start; on the default path it leaves
 * this daemon without a socket, with a warning. Returns 0 or -errno with
 * err filled. */
int nvmg_control_start(struct nvmg_daemon *d, const struct nvmg_conf *conf, char *err,
		       size_t errlen);
/* Stop serving, remove the socket. NULL control is a no-op. */
void nvmg_control_stop(struct nvmg_daemon *d);

/* control_cmds.c: run one request; returns the response object. */
struct json_object *nvmg_control_exec(struct nvmg_daemon *d, struct json_object *req);

#endif
