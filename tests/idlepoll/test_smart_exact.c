/* SPDX-License-Identifier: MIT */
/* smart's fast path against a plain restatement of its rule that rescans
 * every histogram whenever the rule says to look (the refresh schedule),
 * decision by decision: on the committed traces, on generator seeds nobody
 * tuned on, with and without idlepoll_work() between periods, with
 * next-timer hints and parameters changed mid-run. The library may skip a
 * rescan only when it can prove the argmin did not move; any divergence is
 * a window that differs here. */
#include <check.h>

#include "../common/check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <exitless/idlepoll.h>
#include <exitless/idlepoll_sim.h>

/* ---- the reference: smart as docs/idlepoll.md states it, no shortcuts -- */

#define R_NB 54
#define R_OVER (R_NB - 1)
#define R_NCTX 7
#define R_UNIT 16
#define R_CLAMP (1ull << 34)

struct rhist {
	uint64_t total, stale, best_w, best_h, best_max;
	uint64_t cnt[R_NB], sum[R_NB];
};

struct ref {
	uint64_t h, max_poll, decay, ctx_min, shift, refresh;
	uint64_t w[3], cost[3];
	unsigned int prev_ctx;
	struct rhist global, ctx[R_NCTX];
};

/* 0 below 512 ns, then 4 buckets per octave, overflow from 2^22 ns */
static unsigned int r_bucket(uint64_t d)
{
	unsigned int o = 0;

	if (d < 512)
		return 0;
	while ((d >> o) > 1)
		o++;
	if (o > 21)
		return R_OVER;
	return 1 + (o - 9) * 4 + (unsigned int)((d >> (o - 2)) & 3);
}

