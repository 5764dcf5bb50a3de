/*
 * kvm_notify.c: KVM's notifiers for device models: ioeventfd (guest writes to a doorbell
 * signal an eventfd without a userspace exit; api.rst §4.59 KVM_IOEVENTFD) and irqfd
 * bound to MSI routes (an eventfd write injects the message; §4.75 KVM_IRQFD, §4.52
 * KVM_SET_GSI_ROUTING). Left out: resampling irqfds for level-triggered INTx.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "accel/kvm/kvm_internal.h"

int kvm_ioeventfd(struct accel *a, bool mmio, uint64_t addr, unsigned len, int fd, bool assign)
{
	struct kvm_ioeventfd io = {
		.addr = addr,
		.len = len,
		.fd = fd,
		.flags = (mmio ? 0 : KVM_IOEVENTFD_FLAG_PIO) |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	if (len != 1 && len != 2 && len != 4 && len != 8)
		return -EINVAL;
	if (ioctl(a->vm_fd, KVM_IOEVENTFD, &io) < 0)
		return -errno;
	return 0;
}

int kvm_irqfd_msi(struct accel *a, int fd, uint64_t addr, uint32_t data)
{
	struct kvm_irqfd irqfd = { .fd = (uint32_t)fd };
	int slot = -1, ret;

	pthread_mutex_lock(&a->route_lock);
	for (int i = 0; i < KVM_MAX_MSI_ROUTES; i++) {
		if (!a->msi_routes[i].used) {
			slot = i;
			break;
		}
	}
	if (slot < 0) {
		pthread_mutex_unlock(&a->route_lock);
		return -ENOSPC;
	}
	a->msi_routes[slot] = (struct kvm_msi_route){ .used = true, .addr = addr, .data = data };
	ret = kvm_setup_routing(a);
	if (ret == 0) {
		irqfd.gsi = KVM_MSI_GSI_BASE + (uint32_t)slot;
		if (ioctl(a->vm_fd, KVM_IRQFD, &irqfd) < 0)
			ret = -errno;
	}
	if (ret < 0) {
		a->msi_routes[slot].used = false;
		kvm_setup_routing(a);
	}
	pthread_mutex_unlock(&a->route_lock);
	return ret < 0 ? ret : slot;
}

int kvm_irqfd_update(struct accel *a, int handle, uint64_t addr, uint32_t data)
{
	int ret;

	if (handle < 0 || handle >= KVM_MAX_MSI_ROUTES)
		return -EINVAL;
	pthread_mutex_lock(&a->route_lock);
	if (!a->msi_routes[handle].used) {
		pthread_mutex_unlock(&a->route_lock);
		return -ENOENT;
	}
	a->msi_routes[handle].addr = addr;
	a->msi_routes[handle].data = data;
	ret = kvm_setup_routing(a);
	pthread_mutex_unlock(&a->route_lock);
	return ret;
}

int kvm_irqfd_remove(struct accel *a, int fd, int handle)
{
	struct kvm_irqfd irqfd = { .fd = (uint32_t)fd, .flags = KVM_IRQFD_FLAG_DEASSIGN };
	int ret = 0;

	if (handle < 0 || handle >= KVM_MAX_MSI_ROUTES)
		return -EINVAL;
	pthread_mutex_lock(&a->route_lock);
	irqfd.gsi = KVM_MSI_GSI_BASE + (uint32_t)handle;
	if (ioctl(a->vm_fd, KVM_IRQFD, &irqfd) < 0)
		ret = -errno;
	a->msi_routes[handle].used = false;
	kvm_setup_routing(a);
	pthread_mutex_unlock(&a->route_lock);
	return ret;
}
