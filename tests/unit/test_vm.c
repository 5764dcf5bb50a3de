/*
 * test_vm.c: the machine's run loop over a scripted fake accelerator: bhyve exit codes
 * (power-off, reset, triple fault, error, all vCPUs halted), first exit request wins, kicks
 * reach blocked vCPUs, port I/O reaches the io bus, strict I/O stops the VM, -p CPU lists.
 */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accel/accel_impl.h"
#include "config/config.h"
#include "dev/platform.h"
#include "unit.h"
#include "util/event_loop.h"
#include "vmm/guest_mem.h"
#include "vmm/io_bus.h"
#include "vmm/vm_internal.h"

/* What each fake vCPU does on each accel_vcpu_run call. */
enum step {
	S_END,		/* block until kicked, then KICKED (forever) */
	S_OUTB,	/* OUT to port 0x510, then continue the script */
	S_IN_UNCLAIMED,	/* IN from port 0x1234: all ones, or strict I/O stops */
	S_HALT,		/* return HALTED */
	S_POWEROFF,
	S_RESET,
	S_SHUTDOWN,
	S_ERROR,
	S_KICKED,	/* return KICKED at once */
};

struct fake_accel {
	struct accel_common common;
	const struct accel_io_ops *io;
	const enum step *script[4];
	uint32_t last_in;
};

struct fake_vcpu {
	struct accel_vcpu_common common;
	struct fake_accel *accel;
	int index, pc;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool kicked;
	bool cpuid_set, regs_set, sipi_wait;
};

static const struct accel_impl fake_impl;

static int fake_vcpu_create(struct accel *a, int index, struct accel_vcpu **out)
{
	struct fake_vcpu *v = calloc(1, sizeof *v);

	v->common.impl = &fake_impl;
	v->accel = (struct fake_accel *)a;
	v->index = index;
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cond, NULL);
	*out = (struct accel_vcpu *)v;
	return 0;
}

static void fake_vcpu_destroy(struct accel_vcpu *av)
{
	free(av);
}

static int fake_set_cpuid(struct accel_vcpu *av, const struct accel_cpuid_entry *e, int n)
{
	((struct fake_vcpu *)av)->cpuid_set = n > 0;
	return 0;
}

static int fake_set_regs(struct accel_vcpu *av, const struct accel_regs *r)
{
	((struct fake_vcpu *)av)->regs_set = true;
	return 0;
}

static int fake_set_sregs(struct accel_vcpu *av, const struct accel_sregs *s)
{
	return 0;
}

static int fake_wait_sipi(struct accel_vcpu *av, bool wait)
{
	((struct fake_vcpu *)av)->sipi_wait = wait;
	return 0;
}

static void fake_kick(struct accel_vcpu *av)
{
	struct fake_vcpu *v = (struct fake_vcpu *)av;

	pthread_mutex_lock(&v->lock);
	v->kicked = true;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
}

static int fake_run(struct accel_vcpu *av, struct accel_exit *ex)
{
	struct fake_vcpu *v = (struct fake_vcpu *)av;
	const struct accel_io_ops *io = v->accel->io;

	for (;;) {
		enum step s = v->accel->script[v->index][v->pc];
		uint32_t val;

		if (s != S_END)
			v->pc++;
		switch (s) {
		case S_OUTB:
			val = 0x42;
			if (io->pio(io->opaque, v->index, 0x510, 1, true, &val) < 0)
				goto kicked;
			continue;
		case S_IN_UNCLAIMED:
			val = 0;
			if (io->pio(io->opaque, v->index, 0x1234, 2, false, &val) < 0)
				goto kicked;
			v->accel->last_in = val;
			continue;
		case S_HALT:
			ex->reason = ACCEL_EXIT_HALTED;
			return 0;
		case S_POWEROFF:
			ex->reason = ACCEL_EXIT_POWEROFF;
			return 0;
		case S_RESET:
			ex->reason = ACCEL_EXIT_RESET;
			return 0;
		case S_SHUTDOWN:
			ex->reason = ACCEL_EXIT_SHUTDOWN;
			return 0;
		case S_ERROR:
			ex->reason = ACCEL_EXIT_ERROR;
			snprintf(ex->msg, sizeof ex->msg, "fake failure");
			return 0;
		case S_KICKED:
			goto kicked;
		case S_END:
			pthread_mutex_lock(&v->lock);
			while (!v->kicked)
				pthread_cond_wait(&v->cond, &v->lock);
			v->kicked = false;
			pthread_mutex_unlock(&v->lock);
			goto kicked;
		}
	}
kicked:
	ex->reason = ACCEL_EXIT_KICKED;
	return 0;
}

