/*
 * main.c: khyve, the bhyve(8)-compatible VMM. The command line becomes config keys (cli/),
 * the tree is checked against the schema, the machine is built from it and run; the exit
 * status is bhyve's (0 reset, 1 power-off, 2 halt, 3 triple fault, 4 error; 64 bad usage).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>

#include "cli/cli.h"
#include "config/config.h"
#include "vmm/vm.h"

int main(int argc, char **argv)
{
	struct vm *vm;
	char err[256];
	int code, ret;

	if (!cli_parse(argc, argv, &code))
		return code;
	ret = config_validate(err, sizeof err);
	if (ret) {
		fprintf(stderr, "khyve: %s\n", err);
		/* An unknown PCI emulation is a bad -s (4); anything else a bad option (64). */
		return ret == -ENODEV ? VM_EXIT_ERROR : 64;
	}
	if (vm_build(cfg_root(), &vm))
		return VM_EXIT_ERROR;
	prctl(PR_SET_NAME, vm_name(vm), 0, 0, 0);
	code = vm_run(vm);
	vm_destroy(vm);
	exit(code);
}
