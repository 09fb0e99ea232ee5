/* SPDX-License-Identifier: GPL-2.0 */
/*
 * exitless_pvtimer: the Linux guest side of the exitless pvtimer ABI.
 *
 * One clock_event_device per CPU that arms the CPU's slot of a pvtimer
 * area (pvtimer_guest.h, unchanged) and falls back to the local APIC timer,
 * which this module programs itself with the CPU's pvtimer vector (the
 * kernel's lapic device is detached once ours is the tick device). The
 * area is BAR2 of an ivshmem PCI device (docs/pvtimer-pci.md); MSI-X vector
 * i is affine to CPU i and serves both the host's injections and the
 * LAPIC fallback, so one handler sees every timer interrupt of its CPU.
 */
#ifndef XL_H
#define XL_H

#include <linux/clockchips.h>
#include <linux/interrupt.h>
#include <linux/kernel.h>
#include <linux/percpu.h>
#include <linux/types.h>

#include <exitless/pvtimer_guest.h>

#define XL_NAME "exitless-pvtimer"

/* Counters, per CPU; debugfs sums them. Indexes of the reason arrays are
 * the PVTIMER_GUEST_* decision values (0..8). */
#define XL_REASONS 9
struct xl_counters {
	u64 arm_pv;                /* arms the host holds, no hw programming */
	u64 arm_backstop;          /* arms the host holds + backstop programmed */
	u64 arm_fallback[XL_REASONS]; /* arms on the LAPIC, by reason */
	u64 halt_fallback[XL_REASONS]; /* before_halt decisions, by reason */
	u64 irqs;                  /* handler entries */
	u64 irq_unbound;           /* ... while not our tick device */
	u64 irq_expired;           /* pv interrupt at/after the deadline */
	u64 irq_handback;
	u64 irq_early;
	u64 irq_spurious;
	u64 hw_expired;            /* LAPIC expiries that ran timers */
	u64 hw_ignore;             /* backstops with nothing left to back */
	u64 hw_backstop;           /* backstop re-armed (host alive) */
	u64 hw_fallback[XL_REASONS]; /* backstop found the host gone */
	u64 hw_early;              /* LAPIC count ran out before the TSC */
	u64 lapic_writes;          /* LAPIC programmings (exits under KVM) */
	u64 lapic_rearm_after_register; /* the broadcast pitfall repaired */
	u64 idle_enters;
	u64 idle_polled;           /* woken while polling */
	u64 idle_halts;
	u64 idle_poll_ns;
	u64 idle_ns;
	u64 wrong_cpu_irqs;        /* vector i arrived on a CPU other than i */
};

struct xl_cpu {
	struct pvtimer_guest g;
	struct clock_event_device ced;
	struct xl_counters n;
	struct idlepoll_cpu *ip;   /* NULL: no idle policy (poll none) */
	void *ip_mem;
	u64 lapic_deadline;        /* TSC the LAPIC was programmed for */
	unsigned int cpu;
	int irq;                   /* Linux irq of MSI-X vector cpu, or 0 */
	u8 vector;                 /* its APIC vector on this CPU */
	bool lapic_on;             /* the LAPIC will raise `vector` */
	bool bound;                /* pvtimer_guest_init() succeeded */
	bool registered;           /* ced is (was) registered */
};

DECLARE_PER_CPU(struct xl_cpu, xl_cpus);

/* xl_main.c: module parameters as the rest of the module uses them. */
extern u64 xl_backstop_tsc;
extern unsigned int xl_rating;
extern void *xl_area;
extern u64 xl_area_size;

/* xl_pci.c */
int xl_pci_register(void);
void xl_pci_unregister(void);

/* xl_calib.c: the guest half of the TSC calibration handshake. */
void xl_calib_run(void *area, u64 area_size);

/* xl_clockevt.c */
int xl_clockevt_online(unsigned int cpu);
int xl_clockevt_offline(unsigned int cpu);
irqreturn_t xl_irq(int irq, void *dev_id);
int xl_clockevt_start(void);
void xl_clockevt_stop(void);

/* xl_lapic.c: the hardware timer, programmed with this CPU's vector. */
int xl_lapic_calibrate(void);
void xl_lapic_program(struct xl_cpu *c, u64 deadline_tsc);
bool xl_lapic_expired(struct xl_cpu *c, u64 now);
void xl_lapic_release(struct xl_cpu *c);

/* xl_idle.c */
int xl_idle_start(void);
void xl_idle_stop(void);
bool xl_idle_active(void);

/* xl_debugfs.c */
void xl_debugfs_start(void);
void xl_debugfs_stop(void);

static inline u64 xl_rdtsc(void)
{
	return PVTIMER_GUEST_READ_TSC();
}

#endif /* XL_H */
