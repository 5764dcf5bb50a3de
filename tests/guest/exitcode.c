/*
 * exitcode: ends the VM in the way "exit=" names, for the exit-code tests (bhyve(8) EXIT
 * STATUS): poweroff (ACPI S5; khyve exits 1), reset (0xCF9 = 6: exit 0), kbdreset (8042
 * command 0xFE: exit 0), halt (cli; hlt on every CPU, APs started first: exit 2), triple
 * (empty IDT, then int3: exit 3). Prints RESULT: PASS before acting.
 */
#include "rt.h"

static void ap_halt(int idx)
{
	halt_forever();
}

void test_main(void)
{
	char mode[16];
	if (!cmdline_get("exit", mode, sizeof(mode))) {
		not_ok("exit-mode", "no exit= on the command line");
		return;
	}
	bool known = !strncmp(mode, "poweroff", 9) || !strncmp(mode, "reset", 6) ||
		     !strncmp(mode, "kbdreset", 9) || !strncmp(mode, "halt", 5) ||
		     !strncmp(mode, "triple", 7);
	if (!known) {
		not_ok("exit-mode", "unknown mode \"%s\"", mode);
		return;
	}
	if (!strncmp(mode, "halt", 5)) {
		int n = smp_cpu_count();
		int up = smp_start_aps(ap_halt);
		check(up == n - 1, "aps-started", "%d of %d", up, n - 1);
	}
	ok("exit-mode");
	printf("# exit mode %s\n", mode);
	printf("RESULT: PASS\n");
	if (!strncmp(mode, "poweroff", 9))
		power_off(0);
	if (!strncmp(mode, "reset", 6))
		reset_cf9();
	if (!strncmp(mode, "kbdreset", 9))
		reset_8042();
	if (!strncmp(mode, "halt", 5))
		halt_forever();
	static const struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) empty = { 0, 0 };
	__asm__ volatile("lidt %0; int3" ::"m"(empty));
	halt_forever();
}
