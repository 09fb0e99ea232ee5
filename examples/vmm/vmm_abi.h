/* SPDX-License-Identifier: MIT */
/* The contract between exitless-vmm and its guest payload: the guest
 * physical memory map, the I/O ports the guest talks through and the
 * mailbox both sides read. Freestanding (the guest includes it), fixed-width
 * types only, like the pvtimer ABI header. */
#ifndef EXITLESS_VMM_ABI_H
#define EXITLESS_VMM_ABI_H

#ifndef __ASSEMBLER__
#include <stdint.h>
#endif

/* Guest physical memory map. Everything below RAM_SIZE is one memory slot;
 * the pvtimer area is a second slot backed by its own memfd. The page
 * tables identity-map the first GiB, all user-accessible, so ring 3
 * reaches the mailbox, its samples and the pvtimer area: 2 MiB pages,
 * except the first 2 MiB, mapped with 4 KiB pages (VMM_PT_GPA) so that
 * page 0 stays unmapped and a NULL load, store or call faults at once. */
#define VMM_VCPUS_MAX 2
#define VMM_GDT_GPA 0x1000
#define VMM_TSS_GPA(id) (0x2000 + 0x80 * (id))
#define VMM_PML4_GPA 0x3000
#define VMM_PDPT_GPA 0x4000
#define VMM_PD_GPA 0x5000
#define VMM_PT_GPA 0x6000
#define VMM_MAILBOX_GPA 0x8000
/* vCPU i's ring-0 stack is the 64 KiB at VMM_KSTACK_BASE + i * 64 KiB; its
 * lowest bytes hold the vCPU's struct vmm_percpu, so the interrupt stubs
 * find it from rsp with one `and` (no GS base, no per-vCPU IDT). The stack
 * top is also TSS.rsp0. */
#define VMM_KSTACK_BASE 0x10000
#define VMM_KSTACK_SIZE 0x10000
#define VMM_KSTACK_TOP(id) (VMM_KSTACK_BASE + VMM_KSTACK_SIZE * ((id) + 1))
#define VMM_PERCPU_GPA(id) (VMM_KSTACK_BASE + VMM_KSTACK_SIZE * (id))
/* vCPU i's ring-3 stack: 64 KiB below VMM_USTACK_BASE + (i + 1) * 64 KiB */
#define VMM_USTACK_BASE 0x40000
#define VMM_USTACK_SIZE 0x10000
#define VMM_PAYLOAD_GPA 0x100000
#define VMM_PAYLOAD_MAX 0x100000 /* payload + bss end below 2 MiB */
#define VMM_SAMPLES_GPA 0x200000
#define VMM_RAM_SIZE 0x1000000 /* 16 MiB */
#define VMM_AREA_GPA 0x1000000 /* pvtimer area, right after RAM */

/* Selectors of the flat GDT the VMM builds. */
#define VMM_SEL_KCODE 0x08
#define VMM_SEL_KDATA 0x10
#define VMM_SEL_UDATA 0x1b /* 0x18 | RPL 3 */
#define VMM_SEL_UCODE 0x23 /* 0x20 | RPL 3 */
#define VMM_SEL_TSS(id) (0x28 + 16 * (id)) /* 16-byte descriptors */

/* struct vmm_percpu offsets, for the stubs in entry.S */
#define VMM_PCPU_SEQ 0
#define VMM_PCPU_LAPIC_COUNT 8
#define VMM_PCPU_PV_COUNT 16
#define VMM_PCPU_LAPIC_TSC 24
#define VMM_PCPU_PV_TSC 32
#define VMM_PCPU_DEV_COUNT 40
#define VMM_PCPU_DEV_TSC 48
#define VMM_PCPU_PV_EOI 56
#define VMM_PCPU_EOI_SKIPPED 64

/* Exceptions that push an error code (#DF #TS #NP #SS #GP #PF #AC #CP). */
#define VMM_EXC_HAS_ERROR(v)                                                  \
	((v) == 8 || ((v) >= 10 && (v) <= 14) || (v) == 17 || (v) == 21)

