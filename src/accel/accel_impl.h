/*
 * accel_impl.h: what each accelerator (accel/kvm, accel/soft) supplies to accel.c, which
 * picks one (accel=auto|kvm|soft) and forwards every accel.h call through this table.
 * Only accel.c and the two implementations include this file.
 */
#ifndef KHYVE_ACCEL_IMPL_H
#define KHYVE_ACCEL_IMPL_H

#include "accel/accel.h"

struct accel_impl {
	const char *name;
	int (*create)(const struct accel_config *cfg, struct accel **out, char *err,
		      size_t errlen);
	void (*destroy)(struct accel *accel);
	int (*map_memory)(struct accel *accel, uint64_t gpa, uint64_t size, void *host,
			  bool readonly);
	void (*memory_written)(struct accel *accel, uint64_t gpa, uint64_t len);
	int (*supported_cpuid)(struct accel *accel, struct accel_cpuid_entry *ents, int max);
	int (*irq_line)(struct accel *accel, unsigned gsi, bool level);
	int (*msi)(struct accel *accel, uint64_t addr, uint32_t data);
	int (*vcpu_create)(struct accel *accel, int index, struct accel_vcpu **out);
	void (*vcpu_destroy)(struct accel_vcpu *vcpu);
	int (*vcpu_set_cpuid)(struct accel_vcpu *vcpu, const struct accel_cpuid_entry *ents,
			      int n);
	int (*vcpu_get_regs)(struct accel_vcpu *vcpu, struct accel_regs *regs);
	int (*vcpu_set_regs)(struct accel_vcpu *vcpu, const struct accel_regs *regs);
	int (*vcpu_get_sregs)(struct accel_vcpu *vcpu, struct accel_sregs *sregs);
	int (*vcpu_set_sregs)(struct accel_vcpu *vcpu, const struct accel_sregs *sregs);
	int (*vcpu_set_wait_for_sipi)(struct accel_vcpu *vcpu, bool wait);
	int (*vcpu_run)(struct accel_vcpu *vcpu, struct accel_exit *exit);
	void (*vcpu_kick)(struct accel_vcpu *vcpu);
	/* Optional (NULL: accel.c answers -ENOTSUP). */
	int (*ioeventfd)(struct accel *accel, bool mmio, uint64_t addr, unsigned len, int fd,
			 bool assign);
	int (*irqfd_msi)(struct accel *accel, int fd, uint64_t addr, uint32_t data);
	int (*irqfd_update)(struct accel *accel, int handle, uint64_t addr, uint32_t data);
	int (*irqfd_remove)(struct accel *accel, int fd, int handle);
};

/*
 * Every implementation's struct accel and struct accel_vcpu begin with these headers, so
 * accel.c can find the table.
 */
struct accel_common {
	const struct accel_impl *impl;
	enum accel_kind kind;
};
struct accel_vcpu_common {
	const struct accel_impl *impl;
};

extern const struct accel_impl accel_kvm_impl;
extern const struct accel_impl accel_soft_impl;

#endif
