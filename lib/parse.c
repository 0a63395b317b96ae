/* Small parsers the daemon, the config and the tools share. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "lib/parse.h"

int nvmg_hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Checks s as n hex bytes, and stores them if out is not NULL. */
static int hex_id_scan(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = nvmg_hexval(s[0]), lo = hi < 0 ? -1 : nvmg_hexval(s[1]);

		if (lo < 0)
			return -EINVAL;
		if (out)
			out[i] = (uint8_t)(hi << 4 | lo);
		s += 2;
		if (i + 1 < n && (*s == '-' || *s == ':'))
			s++;
	}
	return *s ? -EINVAL : 0;
}

/* n bytes as hex pairs; like the kernel, one '-' or ':' may follow a byte. */
int nvmg_parse_hex_id(const char *s, uint8_t *out, size_t n)
{
	if (!s || hex_id_scan(s, NULL, n))
		return -EINVAL;
	return hex_id_scan(s, out, n);
}

int nvmg_parse_uuid(const char *s, uint8_t out[16])
{
	if (!s || strlen(s) != 36)
		return -EINVAL;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : nvmg_hexval(s[i]) < 0)
			return -EINVAL;
	}
	return nvmg_parse_hex_id(s, out, 16);
}

/* The leading decimal digits of s; *end gets what follows them. */
static int parse_digits(const char *s, uint64_t *out, const char **end)
{
	unsigned long long v;
	char *e;

	/* strtoull alone would take a sign, spaces and 0x. */
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &e, 10);
	if (errno)
		return -EINVAL;
	*out = v;
	*end = e;
	return 0;
}

int nvmg_parse_u64(const char *s, uint64_t *out)
{
	const char *end;
	uint64_t v;

	if (!out || parse_digits(s, &v, &end) || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int nvmg_parse_size(const char *s, uint64_t *out)
{
	const char *end;
	unsigned shift = 0;
	uint64_t v;

	if (!out || parse_digits(s, &v, &end))
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (*end || v == 0 || v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = v << shift;
	return 0;
}