/* Vectors. */
#define VMM_VEC_PVTIMER 0x41
#define VMM_VEC_DEVICE 0x42 /* pingpong: the device's completion */
#define VMM_VEC_LAPIC 0xec
#define VMM_VEC_SPURIOUS 0xff

/* Ports. Ring 3 cannot reach them on this KVM (IOPL 3 is not honoured:
 * `out` in ring 3 raises #GP), so ring 3 writes them through a trap. */
#define VMM_PORT_CONSOLE 0x3f8 /* one byte of text */
#define VMM_PORT_PHASE 0x500   /* VMM_PHASE_BEGIN|config or END|config */
#define VMM_PORT_DONE 0x501    /* guest finished; value 0 = success */
#define VMM_PORT_FATAL 0x502   /* unexpected exception; value = vCPU,
				* see mailbox fatal[vCPU] */

#define VMM_PORT_PP_PHASE 0x503 /* pingpong: BEGIN|RECORD|END | config
				 * | service index << 8 */
#define VMM_PP_RECORD 0x40u /* warm-up over: the recorded round trips
			     * start now */

/* Timer workload: value = BEGIN|END | config | repetition << 8 (one
 * repetition per host halt-poll mode, VMM_HP_REPEATS_MAX at most). */
#define VMM_PHASE_BEGIN 0x00u
#define VMM_PHASE_END 0x80u
#define VMM_PHASE_REP_SHIFT 8
#define VMM_HP_REPEATS_MAX 3u

/* Workloads. */
#define VMM_WORKLOAD_TIMER 0u
#define VMM_WORKLOAD_PINGPONG 1u

/* Pingpong configurations, in the order the guest runs them (per service
 * time). How the guest waits is the only thing it knows of each: halt
 * (HALT, HOST_POLL, NO_HLT_EXIT, HOST_POLL_SMART: the host side differs)
 * or poll with a libidlepoll policy first (FIXED100, SMART, HALTPOLL). */
#define VMM_PP_HALT 0u
#define VMM_PP_HOST_POLL 1u
#define VMM_PP_FIXED100 2u
#define VMM_PP_SMART 3u
#define VMM_PP_HALTPOLL 4u
#define VMM_PP_NO_HLT_EXIT 5u
#define VMM_PP_HOST_POLL_SMART 6u
#define VMM_PP_CFGS 7u
#define VMM_PP_SVC_MAX 8u

/* Configurations, in the order the guest runs them. */
#define VMM_CFG_PLAIN 0u    /* LAPIC TSC-deadline + hlt, both via traps */
#define VMM_CFG_EXITLESS 1u /* pvtimer + agent + idlepoll */
#define VMM_CFG_COUNT 2u

/* Trap numbers: ring 3 executes `ud2` with the number in rax and the
 * argument in rdi; the #UD handler performs the privileged operation. */
#define VMM_TRAP_TSC_DEADLINE 1 /* wrmsr IA32_TSC_DEADLINE, rdi */
#define VMM_TRAP_HALT 2 /* hlt unless percpu seq != rdi; rax = 1 if halted */
#define VMM_TRAP_OUT 3  /* outl: port in rdi bits 47..32, value in 31..0 */
/* cpuid leaf rdi (subleaf 0): rax = ebx:eax, rdx = edx:ecx. A trap because
 * ring-3 CPUID on this nested KVM is answered by the outer hypervisor
 * (it returned this host's own CPUID, not the VMM's KVM_SET_CPUID2 table). */
#define VMM_TRAP_CPUID 4
/* KVM PV EOI (KVM_FEATURE_PV_EOI): rdi 1 points MSR_KVM_PV_EOI_EN at this
 * vCPU's struct vmm_percpu.pv_eoi (cleared first), rdi 0 turns it off. Only
 * when CPUID 0x40000001 advertises the feature. */
#define VMM_TRAP_PV_EOI 5

