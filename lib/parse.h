/* Small parsers shared by the config, the backends and the tools, so each
 * syntax has one definition. All return 0 or -EINVAL and leave *out alone
 * on error. */
#ifndef NVMG_PARSE_H
#define NVMG_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* A hex digit's value, or -1. */
int nvmg_hexval(char ch);
/* n bytes as hex pairs; like the kernel, one '-' or ':' may follow a byte. */
int nvmg_parse_hex_id(const char *s, uint8_t *out, size_t n);
/* The canonical 8-4-4-4-12 form (36 characters). */
int nvmg_parse_uuid(const char *s, uint8_t out[16]);
/* Decimal digits only (no sign, space or base prefix), 0 allowed. */
int nvmg_parse_u64(const char *s, uint64_t *out);
/* Decimal SIZE > 0 with an optional K/M/G/T (binary, either case) suffix:
 * the one size syntax of the config, the device paths and the tools. */
int nvmg_parse_size(const char *s, uint64_t *out);

#endif
