/* SPDX-License-Identifier: MIT */
/* The cost model, the simulator engine, trace parsing errors, and the
 * claim the library exists for: smart beats haltpoll and kvm on every
 * committed trace at H = 20 us and 100 us. */
#include <check.h>

#include "../common/check_main.h"
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <exitless/idlepoll.h>
#include <exitless/idlepoll_sim.h>

START_TEST(cost_model_by_hand)
{
	ck_assert_uint_eq(idlepoll_cost(5, 10, 100), 5);    /* polled */
	ck_assert_uint_eq(idlepoll_cost(10, 10, 100), 10);  /* just caught */
	ck_assert_uint_eq(idlepoll_cost(11, 10, 100), 110); /* wasted + H */
	ck_assert_uint_eq(idlepoll_cost(11, 0, 100), 100);  /* halt at once */
	ck_assert_uint_eq(idlepoll_cost(0, 0, 100), 0);
}
END_TEST

START_TEST(score_accumulates_every_column)
{
	struct idlepoll_score s = { .sz = sizeof(s) };
	struct idlepoll_score_summary m;

	ck_assert_int_eq(idlepoll_score_add(&s, 30, 50, 100), 0);  /* poll 30 */
	ck_assert_int_eq(idlepoll_score_add(&s, 300, 50, 100), 0); /* 50 + H */
	ck_assert_uint_eq(s.events, 2);
	ck_assert_uint_eq(s.halts, 1);
	ck_assert_uint_eq(s.cost_ns, 30 + 150);
	ck_assert_uint_eq(s.opt_ns, 30 + 100);
	ck_assert_uint_eq(s.poll_ns, 80);
	ck_assert_uint_eq(s.idle_ns, 330);
	ck_assert_uint_eq(s.latency_ns, 100);
	ck_assert_int_eq(idlepoll_score_summarize(&s, &m), 0);
	ck_assert_double_eq_tol(m.cost_ratio, 180.0 / 130.0, 1e-12);
	ck_assert_double_eq_tol(m.poll_cpu, 80.0 / 330.0, 1e-12);
	ck_assert_double_eq_tol(m.halt_rate, 0.5, 1e-12);
	ck_assert_double_eq_tol(m.added_latency_ns, 50.0, 1e-12);
	s.sz = sizeof(s.sz) - 1;
	ck_assert_int_eq(idlepoll_score_add(&s, 1, 1, 1), -EINVAL);
	ck_assert_int_eq(idlepoll_score_summarize(&s, &m), -EINVAL);
	ck_assert_int_eq(idlepoll_score_add(NULL, 1, 1, 1), -EINVAL);
}
END_TEST

/* A caller built against an older, shorter struct idlepoll_score: its sz
 * ends after cost_ns. It keeps working, and nothing past its sz is read or
 * written (the bytes after it in its memory are someone else's). */
START_TEST(score_of_an_older_caller_keeps_working)
{
	struct {
		struct idlepoll_score s;
		unsigned char canary[8];
	} mem;
	const size_t old_sz = offsetof(struct idlepoll_score, cost_ns) +
			      sizeof(uint64_t);
	struct idlepoll_score_summary m;

	memset(&mem, 0xa5, sizeof(mem));
	memset(&mem.s, 0, old_sz);
	mem.s.sz = old_sz;
	ck_assert_int_eq(idlepoll_score_add(&mem.s, 30, 50, 100), 0);
	ck_assert_int_eq(idlepoll_score_add(&mem.s, 300, 50, 100), 0);
	ck_assert_uint_eq(mem.s.sz, old_sz);
	ck_assert_uint_eq(mem.s.events, 2);
	ck_assert_uint_eq(mem.s.halts, 1);
	ck_assert_uint_eq(mem.s.cost_ns, 30 + 150);
	for (size_t i = old_sz; i < sizeof(mem); i++)
		ck_assert_uint_eq(((unsigned char *)&mem)[i], 0xa5);
	/* fields outside sz read as zero: opt_ns is 0, so is the ratio */
	ck_assert_int_eq(idlepoll_score_summarize(&mem.s, &m), 0);
	ck_assert_double_eq_tol(m.halt_rate, 0.5, 1e-12);
	ck_assert_double_eq_tol(m.cost_ratio, 0.0, 1e-12);
	/* the simulator entry points take it too */
	{
		static const uint64_t d[] = { 10, 1000 };

		ck_assert_int_eq(idlepoll_sim_oracle(100, d, 2, &mem.s), 0);
		ck_assert_uint_eq(mem.s.events, 4);
	}
	for (size_t i = old_sz; i < sizeof(mem); i++)
		ck_assert_uint_eq(((unsigned char *)&mem)[i], 0xa5);
}
END_TEST

