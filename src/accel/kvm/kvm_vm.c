/*
 * kvm_vm.c: the KVM accelerator's VM half. Opens /dev/kvm with errors that say what to fix,
 * creates the VM with KVM's in-kernel PIC, IOAPIC and PIT, maps guest memory as slots (ROM as
 * KVM_MEM_READONLY, so writes to it come back as MMIO exits), raises lines and MSIs and
 * offers the CPUID set of cpu.model (KVM_GET_SUPPORTED_CPUID for host, the default with
 * hardware virtualization; else a named level of x86/cpuid.c cut to what KVM supports).
 * Linux Documentation/virt/kvm/api.rst §4 for each ioctl.
 * ioeventfd/irqfd live in kvm_notify.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cpuid.h>

#include "accel/kvm/kvm_emu.h"
#include "accel/kvm/kvm_internal.h"
#include "x86/cpuid.h"

/* Below the 16 MiB bootrom window and above the LAPIC, as the PCI hole leaves it free. */
#define KVM_IDENTITY_MAP_GPA 0xfeffc000ULL
#define KVM_TSS_GPA 0xfeffd000ULL
#define KVM_PAGE 4096ULL

static int kvm_check_cap(int fd, long cap)
{
	int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	return r > 0 ? r : 0;
}

static void kvm_close(struct accel *a)
{
	kvm_emu_destroy(a);
	for (int i = 0; i < a->nslots; i++)
		if (a->slots[i].copied)
			munmap(a->slots[i].host, a->slots[i].size);
	if (a->vm_fd >= 0)
		close(a->vm_fd);
	if (a->kvm_fd >= 0)
		close(a->kvm_fd);
	pthread_mutex_destroy(&a->slot_lock);
	pthread_mutex_destroy(&a->route_lock);
	pthread_mutex_destroy(&a->emu_lock);
	free(a->apic_ids);
	free(a);
}

/*
 * GSI routing as the firmware tables describe it (MADT interrupt source override, bhyve's
 * layout): ISA IRQ 0 (the in-kernel PIT) reaches IOAPIC pin 2, every other GSI n its pin n;
 * GSIs 0-15 but 2 (the cascade) also reach the PICs.
 */
int kvm_setup_routing(struct accel *a)
{
	enum { NPIC = 15, NIOAPIC = 23 };
	struct kvm_irq_routing *r;
	int n = 0, ret = 0;

	r = calloc(1, sizeof *r + (NPIC + NIOAPIC + KVM_MAX_MSI_ROUTES) * sizeof r->entries[0]);
	if (!r)
		return -ENOMEM;
	for (unsigned gsi = 0; gsi < 16; gsi++) {
		if (gsi == 2)
			continue;
		r->entries[n].gsi = gsi;
		r->entries[n].type = KVM_IRQ_ROUTING_IRQCHIP;
		r->entries[n].u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER
							  : KVM_IRQCHIP_PIC_SLAVE;
		r->entries[n].u.irqchip.pin = gsi % 8;
		n++;
	}
	for (unsigned gsi = 0; gsi < 24; gsi++) {
		if (gsi == 2)
			continue;
		r->entries[n].gsi = gsi;
		r->entries[n].type = KVM_IRQ_ROUTING_IRQCHIP;
		r->entries[n].u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
		r->entries[n].u.irqchip.pin = gsi == 0 ? 2 : gsi;
		n++;
	}
	for (unsigned i = 0; i < KVM_MAX_MSI_ROUTES; i++) {
		if (!a->msi_routes[i].used)
			continue;
		r->entries[n].gsi = KVM_MSI_GSI_BASE + i;
		r->entries[n].type = KVM_IRQ_ROUTING_MSI;
		r->entries[n].u.msi.address_lo = (uint32_t)a->msi_routes[i].addr;
		r->entries[n].u.msi.address_hi = (uint32_t)(a->msi_routes[i].addr >> 32);
		r->entries[n].u.msi.data = a->msi_routes[i].data;
		n++;
	}
	r->nr = (uint32_t)n;
	if (ioctl(a->vm_fd, KVM_SET_GSI_ROUTING, r) < 0)
		ret = -errno;
	free(r);
	return ret;
}

