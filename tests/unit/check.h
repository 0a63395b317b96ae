/* The C unit tests' assertion: counts passes, names each failure (file,
 * line, function, condition) and goes on; check_report() ends main. */
#ifndef NVMG_UNIT_CHECK_H
#define NVMG_UNIT_CHECK_H

#include <stdio.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                                       \
	do {                                                                              \
		if (cond) {                                                               \
			check_passed++;                                                   \
		} else {                                                                  \
			check_failed++;                                                   \
			fprintf(stderr, "%s:%d: %s: FAILED %s\n", __FILE__, __LINE__, __func__, \
				#cond);                                                   \
		}                                                                         \
	} while (0)

/* Prints the totals; the exit status for main. */
static inline int check_report(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
	return check_failed ? 1 : 0;
}

#endif
