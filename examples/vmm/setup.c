/* SPDX-License-Identifier: MIT */
/* Set-up of everything the guest runs on: KVM and the VM (capabilities
 * checked up front), guest RAM and page tables, the payload, the vCPUs
 * with their TSC offsets, the pvtimer area (a second memory slot), the
 * statistics fds and the mailbox. Anything that fails because KVM here is
 * missing or unusable exits with EXIT_SKIP, so a test skips rather than
 * fails on such machines. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <asm/kvm_para.h>

#include <exitless/pvtimer.h>

#include "app.h"

_Static_assert(VMM_MAILBOX_GPA + sizeof(struct vmm_mailbox) <= VMM_KSTACK_BASE,
	       "the mailbox runs into the kernel stacks");
_Static_assert(sizeof(struct vmm_percpu) <= 256,
	       "the per-vCPU block eats the kernel stack");
/* the stubs (entry.S) address the per-vCPU block by these offsets */
_Static_assert(offsetof(struct vmm_percpu, seq) == VMM_PCPU_SEQ &&
		       offsetof(struct vmm_percpu, lapic_count) == VMM_PCPU_LAPIC_COUNT &&
		       offsetof(struct vmm_percpu, pv_count) == VMM_PCPU_PV_COUNT &&
		       offsetof(struct vmm_percpu, lapic_tsc) == VMM_PCPU_LAPIC_TSC &&
		       offsetof(struct vmm_percpu, pv_tsc) == VMM_PCPU_PV_TSC &&
		       offsetof(struct vmm_percpu, dev_count) == VMM_PCPU_DEV_COUNT &&
		       offsetof(struct vmm_percpu, dev_tsc) == VMM_PCPU_DEV_TSC &&
		       offsetof(struct vmm_percpu, pv_eoi) == VMM_PCPU_PV_EOI &&
		       offsetof(struct vmm_percpu, eoi_skipped) == VMM_PCPU_EOI_SKIPPED,
	       "VMM_PCPU_* and struct vmm_percpu disagree");
_Static_assert(VMM_PCPU_PV_EOI % 4 == 0, "KVM wants the PV EOI word 4-aligned");
/* the guest's copies of KVM's constants (it cannot include asm/kvm_para.h) */
_Static_assert(VMM_MSR_KVM_PV_EOI_EN == MSR_KVM_PV_EOI_EN &&
		       VMM_KVM_FEATURE_PV_EOI == KVM_FEATURE_PV_EOI,
	       "vmm_abi.h's KVM constants are wrong");

#define EXIT_SKIP 77
/* pingpong configurations whose guest halts and expects the exit */
#define PP_NEEDS_HLT_EXITS                                                    \
	((1u << VMM_PP_HALT) | (1u << VMM_PP_HOST_POLL) |                     \
	 (1u << VMM_PP_HOST_POLL_SMART))

static void kvm_open(struct ctx *c)
{
	int v;

	c->vmm.kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (c->vmm.kvm < 0) {
		fprintf(stderr, "exitless-vmm: /dev/kvm: %s\n", strerror(errno));
		exit(EXIT_SKIP);
	}
	v = ioctl(c->vmm.kvm, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION ||
	    ioctl(c->vmm.kvm, KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP) <= 0 ||
	    ioctl(c->vmm.kvm, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD) <= 0 ||
	    ioctl(c->vmm.kvm, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD) <= 0 ||
	    ioctl(c->vmm.kvm, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) <= 0) {
		fprintf(stderr, "exitless-vmm: KVM lacks a needed capability\n");
		exit(EXIT_SKIP);
	}
	c->vmm.vm = ioctl(c->vmm.kvm, KVM_CREATE_VM, 0);
	if (c->vmm.vm < 0) {
		fprintf(stderr, "exitless-vmm: KVM_CREATE_VM: %s\n",
			strerror(errno));
		exit(EXIT_SKIP);
	}
}

/* KVM takes KVM_CAP_X86_DISABLE_EXITS only before the first vCPU exists,
 * for the whole VM. So a pingpong run sets it only when none of its
 * configurations needs HLT exits; otherwise the no-hlt-exit phase asks
 * the running VM, and reports the refusal (pingpong.c). */
