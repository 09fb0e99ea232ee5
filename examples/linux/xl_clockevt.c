// SPDX-License-Identifier: GPL-2.0
/*
 * The per-CPU clock event device. set_next_event arms the CPU's slot with
 * pvtimer_guest_arm(); every positive decision of the helpers means "program
 * the hardware timer at pvtimer_guest_hw_deadline()", which is the one
 * thing this file does with them. One interrupt handler serves the host's
 * injections and the LAPIC fallback (same vector), so it asks both: did
 * the LAPIC expire (pvtimer_guest_on_hw_timer) and what does the slot say
 * (pvtimer_guest_on_interrupt).
 */
#include <linux/cpuhotplug.h>
#include <linux/moduleparam.h>
#include <linux/irq.h>
#include <asm/hw_irq.h>
#include <asm/tsc.h>

#include "xl.h"

DEFINE_PER_CPU(struct xl_cpu, xl_cpus);

static enum cpuhp_state xl_hp_state;

static unsigned int xl_trace;
module_param_named(trace, xl_trace, uint, 0644);
MODULE_PARM_DESC(trace, "debug: print this many timer events on the console");
#define XL_TRACE(c, fmt, ...)                                              \
	do {                                                               \
		if (xl_trace) {                                            \
			xl_trace--;                                        \
			pr_emerg("xl%u %llu " fmt "\n", (c)->cpu,          \
				 xl_rdtsc() / 1000, ##__VA_ARGS__);        \
		}                                                          \
	} while (0)

static void xl_count_reason(u64 *arr, int r)
{
	if (r >= 0 && r < XL_REASONS)
		arr[r]++;
}

/* A positive decision: the hardware timer takes pvtimer_guest_hw_deadline. */
static void xl_program_hw(struct xl_cpu *c)
{
	xl_lapic_program(c, pvtimer_guest_hw_deadline(&c->g));
}

static int xl_set_next_event(unsigned long delta, struct clock_event_device *ced)
{
	struct xl_cpu *c = container_of(ced, struct xl_cpu, ced);
	int r = pvtimer_guest_arm(&c->g, xl_rdtsc() + delta);

	XL_TRACE(c, "arm +%lu -> %d hw %llu sync-now %lld", delta, r,
		 r ? pvtimer_guest_hw_deadline(&c->g) / 1000 : 0,
		 (s64)(pvtimer_guest_sync(&c->g) - xl_rdtsc()));

	if (r == PVTIMER_GUEST_PV) {
		c->n.arm_pv++;
		return 0;
	}
	if (r == PVTIMER_GUEST_BACKSTOP)
		c->n.arm_backstop++;
	else
		xl_count_reason(c->n.arm_fallback, r);
	xl_program_hw(c);
	return 0;
}

/* Shutdown and oneshot-stopped: withdraw the pv arm. The LAPIC is left as
 * it is (stopping it is an exit; a stray expiry is harmless) so the
 * helpers' view of the hardware timer stays true. */
static int xl_set_state_shutdown(struct clock_event_device *ced)
{
	struct xl_cpu *c = container_of(ced, struct xl_cpu, ced);

	XL_TRACE(c, "shutdown");

	pvtimer_guest_cancel(&c->g);
	return 0;
}

static int xl_set_state_oneshot(struct clock_event_device *ced)
{
	return 0;
}

/* The LAPIC part of an interrupt; returns true when timers are due.
 * *@lapic says whether the LAPIC raised it (an expiry of its own, whatever
 * it then decided): only an interrupt neither side explains is spurious. */
static bool xl_irq_hw(struct xl_cpu *c, u64 now, bool *lapic)
{
	int r;

	*lapic = xl_lapic_expired(c, now);
	if (!*lapic)
		return false;
	if ((s64)(now - c->lapic_deadline) < 0) {
		/* count mode ran out before the TSC did: the remainder */
		c->n.hw_early++;
		xl_lapic_program(c, c->lapic_deadline);
		return false;
	}
	r = pvtimer_guest_on_hw_timer(&c->g);
	XL_TRACE(c, "hw -> %d hw %llu", r, pvtimer_guest_hw_deadline(&c->g) / 1000);
	switch (r) {
	case PVTIMER_GUEST_HW_EXPIRED:
		c->n.hw_expired++;
		return true;
	case PVTIMER_GUEST_HW_IGNORE:
		c->n.hw_ignore++;
		return false;
	case PVTIMER_GUEST_BACKSTOP:
		c->n.hw_backstop++;
		xl_program_hw(c);
		return false;
	default: /* the host stopped keeping its promise: D on the LAPIC */
		xl_count_reason(c->n.hw_fallback, r);
		xl_program_hw(c);
		return false;
	}
}

irqreturn_t xl_irq(int irq, void *dev_id)
{
	struct xl_cpu *c = this_cpu_ptr(&xl_cpus);
	bool run, hw, lapic;
	int r;

	if (dev_id != c) {
		c->n.wrong_cpu_irqs++;
		return IRQ_HANDLED;
	}
	/* Not (or no longer) the tick device: the LAPIC and the slot belong
	 * to someone else now (unbind swaps devices with interrupts off). */
	c->n.irqs++;
	if (!c->registered || clockevent_state_detached(&c->ced)) {
		c->n.irq_unbound++;
		return IRQ_HANDLED;
	}
	hw = run = xl_irq_hw(c, xl_rdtsc(), &lapic);
	r = pvtimer_guest_on_interrupt(&c->g);
	XL_TRACE(c, "irq hw %d pv %d lapic_on %d at %llu", hw, r, c->lapic_on,
		 c->lapic_deadline / 1000);
	switch (r) {
	case PVTIMER_GUEST_IRQ_EXPIRED:
		c->n.irq_expired++;
		run = true;
		break;
	case PVTIMER_GUEST_IRQ_HANDBACK:
		c->n.irq_handback++;
		xl_program_hw(c);
		break;
	case PVTIMER_GUEST_IRQ_EARLY:
		c->n.irq_early++;
		xl_program_hw(c);
		break;
	default:
		if (!lapic)
			c->n.irq_spurious++;
		break;
	}
	if (run && c->ced.event_handler)
		c->ced.event_handler(&c->ced);
	return IRQ_HANDLED;
}

/* cpuhp startup, on @cpu: become its tick device when its vector is
 * affine to it and its slot validates; otherwise the lapic keeps it. */
int xl_clockevt_online(unsigned int cpu)
{
	struct xl_cpu *c = this_cpu_ptr(&xl_cpus);
	struct irq_data *d;
	struct irq_cfg *cfg;
	unsigned long flags;
	int rc;

	if (!c->irq)
		return 0;
	d = irq_get_irq_data(c->irq);
	cfg = d ? irqd_cfg(d) : NULL;
	if (!cfg || !cpumask_test_cpu(cpu, irq_data_get_effective_affinity_mask(d))) {
		pr_info("exitless_pvtimer: cpu%u: vector not affine, lapic stays\n", cpu);
		return 0;
	}
	c->vector = cfg->vector; /* re-read: a managed irq moves on hotplug */
	rc = pvtimer_guest_init(&c->g, xl_area, xl_area_size, cpu, c->vector);
	if (rc) {
		pr_info("exitless_pvtimer: cpu%u: slot refused (%d), lapic stays\n",
			cpu, rc);
		return 0;
	}
	pvtimer_guest_set_backstop(&c->g, xl_backstop_tsc);
	c->bound = true;
	c->lapic_on = false;
	memset(&c->ced, 0, sizeof(c->ced));
	c->ced.name = XL_NAME;
	c->ced.features = CLOCK_EVT_FEAT_ONESHOT;
	c->ced.rating = xl_rating;
	c->ced.cpumask = cpumask_of(cpu);
	c->ced.irq = -1;
	c->ced.set_next_event = xl_set_next_event;
	c->ced.set_state_shutdown = xl_set_state_shutdown;
	c->ced.set_state_oneshot = xl_set_state_oneshot;
	c->ced.set_state_oneshot_stopped = xl_set_state_shutdown;
	/* No owner: an installed device pins its owner, and then rmmod could
	 * never reach the exit that gives the tick back. */
	local_irq_save(flags);
	c->registered = true;
	clockevents_config_and_register(&c->ced, tsc_khz * 1000ul,
					max(tsc_khz / 1000u, 64u),
					10ul * tsc_khz * 1000ul);
	/* Registering displaced the lapic; if it became the broadcast
	 * device, installing it shut it down and wiped what we had just
	 * armed on the LAPIC inside the same call. Arm it again. */
	if (c->lapic_on) {
		c->n.lapic_rearm_after_register++;
		xl_lapic_program(c, c->lapic_deadline);
	}
	local_irq_restore(flags);
	return 0;
}

/* cpuhp teardown, on @cpu (CPU going down, or module unload): give the
 * tick back to the best remaining device, then let go of slot and LAPIC. */
int xl_clockevt_offline(unsigned int cpu)
{
	struct xl_cpu *c = this_cpu_ptr(&xl_cpus);
	unsigned long flags;
	int rc;

	if (!c->registered)
		return 0;
	rc = clockevents_unbind_device(&c->ced, cpu);
	if (rc) {
		pr_err("exitless_pvtimer: cpu%u: no device takes the tick back (%d)\n",
		       cpu, rc);
		return rc;
	}
	local_irq_save(flags);
	c->registered = false;
	pvtimer_guest_cancel(&c->g);
	xl_lapic_release(c);
	c->bound = false;
	local_irq_restore(flags);
	return 0;
}

int xl_clockevt_start(void)
{
	int rc = cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, "exitless/pvtimer:online",
				   xl_clockevt_online, xl_clockevt_offline);

	if (rc < 0)
		return rc;
	xl_hp_state = rc;
	return 0;
}

void xl_clockevt_stop(void)
{
	cpuhp_remove_state(xl_hp_state);
}