static void fake_destroy(struct accel *a)
{
	free(a);
}

static int fake_irq_line(struct accel *a, unsigned gsi, bool level)
{
	return 0;
}

static const struct accel_impl fake_impl = {
	.name = "fake",
	.irq_line = fake_irq_line,
	.destroy = fake_destroy,
	.vcpu_create = fake_vcpu_create,
	.vcpu_destroy = fake_vcpu_destroy,
	.vcpu_set_cpuid = fake_set_cpuid,
	.vcpu_set_regs = fake_set_regs,
	.vcpu_set_sregs = fake_set_sregs,
	.vcpu_set_wait_for_sipi = fake_wait_sipi,
	.vcpu_run = fake_run,
	.vcpu_kick = fake_kick,
};

static struct rec {
	int writes;
	uint64_t last;
} dbgport;

static void dbgport_handler(void *opaque, uint64_t offset, unsigned size, bool write,
			   uint64_t *val)
{
	struct rec *r = opaque;

	if (write) {
		r->writes++;
		r->last = *val;
	}
}

/* A VM as vm_build would leave it, minus devices and boot, on the fake accelerator. */
static struct vm *fake_vm(int ncpus, const enum step *const *scripts)
{
	struct vm *vm = calloc(1, sizeof *vm);
	struct fake_accel *a = calloc(1, sizeof *a);

	snprintf(vm->name, sizeof vm->name, "test");
	vm->ncpus = ncpus;
	vm->topo = (struct cpu_topology){ .cpus = ncpus, .sockets = ncpus, .cores = 1,
					  .threads = 1 };
	atomic_init(&vm->exit_code, -1);
	vm->term_fd = -1;
	pthread_mutex_init(&vm->start_lock, NULL);
	pthread_cond_init(&vm->start_cond, NULL);
	vm->vcpus = calloc((size_t)ncpus, sizeof *vm->vcpus);
	for (int i = 0; i < ncpus; i++) {
		vm->vcpus[i].vm = vm;
		vm->vcpus[i].index = i;
	}
	gm_create(&vm->mem, 1 << 20);
	io_bus_create(&vm->io);
	evl_create(&vm->loop);
	io_bus_register(vm->io, IO_SPACE_PIO, 0x510, 1, dbgport_handler, &dbgport, "debug");
	vm->io_ops = (struct accel_io_ops){ .opaque = vm, .pio = vcpu_pio, .mmio = vcpu_mmio };
	a->common.impl = &fake_impl;
	a->common.kind = ACCEL_SOFT;
	a->io = &vm->io_ops;
	for (int i = 0; i < ncpus; i++)
		a->script[i] = scripts[i];
	vm->accel = (struct accel *)a;
	/* GenuineIntel, max leaf 1. */
	vm->supported[0] = (struct accel_cpuid_entry){ .function = 0, .eax = 1,
		.ebx = 0x756e6547, .ecx = 0x6c65746e, .edx = 0x49656e69 };
	vm->supported[1] = (struct accel_cpuid_entry){ .function = 1, .eax = 0x806f8 };
	vm->nsupported = 2;
	return vm;
}

static int run_script(int ncpus, const enum step *const *scripts)
{
	struct vm *vm = fake_vm(ncpus, scripts);
	int code = vm_run(vm);

	vm_destroy(vm);
	return code;
}

TEST(poweroff_after_port_io)
{
	static const enum step s0[] = { S_OUTB, S_OUTB, S_POWEROFF, S_END };
	static const enum step *const sc[] = { s0 };

	dbgport.writes = 0;
	CHECK_EQ_U64(run_script(1, sc), VM_EXIT_POWEROFF);
	CHECK_EQ_U64(dbgport.writes, 2);
	CHECK_EQ_U64(dbgport.last, 0x42);
}