static void maybe_disable_hlt_exits(struct ctx *c)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_X86_DISABLE_EXITS,
				      .args = { KVM_X86_DISABLE_EXITS_HLT } };
	int have;

	if (c->o.workload != WORKLOAD_PINGPONG ||
	    !(c->o.pp_configs & (1u << VMM_PP_NO_HLT_EXIT)) ||
	    (c->o.pp_configs & PP_NEEDS_HLT_EXITS))
		return;
	have = ioctl(c->vmm.vm, KVM_CHECK_EXTENSION, KVM_CAP_X86_DISABLE_EXITS);
	if (have <= 0 || !(have & KVM_X86_DISABLE_EXITS_HLT))
		c->no_hlt_exit = -EOPNOTSUPP;
	else if (ioctl(c->vmm.vm, KVM_ENABLE_CAP, &cap) < 0)
		c->no_hlt_exit = -errno;
	else
		c->no_hlt_exit = 1;
}

/* The agent and the device compare guest deadlines with the host TSC:
 * read each vCPU's offset, as a VMM must on stock KVM (it is 0 only on
 * hosts like this nested one). */
static void read_tsc_offsets(struct ctx *c)
{
	int vm_khz = ioctl(c->vmm.vm, KVM_GET_TSC_KHZ, 0);

	/* the VM's rate before any KVM_SET_TSC_KHZ is the host's */
	c->host_khz = vm_khz > 0 ? (uint32_t)vm_khz : c->tsc_khz;
	for (int i = 0; i < c->o.vcpus; i++) {
		int rc = vcpu_tsc_offset(&c->vcpu[i], &c->tsc_offset[i]);

		if (rc) {
			fprintf(stderr, "exitless-vmm: vCPU %d: cannot read its "
				"TSC offset (KVM_GET_DEVICE_ATTR KVM_VCPU_TSC_CTRL/"
				"KVM_VCPU_TSC_OFFSET): %s; this KVM does not say "
				"how guest and host TSC relate\n",
				i, strerror(-rc));
			exit(EXIT_SKIP);
		}
	}
}

static void setup_area(struct ctx *c)
{
	/* a sealed memfd the library makes, one slot per vCPU, mapped as a
	 * second memory slot right after RAM */
	PVTIMER_AREA_OPTS(ao, .slot_count = (uint32_t)c->o.vcpus,
			  .tsc_khz = c->tsc_khz,
			  .margin_tsc = c->o.margin_ns * c->tsc_khz / 1000000,
			  .features = PVTIMER_F_FIRED_TSC);
	int rc = pvtimer_area_new(&ao, &c->area);

	if (rc)
		die("pvtimer_area_new", -rc);
	rc = mem_add_region(&c->vmm, VMM_AREA_GPA, pvtimer_area_mem(c->area),
			    pvtimer_area_bytes(c->area));
	if (rc)
		die("mapping the pvtimer area", -rc);
}

static void setup_mailbox(struct ctx *c)
{
	struct vmm_mailbox *mb = mem_gpa(&c->vmm, VMM_MAILBOX_GPA, sizeof(*mb));
	uint64_t arrays, avail = (VMM_RAM_SIZE - VMM_SAMPLES_GPA) / 8;

	c->mb = mb;
	mb->magic = VMM_MAILBOX_MAGIC;
	mb->version = VMM_MAILBOX_VERSION;
	mb->timers = c->o.timers;
	mb->configs = c->o.configs;
	mb->min_us = c->o.min_us;
	mb->max_us = c->o.max_us;
	mb->tsc_khz = c->tsc_khz;
	mb->idle_policy = c->o.idle_policy;
	mb->halt_cost_ns = c->o.halt_cost_ns;
	mb->poll_slack_ns = c->o.poll_slack_ns;
	mb->backstop_us = c->o.backstop_us;
	mb->deadline_poll = (uint32_t)c->o.deadline_poll;
	/* where the guest would use PV EOI; it does only if KVM's CPUID
	 * (vcpu_setup) offers it, which --no-pv-eoi withholds */
	mb->pv_eoi_cfgs = 1u << VMM_CFG_EXITLESS;
	if (c->o.pv_eoi_plain)
		mb->pv_eoi_cfgs |= 1u << VMM_CFG_PLAIN;
	mb->seed = c->o.seed;
	mb->samples_gpa = VMM_SAMPLES_GPA;
	mb->vcpus = (uint32_t)c->o.vcpus;
	mb->test_fault = c->o.test_fault;
	mb->workload = c->o.workload == WORKLOAD_PINGPONG ?
			       VMM_WORKLOAD_PINGPONG : VMM_WORKLOAD_TIMER;
	mb->repeats = c->o.nhp ? (uint32_t)c->o.nhp : 1;
	mb->pp_rounds = c->o.rounds;
	mb->pp_warmup = c->o.warmup;
	mb->pp_services = c->o.nservices;
	mb->pp_configs = c->o.pp_configs;
	if (c->o.workload == WORKLOAD_PINGPONG)
		arrays = 3ull * c->o.nservices * VMM_PP_CFGS;
	else
		arrays = (uint64_t)VMM_CFG_COUNT * (uint64_t)c->o.vcpus *
			 mb->repeats;
	mb->samples_max = avail / arrays;
	if (c->o.workload == WORKLOAD_PINGPONG ?
		    c->o.rounds > mb->samples_max :
		    c->o.timers > mb->samples_max) {
		fprintf(stderr, "exitless-vmm: at most %" PRIu64 " %s\n",
			mb->samples_max,
			c->o.workload == WORKLOAD_PINGPONG ? "rounds" : "timers");
		exit(1);
	}
}

