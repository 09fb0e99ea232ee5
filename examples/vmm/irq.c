/* SPDX-License-Identifier: MIT */
/* Interrupts: the in-kernel irqchip (LAPIC per vCPU) and the two ways the
 * agent injects, an irqfd bound to an MSI route or KVM_SIGNAL_MSI. */
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

/* One GSI routed as an MSI to @apic_id with @vector, and an eventfd bound
 * to it: a write() of 1 on *efd injects. KVM_SET_GSI_ROUTING replaces the
 * whole table, so this VMM owns exactly one route. */
int irq_msi_irqfd(struct vmm *vmm, uint32_t gsi, uint32_t apic_id,
		  uint8_t vector, int *efd)
{
	struct {
		struct kvm_irq_routing r;
		struct kvm_irq_routing_entry e[1];
	} rt = { .r = { .nr = 1 } };
	struct kvm_irqfd irqfd = { .gsi = gsi };
	int fd, rc;

	rt.e[0].gsi = gsi;
	rt.e[0].type = KVM_IRQ_ROUTING_MSI;
	rt.e[0].u.msi.address_lo = MSI_ADDR(apic_id);
	rt.e[0].u.msi.data = vector;
	if (ioctl(vmm->vm, KVM_SET_GSI_ROUTING, &rt) < 0)
		return -errno;
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	irqfd.fd = (uint32_t)fd;
	if (ioctl(vmm->vm, KVM_IRQFD, &irqfd) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	*efd = fd;
	return 0;
}

int irq_signal_msi(struct vmm *vmm, uint32_t apic_id, uint8_t vector)
{
	struct kvm_msi msi = { .address_lo = MSI_ADDR(apic_id), .data = vector };

	return ioctl(vmm->vm, KVM_SIGNAL_MSI, &msi) < 0 ? -errno : 0;
}
