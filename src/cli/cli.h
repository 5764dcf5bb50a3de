/*
 * cli.h: bhyve(8)'s command line into config keys (bhyve-reference.md §1). Flags are applied
 * left to right; -o and -k write keys directly; later settings win.
 */
#ifndef KHYVE_CLI_H
#define KHYVE_CLI_H

#include <stdbool.h>
#include <stdio.h>

/*
 * Parse argv into the config tree. The tree is reset first and given bhyve's defaults
 * (memory.size=256M, x86.strictmsr, acpi_tables, acpi_tables_in_memory, lpc.fwcfg); after
 * the options come the VM name, config.dump, config_validate (an unknown key: 64; an
 * unknown pci.B.S.F.device: 4) and the topology rule, which writes all of cpus, sockets,
 * cores and threads; a bare memory.size below 1 MiB is rewritten with an M suffix so that
 * cfg_get_size reads it right. Returns true when the VM should be built and run;
 * false when the process must exit now with *exit_code (help: 0; -s/-l help: 0; bad -s: 4;
 * bad -c/-m/-l/-o/-p/-k value: 64; unknown flag: usage and 1; config.dump: dump and 1).
 * Errors are printed as one line naming the bad argument.
 */
bool cli_parse(int argc, char **argv, int *exit_code);
void cli_usage(FILE *out);

#endif
