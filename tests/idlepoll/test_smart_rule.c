/* SPDX-License-Identifier: MIT */
/* White box: smart's argmin-kept rule against a rescan, on many random
 * histograms. Whenever hist_add() leaves a histogram "not moved", a scan of
 * the new histogram must return the cached window: ties, bucket edges,
 * H +- 1, odd weights after a decay, the max_poll cap. (test_smart_exact
 * checks whole decisions; a near-tie the rule gets wrong may never reach a
 * decision there, so the rule is checked on its own here.) */
#include <check.h>

#include "../common/check_main.h"

/* the private functions under test, compiled into this binary */
#include "../../libidlepoll/src/smart.c"

static uint64_t rng(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* a duration near something that matters to the rule */
static uint64_t pick_d(uint64_t *s, uint64_t h, uint64_t best_w)
{
	uint64_t z = rng(s), j = (z >> 8) % 3 - 1;

	switch (z % 5) {
	case 0: return h + j;
	case 1: return best_w + j;
	case 2: return bucket_edge[(z >> 16) % IP_OVERFLOW] + j;
	case 3: return (z >> 16) % (1ull << 23);
	default: return (z >> 16) % (h + 1);
	}
}

START_TEST(kept_argmin_is_the_rescan_argmin)
{
	static struct ip_hist x;
	uint64_t s = 7;
	long kept = 0, moved = 0;

	for (int round = 0; round < 4000; round++) {
		uint64_t z = rng(&s);
		/* small H and few buckets make ties and boundary cases common */
		uint64_t h = z % 3 ? 1 + (z >> 8) % 4096 : 1 + (z >> 8) % (1ull << 20);
		uint64_t maxp = (z >> 40) % 4 ? 1ull << 22 : bucket_edge[(z >> 32) % IP_OVERFLOW];
		unsigned int first = (unsigned int)(rng(&s) % IP_NB), span = 1 + rng(&s) % 4;

		ip_zero(&x, sizeof(x));
		for (int i = 0, n = 1 + (int)(rng(&s) % 40); i < n; i++) {
			unsigned int b = first + (unsigned int)(rng(&s) % span);
			uint64_t w = 1 + rng(&s) % 40; /* odd weights: after decays */

			b = b < IP_NB ? b : IP_OVERFLOW;
			x.cnt[b] += (uint32_t)w;
			x.total += (uint32_t)w;
			x.sum[b] += w * (b < IP_OVERFLOW ? bucket_edge[b] - rng(&s) % 64 : 1ull << 23);
			x.top = b > x.top ? b : x.top;
		}
		x.best_w = hist_best(&x, h, maxp);
		x.best_h = h;
		x.best_max = maxp;
		for (int step = 0; step < 8; step++) {
			uint64_t d = pick_d(&s, h, x.best_w), w = x.best_w;

			x.moved = 0;
			hist_add(&x, d, bucket_of(d), UINT64_MAX);
			if (x.moved) {
				moved++;
				x.best_w = hist_best(&x, h, maxp);
				continue;
			}
			kept++;
			ck_assert_msg(hist_best(&x, h, maxp) == w,
				      "round %d step %d: H %llu d %llu: kept %llu, rescan %llu",
				      round, step, (unsigned long long)h,
				      (unsigned long long)d, (unsigned long long)w,
				      (unsigned long long)hist_best(&x, h, maxp));
		}
	}
	/* both sides of the rule were exercised */
	ck_assert_int_gt(kept, 1000);
	ck_assert_int_gt(moved, 1000);
}
END_TEST

/* Near-ties built on purpose, which random histograms rarely hit: all
 * weight W < IP_UNIT in one bucket with sum S, and H = S / W, so halting
 * at once beats polling to the bucket's edge by less than one event's
 * weight. A period of H - 1 then moves the argmin, one of H does not. */
START_TEST(near_ties_at_h)
{
	static struct ip_hist x;
	uint64_t s = 11;

	for (int round = 0; round < 2000; round++) {
		unsigned int b = 1 + (unsigned int)(rng(&s) % (IP_OVERFLOW - 1));
		uint64_t w = 1 + rng(&s) % (IP_UNIT - 1);
		uint64_t lo = bucket_edge[b - 1] + 1, hi = bucket_edge[b];
		uint64_t sum = w * lo + rng(&s) % (w * (hi - lo) + 1);
		uint64_t h = sum / w, d = h - (rng(&s) & 1);
		uint64_t before, after;

		ip_zero(&x, sizeof(x));
		x.cnt[b] = (uint32_t)w;
		x.total = (uint32_t)w;
		x.sum[b] = sum;
		x.top = b;
		before = hist_best(&x, h, 1ull << 22);
		ck_assert_uint_eq(before, 0); /* halt at once, by < one event */
		x.best_h = h;
		x.best_max = 1ull << 22;
		hist_add(&x, d, bucket_of(d), UINT64_MAX);
		after = hist_best(&x, h, 1ull << 22);
		ck_assert_msg(x.moved || after == before,
			      "round %d: H %llu d %llu kept halting, rescan %llu",
			      round, (unsigned long long)h,
			      (unsigned long long)d, (unsigned long long)after);
	}
}
END_TEST

/* Which bucket each edge closes, and that bucket_of() agrees. */
START_TEST(edges_close_their_buckets)
{
	for (unsigned int b = 0; b < IP_OVERFLOW; b++) {
		ck_assert_uint_eq(bucket_of(bucket_edge[b]), b);
		ck_assert_uint_eq(bucket_of(bucket_edge[b] + 1), b + 1);
	}
}
END_TEST

static Suite *smart_rule_suite(void)
{
	Suite *s = suite_create("idlepoll-smart-rule");
	TCase *tc = tcase_create("rule");

	tcase_add_test(tc, kept_argmin_is_the_rescan_argmin);
	tcase_add_test(tc, near_ties_at_h);
	tcase_add_test(tc, edges_close_their_buckets);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(smart_rule_suite)