void setup(struct ctx *c)
{
	struct vcpu_cpuid_pv pv = { .area_gpa = VMM_AREA_GPA, .slot = 0 };
	uint64_t entry;
	int rc;

	kvm_open(c);
	maybe_disable_hlt_exits(c);
	rc = irq_init(&c->vmm);
	if (rc)
		die("KVM_CREATE_IRQCHIP", -rc);
	rc = mem_init(&c->vmm, VMM_RAM_SIZE);
	if (rc)
		die("guest RAM", -rc);
	rc = mem_build_page_tables(&c->vmm);
	if (rc)
		die("page tables", -rc);
	rc = loader_load(&c->vmm, c->o.guest, &entry);
	if (rc) {
		fprintf(stderr, "exitless-vmm: loading %s: %s\n", c->o.guest,
			strerror(-rc));
		exit(1);
	}
	for (int i = 0; i < c->o.vcpus; i++) {
		rc = vcpu_create(&c->vmm, i, &c->vcpu[i]);
		if (rc)
			die("KVM_CREATE_VCPU", -rc);
	}
	c->tsc_khz = vcpu_tsc_khz(&c->vcpu[0]);
	if (!c->tsc_khz)
		die("KVM_GET_TSC_KHZ", EINVAL);
	read_tsc_offsets(c);
	setup_area(c);
	pv.area_pages = (uint32_t)(pvtimer_area_bytes(c->area) /
				   PVTIMER_ABI_PAGE_SIZE);
	/* --no-pv-eoi: the guest is not told of PV EOI at all */
	pv.kvm_features_withheld = c->o.pv_eoi ? 0 : 1u << KVM_FEATURE_PV_EOI;
	for (int i = 0; i < c->o.vcpus; i++) {
		pv.slot = (uint32_t)i; /* each vCPU learns its own slot */
		rc = vcpu_setup(&c->vmm, &c->vcpu[i], entry, &pv);
		if (rc == -ENOTSUP) {
			fprintf(stderr, "exitless-vmm: no x2APIC or "
					"TSC-deadline timer\n");
			exit(EXIT_SKIP);
		}
		if (rc)
			die("vCPU set-up", -rc);
		c->kvm_pv_eoi = (c->vcpu[i].kvm_features >>
				 KVM_FEATURE_PV_EOI) & 1;
		rc = stats_open(&c->stats[i], c->vcpu[i].fd, stat_names,
				NSTATS);
		if (rc)
			die("KVM_GET_STATS_FD", -rc);
	}
	setup_mailbox(c);
}

void teardown(struct ctx *c)
{
	for (int i = 0; i < c->o.vcpus; i++) {
		if (c->efd[i] >= 0)
			close(c->efd[i]);
		stats_close(&c->stats[i]);
		vcpu_destroy(&c->vcpu[i]);
	}
	pvtimer_area_destroy(c->area);
	mem_destroy(&c->vmm);
	close(c->vmm.vm);
	close(c->vmm.kvm);
}