static int kvm_fail(struct accel *a, char *err, size_t errlen, int ret, const char *what)
{
	snprintf(err, errlen, "%s: %s", what, strerror(-ret));
	kvm_close(a);
	return ret;
}

/* KVM_GET_SUPPORTED_CPUID: what this KVM can run (cpu.model=host). */
static int kvm_host_cpuid(struct accel *a, struct accel_cpuid_entry *ents, int max)
{
	struct kvm_cpuid2 *c = NULL;
	int nent = ACCEL_CPUID_MAX_ENTRIES, ret, n;

	for (;;) {
		size_t bytes = sizeof *c + (size_t)nent * sizeof c->entries[0];
		struct kvm_cpuid2 *grown = realloc(c, bytes);

		if (!grown) {
			free(c);
			return -ENOMEM;
		}
		c = grown;
		memset(c, 0, sizeof *c);
		c->nent = (uint32_t)nent;
		if (ioctl(a->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			break;
		if (errno != E2BIG || nent >= 4096) {
			ret = -errno;
			free(c);
			return ret;
		}
		nent *= 2;
	}
	/*
	 * Hosts with many XSAVE components list more sub-leaves than ACCEL_CPUID_MAX_ENTRIES;
	 * all-zero ones say nothing (KVM reads an unlisted sub-leaf as zeros), so they go first.
	 */
	n = 0;
	for (uint32_t i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];

		if ((int)c->nent - (int)i > max - n && !e->eax && !e->ebx && !e->ecx && !e->edx &&
		    e->function != 0)
			continue;
		if (n == max) {
			free(c);
			return -E2BIG;
		}
		ents[n++] = (struct accel_cpuid_entry){
			.function = e->function, .index = e->index,
			.flags = (e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX)
					 ? ACCEL_CPUID_SIGNIFICANT_INDEX : 0,
			.eax = e->eax, .ebx = e->ebx, .ecx = e->ecx, .edx = e->edx,
		};
	}
	free(c);
	return n;
}

static int kvm_supported_cpuid(struct accel *a, struct accel_cpuid_entry *ents, int max)
{
	if (max < a->ncpuid)
		return -E2BIG;
	memcpy(ents, a->cpuid, sizeof ents[0] * (size_t)a->ncpuid);
	return a->ncpuid;
}

/*
 * Hardware virtualization underneath /dev/kvm? kvm_intel/kvm_amd say yes, kvm_pvm (a
 * software KVM that runs unmodified guests through its instruction emulator) says no;
 * without either module in /sys, the host CPU's VMX/SVM bit decides.
 */
static bool kvm_has_hw_virt(void)
{
	unsigned eax, ebx, ecx, edx;

	if (access("/sys/module/kvm_intel", F_OK) == 0 ||
	    access("/sys/module/kvm_amd", F_OK) == 0)
		return true;
	if (access("/sys/module/kvm_pvm", F_OK) == 0)
		return false;
	if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 5)))
		return true;
	return __get_cpuid(0x80000001, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 2));
}

/*
 * The CPUID set of cpu.model (NULL: host with hardware virtualization, else the software
 * CPU's level, since the software CPU finishes what such a KVM refuses). A named level
 * loses what KVM cannot offer, said once. 0 or -errno with err filled.
 */
