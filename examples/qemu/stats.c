/* SPDX-License-Identifier: MIT */
/* The agent's counters as one line of JSON (or text), on exit and SIGUSR1. */
#include <stdio.h>

#include "qagent.h"

void qa_print_stats(struct pvagent *agent, struct pvtimer_area *area,
		    const struct qa_calib *calib, const char *event, int json)
{
	struct pvagent_stats s = { .sz = sizeof(s) };
	struct pvtimer_area_stats a = { .sz = sizeof(a) };

	if (pvagent_get_stats(agent, &s) != 0 ||
	    pvtimer_area_get_stats(area, &a) != 0)
		return;
	if (!json) {
		printf("%s: fires %llu injections %llu handbacks %llu "
		       "cancel_races %llu late p50 %llu ns p99 %llu ns, "
		       "tsc offset %lld +- %llu\n",
		       event, (unsigned long long)s.fires,
		       (unsigned long long)s.injections,
		       (unsigned long long)s.handbacks,
		       (unsigned long long)s.cancel_races,
		       (unsigned long long)pvagent_stats_late_pct(&s, 50),
		       (unsigned long long)pvagent_stats_late_pct(&s, 99),
		       (long long)calib->offset,
		       (unsigned long long)calib->error_tsc);
		fflush(stdout);
		return;
	}
	printf("{\"event\": \"%s\", \"fires\": %llu, \"injections\": %llu, "
	       "\"inject_errors\": %llu, \"handbacks\": %llu, "
	       "\"cancel_races\": %llu, \"refires_refused\": %llu, "
	       "\"scans\": %llu, \"slot_reads\": %llu, \"promises_late\": %llu, "
	       "\"past_arms\": %llu, \"rejected_flags\": %llu, "
	       "\"rejected_vector\": %llu, \"rejected_far\": %llu, "
	       "\"torn_reads\": %llu, \"sleeps\": %llu, "
	       "\"wake_overshoot_max_ns\": %llu, \"wake_bound_ns\": %llu, "
	       "\"late_p50_ns\": %llu, \"late_p99_ns\": %llu, "
	       "\"cpu_ns\": %llu, \"run_ns\": %llu, "
	       "\"calib_offset\": %lld, \"calib_error_tsc\": %llu, "
	       "\"calib_samples\": %u, \"calib_rejected\": %u}\n",
	       event, (unsigned long long)s.fires,
	       (unsigned long long)s.injections,
	       (unsigned long long)s.inject_errors,
	       (unsigned long long)s.handbacks,
	       (unsigned long long)s.cancel_races,
	       (unsigned long long)s.refires_refused,
	       (unsigned long long)s.scans, (unsigned long long)s.slot_reads,
	       (unsigned long long)s.promises_late,
	       (unsigned long long)s.past_arms,
	       (unsigned long long)a.rejected_flags,
	       (unsigned long long)a.rejected_vector,
	       (unsigned long long)a.rejected_far,
	       (unsigned long long)a.torn_reads, (unsigned long long)s.sleeps,
	       (unsigned long long)s.wake_overshoot_max_ns,
	       (unsigned long long)s.wake_bound_ns,
	       (unsigned long long)pvagent_stats_late_pct(&s, 50),
	       (unsigned long long)pvagent_stats_late_pct(&s, 99),
	       (unsigned long long)s.cpu_ns, (unsigned long long)s.run_ns,
	       (long long)calib->offset, (unsigned long long)calib->error_tsc,
	       calib->samples, calib->rejected);
	fflush(stdout);
}
