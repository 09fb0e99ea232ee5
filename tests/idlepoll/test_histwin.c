/* SPDX-License-Identifier: MIT */
/* idlepoll_hist_window(): the window a host computes from a log2 histogram
 * of idle durations (KVM's halt histograms), judged by the simulator. On
 * every committed trace, the histogram's window must cost, when the
 * simulator scores it on the trace itself, little more than the best
 * single window in hindsight, never more than halting at once, and at
 * most 2% more than ski rental (w = H). By hand: a point mass, a cap, the open bucket, bad
 * arguments. */
#include <check.h>

#include "../common/check_main.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <exitless/idlepoll.h>
#include <exitless/idlepoll_sim.h>

#define KVM_BUCKETS 32 /* KVM's HALT_POLL_HIST_COUNT */

/* KVM's kvm_stats_log_hist_update(): bucket fls64(d), clamped. */
static void hist_add(uint64_t *h, size_t n, uint64_t d)
{
	size_t b = d ? 64 - (size_t)__builtin_clzll(d) : 0;

	h[b < n ? b : n - 1]++;
}

static uint64_t trace_cost(const struct idlepoll_trace *t, uint64_t w,
			   uint64_t hc)
{
	struct idlepoll_score s = { .sz = sizeof(s) };

	for (size_t i = 0; i < t->n; i++)
		idlepoll_score_add(&s, t->idle_ns[i], w, hc);
	return s.cost_ns;
}

START_TEST(point_mass_is_caught_when_polling_pays)
{
	uint64_t h[KVM_BUCKETS] = { 0 }, w = 7;

	for (int i = 0; i < 100; i++)
		hist_add(h, KVM_BUCKETS, 1000); /* bucket [512, 1024) */
	ck_assert_int_eq(idlepoll_hist_window(h, KVM_BUCKETS, 20000, 0, &w), 0);
	ck_assert_uint_eq(w, 1024);
	/* the same periods, but a halt costs less than the poll: halt */
	ck_assert_int_eq(idlepoll_hist_window(h, KVM_BUCKETS, 100, 0, &w), 0);
	ck_assert_uint_eq(w, 0);
	/* a cap below the mass: polling up to it would only waste it */
	ck_assert_int_eq(idlepoll_hist_window(h, KVM_BUCKETS, 20000, 600, &w), 0);
	ck_assert_uint_eq(w, 0);
}
END_TEST

START_TEST(long_periods_and_the_open_bucket_halt)
{
	uint64_t h[KVM_BUCKETS] = { 0 }, w = 7;

	ck_assert_int_eq(idlepoll_hist_window(h, KVM_BUCKETS, 20000, 0, &w), 0);
	ck_assert_uint_eq(w, 0); /* empty */
	h[KVM_BUCKETS - 1] = 1000; /* >= 2^30 ns: never caught */
	ck_assert_int_eq(idlepoll_hist_window(h, KVM_BUCKETS, 1000000, 0, &w), 0);
	ck_assert_uint_eq(w, 0);
	h[5] = 1; /* one short period is worth catching, no more */
	ck_assert_int_eq(idlepoll_hist_window(h, KVM_BUCKETS, 1000000, 0, &w), 0);
	ck_assert_uint_eq(w, 32);
	/* a mix: 90% at ~3 us, 10% at ~1 ms, H = 50 us -> catch the short */
	memset(h, 0, sizeof(h));
	h[12] = 900; /* [2048, 4096) */
	h[20] = 100; /* [0.5, 1) ms */
	ck_assert_int_eq(idlepoll_hist_window(h, KVM_BUCKETS, 50000, 0, &w), 0);
	ck_assert_uint_eq(w, 4096);
}
END_TEST