static int kvm_setup_cpuid(struct accel *a, const char *model, char *err, size_t errlen)
{
	struct accel_cpuid_entry host[ACCEL_CPUID_MAX_ENTRIES];
	char dropped[256];
	int nhost, n;

	nhost = kvm_host_cpuid(a, host, ACCEL_CPUID_MAX_ENTRIES);
	if (nhost < 0) {
		snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(-nhost));
		return nhost;
	}
	if (!model)
		model = a->hw_virt ? CPUID_MODEL_HOST : CPUID_LEVEL_SOFT;
	if (strcmp(model, CPUID_MODEL_HOST) == 0) {
		memcpy(a->cpuid, host, sizeof host[0] * (size_t)nhost);
		a->ncpuid = nhost;
		return 0;
	}
	n = cpuid_level_named(model, a->cpuid, ACCEL_CPUID_MAX_ENTRIES, err, errlen);
	if (n < 0)
		return n;
	a->ncpuid = n;
	/* KVM reports the TSC-deadline timer as a capability, not in its CPUID set. */
	if (cpuid_level_restrict(a->cpuid, n, host, nhost,
				 kvm_check_cap(a->kvm_fd, KVM_CAP_TSC_DEADLINE_TIMER) ? 1u << 24 : 0,
				 dropped, sizeof dropped))
		fprintf(stderr, "khyve: cpu.model=%s: this KVM cannot offer %s; left out\n", model,
			dropped);
	return 0;
}

