/*
 * unit.h: a tiny unit-test framework. TEST(name) { ... CHECK(cond); ... } registers a test;
 * unit_main.c runs them all (or those named on the command line) and prints one line per
 * test and a final "N passed, N failed" line that tests/run.sh adds up.
 */
#ifndef KHYVE_UNIT_H
#define KHYVE_UNIT_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

void unit_register(const char *name, void (*fn)(void));
void unit_fail(const char *file, int line, const char *what);
extern int unit_current_failed;

#define TEST(name)                                                                   \
	static void name(void);                                                      \
	__attribute__((constructor)) static void unit_reg_##name(void)               \
	{                                                                            \
		unit_register(#name, name);                                          \
	}                                                                            \
	static void name(void)

/* Record a failure and carry on with the test. */
#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond))                                                         \
			unit_fail(__FILE__, __LINE__, #cond);                        \
	} while (0)

/* Record a failure with formatted detail (expected vs got). */
#define CHECK_EQ_U64(a, b)                                                           \
	do {                                                                         \
		unsigned long long unit_a_ = (unsigned long long)(a);                \
		unsigned long long unit_b_ = (unsigned long long)(b);                \
		if (unit_a_ != unit_b_) {                                            \
			char unit_msg_[256];                                         \
			snprintf(unit_msg_, sizeof unit_msg_, "%s == %s (0x%llx != 0x%llx)", \
				 #a, #b, unit_a_, unit_b_);                          \
			unit_fail(__FILE__, __LINE__, unit_msg_);                    \
		}                                                                    \
	} while (0)

#define CHECK_STR(a, b)                                                              \
	do {                                                                         \
		const char *unit_a_ = (a), *unit_b_ = (b);                           \
		if (!unit_a_ || !unit_b_ || strcmp(unit_a_, unit_b_) != 0) {         \
			char unit_msg_[512];                                         \
			snprintf(unit_msg_, sizeof unit_msg_, "%s == %s (\"%s\" != \"%s\")", \
				 #a, #b, unit_a_ ? unit_a_ : "(null)",               \
				 unit_b_ ? unit_b_ : "(null)");                      \
			unit_fail(__FILE__, __LINE__, unit_msg_);                    \
		}                                                                    \
	} while (0)

#endif
