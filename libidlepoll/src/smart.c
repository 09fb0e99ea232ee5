/* SPDX-License-Identifier: MIT */
/* smart: choose the window that minimises the expected cost under the
 * recent distribution of idle periods.
 *
 * Model: log-spaced histograms (4 buckets per octave) of decayed event
 * weights and duration sums, one global and one per context (the bucket
 * group of the previous period, which captures bursts and alternations).
 * For a histogram, the expected cost of polling up to bucket edge e is
 *   sum(d of buckets <= e) + (e + H) * weight(buckets > e),
 * against H * weight for halting at once; one sweep over the buckets gives
 * the minimum in integer arithmetic.
 *
 * Robustness: three experts propose a window each period (the context
 * model, the global model, and ski rental w = H, which costs at most twice
 * the optimum on any input). Each expert's realised cost on the periods
 * that actually happened is tracked with exponential decay; the policy
 * follows the cheapest. A predictor defeated by its input therefore falls
 * back to the 2-competitive rule instead of collapsing. */
#include "internal.h"

/* Bucket of a duration: 0 below 512 ns, then 4 per octave. */
static unsigned int bucket_of(uint64_t d)
{
	unsigned int o;

	if (d < 512)
		return 0;
	o = 63u - (unsigned int)__builtin_clzll(d);
	if (o > 21)
		return IP_OVERFLOW;
	return 1 + (o - 9) * 4 + (unsigned int)((d >> (o - 2)) & 3);
}

/* Upper edge (inclusive window) of bucket b < IP_OVERFLOW: bucket 0 ends
 * at 511, bucket 1 + 4k + s (octave 9 + k) at ((5 + s) << (7 + k)) - 1. */
#define EDGE(k) ((5ull << (7 + (k))) - 1), ((6ull << (7 + (k))) - 1), \
		((7ull << (7 + (k))) - 1), ((8ull << (7 + (k))) - 1)
static const uint64_t bucket_edge[IP_OVERFLOW] = {
	511,      EDGE(0),  EDGE(1),  EDGE(2),  EDGE(3),  EDGE(4), EDGE(5),
	EDGE(6),  EDGE(7),  EDGE(8),  EDGE(9),  EDGE(10), EDGE(11),
	EDGE(12),
};
#undef EDGE

static void hist_add(struct ip_hist *h, uint64_t d, uint64_t decay_events)
{
	unsigned int b = bucket_of(d);
	unsigned int i;

	h->stale++;
	h->cnt[b] += IP_UNIT;
	h->sum[b] += ip_min(d, IP_D_CLAMP) * IP_UNIT;
	h->total += IP_UNIT;
	if (h->total <= decay_events * IP_UNIT)
		return;
	/* Halve everything: old periods weigh half as much as recent ones. */
	h->total = 0;
	for (i = 0; i < IP_NB; i++) {
		h->cnt[i] >>= 1;
		h->sum[i] >>= 1;
		h->total += h->cnt[i];
	}
}

/* The expected-cost-minimising window of @h, at most @max_poll. */
static uint64_t hist_best(const struct ip_hist *h, uint64_t halt_cost,
			  uint64_t max_poll)
{
	uint64_t above = h->total, below_sum = 0;
	uint64_t best = halt_cost * above, best_w = 0;
	unsigned int b;

	for (b = 0; b < IP_OVERFLOW && above; b++) {
		uint64_t edge = bucket_edge[b], c;

		if (edge > max_poll)
			break;
		below_sum += h->sum[b];
		above -= h->cnt[b];
		c = below_sum + (edge + halt_cost) * above;
		if (c < best) {
			best = c;
			best_w = edge;
		}
	}
	return best_w;
}

/* hist_best() is the bulk of a decision; the distribution moves little
 * between consecutive events, so reuse the window for a few of them. */
static uint64_t hist_window(struct ip_hist *h, uint64_t halt_cost,
			    uint64_t max_poll, uint64_t refresh)
{
	if (h->stale >= refresh || h->best_h != halt_cost ||
	    h->best_max != max_poll) {
		h->best_w = hist_best(h, halt_cost, max_poll);
		h->best_h = halt_cost;
		h->best_max = max_poll;
		h->stale = 0;
	}
	return h->best_w;
}

static void smart_reset(struct idlepoll_cpu *c)
{
	/* Everything else starts at zero (ip_zero in init): empty histograms,
	 * equal expert costs, so the first period follows expert 0, whose
	 * empty model proposes ski rental. */
	c->u.smart.prev_ctx = 0;
}

static uint64_t smart_select(struct idlepoll_cpu *c)
{
	struct ip_smart *s = &c->u.smart;
	struct ip_hist *ctx = &s->ctx[s->prev_ctx];
	uint64_t h = c->halt_cost_ns, maxp = s->max_poll_ns;
	unsigned int e, best = 0;

	s->w[1] = s->global.total ? hist_window(&s->global, h, maxp, s->refresh)
				  : ip_min(h, maxp);
	s->w[0] = ctx->total >= s->ctx_min * IP_UNIT
			  ? hist_window(ctx, h, maxp, s->refresh)
			  : s->w[1];
	s->w[2] = ip_min(h, maxp);
	for (e = 0; e < IP_NEXPERT; e++) {
		s->w[e] = ip_min(s->w[e], c->limit_ns);
		if (s->cost[e] < s->cost[best])
			best = e;
	}
	return s->w[best];
}

static void smart_reflect(struct idlepoll_cpu *c, uint64_t idle_ns, int polled)
{
	struct ip_smart *s = &c->u.smart;
	uint64_t d = ip_min(idle_ns, IP_D_CLAMP);
	unsigned int e;

	(void)polled; /* the length says everything the model needs */
	for (e = 0; e < IP_NEXPERT; e++)
		s->cost[e] += ip_cost(d, s->w[e], c->halt_cost_ns) -
			      (s->cost[e] >> s->expert_shift);
	hist_add(&s->global, d, s->decay_events);
	hist_add(&s->ctx[s->prev_ctx], d, s->decay_events);
	s->prev_ctx = bucket_of(d) / 8;
}

static const struct ip_param smart_params[] = {
	IP_PARAM("max_poll_ns", u.smart.max_poll_ns, 0, 1ull << 22, 1000000),
	IP_PARAM("decay_events", u.smart.decay_events, 4, 65536, 256),
	IP_PARAM("ctx_min", u.smart.ctx_min, 0, 65536, 8),
	IP_PARAM("expert_shift", u.smart.expert_shift, 1, 16, 5),
	IP_PARAM("refresh", u.smart.refresh, 1, 1024, 4),
};

const struct ip_policy ip_policy_smart = {
	.name = "smart",
	.params = smart_params,
	.nparams = sizeof(smart_params) / sizeof(smart_params[0]),
	.reset = smart_reset,
	.select = smart_select,
	.reflect = smart_reflect,
};