static int kvm_create(const struct accel_config *cfg, struct accel **out, char *err,
		      size_t errlen)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	static const struct { long cap; const char *name; } needed[] = {
		{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
		{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
		{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
		{ KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING" },
		{ KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI" },
		{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
		{ KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE" },
		{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	};
	struct accel *a;
	int ret, v;

	*out = NULL;
	a = calloc(1, sizeof *a);
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	a->common.impl = &accel_kvm_impl;
	a->common.kind = ACCEL_KVM;
	a->vm_fd = -1;
	a->ncpus = cfg->ncpus;
	a->io = cfg->io;
	pthread_mutex_init(&a->slot_lock, NULL);
	pthread_mutex_init(&a->route_lock, NULL);
	pthread_mutex_init(&a->emu_lock, NULL);
	if (cfg->ncpus < 1)
		return kvm_fail(a, err, errlen, -EINVAL, "vCPU count");
	a->apic_ids = calloc((size_t)cfg->ncpus, sizeof *a->apic_ids);
	if (!a->apic_ids)
		return kvm_fail(a, err, errlen, -ENOMEM, "vCPU table");
	for (int i = 0; i < cfg->ncpus; i++)
		a->apic_ids[i] = cfg->apic_ids ? cfg->apic_ids[i] : (uint32_t)i;

	a->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (a->kvm_fd < 0) {
		ret = -errno;
		if (ret == -ENOENT)
			snprintf(err, errlen,
				 "no /dev/kvm device node (is the kvm module loaded?)");
		else if (ret == -EACCES || ret == -EPERM)
			snprintf(err, errlen,
				 "permission denied on /dev/kvm (add yourself to the kvm group)");
		else
			snprintf(err, errlen, "cannot open /dev/kvm: %s", strerror(-ret));
		kvm_close(a);
		return ret;
	}
	v = ioctl(a->kvm_fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION) {
		snprintf(err, errlen, "/dev/kvm speaks API version %d, khyve needs %d", v,
			 KVM_API_VERSION);
		kvm_close(a);
		return -ENOTSUP;
	}
	for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++) {
		if (!kvm_check_cap(a->kvm_fd, needed[i].cap)) {
			snprintf(err, errlen, "this KVM lacks %s", needed[i].name);
			kvm_close(a);
			return -ENOTSUP;
		}
	}
	v = kvm_check_cap(a->kvm_fd, KVM_CAP_MAX_VCPUS);
	if (v == 0)
		v = kvm_check_cap(a->kvm_fd, KVM_CAP_NR_VCPUS);
	if (v && cfg->ncpus > v) {
		snprintf(err, errlen, "%d vCPUs requested, this KVM allows %d", cfg->ncpus, v);
		kvm_close(a);
		return -EINVAL;
	}
	a->run_size = ioctl(a->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (a->run_size < (int)sizeof(struct kvm_run))
		return kvm_fail(a, err, errlen, a->run_size < 0 ? -errno : -EINVAL,
				"KVM_GET_VCPU_MMAP_SIZE");

	do
		a->vm_fd = ioctl(a->kvm_fd, KVM_CREATE_VM, 0);
	while (a->vm_fd < 0 && errno == EINTR);
	if (a->vm_fd < 0)
		return kvm_fail(a, err, errlen, -errno, "KVM_CREATE_VM");
	fcntl(a->vm_fd, F_SETFD, FD_CLOEXEC);

	if (kvm_check_cap(a->vm_fd, KVM_CAP_SET_IDENTITY_MAP_ADDR)) {
		uint64_t idmap = KVM_IDENTITY_MAP_GPA;

		if (ioctl(a->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
			return kvm_fail(a, err, errlen, -errno, "KVM_SET_IDENTITY_MAP_ADDR");
	}
	if (kvm_check_cap(a->vm_fd, KVM_CAP_SET_TSS_ADDR) &&
	    ioctl(a->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_GPA) < 0)
		return kvm_fail(a, err, errlen, -errno, "KVM_SET_TSS_ADDR");
	if (ioctl(a->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return kvm_fail(a, err, errlen, -errno, "KVM_CREATE_IRQCHIP");
	ret = kvm_setup_routing(a);
	if (ret)
		return kvm_fail(a, err, errlen, ret, "KVM_SET_GSI_ROUTING");
	if (ioctl(a->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return kvm_fail(a, err, errlen, -errno, "KVM_CREATE_PIT2");
	if (cfg->ignore_msrs || cfg->verbose_msrs) {
		/* Unknown MSRs come to kvm_vcpu.c instead of raising #GP in the guest. */
		struct kvm_enable_cap cap = {
			.cap = KVM_CAP_X86_USER_SPACE_MSR,
			.args[0] = KVM_MSR_EXIT_REASON_UNKNOWN,
		};

		if (!kvm_check_cap(a->vm_fd, KVM_CAP_X86_USER_SPACE_MSR)) {
			snprintf(err, errlen, "this KVM lacks KVM_CAP_X86_USER_SPACE_MSR (%s)",
				 cfg->ignore_msrs ? "-w" : "x86.verbosemsr");
			kvm_close(a);
			return -ENOTSUP;
		}
		if (ioctl(a->vm_fd, KVM_ENABLE_CAP, &cap) < 0)
			return kvm_fail(a, err, errlen, -errno, "KVM_CAP_X86_USER_SPACE_MSR");
		a->ignore_msrs = cfg->ignore_msrs;
		a->verbose_msrs = cfg->verbose_msrs;
	}
	a->hw_virt = kvm_has_hw_virt();
	ret = kvm_setup_cpuid(a, cfg->cpu_model, err, errlen);
	if (ret) {
		kvm_close(a);
		return ret;
	}
	a->has_xcrs = kvm_check_cap(a->kvm_fd, KVM_CAP_XCRS);
	a->stats = cfg->stats;
	*out = a;
	return 0;
}

static void kvm_destroy(struct accel *a)
{
	kvm_close(a);
}

static int kvm_map_memory(struct accel *a, uint64_t gpa, uint64_t size, void *host,
			  bool readonly)
{
	struct kvm_userspace_memory_region region;
	struct kvm_slot slot = { .gpa = gpa, .size = size, .host = host, .readonly = readonly };
	int ret = 0;

	if (size == 0 || (gpa & (KVM_PAGE - 1)) || gpa + size < gpa)
		return -EINVAL;
	if (readonly && !kvm_check_cap(a->vm_fd, KVM_CAP_READONLY_MEM))
		return -ENOTSUP;
	if (((uintptr_t)host & (KVM_PAGE - 1)) || (size & (KVM_PAGE - 1))) {
		/* KVM needs whole pages; a ROM never changes, so a page-aligned copy serves. */
		uint64_t rounded = (size + KVM_PAGE - 1) & ~(KVM_PAGE - 1);
		void *copy;

		if (!readonly)
			return -EINVAL;
		copy = mmap(NULL, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			    -1, 0);
		if (copy == MAP_FAILED)
			return -errno;
		memcpy(copy, host, size);
		slot.host = copy;
		slot.size = rounded;
		slot.copied = true;
	}

	pthread_mutex_lock(&a->slot_lock);
	if (a->nslots == KVM_MAX_SLOTS) {
		ret = -ENOSPC;
		goto out;
	}
	region = (struct kvm_userspace_memory_region){
		.slot = (uint32_t)a->nslots,
		.flags = readonly ? KVM_MEM_READONLY : 0,
		.guest_phys_addr = slot.gpa,
		.memory_size = slot.size,
		.userspace_addr = (uintptr_t)slot.host,
	};
	if (ioctl(a->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		ret = -errno;
		goto out;
	}
	a->slots[a->nslots++] = slot;
out:
	pthread_mutex_unlock(&a->slot_lock);
	if (ret && slot.copied)
		munmap(slot.host, slot.size);
	return ret;
}

int kvm_read_phys(struct accel *a, uint64_t gpa, void *dst, size_t len)
{
	int ret = -EFAULT;

	pthread_mutex_lock(&a->slot_lock);
	for (int i = 0; i < a->nslots; i++) {
		const struct kvm_slot *s = &a->slots[i];

		if (gpa >= s->gpa && gpa - s->gpa < s->size && len <= s->size - (gpa - s->gpa)) {
			memcpy(dst, s->host + (gpa - s->gpa), len);
			ret = 0;
			break;
		}
	}
	pthread_mutex_unlock(&a->slot_lock);
	return ret;
}

uint8_t *kvm_slot_page(struct accel *a, uint64_t gpa, bool write)
{
	uint64_t page = gpa & ~(KVM_PAGE - 1);
	uint8_t *h = NULL;

	pthread_mutex_lock(&a->slot_lock);
	for (int i = 0; i < a->nslots; i++) {
		const struct kvm_slot *s = &a->slots[i];

		if (page >= s->gpa && page - s->gpa < s->size) {
			if (!(write && s->readonly))
				h = s->host + (page - s->gpa);
			break;
		}
	}
	pthread_mutex_unlock(&a->slot_lock);
	return h;
}

/* Under KVM the guest's own accesses and the devices' share the host pages: nothing to do. */
static void kvm_memory_written(struct accel *a, uint64_t gpa, uint64_t len)
{
	(void)a;
	(void)gpa;
	(void)len;
}

static int kvm_irq_line(struct accel *a, unsigned gsi, bool level)
{
	struct kvm_irq_level l = { .irq = gsi, .level = level ? 1 : 0 };

	if (gsi >= 24)
		return -EINVAL;
	if (ioctl(a->vm_fd, KVM_IRQ_LINE, &l) < 0)
		return -errno;
	return 0;
}

static int kvm_msi(struct accel *a, uint64_t addr, uint32_t data)
{
	struct kvm_msi msi = {
		.address_lo = (uint32_t)addr,
		.address_hi = (uint32_t)(addr >> 32),
		.data = data,
	};

	/* >0 delivered, 0 blocked by the guest (masked, no destination): both are fine. */
	if (ioctl(a->vm_fd, KVM_SIGNAL_MSI, &msi) < 0)
		return -errno;
	return 0;
}

const struct accel_impl accel_kvm_impl = {
	.name = "kvm",
	.create = kvm_create,
	.destroy = kvm_destroy,
	.map_memory = kvm_map_memory,
	.memory_written = kvm_memory_written,
	.supported_cpuid = kvm_supported_cpuid,
	.irq_line = kvm_irq_line,
	.msi = kvm_msi,
	.vcpu_create = kvm_vcpu_create,
	.vcpu_destroy = kvm_vcpu_destroy,
	.vcpu_set_cpuid = kvm_vcpu_set_cpuid,
	.vcpu_get_regs = kvm_vcpu_get_regs,
	.vcpu_set_regs = kvm_vcpu_set_regs,
	.vcpu_get_sregs = kvm_vcpu_get_sregs,
	.vcpu_set_sregs = kvm_vcpu_set_sregs,
	.vcpu_set_wait_for_sipi = kvm_vcpu_set_wait_for_sipi,
	.vcpu_run = kvm_vcpu_run,
	.vcpu_kick = kvm_vcpu_kick,
	.ioeventfd = kvm_ioeventfd,
	.irqfd_msi = kvm_irqfd_msi,
	.irqfd_update = kvm_irqfd_update,
	.irqfd_remove = kvm_irqfd_remove,
};