START_TEST(oracle_and_best_fixed_by_hand)
{
	static const uint64_t d[] = { 10, 1000, 10 };
	struct idlepoll_score o = { .sz = sizeof(o) }, b = { .sz = sizeof(b) };
	uint64_t w = 99;

	ck_assert_int_eq(idlepoll_sim_oracle(100, d, 3, &o), 0);
	ck_assert_uint_eq(o.cost_ns, 120);
	ck_assert_uint_eq(o.cost_ns, o.opt_ns);
	/* Windows: 0 -> 300; 10 -> 10+10+110 = 130; 1000 -> 1020. */
	ck_assert_int_eq(idlepoll_sim_best_fixed(100, d, 3, &b, &w), 0);
	ck_assert_uint_eq(w, 10);
	ck_assert_uint_eq(b.cost_ns, 130);
	ck_assert_uint_eq(b.opt_ns, 120);
}
END_TEST

START_TEST(sim_run_matches_manual_loop)
{
	static const uint64_t d[] = { 30000, 20000, 80000, 150000 };
	IDLEPOLL_OPTS(opts, .policy = IDLEPOLL_POLICY_HALTPOLL,
		      .halt_cost_ns = 20000);
	struct idlepoll_score s = { .sz = sizeof(s) };
	struct idlepoll_cpu *c;

	ck_assert_int_eq(idlepoll_new(&opts, &c), 0);
	ck_assert_int_eq(idlepoll_sim_run(c, d, 4, &s), 0);
	/* Windows 0, 50k, 50k, 50k (see test_policies.c). */
	ck_assert_uint_eq(s.cost_ns, 20000 + 20000 + 70000 + 70000);
	ck_assert_uint_eq(s.halts, 3);
	idlepoll_destroy(c);
}
END_TEST

/* Write @text to a temporary file; returns its path (static buffer). */
static const char *temp_trace_n(const char *text, size_t len)
{
	static char path[64];
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/tmp/idlepoll-test-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	fclose(f);
	return path;
}

static const char *temp_trace(const char *text)
{
	return temp_trace_n(text, strlen(text));
}

