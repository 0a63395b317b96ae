#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lib/log.h"

/* The process's only logging state; atomic so reloads may change it. */
static _Atomic int log_level = NVMG_LOG_INFO;

void nvmg_log_set_level(enum nvmg_log_level level)
{
	atomic_store(&log_level, (int)level);
}

enum nvmg_log_level nvmg_log_get_level(void)
{
	return (enum nvmg_log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

void nvmg_log(enum nvmg_log_level level, const char *fmt, ...)
{
	static const char *const prefix[] = { "<3>error: ", "<4>warning: ", "<6>", "<7>debug: " };
	char line[1024];
	va_list ap;
	int n;

	if ((int)level > atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	/* Under systemd (JOURNAL_STREAM set) the "<N>" prefix is sd-daemon(3)'s
	 * level marker: journald strips it and records the priority. */
	n = snprintf(line, sizeof(line), "%s", getenv("JOURNAL_STREAM") ? prefix[level] : prefix[level] + 3);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line so lines from reactors never interleave. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

const char *nvmg_escape(char *out, size_t size, const char *in, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < len && in[i]; i++) {
		unsigned char ch = (unsigned char)in[i];
		size_t need = ch == '\\' ? 2 : (ch < 0x20 || ch >= 0x7f) ? 4 : 1;

		if (o + need >= size)
			break;
		if (need == 1) {
			out[o++] = (char)ch;
		} else if (need == 2) {
			out[o++] = '\\';
			out[o++] = '\\';
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
	return out;
}