/* the largest d with r_bucket(d) == b, found by search, not by formula */
static uint64_t r_edge_search(unsigned int b)
{
	uint64_t lo = 0, hi = 1ull << 22;

	while (lo < hi) { /* first d whose bucket is past b */
		uint64_t mid = (lo + hi) / 2;

		if (r_bucket(mid) > b)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo - 1;
}

static uint64_t r_edge(unsigned int b)
{
	static uint64_t edge[R_OVER];

	if (!edge[b])
		edge[b] = r_edge_search(b);
	return edge[b];
}

static uint64_t r_scan(const struct rhist *x, uint64_t h, uint64_t maxp)
{
	uint64_t above = x->total, below = 0, best = h * above, best_w = 0;

	for (unsigned int b = 0; b < R_OVER && above; b++) {
		uint64_t e = r_edge(b), c;

		if (e > maxp)
			break;
		below += x->sum[b];
		above -= x->cnt[b];
		c = below + (e + h) * above;
		if (c < best) {
			best = c;
			best_w = e;
		}
	}
	return best_w;
}

static uint64_t r_window(struct rhist *x, const struct ref *r)
{
	if (x->stale >= r->refresh || x->best_h != r->h ||
	    x->best_max != r->max_poll) {
		x->best_w = r_scan(x, r->h, r->max_poll);
		x->best_h = r->h;
		x->best_max = r->max_poll;
		x->stale = 0;
	}
	return x->best_w;
}

static uint64_t r_select(struct ref *r, uint64_t limit)
{
	struct rhist *ctx = &r->ctx[r->prev_ctx];
	uint64_t ski = r->h < r->max_poll ? r->h : r->max_poll;
	unsigned int best = 0;

	r->w[1] = r->global.total ? r_window(&r->global, r) : ski;
	r->w[0] = ctx->total >= r->ctx_min * R_UNIT ? r_window(ctx, r) : r->w[1];
	r->w[2] = ski;
	for (unsigned int e = 0; e < 3; e++) {
		if (r->w[e] > limit)
			r->w[e] = limit;
		if (r->cost[e] < r->cost[best])
			best = e;
	}
	return r->w[best];
}

static void r_add(struct rhist *x, uint64_t d, uint64_t decay)
{
	unsigned int b = r_bucket(d);

	x->stale++;
	x->cnt[b] += R_UNIT;
	x->sum[b] += d * R_UNIT;
	x->total += R_UNIT;
	if (x->total <= decay * R_UNIT)
		return;
	x->total = 0;
	for (unsigned int i = 0; i < R_NB; i++) {
		x->cnt[i] >>= 1;
		x->sum[i] >>= 1;
		x->total += x->cnt[i];
	}
}

static void r_reflect(struct ref *r, uint64_t d)
{
	if (d > R_CLAMP)
		d = R_CLAMP;
	for (unsigned int e = 0; e < 3; e++)
		r->cost[e] += (d <= r->w[e] ? d : r->w[e] + r->h) -
			      (r->cost[e] >> r->shift);
	r_add(&r->global, d, r->decay);
	r_add(&r->ctx[r->prev_ctx], d, r->decay);
	r->prev_ctx = r_bucket(d) / 8;
}

/* ---- the comparison -------------------------------------------------- */

struct run_opts {
	uint64_t h, refresh, decay, ctx_min;
	int work;        /* call idlepoll_work() until it returns 0 */
	int timer_every; /* every k-th period gets a next-timer hint (0: none) */
	int change_h_at; /* H doubles, decay_events halves here (0: never) */
	int twice_every; /* every k-th period is reflected twice (0: never) */
	uint64_t max_poll; /* 0: the default */
};

static uint64_t get(struct idlepoll_cpu *c, const char *k)
{
	uint64_t v = 0;

	ck_assert_int_eq(idlepoll_get_param(c, k, &v), 0);
	return v;
}

static void compare(const char *what, const uint64_t *d, size_t n,
		    const struct run_opts *o)
{
	IDLEPOLL_OPTS(opts, .policy = IDLEPOLL_POLICY_SMART, .halt_cost_ns = o->h);
	struct idlepoll_cpu *c;
	struct ref *r = calloc(1, sizeof(*r));

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(idlepoll_new(&opts, &c), 0);
	ck_assert_int_eq(idlepoll_set_param(c, "refresh", o->refresh), 0);
	ck_assert_int_eq(idlepoll_set_param(c, "decay_events", o->decay), 0);
	ck_assert_int_eq(idlepoll_set_param(c, "ctx_min", o->ctx_min), 0);
	if (o->max_poll)
		ck_assert_int_eq(idlepoll_set_param(c, "max_poll_ns", o->max_poll), 0);
	r->h = o->h;
	r->max_poll = get(c, "max_poll_ns");
	r->shift = get(c, "expert_shift");
	r->refresh = o->refresh;
	r->decay = o->decay;
	r->ctx_min = o->ctx_min;
	for (size_t i = 0; i < n; i++) {
		uint64_t now = i * 1000, limit = UINT64_MAX, next = IDLEPOLL_NO_TIMER;
		uint64_t want, got;

		if (o->change_h_at && i == (size_t)o->change_h_at) {
			/* a period may be pending: it is learnt under the old
			 * decay, as it was when reflect learnt it at once */
			r->h *= 2;
			r->decay = r->decay / 2 > 4 ? r->decay / 2 : 4;
			ck_assert_int_eq(idlepoll_set_param(c, "halt_cost_ns", r->h), 0);
			ck_assert_int_eq(idlepoll_set_param(c, "decay_events", r->decay), 0);
		}
		if (o->timer_every && i % (size_t)o->timer_every == 0) {
			limit = d[(i * 7) % n] / 2;
			next = now + limit;
		}
		want = r_select(r, limit);
		got = idlepoll_select(c, now, next);
		ck_assert_msg(got == want,
			      "%s (H %llu, refresh %llu, work %d): period %zu: "
			      "window %llu, reference %llu", what,
			      (unsigned long long)o->h,
			      (unsigned long long)o->refresh, o->work, i,
			      (unsigned long long)got, (unsigned long long)want);
		r_reflect(r, d[i]);
		idlepoll_reflect(c, d[i], d[i] <= got);
		if (o->twice_every && i % (size_t)o->twice_every == 1) {
			/* no select between: the same windows are charged */
			r_reflect(r, d[i] / 3);
			idlepoll_reflect(c, d[i] / 3, 0);
		}
		while (o->work && idlepoll_work(c) > 0)
			;
	}
	idlepoll_destroy(c);
	free(r);
}

static const struct run_opts variants[] = {
	{ 20000, 4, 256, 8, 0, 0, 0, 0, 0 },   /* the defaults, H = 20 us */
	{ 20000, 4, 256, 8, 1, 0, 0, 0, 0 },   /* ... with the poll loop's upkeep */
	{ 100000, 4, 256, 8, 1, 0, 0, 0, 0 },
	{ 100000, 1, 256, 8, 0, 0, 0, 0, 0 },  /* rescan-every-event reference */
	{ 20000, 1, 256, 8, 1, 5, 0, 0, 0 },
	{ 50000, 3, 16, 0, 1, 3, 700, 0, 0 },  /* fast decay, H changed mid-run */
	{ 20000, 7, 64, 2, 0, 11, 1500, 0, 0 },
	{ 20000, 4, 256, 8, 0, 0, 900, 5, 0 }, /* reflects without a select */
	{ 20000, 1, 32, 8, 1, 2, 300, 3, 0 },
	{ 100000, 4, 256, 8, 1, 0, 0, 0, 20479 },  /* cap on a bucket edge */
	{ 20000, 1, 64, 8, 0, 0, 0, 0, 20480 },    /* ... and just past one */
	{ 100000, 2, 256, 8, 1, 0, 0, 0, 1u << 22 }, /* the largest cap */
	{ 20000, 1, 64, 8, 1, 0, 0, 0, 511 },
};

static void compare_all(const char *what, const uint64_t *d, size_t n)
{
	for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++)
		compare(what, d, n, &variants[v]);
}

