/*
 * soft_vm.c: the software-CPU accelerator's VM side: guest memory map (a sorted region
 * table plus flat page tables below 4 GiB, filled on first use, for the interpreter's page
 * lookups), the CPUID set it runs (a named level of x86/cpuid.c, cpu.model; khyve-v1 by
 * default: AuthenticAMD family 15, SSE to SSSE3, no XSAVE/AVX), the local APICs, IOAPIC,
 * 8259 pair and 8254 PIT, ISA/PCI interrupt lines by GSI and xAPIC-format MSIs. The TSC
 * runs at accel_config.tsc_hz (1 GHz by default) from CLOCK_MONOTONIC. accel_stats: the
 * instructions each vCPU executed, summed when it is destroyed and printed with the VM.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "accel/soft/soft_internal.h"
#include "x86/cpuid.h"

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t soft_now(const struct accel *acc)
{
	return monotonic_ns() - acc->start_ns;
}

uint64_t soft_tsc(const struct accel *acc, uint64_t now)
{
	return (uint64_t)((unsigned __int128)now * acc->tsc_hz / 1000000000u);
}

/* ---- memory ---- */

/* The region holding the whole page at `page`, or NULL. */
static const struct soft_region *find_region(struct accel *acc, uint64_t page)
{
	int n = atomic_load_explicit(&acc->nregions, memory_order_acquire);

	for (int i = 0; i < n; i++) {
		const struct soft_region *r = &acc->regions[i];

		if (page >= r->gpa && page + 0x1000 <= r->gpa + r->size)
			return r;
	}
	return NULL;
}

/*
 * Pages below 4 GiB are looked up in the flat tables, which are filled on first use from
 * the region table (regions are only added, all before the vCPUs run, and never removed, so
 * a filled entry stays right; pages that are not RAM stay empty and are looked up again).
 */
uint8_t *soft_page(struct accel *acc, uint64_t gpa, bool write)
{
	uint64_t page = gpa & ~0xfffull;
	const struct soft_region *r;
	uint8_t *h;

	if (gpa < (uint64_t)SOFT_LOW_PAGES << 12) {
		uint8_t *_Atomic *t = write ? acc->wr_pages : acc->rd_pages;

		h = atomic_load_explicit(&t[gpa >> 12], memory_order_acquire);
		if (h)
			return h;
	}
	r = find_region(acc, page);
	if (!r)
		return NULL;
	h = r->host + (page - r->gpa);
	if (gpa < (uint64_t)SOFT_LOW_PAGES << 12) {
		atomic_store_explicit(&acc->rd_pages[gpa >> 12], h, memory_order_release);
		if (!r->readonly)
			atomic_store_explicit(&acc->wr_pages[gpa >> 12], h, memory_order_release);
	}
	return write && r->readonly ? NULL : h;
}

static int soft_map_memory(struct accel *acc, uint64_t gpa, uint64_t size, void *host,
			   bool readonly)
{
	struct soft_region *r;
	int n, i;

	if (!size || gpa + size < gpa)
		return -EINVAL;
	pthread_mutex_lock(&acc->map_lock);
	n = atomic_load(&acc->nregions);
	if (n == SOFT_MAX_REGIONS) {
		pthread_mutex_unlock(&acc->map_lock);
		return -ENOSPC;
	}
	for (i = 0; i < n; i++) {
		r = &acc->regions[i];
		if (gpa < r->gpa + r->size && r->gpa < gpa + size) {
			pthread_mutex_unlock(&acc->map_lock);
			return -EEXIST;
		}
	}
	/* keep the table sorted by address */
	for (i = n; i > 0 && acc->regions[i - 1].gpa > gpa; i--)
		acc->regions[i] = acc->regions[i - 1];
	acc->regions[i] = (struct soft_region){ gpa, size, host, readonly };
	atomic_store_explicit(&acc->nregions, n + 1, memory_order_release);
	pthread_mutex_unlock(&acc->map_lock);
	emu_machine_invalidate(acc->machine, gpa, size);
	return 0;
}

static void soft_memory_written(struct accel *acc, uint64_t gpa, uint64_t len)
{
	emu_machine_invalidate(acc->machine, gpa, len);
}

/* ---- CPUID ---- */

/*
 * The level of cpu.model (default CPUID_LEVEL_SOFT) from x86/cpuid.c; "host" exists only
 * under KVM. 0, or -EINVAL with err filled.
 */