TEST(exit_codes)
{
	static const enum step r[] = { S_RESET, S_END }, t[] = { S_SHUTDOWN, S_END },
				e[] = { S_KICKED, S_ERROR, S_END };
	static const enum step *const sr[] = { r }, *const st[] = { t }, *const se[] = { e };

	CHECK_EQ_U64(run_script(1, sr), VM_EXIT_RESET);
	CHECK_EQ_U64(run_script(1, st), VM_EXIT_TRIPLEFAULT);
	CHECK_EQ_U64(run_script(1, se), VM_EXIT_ERROR);
}

/* The AP blocks; the BSP's power-off must kick it out, and the first exit code wins. */
TEST(poweroff_kicks_other_vcpus)
{
	static const enum step s0[] = { S_POWEROFF, S_END }, s1[] = { S_END };
	static const enum step *const sc[] = { s0, s1 };

	CHECK_EQ_U64(run_script(2, sc), VM_EXIT_POWEROFF);
}

TEST(halt_needs_every_vcpu)
{
	/* vCPU 1 halts only after vCPU 0 has been halted a while and then... halts again. */
	static const enum step h0[] = { S_HALT, S_HALT, S_HALT, S_END },
				h1[] = { S_KICKED, S_KICKED, S_HALT, S_END };
	static const enum step *const both[] = { h0, h1 };
	/* vCPU 0 halts, vCPU 1 was halted but woke (KICKED) and powers off. */
	static const enum step w0[] = { S_HALT, S_END }, w1[] = { S_OUTB, S_POWEROFF, S_END };
	static const enum step *const woke[] = { w0, w1 };

	CHECK_EQ_U64(run_script(2, both), VM_EXIT_HALT);
	CHECK_EQ_U64(run_script(2, woke), VM_EXIT_POWEROFF);
}

TEST(unclaimed_port_reads_all_ones)
{
	static const enum step s0[] = { S_IN_UNCLAIMED, S_POWEROFF, S_END };
	static const enum step *const sc[] = { s0 };
	struct vm *vm = fake_vm(1, sc);

	CHECK_EQ_U64(vm_run(vm), VM_EXIT_POWEROFF);
	CHECK_EQ_U64(((struct fake_accel *)vm->accel)->last_in, 0xffff);
	vm_destroy(vm);
}

TEST(strict_io_stops_the_vm)
{
	static const enum step s0[] = { S_IN_UNCLAIMED, S_POWEROFF, S_END };
	static const enum step *const sc[] = { s0 };
	struct vm *vm = fake_vm(1, sc);

	vm->strictio = true;
	CHECK_EQ_U64(vm_run(vm), VM_EXIT_ERROR);
	vm_destroy(vm);
}

static void *run_thread(void *vm)
{
	vm_run(vm);
	return NULL;
}

TEST(vcpus_get_cpuid_and_start_state)
{
	static const enum step s0[] = { S_END }, s1[] = { S_END };
	static const enum step *const sc[] = { s0, s1 };
	struct vm *vm = fake_vm(2, sc);
	struct fake_vcpu *v0, *v1;
	pthread_t t;

	/* Nothing exits by itself: request it from outside, as SIGTERM handling would. */
	CHECK(pthread_create(&t, NULL, run_thread, vm) == 0);
	while (!atomic_load(&vm->vcpus[0].accel) || !atomic_load(&vm->vcpus[1].accel))
		usleep(1000);
	vm_request_exit(vm, VM_EXIT_RESET);
	vm_request_exit(vm, VM_EXIT_ERROR);
	pthread_join(t, NULL);
	CHECK_EQ_U64(atomic_load(&vm->exit_code), VM_EXIT_RESET);
	v0 = (struct fake_vcpu *)atomic_load(&vm->vcpus[0].accel);
	v1 = (struct fake_vcpu *)atomic_load(&vm->vcpus[1].accel);
	CHECK(v0->cpuid_set && v1->cpuid_set);
	CHECK(v0->regs_set && !v0->sipi_wait);
	CHECK(!v1->regs_set && v1->sipi_wait);
	vm_destroy(vm);
}

TEST(cpuset_lists)
{
	cpu_set_t s;

	CHECK(vcpu_parse_cpuset("0,2,4-7", &s) == 0);
	CHECK_EQ_U64(CPU_COUNT(&s), 6);
	CHECK(CPU_ISSET(0, &s) && CPU_ISSET(2, &s) && CPU_ISSET(7, &s) && !CPU_ISSET(3, &s));
	CHECK(vcpu_parse_cpuset("12", &s) == 0);
	CHECK(CPU_ISSET(12, &s) && CPU_COUNT(&s) == 1);
	CHECK(vcpu_parse_cpuset("", &s) == -EINVAL);
	CHECK(vcpu_parse_cpuset("1,", &s) == 0);
	CHECK(vcpu_parse_cpuset("3-1", &s) == -EINVAL);
	CHECK(vcpu_parse_cpuset("a", &s) == -EINVAL);
	CHECK(vcpu_parse_cpuset("1-", &s) == -EINVAL);
	CHECK(vcpu_parse_cpuset("99999", &s) == -EINVAL);
}

