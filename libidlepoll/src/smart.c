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
 * back to the 2-competitive rule instead of collapsing.
 *
 * Cost: a histogram's window is refreshed on a schedule (every `refresh`
 * events); a refresh scans only if an event since the last scan may have
 * moved the argmin (argmin_kept(), exact), and idlepoll_work() does the
 * refreshes the next select needs ahead of it, in the poll loop. select and
 * reflect themselves touch a few words per histogram and expert. */
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

/* Does one more event of length @d leave @h->best_w the argmin?
 *
 * Adding weight u at d (bucket b) raises the cost of the window at edge e
 * by u*d when b is caught (d <= e), by u*(e + H) when it is not, and the
 * cost of halting at once by u*H. If the cached best is a window w > 0
 * with d <= w and d < H, w rises by u*d and nothing rises by less (a
 * window below d by u*(e + H) > u*d, halting by u*H > u*d); if it is "halt
 * at once" and d >= H, it rises by u*H and nothing rises by less. Either
 * way the first minimum stays the first minimum: every window below it was
 * dearer and rose at least as much, every one above it rose as much. The
 * scan's early stop (no weight left above) only drops windows that cost
 * as much as the last one scanned, so it changes nothing. Costs stay far
 * below 2^64 (weights <= 2^21, d <= 2^34, H <= 2^32 as set_param
 * allows), so none of this wraps. Decay is not an exact rescale (integer halving) and always counts
 * as a move. */
static inline int argmin_kept(const struct ip_hist *h, uint64_t d)
{
	return h->best_w ? d <= h->best_w && d < h->best_h : d >= h->best_h;
}

/* Halve everything: old periods weigh half as much as recent ones. Once
 * per decay_events events; off the common path. (__noinline__, not
 * noinline: a kernel embedding the core defines noinline as a macro.) */
static __attribute__((__noinline__)) void hist_decay(struct ip_hist *h)
{
	unsigned int i;

	h->moved = 1;
	h->total = 0;
	for (i = 0; i < IP_NB; i++) {
		h->cnt[i] >>= 1;
		h->sum[i] >>= 1;
		h->total += h->cnt[i];
	}
}

/* One event of length @d (<= IP_D_CLAMP) in bucket @b. */
static inline void hist_add(struct ip_hist *h, uint64_t d, unsigned int b,
			    uint64_t decay_weight)
{
	h->moved |= !argmin_kept(h, d);
	h->stale++;
	h->cnt[b] += IP_UNIT;
	h->sum[b] += d * IP_UNIT;
	h->total += IP_UNIT;
	h->top = b > h->top ? b : h->top;
	if (h->total > decay_weight)
		hist_decay(h);
}

/* How many buckets, from 0, have an edge (a window) of at most @max_poll. */
static unsigned int buckets_within(uint64_t max_poll)
{
	unsigned int b = bucket_of(max_poll);

	if (b == IP_OVERFLOW)
		return IP_OVERFLOW;
	return b + (bucket_edge[b] <= max_poll);
}

/* The expected-cost-minimising window of @h, at most @max_poll: the first
 * minimum in window order. Candidates past h->top all cost what the one at
 * top does (no weight is left above them), so they are never a strict new
 * minimum and the sweep stops there. */
