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

/* One line "name sum": the names are the counters' (tests parse them). */
#define XL_SHOW(m, field) seq_printf(m, #field " %llu\n", XL_SUM(field))

static int xl_counters_show(struct seq_file *m, void *v)
{
	int r, cpu, bound = 0;

	for_each_online_cpu(cpu)
		bound += READ_ONCE(per_cpu_ptr(&xl_cpus, cpu)->registered);
	seq_printf(m, "cpus_on_pvtimer %d\n", bound);
	XL_SHOW(m, arm_pv);
	XL_SHOW(m, arm_backstop);
	for (r = 1; r < XL_REASONS - 1; r++)
		seq_printf(m, "arm_fallback_%s %llu\n", xl_reason_names[r],
			   XL_SUM(arm_fallback[r]));
	for (r = 1; r < XL_REASONS; r++)
		seq_printf(m, "halt_%s %llu\n", xl_reason_names[r],
			   XL_SUM(halt_fallback[r]));
	XL_SHOW(m, irqs);
	XL_SHOW(m, irq_unbound);
	XL_SHOW(m, irq_expired);
	XL_SHOW(m, irq_handback);
	XL_SHOW(m, irq_early);
	XL_SHOW(m, irq_spurious);
	XL_SHOW(m, hw_expired);
	XL_SHOW(m, hw_ignore);
	XL_SHOW(m, hw_backstop);
	for (r = 1; r < XL_REASONS - 1; r++)
		seq_printf(m, "hw_fallback_%s %llu\n", xl_reason_names[r],
			   XL_SUM(hw_fallback[r]));
	XL_SHOW(m, hw_early);
	XL_SHOW(m, lapic_writes);
	XL_SHOW(m, lapic_rearm_after_register);
	XL_SHOW(m, idle_enters);
	XL_SHOW(m, idle_polled);
	XL_SHOW(m, idle_halts);
	XL_SHOW(m, idle_poll_ns);
	XL_SHOW(m, idle_ns);
	XL_SHOW(m, wrong_cpu_irqs);
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