static int build_cpuid(struct accel *acc, const char *model, char *err, size_t errlen)
{
	int n;

	if (model && strcmp(model, CPUID_MODEL_HOST) == 0) {
		snprintf(err, errlen, "cpu.model=host needs KVM; the software CPU runs a named "
				      "level (cpu.model=khyve-v1 or x86-64)");
		return -EINVAL;
	}
	n = cpuid_level_named(model ? model : CPUID_LEVEL_SOFT, acc->cpuid,
			      ACCEL_CPUID_MAX_ENTRIES, err, errlen);
	if (n < 0)
		return n;
	acc->ncpuid = n;
	return 0;
}

static int soft_supported_cpuid(struct accel *acc, struct accel_cpuid_entry *ents, int max)
{
	if (max < acc->ncpuid)
		return -E2BIG;
	memcpy(ents, acc->cpuid, sizeof ents[0] * (size_t)acc->ncpuid);
	return acc->ncpuid;
}

/* ---- interrupts ---- */

void soft_isa_irq(struct accel *acc, unsigned irq, bool level)
{
	i8259_set_irq(acc->pic, irq, level);
	ioapic_set_irq(acc->ioapic, irq == 0 ? 2 : irq, level);
}

static int soft_irq_line(struct accel *acc, unsigned gsi, bool level)
{
	if (gsi >= IOAPIC_PINS)
		return -EINVAL;
	if (gsi < 16)
		soft_isa_irq(acc, gsi, level);
	else
		ioapic_set_irq(acc->ioapic, gsi, level);
	return 0;
}

static int soft_msi(struct accel *acc, uint64_t addr, uint32_t data)
{
	struct lapic_msg msg = {
		.dest = (uint32_t)(addr >> 12) & 0xff,
		.logical = (addr >> 2) & 1,
		.vector = data & 0xff,
		.mode = (data >> 8) & 7,
		.level = false,	/* MSIs are edge; the trigger bit does not set TMR */
	};

	if ((addr & 0xfff00000u) != 0xfee00000u)
		return -EINVAL;
	lapic_route(acc->lapics, acc->ncpus, NULL, &msg);
	return 0;
}

/* IOAPIC messages (called under the IOAPIC's lock). */
static void soft_ioapic_deliver(void *opaque, const struct lapic_msg *msg)
{
	struct accel *acc = opaque;

	lapic_route(acc->lapics, acc->ncpus, NULL, msg);
}

/* The 8259's INTR goes to every CPU whose LINT0 takes ExtINT (the BSP in virtual wire). */
static void soft_pic_notify(void *opaque)
{
	struct accel *acc = opaque;

	for (int i = 0; i < acc->ncpus; i++)
		if (lapic_accepts_extint(acc->lapics[i]))
			soft_vcpu_notify(&acc->vcpus[i], EMU_EV_INTR);
}

static void soft_pit_irq0(void *opaque, bool level)
{
	soft_isa_irq(opaque, 0, level);
}

static void soft_lapic_notify(void *opaque, unsigned events)
{
	uint32_t ev = 0;

	if (events & LAPIC_EV_NMI)
		soft_vcpu_nmi(opaque);
	if (events & (LAPIC_EV_INTR | LAPIC_EV_EXTINT))
		ev |= EMU_EV_INTR;
	if (events & (LAPIC_EV_INIT | LAPIC_EV_SIPI))
		ev |= EMU_EV_EXIT;
	soft_vcpu_notify(opaque, ev);
}

static void soft_lapic_send(void *opaque, struct lapic *src, const struct lapic_msg *msg)
{
	struct accel_vcpu *v = opaque;

	lapic_route(v->acc->lapics, v->acc->ncpus, src, msg);
}

static void soft_lapic_eoi(void *opaque, uint8_t vector)
{
	struct accel_vcpu *v = opaque;

	ioapic_eoi(v->acc->ioapic, vector);
}

/* ---- create/destroy ---- */

static void soft_destroy(struct accel *acc)
{
	if (!acc)
		return;
	if (acc->stats)
		fprintf(stderr, "khyve: accel_stats: software CPU: %llu instructions executed\n",
			(unsigned long long)atomic_load(&acc->insns));
	i8254_destroy(acc->pit);
	i8259_destroy(acc->pic);
	ioapic_destroy(acc->ioapic);
	if (acc->lapics)
		for (int i = 0; i < acc->ncpus; i++)
			lapic_destroy(acc->lapics[i]);
	free(acc->lapics);
	if (acc->vcpus)
		for (int i = 0; i < acc->ncpus; i++)
			pthread_mutex_destroy(&acc->vcpus[i].nmi_lock);
	free(acc->vcpus);
	free(acc->rd_pages);
	free(acc->wr_pages);
	if (acc->machine)
		emu_machine_destroy(acc->machine);
	pthread_mutex_destroy(&acc->map_lock);
	free(acc);
}