/* Run vm_build on the current config tree with stderr captured into buf. */
static int build_capture(char *buf, size_t len, struct vm **vm)
{
	FILE *tmp = tmpfile();
	int saved = dup(2), ret;
	size_t n;

	fflush(stderr);
	dup2(fileno(tmp), 2);
	ret = vm_build(cfg_root(), vm);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	n = fread(buf, 1, len - 1, tmp);
	buf[n] = '\0';
	fclose(tmp);
	return ret;
}

TEST(build_without_boot_source_fails_as_bhyve)
{
	struct vm *vm = NULL;
	char msg[256];

	cfg_reset();
	cfg_set(cfg_root(), "name", "t");
	CHECK(build_capture(msg, sizeof msg, &vm) < 0);
	CHECK(vm == NULL);
	CHECK_STR(msg, "khyve: no bootrom was configured\n");
}

TEST(build_refuses_later_features)
{
	struct vm *vm = NULL;
	char msg[256];

	cfg_reset();
	cfg_set(cfg_root(), "lpc.bootrom", "/nonexistent");
	cfg_set(cfg_root(), "gdb.port", "1234");
	CHECK(build_capture(msg, sizeof msg, &vm) == -ENOTSUP);
	CHECK(strstr(msg, "not supported yet: the GDB stub") != NULL);
}

TEST(build_checks_topology)
{
	struct vm *vm = NULL;
	char msg[256];

	cfg_reset();
	cfg_set(cfg_root(), "lpc.bootrom", "/nonexistent");
	cfg_set(cfg_root(), "cpus", "3");
	cfg_set(cfg_root(), "cores", "2");
	CHECK(build_capture(msg, sizeof msg, &vm) == -EINVAL);
	CHECK(strstr(msg, "does not make cpus=3") != NULL);
}

TEST(build_accel_kvm_names_the_cause)
{
	struct vm *vm = NULL;
	char msg[256];
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd >= 0) {
		close(fd);
		printf("    /dev/kvm opens here: nothing to check\n");
		return;
	}
	cfg_reset();
	cfg_set(cfg_root(), "lpc.bootrom", "/nonexistent");
	cfg_set(cfg_root(), "accel", "kvm");
	cfg_set(cfg_root(), "memory.size", "16M");
	CHECK(build_capture(msg, sizeof msg, &vm) < 0);
	CHECK(vm == NULL);
	CHECK(strncmp(msg, "khyve: accel=kvm: ", 18) == 0);
	CHECK(strstr(msg, "/dev/kvm") != NULL);
}

/* SIGTERM presses the ACPI power button from the event loop: PM1a_STS.PWRBTN_STS is set. */
TEST(sigterm_presses_the_power_button)
{
	static const enum step s0[] = { S_END };
	static const enum step *const sc[] = { s0 };
	struct vm *vm = fake_vm(1, sc);
	uint64_t sts = 0;
	pthread_t t;

	cfg_reset();
	CHECK(platform_create(vm, cfg_root(), &vm->platform) == 0);
	CHECK(pthread_create(&t, NULL, run_thread, vm) == 0);
	while (!atomic_load(&vm->vcpus[0].accel))
		usleep(1000);
	CHECK(raise(SIGTERM) == 0);
	for (int i = 0; i < 2000 && !(sts & 0x100); i++) {
		usleep(1000);
		io_bus_access(vm->io, IO_SPACE_PIO, PLATFORM_PM1A_EVT, 2, false, &sts);
	}
	CHECK(sts & 0x100);
	CHECK_EQ_U64(atomic_load(&vm->exit_code), -1);
	vm_request_exit(vm, VM_EXIT_POWEROFF);
	pthread_join(t, NULL);
	CHECK_EQ_U64(atomic_load(&vm->exit_code), VM_EXIT_POWEROFF);
	vm_destroy(vm);
}
