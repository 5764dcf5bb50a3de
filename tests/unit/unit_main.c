/* unit_main.c: runs the TEST()s of one unit-test program; see unit.h. */
#include <stdlib.h>
#include "unit.h"

struct unit_test {
	const char *name;
	void (*fn)(void);
};

static struct unit_test tests[1024];
static int ntests;
int unit_current_failed;

void unit_register(const char *name, void (*fn)(void))
{
	if (ntests == (int)(sizeof tests / sizeof tests[0])) {
		fprintf(stderr, "unit: too many tests\n");
		exit(2);
	}
	tests[ntests].name = name;
	tests[ntests].fn = fn;
	ntests++;
}

void unit_fail(const char *file, int line, const char *what)
{
	if (unit_current_failed < 5)
		printf("    %s:%d: %s\n", file, line, what);
	unit_current_failed++;
}

static bool selected(const char *name, int argc, char **argv)
{
	if (argc < 2)
		return true;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return true;
	return false;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 0; i < ntests; i++) {
		if (!selected(tests[i].name, argc, argv))
			continue;
		unit_current_failed = 0;
		tests[i].fn();
		if (unit_current_failed) {
			printf("FAIL %s\n", tests[i].name);
			failed++;
		} else {
			printf("ok   %s\n", tests[i].name);
			passed++;
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
