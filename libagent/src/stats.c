/* SPDX-License-Identifier: MIT */
/* Stats snapshot: the engine's counters, the areas' rejection counters and
 * the thread's CPU time. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void add_area_stats(struct pvagent_stats *out, struct pvtimer_area *pa)
{
	struct pvtimer_area_stats as = { .sz = sizeof(as) };

	if (pvtimer_area_get_stats(pa, &as) < 0)
		return;
	out->rejected_flags += as.rejected_flags;
	out->rejected_vector += as.rejected_vector;
	out->rejected_far += as.rejected_far;
	out->rejected_past += as.rejected_past;
	out->torn_reads += as.torn_reads;
	out->stray_pending += as.stray_pending;
}

int pvagent_get_stats(struct pvagent *a, struct pvagent_stats *stats)
{
	struct pvagent_stats s = { .sz = sizeof(s) };
	const uint64_t *src;
	uint64_t *dst = &s.fires;
	size_t n;

	if (!a || !stats || stats->sz < sizeof(size_t))
		return -EINVAL;
	/* every field from fires to the end of late_hist is a uint64_t */
	src = &a->st.fires;
	n = (size_t)(&a->st.late_hist[PVAGENT_LAT_BUCKETS] - src);
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < n; i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	/* the per-kind rejections live in the areas: sum them */
	s.rejected_flags = s.rejected_vector = s.rejected_far = 0;
	s.rejected_past = s.torn_reads = s.stray_pending = 0;
	for (uint32_t k = 0; k < a->nareas; k++)
		add_area_stats(&s, a->areas[k].pa);
	s.cpu_ns = __atomic_load_n(&a->cpu_acc_ns, __ATOMIC_RELAXED);
	s.run_ns = a->run_acc_ns;
	if (a->state != AGENT_STOPPED) {
		clockid_t cid;

		if (pthread_getcpuclockid(a->thread, &cid) == 0)
			s.cpu_ns += clock_ns(cid);
		s.run_ns += clock_ns(CLOCK_MONOTONIC) - a->run_start_ns;
	}
	src = &a->st.fire_rereads;
	dst = &s.fire_rereads;
	n = (size_t)(&a->st.publishes + 1 - src);
	for (size_t i = 0; i < n; i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	s.cpu = a->st.cpu;
	s.sched_applied = a->st.sched_applied;
	/* the engine retires a failed ring while running */
	s.uring_min_batch = __atomic_load_n(&a->st.uring_min_batch,
					    __ATOMIC_RELAXED);
	pthread_mutex_unlock(&a->lock);
	memcpy((char *)stats + sizeof(size_t), (char *)&s + sizeof(size_t),
	       (stats->sz < sizeof(s) ? stats->sz : sizeof(s)) - sizeof(size_t));
	return 0;
}

uint64_t pvagent_stats_late_pct(const struct pvagent_stats *stats, double pct)
{
	uint64_t total = 0, need, seen = 0;

	if (!stats || pct <= 0 || pct > 100)
		return 0;
	for (uint32_t b = 0; b < PVAGENT_LAT_BUCKETS; b++)
		total += stats->late_hist[b];
	if (!total)
		return 0;
	need = (uint64_t)((double)total * pct / 100.0 + 0.999999);
	if (need < 1)
		need = 1;
	for (uint32_t b = 0; b < PVAGENT_LAT_BUCKETS; b++) {
		seen += stats->late_hist[b];
		if (seen >= need)
			return 2ull << b;
	}
	return 2ull << (PVAGENT_LAT_BUCKETS - 1);
}
