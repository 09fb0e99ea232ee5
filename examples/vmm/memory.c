/* SPDX-License-Identifier: MIT */
/* Guest memory: one anonymous RAM slot at GPA 0, extra slots for memory the
 * VMM shares with the guest (the pvtimer area), and the identity page
 * tables the payload runs on. */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "vmm.h"

#define PTE_P 0x1ull
#define PTE_RW 0x2ull
#define PTE_US 0x4ull
#define PTE_PS 0x80ull

int mem_init(struct vmm *vmm, size_t ram_size)
{
	void *ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	int rc;

	if (ram == MAP_FAILED)
		return -errno;
	vmm->ram = ram;
	vmm->ram_size = ram_size;
	rc = mem_add_region(vmm, 0, ram, ram_size);
	if (rc) {
		munmap(ram, ram_size);
		vmm->ram = NULL;
	}
	return rc;
}

int mem_add_region(struct vmm *vmm, uint64_t gpa, void *hva, size_t size)
{
	struct kvm_userspace_memory_region r = {
		.slot = vmm->next_slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)hva,
	};

	if (ioctl(vmm->vm, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return -errno;
	vmm->next_slot++;
	return 0;
}

/* Host pointer to [gpa, gpa+len) of RAM, or NULL if it is not all RAM:
 * every guest-supplied address goes through here. */
void *mem_gpa(struct vmm *vmm, uint64_t gpa, size_t len)
{
	if (gpa > vmm->ram_size || len > vmm->ram_size - gpa)
		return NULL;
	return (char *)vmm->ram + gpa;
}

/* Identity-map the first GiB, all user-accessible: ring 3 must reach the
 * mailbox, its sample buffer and the pvtimer area (the whole point is that
 * it arms the timer with plain stores). CR4 has no SMEP/SMAP, so ring 0 may
 * still run and touch the same pages. 2 MiB pages, except the first 2 MiB:
 * 4 KiB pages there, page 0 not present, so that a NULL pointer faults
 * where it is used (a call through NULL once slid through zeroed low
 * memory into the GDT and faulted far from its cause). */
int mem_build_page_tables(struct vmm *vmm)
{
	uint64_t *pml4 = mem_gpa(vmm, VMM_PML4_GPA, 4096);
	uint64_t *pdpt = mem_gpa(vmm, VMM_PDPT_GPA, 4096);
	uint64_t *pd = mem_gpa(vmm, VMM_PD_GPA, 4096);
	uint64_t *pt = mem_gpa(vmm, VMM_PT_GPA, 4096);

	if (!pml4 || !pdpt || !pd || !pt)
		return -ENOMEM;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = VMM_PDPT_GPA | PTE_P | PTE_RW | PTE_US;
	pdpt[0] = VMM_PD_GPA | PTE_P | PTE_RW | PTE_US;
	pd[0] = VMM_PT_GPA | PTE_P | PTE_RW | PTE_US;
	for (uint64_t i = 1; i < 512; i++)
		pd[i] = (i << 21) | PTE_P | PTE_RW | PTE_US | PTE_PS;
	pt[0] = 0; /* page 0: not present */
	for (uint64_t i = 1; i < 512; i++)
		pt[i] = (i << 12) | PTE_P | PTE_RW | PTE_US;
	return 0;
}

void mem_destroy(struct vmm *vmm)
{
	if (vmm->ram)
		munmap(vmm->ram, vmm->ram_size);
	vmm->ram = NULL;
}