/* KVM's paravirtual interface (Documentation/virt/kvm/x86/{cpuid,msr}.rst) */
#define VMM_KVM_CPUID_SIG_EBX 0x4b4d564bu /* "KVMKVMKVM\0\0\0" */
#define VMM_KVM_CPUID_SIG_ECX 0x564b4d56u
#define VMM_KVM_CPUID_SIG_EDX 0x0000004du
#define VMM_KVM_FEATURE_PV_EOI 6 /* bit of CPUID 0x40000001 EAX */
#define VMM_MSR_KVM_PV_EOI_EN 0x4b564d04u

#ifndef __ASSEMBLER__
/* Fallback reasons are PVTIMER_GUEST_FALLBACK_* (1..7). */
#define VMM_REASONS 8

/** Per vCPU, at VMM_PERCPU_GPA(id): written by the interrupt stubs, read
 * by that vCPU's ring 3. */
struct vmm_percpu {
	uint64_t seq;         /* +1 per timer interrupt: the halt race check */
	uint64_t lapic_count; /* LAPIC timer interrupts */
	uint64_t pv_count;    /* pvtimer interrupts */
	uint64_t lapic_tsc;   /* TSC at the last LAPIC timer interrupt */
	uint64_t pv_tsc;      /* TSC at the last pvtimer interrupt */
	uint64_t dev_count;   /* device completion interrupts */
	uint64_t dev_tsc;     /* TSC at the last completion interrupt */
	/* KVM PV EOI word (MSR_KVM_PV_EOI_EN points here while enabled):
	 * KVM sets bit 0 (it writes the low byte) when it injects an
	 * interrupt whose EOI the guest may skip, and clears it at the next
	 * exit; the stubs test-and-clear it and skip the EOI write if it was
	 * set. 8-byte field, KVM needs 4-byte alignment. */
	uint64_t pv_eoi;
	uint64_t eoi_skipped; /* EOI writes the stubs skipped (PV EOI) */
};

/** What the guest did in one pingpong phase; written by the guest only. */
struct vmm_pp_counters {
	uint64_t rounds;  /* round trips recorded (after the warm-up) */
	uint64_t run_tsc; /* TSC ticks over the recorded round trips */
	uint64_t poll_tsc; /* ticks spent polling in ring 3 */
	uint64_t polled;  /* waits the poll ended */
	uint64_t hlt;     /* hlt instructions executed */
	uint64_t traps;   /* ud2 traps into ring 0 */
	uint64_t skipped; /* 1: the host refused the configuration */
	uint64_t reserved;
};

/** The request line: written by the guest (one store per request),
 * read by the VMM's device thread. A cache line of its own. */
struct vmm_pp_request {
	uint64_t seq; /* +1 per request */
	uint64_t reserved[7];
};

/** What the guest did in one configuration; written by the guest only. */
struct vmm_counters {
	uint64_t timers;       /* timers that fired and were recorded */
	uint64_t tsc_wrmsr;    /* IA32_TSC_DEADLINE writes (each a trap) */
	uint64_t eoi_wrmsr;    /* x2APIC EOI writes (one per interrupt) */
	uint64_t hlt;          /* hlt instructions executed */
	uint64_t traps;        /* ud2 traps into ring 0 */
	uint64_t pv_arms;      /* arms the pvtimer path took */
	uint64_t fallbacks;    /* timers that ended on the LAPIC timer */
	uint64_t reasons[VMM_REASONS]; /* fallbacks per reason */
	uint64_t polled;       /* waits that ended while polling */
	uint64_t handbacks;    /* pvtimer interrupts meaning "re-arm" */
	uint64_t spurious;     /* pvtimer interrupts of an old generation */
	uint64_t poll_ns;      /* time spent polling */
	uint64_t early;        /* interrupts seen before their deadline */
	uint64_t pv_fired;     /* timers ended by the pvtimer interrupt */
	uint64_t lapic_fired;  /* timers ended by the LAPIC timer */
	uint64_t backstop_arms; /* LAPIC programmed as the liveness backstop */
	uint64_t backstop_irqs; /* LAPIC interrupts the backstop rule handled */
	uint64_t backstop_fired; /* timers the backstop delivered (host had not) */
	uint64_t eoi_skipped;  /* interrupts whose EOI PV EOI let us skip */
	uint64_t deadline_polls; /* waits polled to the deadline, no halt
				  * planned (closer than H or the window) */
	uint64_t lapic_cancels; /* IA32_TSC_DEADLINE writes of 0 (in tsc_wrmsr) */
	uint64_t pv_eoi;       /* 1: this vCPU ran the configuration with
				* PV EOI on */
	uint64_t reserved[4];
};

