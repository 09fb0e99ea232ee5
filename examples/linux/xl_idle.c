// SPDX-License-Identifier: GPL-2.0
/*
 * A cpuidle driver with one state: poll for libidlepoll's window (bounded
 * by the next timer), then re-check the pvtimer promise
 * (pvtimer_guest_before_halt: a host that went late or stopped since the
 * arm makes us program the LAPIC first) and halt. The period is reflected
 * into the policy. Registered only when no other driver owns the idle path
 * (a module cannot add a governor: the core's governor picks our only
 * state). Parameters: idle_policy=smart|haltpoll|kvm|fixed|none,
 * halt_cost_ns (the H of docs/idlepoll.md), cpuidle=0 to leave idle alone.
 */
#include <linux/cpuidle.h>
#include <linux/module.h>
#include <linux/sched/clock.h>
#include <linux/sched/idle.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>

#include <exitless/idlepoll.h>

#include "xl.h"

static char *idle_policy = "smart";
module_param(idle_policy, charp, 0444);
MODULE_PARM_DESC(idle_policy, "poll policy: smart, haltpoll, kvm, fixed or none");
static ulong halt_cost_ns = 20000;
module_param(halt_cost_ns, ulong, 0444);
MODULE_PARM_DESC(halt_cost_ns, "cost of one halt (exit + wake-up) the policy weighs a poll against");
static bool cpuidle = true;
module_param(cpuidle, bool, 0444);
MODULE_PARM_DESC(cpuidle, "register the poll-then-halt cpuidle driver");

static bool xl_idle_registered;

static void xl_halt(struct xl_cpu *c)
{
	int r;

	if (c->registered && !clockevent_state_detached(&c->ced)) {
		r = pvtimer_guest_before_halt(&c->g);
		if (r != PVTIMER_GUEST_PV) {
			if (r > 0 && r < XL_REASONS)
				c->n.halt_fallback[r]++;
			xl_lapic_program(c, pvtimer_guest_hw_deadline(&c->g));
		}
	}
	c->n.idle_halts++;
	native_safe_halt(); /* sti; hlt: returns with interrupts on */
}

static int xl_idle_enter(struct cpuidle_device *dev,
			 struct cpuidle_driver *drv, int index)
{
	struct xl_cpu *c = this_cpu_ptr(&xl_cpus);
	u64 t0 = local_clock(), window = 0, next = IDLEPOLL_NO_TIMER, t;
	bool polled = false;

	c->n.idle_enters++;
	if (c->ip) {
		if (c->registered) {
			s64 left = ktime_to_ns(c->ced.next_event) - ktime_get_ns();

			next = t0 + (left > 0 ? left : 1);
		}
		window = idlepoll_select(c->ip, t0, next);
	}
	if (window) {
		local_irq_enable();
		/* the poll's cycles are burnt anyway: spend them on the upkeep
		 * the next select needs (bounded chunks; only this CPU's idle
		 * path touches c->ip, so the interrupts we allow do not) */
		while (!need_resched() && local_clock() - t0 < window)
			if (idlepoll_work(c->ip) <= 0)
				cpu_relax();
		local_irq_disable();
		polled = need_resched();
		c->n.idle_poll_ns += local_clock() - t0;
	}
	if (!polled) {
		/* what the poll left undone, before the halt and while a
		 * wake-up still needs no IPI (at most a few chunks) */
		while (c->ip && !need_resched() && idlepoll_work(c->ip) > 0)
			;
		/* wake-ups send an IPI from here on: no halt past one */
		if (current_clr_polling_and_test())
			polled = true;
		else
			xl_halt(c);
	}
	t = local_clock();
	c->n.idle_polled += polled;
	c->n.idle_ns += t - t0;
	if (c->ip)
		idlepoll_reflect(c->ip, t - t0, polled);
	return index;
}

static struct cpuidle_driver xl_idle_driver = {
	.name = "exitless_pvtimer",
	/* no owner: every registered device would pin it, and rmmod could
	 * never reach the exit that unregisters them (that exit waits for
	 * every CPU to leave xl_idle_enter) */
	.states = {
		{
			.enter = xl_idle_enter,
			.exit_latency = 1,
			.target_residency = 1,
			.name = "XLPOLLHALT",
			.desc = "poll idlepoll window, then hlt",
		},
	},
	.state_count = 1,
};

static int xl_idle_policy_init(void)
{
	size_t size = idlepoll_cpu_size(), align = idlepoll_cpu_align();
	int policy, cpu, rc;

	if (!strcmp(idle_policy, "none"))
		return 0;
	policy = idlepoll_policy_from_name(idle_policy);
	if (policy <= 0) {
		pr_err("exitless_pvtimer: unknown idle_policy %s\n", idle_policy);
		return -EINVAL;
	}
	for_each_possible_cpu(cpu) {
		struct xl_cpu *c = per_cpu_ptr(&xl_cpus, cpu);
		IDLEPOLL_OPTS(o, .policy = (uint32_t)policy,
			      .halt_cost_ns = halt_cost_ns);
		void *mem = kzalloc(size + align, GFP_KERNEL);

		if (!mem)
			return -ENOMEM;
		c->ip_mem = mem;
		rc = idlepoll_cpu_init(PTR_ALIGN(mem, align), size, &o, &c->ip);
		if (rc)
			return rc;
	}
	return 0;
}

static void xl_idle_policy_free(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		struct xl_cpu *c = per_cpu_ptr(&xl_cpus, cpu);

		kfree(c->ip_mem);
		c->ip_mem = NULL;
		c->ip = NULL;
	}
}

int xl_idle_start(void)
{
	int rc;

	if (!cpuidle)
		return 0;
	if (cpuidle_get_driver()) {
		pr_info("exitless_pvtimer: another cpuidle driver owns idle\n");
		return 0;
	}
	rc = xl_idle_policy_init();
	if (!rc)
		rc = cpuidle_register(&xl_idle_driver, NULL);
	if (rc) {
		xl_idle_policy_free();
		pr_info("exitless_pvtimer: no cpuidle driver (%d)\n", rc);
		return rc;
	}
	xl_idle_registered = true;
	pr_info("exitless_pvtimer: cpuidle poll-then-halt, policy %s\n", idle_policy);
	return 0;
}

void xl_idle_stop(void)
{
	if (!xl_idle_registered)
		return;
	cpuidle_unregister(&xl_idle_driver);
	xl_idle_registered = false;
	xl_idle_policy_free();
}

bool xl_idle_active(void)
{
	return xl_idle_registered;
}