START_TEST(bad_arguments)
{
	uint64_t h[KVM_BUCKETS] = { 0 }, w;

	ck_assert_int_eq(idlepoll_hist_window(NULL, 4, 1, 0, &w), -EINVAL);
	ck_assert_int_eq(idlepoll_hist_window(h, 4, 1, 0, NULL), -EINVAL);
	ck_assert_int_eq(idlepoll_hist_window(h, 1, 1, 0, &w), -EINVAL);
	ck_assert_int_eq(idlepoll_hist_window(h, IDLEPOLL_HIST_MAX_BUCKETS + 1,
					      1, 0, &w), -EINVAL);
	ck_assert_int_eq(idlepoll_hist_window(h, 4, 0, 0, &w), -EINVAL);
}
END_TEST

/* The claim: a log2 histogram is enough. Bound: 10% over the best fixed
 * window in hindsight (which knows every duration exactly). */
START_TEST(hist_window_near_best_fixed_on_committed_traces)
{
	static const uint64_t hcs[] = { 20000, 50000, 100000 };
	const char *dir = getenv("IDLEPOLL_TRACE_DIR");
	struct dirent *e;
	DIR *d;
	int traces = 0;

	ck_assert_msg(dir != NULL, "IDLEPOLL_TRACE_DIR unset");
	d = opendir(dir);
	ck_assert_msg(d != NULL, "cannot open %s", dir);
	while ((e = readdir(d))) {
		struct idlepoll_trace *t;
		char path[4096], err[256];
		size_t len = strlen(e->d_name);

		if (len < 7 || strcmp(e->d_name + len - 6, ".trace"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		ck_assert_msg(idlepoll_trace_load(path, &t, err, sizeof(err)) == 0,
			      "%s", err);
		for (size_t k = 0; k < sizeof(hcs) / sizeof(hcs[0]); k++) {
			struct idlepoll_score best = { .sz = sizeof(best) };
			uint64_t h[KVM_BUCKETS] = { 0 }, w, bw, cw, c0, ch;

			for (size_t i = 0; i < t->n; i++)
				hist_add(h, KVM_BUCKETS, t->idle_ns[i]);
			ck_assert_int_eq(idlepoll_hist_window(h, KVM_BUCKETS,
							      hcs[k], 0, &w), 0);
			ck_assert_int_eq(idlepoll_sim_best_fixed(hcs[k], t->idle_ns,
								 t->n, &best, &bw), 0);
			cw = trace_cost(t, w, hcs[k]);
			c0 = trace_cost(t, 0, hcs[k]);
			ch = trace_cost(t, hcs[k], hcs[k]);
			printf("%-18s H %6llu: hist window %8llu ns cost %.4f x "
			       "best fixed (%llu ns); halt %.4f x, w=H %.4f x\n",
			       e->d_name, (unsigned long long)hcs[k],
			       (unsigned long long)w, (double)cw / (double)best.cost_ns,
			       (unsigned long long)bw,
			       (double)c0 / (double)best.cost_ns,
			       (double)ch / (double)best.cost_ns);
			fflush(stdout);
			ck_assert_msg(cw * 100 <= best.cost_ns * 110,
				      "%s H %llu: %llu vs best %llu", e->d_name,
				      (unsigned long long)hcs[k],
				      (unsigned long long)cw,
				      (unsigned long long)best.cost_ns);
			ck_assert_msg(cw <= c0 && cw * 100 <= ch * 102,
				      "%s H %llu: worse than halting or w = H",
				      e->d_name, (unsigned long long)hcs[k]);
		}
		idlepoll_trace_free(t);
		traces++;
	}
	closedir(d);
	ck_assert_int_ge(traces, 6);
}
END_TEST

static Suite *histwin_suite(void)
{
	Suite *s = suite_create("idlepoll-histwin");
	TCase *tc = tcase_create("histwin");

	tcase_add_test(tc, point_mass_is_caught_when_polling_pays);
	tcase_add_test(tc, long_periods_and_the_open_bucket_halt);
	tcase_add_test(tc, bad_arguments);
	tcase_add_test(tc, hist_window_near_best_fixed_on_committed_traces);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(histwin_suite)
