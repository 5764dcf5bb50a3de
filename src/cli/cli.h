/*
 * cli.h: bhyve(8)'s command line into config keys (bhyve-reference.md §1). Flags are applied
 * left to right; -o and -k write keys directly; later settings win.
 */
#ifndef KHYVE_CLI_H
#define KHYVE_CLI_H

#include <stdbool.h>
#include <stdio.h>

/*
 * Parse argv into the config tree. Returns true when the VM should be built and run;
 * false when the process must exit now with *exit_code (help: 0; -s/-l help: 0; bad -s: 4;
 * bad -c/-m/-l/-o/-p/-k value: 64; unknown flag: usage and 1; config.dump: dump and 1).
 * Errors are printed as one line naming the bad argument.
 */
bool cli_parse(int argc, char **argv, int *exit_code);
void cli_usage(FILE *out);

#endif
