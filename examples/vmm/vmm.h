/* SPDX-License-Identifier: MIT */
/* exitless-vmm: one file per subsystem, kvmtool style.
 *   memory.c  guest RAM, memory slots, identity page tables
 *   vcpu.c    vCPU creation, CPUID (incl. the pvtimer leaves), long mode,
 *             LAPIC set-up, the KVM_RUN loop
 *   irq.c     in-kernel irqchip, MSI routes and irqfds
 *   stats.c   KVM binary statistics (KVM_GET_STATS_FD)
 *   loader.c  the flat guest payload
 *   main.c    the pvtimer area, the agent, the phases, the watchdog
 *   cli.c     options, CPU placement
 *   report.c  the side-by-side figures
 *   app.h     the state those three share; the subsystems never see it
 * Functions that can fail return 0 or -errno and print nothing; main.c
 * decides what is fatal and says so. */
#ifndef EXITLESS_VMM_H
#define EXITLESS_VMM_H

#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "vmm_abi.h"

struct vmm {
	int kvm;  /* /dev/kvm */
	int vm;   /* VM fd */
	void *ram; /* host mapping of guest RAM, VMM_RAM_SIZE bytes */
	size_t ram_size;
	uint32_t next_slot; /* next free KVM memory slot */
};

struct vcpu {
	int fd;
	int id;
	struct kvm_run *run;
	size_t run_size;
	uint32_t last_exit; /* exit reason vcpu_run() did not expect */
};

/* memory.c */
int mem_init(struct vmm *vmm, size_t ram_size);
int mem_add_region(struct vmm *vmm, uint64_t gpa, void *hva, size_t size);
void *mem_gpa(struct vmm *vmm, uint64_t gpa, size_t len);
int mem_build_page_tables(struct vmm *vmm);
void mem_destroy(struct vmm *vmm);

/* irq.c */
int irq_init(struct vmm *vmm);
int irq_msi_irqfds(struct vmm *vmm, uint32_t first_gsi, uint32_t count,
		   uint8_t vector, int *efds);
int irq_signal_msi(struct vmm *vmm, uint32_t apic_id, uint8_t vector);

/* vcpu.c */
struct vcpu_cpuid_pv {
	uint64_t area_gpa;
	uint32_t area_pages;
	uint32_t slot;
};
int vcpu_create(struct vmm *vmm, int id, struct vcpu *out);
int vcpu_setup(struct vmm *vmm, struct vcpu *v, uint64_t entry,
	       const struct vcpu_cpuid_pv *pv);
uint32_t vcpu_tsc_khz(struct vcpu *v);
/* Called for every port write; return 0 to resume the guest, 1 to stop
 * (vcpu_run() returns 0), or -errno to stop with that error. */
typedef int (*vcpu_io_fn)(void *ctx, uint16_t port, uint32_t value);
int vcpu_run(struct vcpu *v, vcpu_io_fn on_io, void *ctx);
void vcpu_destroy(struct vcpu *v);

/* stats.c */
#define STATS_MAX 8
struct stats {
	int fd;
	uint32_t count;
	const char *names[STATS_MAX];
	uint64_t offsets[STATS_MAX]; /* absolute file offsets; ~0 = absent */
};
int stats_open(struct stats *s, int vcpu_fd, const char *const *names,
	       uint32_t count);
int stats_read(const struct stats *s, uint64_t *values);
void stats_close(struct stats *s);

/* loader.c */
int loader_load(struct vmm *vmm, const char *path, uint64_t *entry);

#endif /* EXITLESS_VMM_H */
