/* SPDX-License-Identifier: MIT */
/* The simulator engine: score policies, the oracle and the best fixed window
 * under the cost model. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "exitless/idlepoll_sim.h"

/* A score of any size from sizeof(size_t) up: a caller built against an
 * older, shorter struct has a smaller sz and keeps working. Only the bytes
 * inside its sz are read or written; the rest of the local copy is zero. */
static int score_ok(const struct idlepoll_score *s)
{
	return s && s->sz >= sizeof(s->sz);
}

static size_t score_bytes(const struct idlepoll_score *s)
{
	return s->sz < sizeof(*s) ? s->sz : sizeof(*s);
}

static void score_load(const struct idlepoll_score *s, struct idlepoll_score *l)
{
	memset(l, 0, sizeof(*l));
	memcpy(l, s, score_bytes(s));
}

int idlepoll_score_add(struct idlepoll_score *s, uint64_t idle_ns,
		       uint64_t window_ns, uint64_t halt_cost_ns)
{
	int halted = idle_ns > window_ns;
	struct idlepoll_score l;

	if (!score_ok(s))
		return -EINVAL;
	score_load(s, &l);
	l.events++;
	l.halts += (uint64_t)halted;
	l.cost_ns += idlepoll_cost(idle_ns, window_ns, halt_cost_ns);
	l.opt_ns += idle_ns < halt_cost_ns ? idle_ns : halt_cost_ns;
	l.poll_ns += halted ? window_ns : idle_ns;
	l.idle_ns += idle_ns;
	l.latency_ns += halted ? halt_cost_ns : 0;
	/* sz itself is copied back unchanged */
	memcpy(s, &l, score_bytes(s));
	return 0;
}

static double ratio(uint64_t a, uint64_t b)
{
	return b ? (double)a / (double)b : 0.0;
}

int idlepoll_score_summarize(const struct idlepoll_score *s,
			     struct idlepoll_score_summary *out)
{
	struct idlepoll_score l;

	if (!score_ok(s) || !out)
		return -EINVAL;
	score_load(s, &l);
	out->cost_ratio = ratio(l.cost_ns, l.opt_ns);
	out->poll_cpu = ratio(l.poll_ns, l.idle_ns);
	out->halt_rate = ratio(l.halts, l.events);
	out->added_latency_ns = ratio(l.latency_ns, l.events);
	return 0;
}

int idlepoll_sim_run(struct idlepoll_cpu *c,
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

int idlepoll_sim_oracle(uint64_t halt_cost_ns,
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

int idlepoll_sim_best_fixed(uint64_t halt_cost_ns,
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
