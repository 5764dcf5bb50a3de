/*
 * accel.c: picks the accelerator (accel=kvm, soft, or auto: KVM when /dev/kvm is usable,
 * otherwise the software CPU, said once on stderr; not with cpu.model=host, which only KVM
 * has) and forwards the accel.h calls to it; optional hooks an implementation leaves NULL
 * answer -ENOTSUP.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "accel/accel_impl.h"
#include "x86/cpuid.h"

#define IMPL(a) (((const struct accel_common *)(a))->impl)
#define VIMPL(v) (((const struct accel_vcpu_common *)(v))->impl)

int accel_create(const struct accel_config *cfg, struct accel **out, char *err, size_t errlen)
{
	struct accel_config c = *cfg;
	int ret;

	if (cfg->kind == ACCEL_KVM)
		return accel_kvm_impl.create(cfg, out, err, errlen);
	if (cfg->kind == ACCEL_SOFT)
		return accel_soft_impl.create(cfg, out, err, errlen);

	c.kind = ACCEL_KVM;
	ret = accel_kvm_impl.create(&c, out, err, errlen);
	if (ret == 0)
		return 0;
	if (cfg->cpu_model && strcmp(cfg->cpu_model, CPUID_MODEL_HOST) == 0) {
		/* the host's set exists only under KVM: no quiet fall-back */
		char why[256];

		snprintf(why, sizeof why, "%s", err);
		snprintf(err, errlen, "cpu.model=host needs KVM, which is not usable (%s)", why);
		return ret;
	}
	fprintf(stderr, "khyve: KVM is not usable (%s); using the software CPU\n", err);
	c.kind = ACCEL_SOFT;
	return accel_soft_impl.create(&c, out, err, errlen);
}

void accel_destroy(struct accel *accel)
{
	if (accel)
		IMPL(accel)->destroy(accel);
}

enum accel_kind accel_kind(const struct accel *accel)
{
	return ((const struct accel_common *)accel)->kind;
}

const char *accel_name(const struct accel *accel)
{
	return IMPL(accel)->name;
}

int accel_map_memory(struct accel *accel, uint64_t gpa, uint64_t size, void *host,
		     bool readonly)
{
	return IMPL(accel)->map_memory(accel, gpa, size, host, readonly);
}

void accel_memory_written(struct accel *accel, uint64_t gpa, uint64_t len)
{
	IMPL(accel)->memory_written(accel, gpa, len);
}

int accel_supported_cpuid(struct accel *accel, struct accel_cpuid_entry *ents, int max)
{
	return IMPL(accel)->supported_cpuid(accel, ents, max);
}

int accel_irq_line(struct accel *accel, unsigned gsi, bool level)
{
	return IMPL(accel)->irq_line(accel, gsi, level);
}

int accel_msi(struct accel *accel, uint64_t addr, uint32_t data)
{
	return IMPL(accel)->msi(accel, addr, data);
}

int accel_vcpu_create(struct accel *accel, int index, struct accel_vcpu **out)
{
	return IMPL(accel)->vcpu_create(accel, index, out);
}

void accel_vcpu_destroy(struct accel_vcpu *vcpu)
{
	if (vcpu)
		VIMPL(vcpu)->vcpu_destroy(vcpu);
}

int accel_vcpu_set_cpuid(struct accel_vcpu *vcpu, const struct accel_cpuid_entry *ents, int n)
{
	return VIMPL(vcpu)->vcpu_set_cpuid(vcpu, ents, n);
}

int accel_vcpu_get_regs(struct accel_vcpu *vcpu, struct accel_regs *regs)
{
	return VIMPL(vcpu)->vcpu_get_regs(vcpu, regs);
}

int accel_vcpu_set_regs(struct accel_vcpu *vcpu, const struct accel_regs *regs)
{
	return VIMPL(vcpu)->vcpu_set_regs(vcpu, regs);
}

int accel_vcpu_get_sregs(struct accel_vcpu *vcpu, struct accel_sregs *sregs)
{
	return VIMPL(vcpu)->vcpu_get_sregs(vcpu, sregs);
}

int accel_vcpu_set_sregs(struct accel_vcpu *vcpu, const struct accel_sregs *sregs)
{
	return VIMPL(vcpu)->vcpu_set_sregs(vcpu, sregs);
}

int accel_vcpu_set_wait_for_sipi(struct accel_vcpu *vcpu, bool wait)
{
	return VIMPL(vcpu)->vcpu_set_wait_for_sipi(vcpu, wait);
}

int accel_vcpu_run(struct accel_vcpu *vcpu, struct accel_exit *exit)
{
	return VIMPL(vcpu)->vcpu_run(vcpu, exit);
}

void accel_vcpu_kick(struct accel_vcpu *vcpu)
{
	VIMPL(vcpu)->vcpu_kick(vcpu);
}

int accel_ioeventfd(struct accel *accel, bool mmio, uint64_t addr, unsigned len, int fd,
		    bool assign)
{
	if (!IMPL(accel)->ioeventfd)
		return -ENOTSUP;
	return IMPL(accel)->ioeventfd(accel, mmio, addr, len, fd, assign);
}

int accel_irqfd_msi(struct accel *accel, int fd, uint64_t addr, uint32_t data)
{
	if (!IMPL(accel)->irqfd_msi)
		return -ENOTSUP;
	return IMPL(accel)->irqfd_msi(accel, fd, addr, data);
}

int accel_irqfd_update(struct accel *accel, int handle, uint64_t addr, uint32_t data)
{
	if (!IMPL(accel)->irqfd_update)
		return -ENOTSUP;
	return IMPL(accel)->irqfd_update(accel, handle, addr, data);
}

int accel_irqfd_remove(struct accel *accel, int fd, int handle)
{
	if (!IMPL(accel)->irqfd_remove)
		return -ENOTSUP;
	return IMPL(accel)->irqfd_remove(accel, fd, handle);
}
