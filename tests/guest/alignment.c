/*
 * alignment: #AC (Intel SDM vol. 3 §6.15, interrupt 17): a misaligned 4-byte read in ring 3
 * with CR0.AM and RFLAGS.AC set faults with error code 0 at the instruction; the same read
 * with RFLAGS.AC clear, or in ring 0, does not. Not in guests.txt yet: neither khyve's
 * software CPU nor QEMU 7.2 TCG raises #AC today.
 */
#include "rt.h"

static uint64_t u_at;
static uint64_t buf[2];

static uint64_t u_ac(uint64_t buf)
{
	uint64_t at;
	int r;
	__asm__ volatile("pushfq; orq $0x40000, (%%rsp); popfq\n"
			 "leaq 2f(%%rip), %1; leaq 1f(%%rip), %%rax; movq %%rax, probe_recover_rip(%%rip)\n"
			 "2: movl (%2), %%edx\n xorl %%eax, %%eax\n"
			 "1: movq $0, probe_recover_rip(%%rip)\n"
			 "pushfq; andq $~0x40000, (%%rsp); popfq"
			 : "=&a"(r), "=&r"(at)
			 : "r"(buf + 1)
			 : "rdx", "memory", "cc");
	u_at = at;
	return (uint64_t)(int64_t)r;
}

static uint64_t u_plain(uint64_t p)
{
	uint32_t v;
	__asm__ volatile("movl (%1), %0" : "=r"(v) : "r"(p + 1) : "memory");
	return v;
}

void test_main(void)
{
	fault_probe_init();
	fault_probe_vector(17);
	WRITE_CR(0, READ_CR(0) | (1 << 18));	/* AM */
	int r = (int)user_call(u_ac, (uint64_t)buf);
	check(r && last_fault.vector == 17 && last_fault.error == 0 && last_fault.rip == u_at,
	      "ac-misaligned-ring3", "r %d vector %d error %lx rip %lx (want %lx)", r, last_fault.vector,
	      last_fault.error, last_fault.rip, u_at);
	user_call(u_plain, (uint64_t)buf);
	ok("no-ac-when-rflags-ac-clear");
	uint64_t at;
	__asm__ volatile("pushfq; orq $0x40000, (%%rsp); popfq\n movl 1(%1), %%eax\n"
			 "pushfq; andq $~0x40000, (%%rsp); popfq"
			 : "=&a"(at) : "r"(buf) : "memory", "cc");
	ok("no-ac-in-ring0");
	WRITE_CR(0, READ_CR(0) & ~(1ul << 18));
}
