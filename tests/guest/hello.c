/*
 * hello: the smallest guest. Serial output on COM1 works, a known line is printed, and the
 * guest powers off through ACPI S5 (khyve: exit 1). Checks nothing else.
 */
#include "rt.h"

void test_main(void)
{
	printf("hello from the khyve test guest\n");
	ok("serial");
	char buf[64];
	if (cmdline_get("hello", buf, sizeof(buf)))
		printf("# hello=%s\n", buf);
}