static uint64_t hist_best(const struct ip_hist *h, uint64_t halt_cost,
			  uint64_t max_poll)
{
	uint64_t above = h->total, below_sum = 0;
	uint64_t best = halt_cost * above, best_w = 0;
	unsigned int b, end = buckets_within(max_poll);

	if (end > h->top + 1)
		end = h->top + 1;
	for (b = 0; b < end; b++) {
		uint64_t edge = bucket_edge[b], c;

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

/* The rule's schedule: a histogram's window is brought up to date after
 * @refresh events (between refreshes it is reused, stale), or at once when
 * H or the cap changes. */
static inline int hist_due(const struct ip_hist *h, uint64_t halt_cost,
			   uint64_t max_poll, uint64_t refresh)
{
	return h->stale >= refresh || h->best_h != halt_cost ||
	       h->best_max != max_poll;
}

/* Bring best_w up to date: a scan, unless no event since the last one can
 * have moved the argmin (then the scan would return best_w again). */
static __attribute__((__noinline__)) void hist_refresh(struct ip_hist *h,
						   uint64_t halt_cost,
						   uint64_t max_poll)
{
	if (h->moved || h->best_h != halt_cost || h->best_max != max_poll) {
		h->best_w = hist_best(h, halt_cost, max_poll);
		h->best_h = halt_cost;
		h->best_max = max_poll;
		h->moved = 0;
	}
	h->stale = 0;
}

static void smart_reset(struct idlepoll_cpu *c)
{
	/* Everything else starts at zero (ip_zero in init): empty histograms,
	 * equal expert costs, so the first period follows expert 0, whose
	 * empty model proposes ski rental; nothing pending, nothing ready. */
	c->u.smart.prev_ctx = 0;
	c->u.smart.best = 0;
}

/* The global model is used once it holds an event, a context once it holds
 * ctx_min: select and work read the same histograms, or work would shift
 * their refresh schedules. */
static inline int ctx_used(const struct ip_smart *s, const struct ip_hist *x)
{
	return x->total >= s->ctx_min * IP_UNIT;
}

/* The histograms learn the pending period: what reflect used to do at
 * once, now done in the same order by the first call that needs it. */
static void smart_learn(struct ip_smart *s)
{
	uint64_t d = s->pending_d, decay_weight = s->decay_events * IP_UNIT;
	unsigned int b = bucket_of(d);

	s->pending = 0;
	hist_add(&s->global, d, b, decay_weight);
	hist_add(&s->ctx[s->prev_ctx], d, b, decay_weight);
	s->prev_ctx = b / 8;
}

/* One chunk of what the next select needs, in the order the eager rule did
 * it: learn the pending period (one histogram add each, or a decay), then
 * refresh the global window, then the context's, one per call; when none
 * is left, record the two windows and say the state is ready. */
static int smart_work(struct idlepoll_cpu *c)
{
	struct ip_smart *s = &c->u.smart;
	uint64_t h = c->halt_cost_ns, maxp = s->max_poll_ns;
	uint64_t ski = ip_min(h, maxp);
	struct ip_hist *ctx;

	if (s->ready)
		return 0;
	if (s->pending) {
		smart_learn(s);
		return 1;
	}
	ctx = &s->ctx[s->prev_ctx];
	if (s->global.total && hist_due(&s->global, h, maxp, s->refresh)) {
		hist_refresh(&s->global, h, maxp);
		return 1;
	}
	if (ctx_used(s, ctx) && hist_due(ctx, h, maxp, s->refresh)) {
		hist_refresh(ctx, h, maxp);
		return 1;
	}
	s->next_gw = s->global.total ? s->global.best_w : ski;
	s->next_cw = ctx_used(s, ctx) ? ctx->best_w : s->next_gw;
	s->ready = 1;
	return 0;
}

/* Nobody called idlepoll_work() since the last reflect: do it all here.
 * Out of line and handing @c back, so that the common path of select saves
 * no registers. */
static __attribute__((__noinline__)) struct idlepoll_cpu *
smart_catch_up(struct idlepoll_cpu *c)
{
	while (smart_work(c))
		;
	return c;
}

/* Each expert's window for this period, bounded by the next timer; the
 * one followed was chosen when the costs last changed (reflect). */
static uint64_t smart_select(struct idlepoll_cpu *c)
{
	struct ip_smart *s;
	uint64_t lim;

	if (!c->u.smart.ready)
		c = smart_catch_up(c);
	s = &c->u.smart;
	lim = c->limit_ns;
	s->w[0] = ip_min(s->next_cw, lim);
	s->w[1] = ip_min(s->next_gw, lim);
	s->w[2] = ip_min(ip_min(c->halt_cost_ns, s->max_poll_ns), lim);
	/* what ip_decided() does, knowing every w[] is bounded by lim */
	c->window_ns = s->w[s->best];
	return c->window_ns;
}

static inline uint64_t expert_cost(uint64_t cost, uint64_t d, uint64_t w,
				   uint64_t halt_cost, unsigned int shift)
{
	return cost + ip_cost(d, w, halt_cost) - (cost >> shift);
}

/* Charge every expert what its window cost on the period that happened
 * (decayed) and pick the one the next select follows: that much the next
 * decision needs. The histograms learn the period later (smart_learn). */
static void smart_reflect(struct idlepoll_cpu *c, uint64_t idle_ns,
			  int polled);

/* Two reflects in a row (no select between): the first period is still
 * pending and is learnt first, to keep the periods in order. Out of line
 * (a tail call from reflect), so that reflect's common path saves no
 * registers. */
static __attribute__((__noinline__)) void
smart_learn_first(struct idlepoll_cpu *c, uint64_t idle_ns, int polled)
{
	smart_learn(&c->u.smart);
	smart_reflect(c, idle_ns, polled); /* nothing pending now */
}

static void smart_reflect(struct idlepoll_cpu *c, uint64_t idle_ns, int polled)
{
	struct ip_smart *s = &c->u.smart;
	uint64_t d = ip_min(idle_ns, IP_D_CLAMP), h, c0, c1, c2;
	unsigned int sh;

	if (s->pending) {
		smart_learn_first(c, idle_ns, polled);
		return;
	}
	(void)polled; /* the length says everything the model needs */
	h = c->halt_cost_ns;
	sh = (unsigned int)s->expert_shift;
	c0 = expert_cost(s->cost[0], d, s->w[0], h, sh);
	c1 = expert_cost(s->cost[1], d, s->w[1], h, sh);
	c2 = expert_cost(s->cost[2], d, s->w[2], h, sh);
	s->cost[0] = c0;
	s->cost[1] = c1;
	s->cost[2] = c2;
	/* the first minimum in expert order, as a scan of cost[] finds it */
	s->best = c1 < c0 ? (c2 < c1 ? 2 : 1) : (c2 < c0 ? 2 : 0);
	s->pending_d = d;
	s->pending = 1;
	s->ready = 0;
}

/* A parameter changes: learn the pending period under the old ones (it
 * would have been learnt at once before deferral) and forget the windows
 * computed under them. */
static void smart_param_changing(struct idlepoll_cpu *c)
{
	struct ip_smart *s = &c->u.smart;

	if (s->pending)
		smart_learn(s);
	s->ready = 0;
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
	.work = smart_work,
	.param_changing = smart_param_changing,
};