static int soft_create(const struct accel_config *cfg, struct accel **out, char *err,
		       size_t errlen)
{
	struct accel *acc;
	struct ioapic_ops iops;
	struct i8259_ops pops;
	struct i8254_ops tops;
	int ret;

	if (cfg->ncpus < 1) {
		snprintf(err, errlen, "software CPU: bad vCPU count %d", cfg->ncpus);
		return -EINVAL;
	}
	acc = calloc(1, sizeof *acc);
	if (!acc)
		goto nomem;
	pthread_mutex_init(&acc->map_lock, NULL);
	acc->common.impl = &accel_soft_impl;
	acc->common.kind = ACCEL_SOFT;
	if (cfg->io)
		acc->io = *cfg->io;
	acc->stats = cfg->stats;
	acc->ncpus = cfg->ncpus;
	acc->tsc_hz = cfg->tsc_hz ? cfg->tsc_hz : SOFT_DEFAULT_TSC_HZ;
	acc->start_ns = monotonic_ns();
	ret = build_cpuid(acc, cfg->cpu_model, err, errlen);
	if (ret) {
		soft_destroy(acc);
		return ret;
	}
	acc->machine = emu_machine_create();
	acc->rd_pages = calloc(SOFT_LOW_PAGES, sizeof *acc->rd_pages);
	acc->wr_pages = calloc(SOFT_LOW_PAGES, sizeof *acc->wr_pages);
	acc->lapics = calloc((size_t)acc->ncpus, sizeof *acc->lapics);
	acc->vcpus = calloc((size_t)acc->ncpus, sizeof *acc->vcpus);
	if (acc->vcpus)
		for (int i = 0; i < acc->ncpus; i++)
			pthread_mutex_init(&acc->vcpus[i].nmi_lock, NULL);
	if (!acc->machine || !acc->rd_pages || !acc->wr_pages || !acc->lapics || !acc->vcpus)
		goto nomem;
	for (int i = 0; i < acc->ncpus; i++) {
		struct accel_vcpu *v = &acc->vcpus[i];
		struct lapic_ops lops = { v, soft_lapic_notify, soft_lapic_send, soft_lapic_eoi };

		v->common.impl = &accel_soft_impl;
		v->acc = acc;
		v->index = i;
		v->apic_page = UINT64_MAX;
		acc->lapics[i] = lapic_create((uint32_t)i, i == 0, acc->tsc_hz, &lops);
		if (!acc->lapics[i])
			goto nomem;
		v->lapic = acc->lapics[i];
	}
	iops = (struct ioapic_ops){ acc, soft_ioapic_deliver };
	pops = (struct i8259_ops){ acc, soft_pic_notify };
	tops = (struct i8254_ops){ acc, soft_pit_irq0 };
	acc->ioapic = ioapic_create(&iops);
	acc->pic = i8259_create(&pops);
	acc->pit = i8254_create(&tops);
	if (!acc->ioapic || !acc->pic || !acc->pit)
		goto nomem;
	*out = acc;
	return 0;
nomem:
	snprintf(err, errlen, "software CPU: out of memory");
	soft_destroy(acc);
	return -ENOMEM;
}

/* accel_stats: the vCPU's instruction count outlives its interpreter. */
static void soft_vcpu_destroy_counted(struct accel_vcpu *v)
{
	struct emu_cpu *cpu = atomic_load(&v->cpu);

	if (cpu)
		atomic_fetch_add(&v->acc->insns, emu_insn_count(cpu));
	soft_vcpu_destroy(v);
}

const struct accel_impl accel_soft_impl = {
	.name = "soft",
	.create = soft_create,
	.destroy = soft_destroy,
	.map_memory = soft_map_memory,
	.memory_written = soft_memory_written,
	.supported_cpuid = soft_supported_cpuid,
	.irq_line = soft_irq_line,
	.msi = soft_msi,
	.vcpu_create = soft_vcpu_create,
	.vcpu_destroy = soft_vcpu_destroy_counted,
	.vcpu_set_cpuid = soft_vcpu_set_cpuid,
	.vcpu_get_regs = soft_vcpu_get_regs,
	.vcpu_set_regs = soft_vcpu_set_regs,
	.vcpu_get_sregs = soft_vcpu_get_sregs,
	.vcpu_set_sregs = soft_vcpu_set_sregs,
	.vcpu_set_wait_for_sipi = soft_vcpu_set_wait_for_sipi,
	.vcpu_run = soft_vcpu_run,
	.vcpu_kick = soft_vcpu_kick,
};