/** An unexpected exception, as the vCPU that took it saw it; written by
 * that vCPU's ring 0 before it writes VMM_PORT_FATAL. */
struct vmm_fatal {
	uint64_t valid; /* 1 once written */
	uint64_t vector;
	uint64_t error; /* error code, 0 for vectors without one */
	uint64_t rip, cs, rflags, rsp, ss;
	uint64_t cr2; /* faulting address of a #PF */
};

/** At VMM_MAILBOX_GPA. The first block is written by the VMM before the
 * vCPU starts, the rest by the guest. */
struct vmm_mailbox {
	uint32_t magic; /* VMM_MAILBOX_MAGIC */
	uint32_t version;
	uint32_t timers;      /* timers per configuration */
	uint32_t configs;     /* bit VMM_CFG_*: run it */
	uint32_t min_us;      /* deadline range, from arm */
	uint32_t max_us;
	uint32_t tsc_khz;
	uint32_t idle_policy; /* IDLEPOLL_POLICY_* */
	uint64_t halt_cost_ns;
	uint64_t poll_slack_ns; /* how far past the deadline polling may go */
	uint64_t seed;
	uint64_t samples_gpa; /* int64 lateness (TSC) per timer; array
			       * ((rep * vcpus + vcpu) * VMM_CFG_COUNT + cfg);
			       * pingpong: per request, three arrays per
			       * row r = svc * VMM_PP_CFGS + cfg: round
			       * trip, poll and cycle time (TSC) at 3r,
			       * 3r + 1, 3r + 2 */
	uint64_t samples_max; /* entries per (vCPU, config) array */
	uint32_t vcpus;       /* vCPUs running the workload together */
	uint32_t test_fault;  /* test hook: 0, or 1 + the vCPU that calls
			       * through a NULL pointer in ring 3 when the
			       * exitless configuration begins */
	uint32_t workload;    /* VMM_WORKLOAD_* */
	uint32_t repeats;     /* timer workload: runs per configuration */
	uint32_t pp_rounds;   /* pingpong: round trips recorded per phase */
	uint32_t pp_warmup;   /* pingpong: round trips before recording */
	uint32_t pp_services; /* pingpong: service times (the host knows them) */
	uint32_t pp_configs;  /* pingpong: bit VMM_PP_*: run it */
	uint32_t pp_skip;     /* host-written at a pingpong phase's BEGIN: the
			       * host refused it, skip to END */
	uint32_t backstop_us; /* ABI liveness backstop B in µs; 0: off */
	uint32_t deadline_poll; /* 1: poll to a deadline closer than H */
	uint32_t pv_eoi_cfgs; /* bit VMM_CFG_*: use PV EOI in it (if KVM's
			       * CPUID offers it) */
	uint32_t reserved0;
	/* guest-written from here */
	uint32_t barrier[16]; /* arrivals per rendezvous point */
	struct vmm_counters cfg[VMM_VCPUS_MAX][VMM_CFG_COUNT];
	struct vmm_fatal fatal[VMM_VCPUS_MAX]; /* per vCPU */
	struct vmm_counters rep[VMM_HP_REPEATS_MAX - 1][VMM_VCPUS_MAX]
			       [VMM_CFG_COUNT]; /* repetitions 1.. */
	struct vmm_pp_counters pp[VMM_PP_SVC_MAX][VMM_PP_CFGS];
	struct vmm_pp_request req __attribute__((aligned(64)));
};

#endif /* !__ASSEMBLER__ */

#define VMM_MAILBOX_MAGIC 0x584d4d56u /* "VMMX" */
#define VMM_MAILBOX_VERSION 5u

#endif /* EXITLESS_VMM_ABI_H */