static void expect_error_n(const char *text, size_t len, int line)
{
	const char *path = temp_trace_n(text, len);
	struct idlepoll_trace *t = NULL;
	char err[256], want[128];

	ck_assert_int_eq(idlepoll_trace_load(path, &t, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_null(t);
	if (line)
		snprintf(want, sizeof(want), "%s:%d: ", path, line);
	else
		snprintf(want, sizeof(want), "%s: ", path);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
		      "error '%s' does not start with '%s'", err, want);
	unlink(path);
}

static void expect_error(const char *text, int line)
{
	expect_error_n(text, strlen(text), line);
}

START_TEST(trace_parse_errors_name_file_and_line)
{
	expect_error("100\n# comment\nabc\n", 3);
	expect_error("12x\n", 1);
	expect_error("1\n2\n-5\n", 3);
	expect_error("1 2\n", 1);
	expect_error("99999999999999999999999\n", 1);
	expect_error("1.5\n", 1);
	expect_error_n("5\n\0\n", 4, 2); /* a NUL byte mid-file */
	expect_error("# only comments\n\n", 0);
}
END_TEST

START_TEST(trace_parses_comments_blanks_and_spaces)
{
	const char *path = temp_trace("# header\n 100 \n\n\t# indented\n"
				      "2000\r\n0\n18446744073709551615");
	struct idlepoll_trace *t = NULL;
	char err[256];

	ck_assert_int_eq(idlepoll_trace_load(path, &t, err, sizeof(err)), 0);
	ck_assert_uint_eq(t->n, 4);
	ck_assert_uint_eq(t->idle_ns[0], 100);
	ck_assert_uint_eq(t->idle_ns[1], 2000);
	ck_assert_uint_eq(t->idle_ns[2], 0);
	ck_assert_uint_eq(t->idle_ns[3], UINT64_MAX);
	idlepoll_trace_free(t);
	unlink(path);
	ck_assert_int_eq(idlepoll_trace_load("/nonexistent/x.trace", &t, err,
					     sizeof(err)), -ENOENT);
	ck_assert_str_eq(err, "/nonexistent/x.trace: No such file or directory");
}
END_TEST

static uint64_t cost_of(uint32_t policy, uint64_t h,
			const struct idlepoll_trace *t, uint64_t *opt)
{
	IDLEPOLL_OPTS(opts, .policy = policy, .halt_cost_ns = h);
	struct idlepoll_score s = { .sz = sizeof(s) };
	struct idlepoll_cpu *c;

	ck_assert_int_eq(idlepoll_new(&opts, &c), 0);
	ck_assert_int_eq(idlepoll_sim_run(c, t->idle_ns, t->n, &s), 0);
	idlepoll_destroy(c);
	*opt = s.opt_ns;
	return s.cost_ns;
}

START_TEST(smart_beats_reference_policies_on_committed_traces)
{
	static const uint64_t hs[] = { 20000, 100000 };
	const char *dir = getenv("IDLEPOLL_TRACE_DIR");
	struct dirent *e;
	int traces = 0;
	DIR *dp;

	ck_assert_msg(dir != NULL, "IDLEPOLL_TRACE_DIR unset");
	dp = opendir(dir);
	ck_assert_ptr_nonnull(dp);
	while ((e = readdir(dp))) {
		size_t len = strlen(e->d_name);
		struct idlepoll_trace *t;
		char path[512], err[512];

		if (len < 7 || strcmp(e->d_name + len - 6, ".trace"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		ck_assert_msg(idlepoll_trace_load(path, &t, err, sizeof(err)) == 0,
			      "%s", err);
		for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++) {
			uint64_t opt, o2, o3;
			uint64_t smart = cost_of(IDLEPOLL_POLICY_SMART, hs[i], t, &opt);
			uint64_t hp = cost_of(IDLEPOLL_POLICY_HALTPOLL, hs[i], t, &o2);
			uint64_t kvm = cost_of(IDLEPOLL_POLICY_KVM, hs[i], t, &o3);

			/* Same trace, same H: same optimum, so compare costs. */
			ck_assert_uint_eq(opt, o2);
			ck_assert_uint_eq(opt, o3);
			ck_assert_msg(smart < hp && smart < kvm,
				      "%s H=%llu: smart %.4f haltpoll %.4f kvm %.4f",
				      e->d_name, (unsigned long long)hs[i],
				      (double)smart / opt, (double)hp / opt,
				      (double)kvm / opt);
		}
		idlepoll_trace_free(t);
		traces++;
	}
	closedir(dp);
	/* exponential, bimodal, periodic, heavytail, bursts, phases */
	ck_assert_int_ge(traces, 6);
}
END_TEST

static Suite *idlepoll_sim_suite(void)
{
	Suite *s = suite_create("idlepoll-sim");
	TCase *tc = tcase_create("sim");

	tcase_add_test(tc, cost_model_by_hand);
	tcase_add_test(tc, score_accumulates_every_column);
	tcase_add_test(tc, score_of_an_older_caller_keeps_working);
	tcase_add_test(tc, oracle_and_best_fixed_by_hand);
	tcase_add_test(tc, sim_run_matches_manual_loop);
	tcase_add_test(tc, trace_parse_errors_name_file_and_line);
	tcase_add_test(tc, trace_parses_comments_blanks_and_spaces);
	tcase_add_test(tc, smart_beats_reference_policies_on_committed_traces);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(idlepoll_sim_suite)
