/*
 * test_vm_kvm.c: the KVM accelerator. Without a usable /dev/kvm it checks that accel=kvm
 * fails with the cause named; with one it runs a real-mode guest through port I/O (single
 * and rep outsb), an MMIO read, a write to read-only ROM, and a final cli; hlt that must
 * come back as ACCEL_EXIT_HALTED.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "accel/accel.h"
#include "unit.h"

struct io_log {
	int nout80, nin, nmmio_read, nmmio_write;
	uint8_t out80[8];
	uint64_t mmio_read_gpa, mmio_write_gpa, mmio_write_val;
};

static int log_pio(void *opaque, int vcpu, uint16_t port, unsigned size, bool write,
		   uint32_t *val)
{
	struct io_log *l = opaque;

	if (write && port == 0x80 && size == 1 && l->nout80 < 8)
		l->out80[l->nout80++] = (uint8_t)*val;
	else if (!write && port == 0x1234 && size == 2) {
		l->nin++;
		*val = 0xbeef;
	}
	return 0;
}

static int log_mmio(void *opaque, int vcpu, uint64_t gpa, unsigned size, bool write,
		    uint64_t *val)
{
	struct io_log *l = opaque;

	if (write) {
		l->nmmio_write++;
		l->mmio_write_gpa = gpa;
		l->mmio_write_val = *val;
	} else {
		l->nmmio_read++;
		l->mmio_read_gpa = gpa;
		*val = 0x5a;
	}
	return 0;
}

static const uint8_t guest_code[] = {
	0xb0, 0x41,			/* mov al, 0x41 */
	0xe6, 0x80,			/* out 0x80, al */
	0xba, 0x34, 0x12,		/* mov dx, 0x1234 */
	0xed,				/* in ax, dx */
	0xa3, 0x00, 0x20,		/* mov [0x2000], ax */
	0xbe, 0x00, 0x30,		/* mov si, 0x3000 */
	0xb9, 0x03, 0x00,		/* mov cx, 3 */
	0xba, 0x80, 0x00,		/* mov dx, 0x80 */
	0xf3, 0x6e,			/* rep outsb */
	0xb8, 0x00, 0x90,		/* mov ax, 0x9000 */
	0x8e, 0xd8,			/* mov ds, ax */
	0xa0, 0x00, 0x00,		/* mov al, [0] (0x90000: nothing mapped) */
	0x31, 0xdb,			/* xor bx, bx */
	0x8e, 0xdb,			/* mov ds, bx */
	0xa2, 0x04, 0x20,		/* mov [0x2004], al */
	0xb8, 0x00, 0xf0,		/* mov ax, 0xf000 */
	0x8e, 0xd8,			/* mov ds, ax */
	0xc6, 0x06, 0x00, 0x00, 0x55,	/* mov byte [0], 0x55 (0xF0000: ROM) */
	0xfa,				/* cli */
	0xf4,				/* hlt */
};

static bool kvm_usable(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

TEST(kvm_error_names_the_cause)
{
	struct accel_io_ops ops = { .pio = log_pio, .mmio = log_mmio };
	struct accel_config cfg = { .kind = ACCEL_KVM, .ncpus = 1, .io = &ops };
	struct accel *a = NULL;
	char err[256] = "";
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC), open_errno = errno;

	if (fd >= 0) {
		close(fd);
		printf("    /dev/kvm opens here: error paths not reachable\n");
		return;
	}
	CHECK(accel_create(&cfg, &a, err, sizeof err) == -open_errno);
	CHECK(a == NULL);
	if (open_errno == ENOENT)
		CHECK_STR(err, "no /dev/kvm device node (is the kvm module loaded?)");
	else if (open_errno == EACCES)
		CHECK_STR(err, "permission denied on /dev/kvm (add yourself to the kvm group)");
	else
		CHECK(strstr(err, "/dev/kvm") != NULL);
}

TEST(kvm_runs_real_mode_guest)
{
	struct io_log log = { 0 };
	struct accel_io_ops ops = { .opaque = &log, .pio = log_pio, .mmio = log_mmio };
	struct accel_config cfg = { .kind = ACCEL_KVM, .ncpus = 1, .io = &ops };
	struct accel_cpuid_entry cpuid[ACCEL_CPUID_MAX_ENTRIES];
	struct accel_regs regs = { .rip = 0x1000, .rflags = 2 };
	struct accel_sregs sregs;
	struct accel_exit ex;
	struct accel *a;
	struct accel_vcpu *v;
	char err[256] = "";
	uint8_t *ram, *rom;
	int n;

	if (!kvm_usable()) {
		printf("    no usable /dev/kvm: guest not run\n");
		return;
	}
	CHECK(accel_create(&cfg, &a, err, sizeof err) == 0);
	if (!a) {
		printf("    %s\n", err);
		return;
	}
	CHECK_STR(accel_name(a), "kvm");
	ram = mmap(NULL, 0x80000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	rom = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memcpy(ram + 0x1000, guest_code, sizeof guest_code);
	memcpy(ram + 0x3000, "xyz", 3);
	memset(rom, 0xee, 0x10000);
	CHECK(accel_map_memory(a, 0, 0x80000, ram, false) == 0);
	CHECK(accel_map_memory(a, 0xF0000, 0x10000, rom, true) == 0);
	CHECK(accel_vcpu_create(a, 0, &v) == 0);
	n = accel_supported_cpuid(a, cpuid, ACCEL_CPUID_MAX_ENTRIES);
	CHECK(n > 0);
	CHECK(accel_vcpu_set_cpuid(v, cpuid, n) == 0);
	CHECK(accel_vcpu_get_sregs(v, &sregs) == 0);
	sregs.cs.selector = 0;
	sregs.cs.base = 0;
	CHECK(accel_vcpu_set_sregs(v, &sregs) == 0);
	CHECK(accel_vcpu_set_regs(v, &regs) == 0);

	CHECK(accel_vcpu_run(v, &ex) == 0);
	if (ex.reason == ACCEL_EXIT_ERROR)
		printf("    %s\n", ex.msg);
	CHECK_EQ_U64(ex.reason, ACCEL_EXIT_HALTED);
	CHECK_EQ_U64(log.nout80, 4);
	CHECK(memcmp(log.out80, "Axyz", 4) == 0);
	CHECK_EQ_U64(log.nin, 1);
	CHECK_EQ_U64(ram[0x2000] | ram[0x2001] << 8, 0xbeef);
	CHECK_EQ_U64(log.nmmio_read, 1);
	CHECK_EQ_U64(log.mmio_read_gpa, 0x90000);
	CHECK_EQ_U64(ram[0x2004], 0x5a);
	CHECK_EQ_U64(log.nmmio_write, 1);
	CHECK_EQ_U64(log.mmio_write_gpa, 0xF0000);
	CHECK_EQ_U64(log.mmio_write_val, 0x55);
	CHECK_EQ_U64(rom[0], 0xee);

	/* A kick makes the next run return KICKED. */
	accel_vcpu_kick(v);
	CHECK(accel_vcpu_run(v, &ex) == 0);
	CHECK(ex.reason == ACCEL_EXIT_KICKED || ex.reason == ACCEL_EXIT_HALTED);
	accel_vcpu_destroy(v);
	accel_destroy(a);
	munmap(ram, 0x80000);
	munmap(rom, 0x10000);
}
