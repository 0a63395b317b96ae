/* nvmegate CLI: shared between argument handling and output formatting. */
#ifndef NVMG_CLI_H
#define NVMG_CLI_H

struct json_object;

/* Human-readable output of a command's result (format.c). */
void cli_print_status(struct json_object *r);
void cli_print_list(struct json_object *r);
void cli_print_stats(struct json_object *r);
/* Prometheus text exposition format (format.c). */
void cli_print_prometheus(struct json_object *r);

#endif
