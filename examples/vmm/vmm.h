/* SPDX-License-Identifier: MIT */
/* exitless-vmm: one file per subsystem, kvmtool style.
 *   memory.c  guest RAM, memory slots, identity page tables
 *   vcpu.c    vCPU creation, CPUID (incl. the pvtimer leaves), long mode,
 *             LAPIC set-up, the KVM_RUN loop
 *   irq.c     in-kernel irqchip, MSI routes and irqfds
 *   stats.c   KVM binary statistics (KVM_GET_STATS_FD)
 *   loader.c  the flat guest payload
 *   main.c    the order of things and the exit status
 *   setup.c   KVM, the VM, its vCPUs, the pvtimer area, the mailbox
 *   agentctl.c the timer agent (libagent), its TSC map
 *   phases.c  the timer workload's phase markers
 *   pingpong.c the pingpong workload's phase markers and its configurations
 *   device.c  the pingpong device thread (completes requests via irqfd)
 *   hpoll.c   host halt polling: KVM_CAP_HALT_POLL, the smart rule
 *   ports.c   the guest's port writes; stop.c the watchdog and stopping;
 *   threads.c the vCPU threads
 *   cli.c     options, CPU placement
 *   report.c, report_pp.c, plot.c  the figures, the JSON, the SVG
 *   app.h     the state the program's files share; the subsystems never see it
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
	/* KVM's paravirtual features (CPUID 0x40000001 EAX) as
	 * KVM_GET_SUPPORTED_CPUID offered them, before any were withheld;
	 * 0 without KVM's leaves */
	uint32_t kvm_features;
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

/* vcpu.c */
struct vcpu_cpuid_pv {
	uint64_t area_gpa;
	uint32_t area_pages;
	uint32_t slot;
	/* KVM paravirtual feature bits (CPUID 0x40000001 EAX) to withhold
	 * from the guest, e.g. 1 << VMM_KVM_FEATURE_PV_EOI */
	uint32_t kvm_features_withheld;
};
int vcpu_create(struct vmm *vmm, int id, struct vcpu *out);
int vcpu_setup(struct vmm *vmm, struct vcpu *v, uint64_t entry,
	       const struct vcpu_cpuid_pv *pv);
uint32_t vcpu_tsc_khz(struct vcpu *v);
/* KVM_GET_MSRS of one MSR; only while the vCPU is not in KVM_RUN (its own
 * thread at an exit, or before/after it runs). -ENOENT if KVM lacks it. */
int vcpu_get_msr(struct vcpu *v, uint32_t index, uint64_t *value);
/* KVM_VCPU_TSC_OFFSET (group KVM_VCPU_TSC_CTRL): guest TSC = host TSC
 * (scaled) + offset. -ENXIO/-ENOTTY where this KVM cannot tell. */
int vcpu_tsc_offset(struct vcpu *v, int64_t *offset);
/* Called for every port write; return 0 to resume the guest, 1 to stop
 * (vcpu_run() returns 0), or -errno to stop with that error. */
typedef int (*vcpu_io_fn)(void *ctx, uint16_t port, uint32_t value);
int vcpu_run(struct vcpu *v, vcpu_io_fn on_io, void *ctx);
void vcpu_destroy(struct vcpu *v);

/* stats.c */
#define STATS_MAX 12
struct stats {
	int fd;
	uint32_t count;
	const char *names[STATS_MAX];
	uint64_t offsets[STATS_MAX]; /* absolute file offsets; ~0 = absent */
	uint32_t sizes[STATS_MAX];   /* u64 values (histogram buckets) */
};
int stats_open(struct stats *s, int vcpu_fd, const char *const *names,
	       uint32_t count);
int stats_read(const struct stats *s, uint64_t *values);
/* All of statistic j (a histogram: its buckets); -ENOENT if absent,
 * -ENOSPC if it has more than max values. Returns the count. */
int stats_read_array(const struct stats *s, uint32_t j, uint64_t *values,
		     uint32_t max);
void stats_close(struct stats *s);

/* device.c: the pingpong device thread (pinned to cpu unless -1); it
 * first runs start_delay_ms late (a test hook, else 0) */
struct device;
int device_start(struct device **out, volatile struct vmm_pp_request *req,
		 int efd, int cpu, uint32_t host_khz, uint32_t start_delay_ms);
void device_set_service(struct device *d, uint32_t us);
void device_stop(struct device *d, uint64_t *completions,
		 uint64_t *inject_errors);

/* loader.c */
int loader_load(struct vmm *vmm, const char *path, uint64_t *entry);

#endif /* EXITLESS_VMM_H */
