// SPDX-License-Identifier: GPL-2.0
/*
 * /sys/kernel/debug/exitless_pvtimer/counters: "name value" lines, summed
 * over CPUs (each CPU writes only its own counters, with interrupts off;
 * a read is a racy but monotone snapshot).
 */
#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "xl.h"

static struct dentry *xl_dir;

static const char *const xl_reason_names[XL_REASONS] = {
	"pv", "disabled", "past", "too_far", "stale", "too_close",
	"rejected", "fired", "backstop",
};

#define XL_SUM(field)                                                      \
	({                                                                 \
		u64 __s = 0;                                               \
		int __cpu;                                                 \
		for_each_possible_cpu(__cpu)                               \
			__s += READ_ONCE(per_cpu_ptr(&xl_cpus, __cpu)->n.field); \
		__s;                                                       \
	})

static int xl_counters_show(struct seq_file *m, void *v)
{
	int r, cpu, bound = 0;

	for_each_online_cpu(cpu)
		bound += READ_ONCE(per_cpu_ptr(&xl_cpus, cpu)->registered);
	seq_printf(m, "cpus_on_pvtimer %d\n", bound);
	seq_printf(m, "arm_pv %llu\n", XL_SUM(arm_pv));
	seq_printf(m, "arm_backstop %llu\n", XL_SUM(arm_backstop));
	for (r = 1; r < XL_REASONS - 1; r++)
		seq_printf(m, "arm_fallback_%s %llu\n", xl_reason_names[r],
			   XL_SUM(arm_fallback[r]));
	for (r = 1; r < XL_REASONS; r++)
		seq_printf(m, "halt_%s %llu\n", xl_reason_names[r],
			   XL_SUM(halt_fallback[r]));
	seq_printf(m, "irqs %llu\n", XL_SUM(irqs));
	seq_printf(m, "irq_unbound %llu\n", XL_SUM(irq_unbound));
	seq_printf(m, "irq_expired %llu\n", XL_SUM(irq_expired));
	seq_printf(m, "irq_handback %llu\n", XL_SUM(irq_handback));
	seq_printf(m, "irq_early %llu\n", XL_SUM(irq_early));
	seq_printf(m, "irq_spurious %llu\n", XL_SUM(irq_spurious));
	seq_printf(m, "hw_expired %llu\n", XL_SUM(hw_expired));
	seq_printf(m, "hw_ignore %llu\n", XL_SUM(hw_ignore));
	seq_printf(m, "hw_backstop %llu\n", XL_SUM(hw_backstop));
	for (r = 1; r < XL_REASONS - 1; r++)
		seq_printf(m, "hw_fallback_%s %llu\n", xl_reason_names[r],
			   XL_SUM(hw_fallback[r]));
	seq_printf(m, "hw_early %llu\n", XL_SUM(hw_early));
	seq_printf(m, "lapic_writes %llu\n", XL_SUM(lapic_writes));
	seq_printf(m, "lapic_rearm_after_register %llu\n",
		   XL_SUM(lapic_rearm_after_register));
	seq_printf(m, "idle_enters %llu\n", XL_SUM(idle_enters));
	seq_printf(m, "idle_polled %llu\n", XL_SUM(idle_polled));
	seq_printf(m, "idle_halts %llu\n", XL_SUM(idle_halts));
	seq_printf(m, "idle_poll_ns %llu\n", XL_SUM(idle_poll_ns));
	seq_printf(m, "idle_ns %llu\n", XL_SUM(idle_ns));
	seq_printf(m, "wrong_cpu_irqs %llu\n", XL_SUM(wrong_cpu_irqs));
	seq_printf(m, "cpuidle_driver %d\n", xl_idle_active());
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(xl_counters);

void xl_debugfs_start(void)
{
	xl_dir = debugfs_create_dir("exitless_pvtimer", NULL);
	debugfs_create_file("counters", 0444, xl_dir, NULL, &xl_counters_fops);
}

void xl_debugfs_stop(void)
{
	debugfs_remove_recursive(xl_dir);
	xl_dir = NULL;
}
