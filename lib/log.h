/* One log line per event, with a level, to stderr (journald picks it up). */
#ifndef NVMG_LOG_H
#define NVMG_LOG_H

#include <stddef.h>

enum nvmg_log_level {
	NVMG_LOG_ERROR = 0,
	NVMG_LOG_WARN,
	NVMG_LOG_INFO,
	NVMG_LOG_DEBUG,
};

void nvmg_log_set_level(enum nvmg_log_level level);
enum nvmg_log_level nvmg_log_get_level(void);
void nvmg_log(enum nvmg_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Bytes from a peer (NQNs, host IDs, PSK identities) made safe for a log
 * line or a terminal: printable ASCII stays, a backslash becomes "\\",
 * every other byte (control, DEL, non-ASCII) "\xNN", so a host cannot forge
 * a line or send escape sequences. Reads up to len bytes or to a NUL,
 * writes at most size bytes (size > 0) always NUL-terminated, cutting
 * before an escape that would not fit. Returns out. */
const char *nvmg_escape(char *out, size_t size, const char *in, size_t len);
/* The buffer that holds any escaped form of len bytes. */
#define NVMG_ESCAPED_SIZE(len) (4 * (size_t)(len) + 1)

#define log_err(...) nvmg_log(NVMG_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) nvmg_log(NVMG_LOG_WARN, __VA_ARGS__)
#define log_info(...) nvmg_log(NVMG_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                        \
	do {                                                  \
		if (nvmg_log_get_level() >= NVMG_LOG_DEBUG)   \
			nvmg_log(NVMG_LOG_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
