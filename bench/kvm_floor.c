/*
 * kvm_floor.c: the start-up floor on this host: the least a KVM program can do to run a
 * guest. It creates a VM with 64 KiB of memory, runs five real-mode instructions that write a
 * byte to COM1 and HLT, and exits. bench/run.sh measures it beside khyve and QEMU. Needs a
 * usable /dev/kvm (exits 2 without one). Benchmark reference only, not part of khyve.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void)
{
	/* mov dx,0x3f8; mov al,'k'; out dx,al; hlt */
	static const uint8_t code[] = { 0xba, 0xf8, 0x03, 0xb0, 'k', 0xee, 0xf4 };
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		perror("/dev/kvm");
		return 2;
	}
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	size_t memsize = 0x10000;
	uint8_t *mem = mmap(NULL, memsize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (vm < 0 || mem == MAP_FAILED)
		return 2;
	memcpy(mem + 0x1000, code, sizeof code);
	struct kvm_userspace_memory_region region = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = memsize,
		.userspace_addr = (uint64_t)(uintptr_t)mem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return 2;
	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = 0x1000, .rflags = 2 };
	if (vcpu < 0 || run == MAP_FAILED || ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		return 2;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		return 2;
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0)
			return 2;
		if (run->exit_reason == KVM_EXIT_IO) {
			char c = *((char *)run + run->io.data_offset);
			if (write(1, &c, 1) < 0)
				return 2;
		} else if (run->exit_reason == KVM_EXIT_HLT) {
			return 0;
		} else {
			return 3;
		}
	}
}
