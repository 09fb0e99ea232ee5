/* SPDX-License-Identifier: MIT */
/* The simulator engine: score policies, the oracle and the best fixed window
 * under the cost model. */
#include <errno.h>
#include <stdlib.h>

#include "exitless/idlepoll_sim.h"

static int score_ok(const struct idlepoll_score *s)
{
	return s && s->sz >= sizeof(*s);
}

IDLEPOLL_API int idlepoll_score_add(struct idlepoll_score *s, uint64_t idle_ns,
				    uint64_t window_ns, uint64_t halt_cost_ns)
{
	int halted = idle_ns > window_ns;

	if (!score_ok(s))
		return -EINVAL;
	s->events++;
	s->halts += (uint64_t)halted;
	s->cost_ns += idlepoll_cost(idle_ns, window_ns, halt_cost_ns);
	s->opt_ns += idle_ns < halt_cost_ns ? idle_ns : halt_cost_ns;
	s->poll_ns += halted ? window_ns : idle_ns;
	s->idle_ns += idle_ns;
	s->latency_ns += halted ? halt_cost_ns : 0;
	return 0;
}

static double ratio(uint64_t a, uint64_t b)
{
	return b ? (double)a / (double)b : 0.0;
}

IDLEPOLL_API int idlepoll_score_summarize(const struct idlepoll_score *s,
					  struct idlepoll_score_summary *out)
{
	if (!score_ok(s) || !out)
		return -EINVAL;
	out->cost_ratio = ratio(s->cost_ns, s->opt_ns);
	out->poll_cpu = ratio(s->poll_ns, s->idle_ns);
	out->halt_rate = ratio(s->halts, s->events);
	out->added_latency_ns = ratio(s->latency_ns, s->events);
	return 0;
}

IDLEPOLL_API int idlepoll_sim_run(struct idlepoll_cpu *c,
				  const uint64_t *idle_ns, size_t n,
				  struct idlepoll_score *s)
{
	uint64_t h, now = 0;
	size_t i;
	int err;

	if (!c || (!idle_ns && n) || !score_ok(s))
		return -EINVAL;
	err = idlepoll_get_param(c, "halt_cost_ns", &h);
	if (err < 0)
		return err;
	for (i = 0; i < n; i++) {
		uint64_t w = idlepoll_select(c, now, IDLEPOLL_NO_TIMER);

		idlepoll_score_add(s, idle_ns[i], w, h);
		idlepoll_reflect(c, idle_ns[i], idle_ns[i] <= w);
		now += idle_ns[i];
	}
	return 0;
}

IDLEPOLL_API int idlepoll_sim_oracle(uint64_t halt_cost_ns,
				     const uint64_t *idle_ns, size_t n,
				     struct idlepoll_score *s)
{
	size_t i;

	if ((!idle_ns && n) || !score_ok(s))
		return -EINVAL;
	for (i = 0; i < n; i++)
		idlepoll_score_add(s, idle_ns[i],
				   idle_ns[i] <= halt_cost_ns ? idle_ns[i] : 0,
				   halt_cost_ns);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

IDLEPOLL_API int idlepoll_sim_best_fixed(uint64_t halt_cost_ns,
					 const uint64_t *idle_ns, size_t n,
					 struct idlepoll_score *s,
					 uint64_t *window_ns)
{
	uint64_t *d, below = 0, best, best_w = 0;
	size_t i;

	if ((!idle_ns && n) || !score_ok(s))
		return -EINVAL;
	d = malloc((n ? n : 1) * sizeof(*d));
	if (!d)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		d[i] = idle_ns[i];
	qsort(d, n, sizeof(*d), cmp_u64);
	/* Window 0 halts every non-zero period; window d[i] polls d[0..i]. */
	best = 0;
	for (i = 0; i < n; i++)
		best += idlepoll_cost(d[i], 0, halt_cost_ns);
	for (i = 0; i < n; i++) {
		uint64_t c;

		below += d[i];
		if (i + 1 < n && d[i + 1] == d[i])
			continue;
		c = below + (d[i] + halt_cost_ns) * (uint64_t)(n - i - 1);
		if (c < best) {
			best = c;
			best_w = d[i];
		}
	}
	free(d);
	for (i = 0; i < n; i++)
		idlepoll_score_add(s, idle_ns[i], best_w, halt_cost_ns);
	if (window_ns)
		*window_ns = best_w;
	return 0;
}
