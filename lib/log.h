/* One log line per event, with a level, to stderr (journald picks it up). */
#ifndef NVMG_LOG_H
#define NVMG_LOG_H

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

#define log_err(...) nvmg_log(NVMG_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) nvmg_log(NVMG_LOG_WARN, __VA_ARGS__)
#define log_info(...) nvmg_log(NVMG_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                        \
	do {                                                  \
		if (nvmg_log_get_level() >= NVMG_LOG_DEBUG)   \
			nvmg_log(NVMG_LOG_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
