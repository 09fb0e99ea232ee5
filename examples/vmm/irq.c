/* SPDX-License-Identifier: MIT */
/* Interrupts: the in-kernel irqchip (LAPIC per vCPU) and irqfds bound to
 * MSI routes. (The agent's KVM_SIGNAL_MSI injector is libagent's own.) */
#include <errno.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm.h"

#define MSI_ADDR(apic_id) (0xfee00000u | ((uint32_t)(apic_id) << 12))

int irq_init(struct vmm *vmm)
{
	return ioctl(vmm->vm, KVM_CREATE_IRQCHIP, 0) < 0 ? -errno : 0;
}

/* GSI first_gsi + i routed as an MSI to APIC ID i with @vector, and an
 * eventfd bound to it, for i < count: a write() of 1 on efds[i] injects
 * into vCPU i. KVM_SET_GSI_ROUTING replaces the whole table, hence all
 * routes in one call. */
int irq_msi_irqfds(struct vmm *vmm, uint32_t first_gsi, uint32_t count,
		   uint8_t vector, int *efds)
{
	struct {
		struct kvm_irq_routing r;
		struct kvm_irq_routing_entry e[VMM_VCPUS_MAX];
	} rt = { .r = { .nr = count } };
	uint32_t i;
	int rc = 0;

	if (count > VMM_VCPUS_MAX)
		return -EINVAL;
	for (i = 0; i < count; i++) {
		rt.e[i].gsi = first_gsi + i;
		rt.e[i].type = KVM_IRQ_ROUTING_MSI;
		rt.e[i].u.msi.address_lo = MSI_ADDR(i);
		rt.e[i].u.msi.data = vector;
		efds[i] = -1;
	}
	if (ioctl(vmm->vm, KVM_SET_GSI_ROUTING, &rt) < 0)
		return -errno;
	for (i = 0; i < count; i++) {
		struct kvm_irqfd irqfd = { .gsi = first_gsi + i };
		int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

		if (fd < 0) {
			rc = -errno;
			break;
		}
		irqfd.fd = (uint32_t)fd;
		if (ioctl(vmm->vm, KVM_IRQFD, &irqfd) < 0) {
			rc = -errno;
			close(fd);
			break;
		}
		efds[i] = fd;
	}
	if (rc) {
		while (i--)
			close(efds[i]);
	}
	return rc;
}