static const char *const families[] = {
	"bimodal", "bursts", "exponential", "heavytail", "periodic", "phases",
};

START_TEST(same_decisions_on_committed_traces)
{
	const char *dir = getenv("IDLEPOLL_TRACE_DIR");
	char path[4096], err[512];

	ck_assert_ptr_nonnull(dir);
	for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
		struct idlepoll_trace *t;

		snprintf(path, sizeof(path), "%s/%s.trace", dir, families[f]);
		ck_assert_msg(idlepoll_trace_load(path, &t, err, sizeof(err)) == 0,
			      "%s", err);
		compare_all(families[f], t->idle_ns, t->n);
		idlepoll_trace_free(t);
	}
}
END_TEST

/* Seeds 21..23 of every family, made by the generator at test time. */
START_TEST(same_decisions_on_generated_seeds)
{
	const char *gen = getenv("IDLEPOLL_TRACEGEN");
	char cmd[4096], path[64], err[512];

	ck_assert_ptr_nonnull(gen);
	for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
		for (int seed = 21; seed <= 23; seed++) {
			struct idlepoll_trace *t;
			char tmpl[] = "/tmp/idlepoll-exact-XXXXXX";
			int fd = mkstemp(tmpl);

			ck_assert_int_ge(fd, 0);
			snprintf(cmd, sizeof(cmd),
				 "'%s' --family %s --events 3000 --seed %d > '%s'",
				 gen, families[f], seed, tmpl);
			ck_assert_int_eq(system(cmd), 0);
			ck_assert_msg(idlepoll_trace_load(tmpl, &t, err, sizeof(err)) == 0,
				      "%s", err);
			snprintf(path, sizeof(path), "%s seed %d", families[f], seed);
			compare_all(path, t->idle_ns, t->n);
			idlepoll_trace_free(t);
			unlink(tmpl);
			close(fd);
		}
	}
}
END_TEST

/* Durations at and around bucket edges and H, where a rule that is off by
 * one would show: @span buckets from @first, a histogram that forgets
 * fast, so that the argmin keeps sitting on a boundary. */
static void edges(const char *what, unsigned int first, unsigned int span,
		  uint64_t seed)
{
	static uint64_t d[4000];
	static const struct run_opts fast[] = {
		{ 20000, 1, 4, 0, 0, 0, 0, 0, 0 },
		{ 20000, 1, 8, 1, 1, 0, 0, 0, 0 },
		{ 20000, 2, 16, 2, 1, 0, 0, 0, 0 },
		{ 100000, 1, 6, 0, 1, 0, 0, 0, 0 },
	};
	uint64_t s = seed;

	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
		uint64_t z = (s += 0x9e3779b97f4a7c15ull);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		z ^= z >> 31;
		if (z % 8 == 0) /* at H, either side of it */
			d[i] = 20000 + (z >> 8) % 3 - 1;
		else
			d[i] = r_edge(first + (unsigned int)((z >> 8) % span)) +
			       (z >> 20) % 3 - 1;
	}
	compare_all(what, d, sizeof(d) / sizeof(d[0]));
	for (size_t v = 0; v < sizeof(fast) / sizeof(fast[0]); v++)
		compare(what, d, sizeof(d) / sizeof(d[0]), &fast[v]);
}

START_TEST(same_decisions_at_bucket_edges)
{
	edges("edges, every bucket", 0, R_OVER, 42);
	for (unsigned int b = 10; b + 3 < R_OVER; b += 4)
		edges("edges, 3 buckets", b, 3, b);
}
END_TEST

static Suite *smart_exact_suite(void)
{
	Suite *s = suite_create("idlepoll-smart-exact");
	TCase *tc = tcase_create("exact");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, same_decisions_on_committed_traces);
	tcase_add_test(tc, same_decisions_on_generated_seeds);
	tcase_add_test(tc, same_decisions_at_bucket_edges);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(smart_exact_suite)
