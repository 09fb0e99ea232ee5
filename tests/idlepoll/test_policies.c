/* SPDX-License-Identifier: MIT */
/* The reference policies against hand-computed sequences, the dispatcher's
 * contracts (options, parameters, timer bound) and smart's behaviour on
 * simple and adversarial inputs. */
#include <check.h>

#include "../common/check_main.h"
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <exitless/idlepoll.h>
#include <exitless/idlepoll_sim.h>

static struct idlepoll_cpu *make(uint32_t policy, uint64_t h)
{
	IDLEPOLL_OPTS(opts, .policy = policy, .halt_cost_ns = h);
	struct idlepoll_cpu *c = NULL;

	ck_assert_int_eq(idlepoll_new(&opts, &c), 0);
	return c;
}

/* One idle period of @d after select; returns the window that was used. */
static uint64_t period(struct idlepoll_cpu *c, uint64_t d)
{
	uint64_t w = idlepoll_select(c, 0, IDLEPOLL_NO_TIMER);

	idlepoll_reflect(c, d, d <= w);
	return w;
}

struct step {
	uint64_t d;      /* idle period */
	uint64_t window; /* expected window chosen for it */
};

static void run_steps(struct idlepoll_cpu *c, const struct step *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(period(c, s[i].d) == s[i].window,
			      "step %zu: d=%llu expected window %llu", i,
			      (unsigned long long)s[i].d,
			      (unsigned long long)s[i].window);
}

START_TEST(fixed_polls_its_window)
{
	struct idlepoll_cpu *c = make(IDLEPOLL_POLICY_FIXED, 0);
	uint64_t v;

	ck_assert_int_eq(idlepoll_get_param(c, "window_ns", &v), 0);
	ck_assert_uint_eq(v, 100000);
	ck_assert_uint_eq(period(c, 1000000), 100000);
	ck_assert_uint_eq(period(c, 10), 100000);
	ck_assert_int_eq(idlepoll_set_param(c, "window_ns", 5000), 0);
	ck_assert_uint_eq(period(c, 1), 5000);
	idlepoll_destroy(c);
}
END_TEST

/* Defaults cap 200 us, grow 2, grow_start 50 us, shrink 2: the limit moves
 * only after halts, judged on the halted time d - window. */
START_TEST(haltpoll_hand_sequence)
{
	static const struct step s[] = {
		{ 30000, 0 },       /* halt at once; blocked 30 us: grow to 50 */
		{ 20000, 50000 },   /* caught by the poll: no change */
		{ 80000, 50000 },   /* blocked 30 us <= limit: no change */
		{ 150000, 50000 },  /* blocked 100 us: grow to 100 */
		{ 300000, 100000 }, /* blocked 200 us (= cap): grow to 200 */
		{ 500000, 200000 }, /* blocked 300 us > cap: shrink to 100 */
		{ 400000, 100000 }, /* blocked 300 us: shrink to 50 */
		{ 400000, 50000 },  /* blocked 350 us: 25 < grow_start: 0 */
		{ 100, 0 },         /* halted 100 ns: grow to grow_start */
		{ 100, 50000 },
	};
	struct idlepoll_cpu *c = make(IDLEPOLL_POLICY_HALTPOLL, 0);

	run_steps(c, s, sizeof(s) / sizeof(s[0]));
	idlepoll_destroy(c);
}
END_TEST

START_TEST(haltpoll_parameters)
{
	static const struct step s[] = {
		{ 10000, 0 },       /* grow to grow_start 20 us */
		{ 100000, 20000 },  /* blocked 80 us: x4 = 80 us */
		{ 200000, 80000 },  /* blocked 120 us > cap 100: no shrink */
		{ 200000, 80000 },
	};
	struct idlepoll_cpu *c = make(IDLEPOLL_POLICY_HALTPOLL, 0);
	uint64_t v;

	ck_assert_int_eq(idlepoll_get_param(c, "cap_ns", &v), 0);
	ck_assert_uint_eq(v, 200000);
	ck_assert_int_eq(idlepoll_set_param(c, "grow_start_ns", 20000), 0);
	ck_assert_int_eq(idlepoll_set_param(c, "grow", 4), 0);
	ck_assert_int_eq(idlepoll_set_param(c, "cap_ns", 100000), 0);
	ck_assert_int_eq(idlepoll_set_param(c, "allow_shrink", 0), 0);
	ck_assert_int_eq(idlepoll_set_param(c, "allow_shrink", 2), -EINVAL);
	ck_assert_int_eq(idlepoll_set_param(c, "max_ns", 1), -ENOENT);
	run_steps(c, s, sizeof(s) / sizeof(s[0]));
	idlepoll_destroy(c);
}
END_TEST

/* Defaults max 200 us, grow 2, grow_start 10 us, shrink 2; the whole idle
 * period (poll included) is judged after every halt. */
START_TEST(kvm_hand_sequence)
{
	static const struct step s[] = {
		{ 5000, 0 },        /* short block, poll 0 < max: grow to 10 */
		{ 8000, 10000 },    /* caught: nothing */
		{ 50000, 10000 },   /* 50 < max: grow to 20 */
		{ 50000, 20000 },   /* grow to 40 */
		{ 50000, 40000 },   /* grow to 80 */
		{ 50000, 80000 },   /* caught */
		{ 300000, 80000 },  /* > max: shrink to 40 */
		{ 300000, 40000 },  /* shrink to 20 */
		{ 300000, 20000 },  /* shrink to 10 (= grow_start, kept) */
		{ 300000, 10000 },  /* 5 < grow_start: reset to 0 */
		{ 300000, 0 },      /* poll 0 and block > max: nothing */
		{ 150000, 0 },      /* grow to 10 */
		{ 150000, 10000 },
	};
	struct idlepoll_cpu *c = make(IDLEPOLL_POLICY_KVM, 0);

	run_steps(c, s, sizeof(s) / sizeof(s[0]));
	idlepoll_destroy(c);
}
END_TEST

START_TEST(kvm_grow_caps_and_lowered_max_clamps)
{
	static const struct step s[] = {
		{ 1000, 0 }, { 100000, 10000 }, { 100000, 20000 },
		{ 100000, 40000 }, { 100000, 80000 }, { 190000, 160000 },
		{ 190000, 200000 }, /* 320 capped at max 200 */
	};
	struct idlepoll_cpu *c = make(IDLEPOLL_POLICY_KVM, 0);

	run_steps(c, s, sizeof(s) / sizeof(s[0]));
	ck_assert_int_eq(idlepoll_set_param(c, "max_ns", 30000), 0);
	ck_assert_uint_eq(period(c, 1), 30000);
	ck_assert_int_eq(idlepoll_set_param(c, "max_ns", 0), 0);
	ck_assert_uint_eq(period(c, 500), 0);
	ck_assert_uint_eq(period(c, 500), 0);
	idlepoll_destroy(c);
}
END_TEST

START_TEST(next_timer_bounds_every_policy)
{
	for (uint32_t p = 1; p <= IDLEPOLL_POLICY_MAX; p++) {
		struct idlepoll_cpu *c = make(p, 100000);

		for (int i = 0; i < 50; i++)
			period(c, 60000);
		ck_assert_uint_le(idlepoll_select(c, 1000, 4000), 3000);
		idlepoll_reflect(c, 3000, 1);
		ck_assert_uint_eq(idlepoll_select(c, 5000, 4000), 0);
		idlepoll_reflect(c, 0, 0);
		idlepoll_destroy(c);
	}
}
END_TEST

START_TEST(smart_learns_constant_periods)
{
	struct idlepoll_cpu *c = make(IDLEPOLL_POLICY_SMART, 20000);
	uint64_t w;
	int i;

	for (i = 0; i < 100; i++)
		period(c, 5000);
	w = idlepoll_select(c, 0, IDLEPOLL_NO_TIMER);
	/* Poll through 5 us (it is cheaper than H) but not to H. */
	ck_assert_uint_ge(w, 5000);
	ck_assert_uint_lt(w, 6500);
	idlepoll_reflect(c, 5000, 1);
	for (i = 0; i < 300; i++)
		period(c, 1000000);
	ck_assert_uint_eq(idlepoll_select(c, 0, IDLEPOLL_NO_TIMER), 0);
	idlepoll_destroy(c);
}
END_TEST

/* An adversary that sees the window defeats any predictor: it wakes 1 ns
 * after the window, or after 1 us when the policy halts at once. The
 * 2-competitive ski-rental rule (w = H) scores 2x here, fixed windows and the
 * reference rules 2.5x-8.5x; smart must stay near the ski bound rather than
 * collapse (a predictor alone would be pushed to small windows at ~H/w). */
static double adversary_ratio(uint32_t policy, uint64_t h)
{
	struct idlepoll_cpu *c = make(policy, h);
	struct idlepoll_score s = { .sz = sizeof(s) };
	struct idlepoll_score_summary m;

	for (int i = 0; i < 4000; i++) {
		uint64_t w = idlepoll_select(c, 0, IDLEPOLL_NO_TIMER);
		uint64_t d = w ? w + 1 : 1000;

		idlepoll_score_add(&s, d, w, h);
		idlepoll_reflect(c, d, 0);
	}
	ck_assert_int_eq(idlepoll_score_summarize(&s, &m), 0);
	idlepoll_destroy(c);
	return m.cost_ratio;
}

START_TEST(smart_degrades_gracefully_against_adversary)
{
	static const uint64_t hs[] = { 20000, 100000 };

	for (size_t i = 0; i < 2; i++) {
		double smart = adversary_ratio(IDLEPOLL_POLICY_SMART, hs[i]);
		double haltpoll = adversary_ratio(IDLEPOLL_POLICY_HALTPOLL, hs[i]);

		ck_assert_msg(smart < 3.0 && smart < haltpoll,
			      "H=%llu: smart %f haltpoll %f",
			      (unsigned long long)hs[i], smart, haltpoll);
	}
}
END_TEST

/* libbpf's rules: an older caller's shorter struct gets the defaults of
 * the fields it lacks (the bytes past its sz, here 0xff, are not read); a
 * newer caller's longer struct must be zero past the last known field. */
START_TEST(opts_grow_both_ways)
{
	_Alignas(64) static unsigned char mem[1 << 14];
	const size_t known = offsetof(struct idlepoll_opts, halt_cost_ns) +
			     sizeof(uint64_t);
	struct {
		struct idlepoll_opts o;
		uint64_t tail[2];
	} big;
	struct idlepoll_cpu *c = NULL;
	uint64_t v;

	/* a caller that knew only policy: flags and H are 0xff garbage */
	memset(&big, 0xff, sizeof(big));
	big.o.sz = offsetof(struct idlepoll_opts, policy) + sizeof(uint32_t);
	big.o.policy = IDLEPOLL_POLICY_KVM;
	ck_assert_int_eq(idlepoll_cpu_init(mem, sizeof(mem), &big.o, &c), 0);
	ck_assert_uint_eq(idlepoll_cpu_policy(c), IDLEPOLL_POLICY_KVM);
	ck_assert_int_eq(idlepoll_get_param(c, "halt_cost_ns", &v), 0);
	ck_assert_uint_eq(v, IDLEPOLL_DEFAULT_HALT_COST_NS);
	/* one that knew only sz: every default */
	big.o.sz = sizeof(size_t);
	ck_assert_int_eq(idlepoll_cpu_init(mem, sizeof(mem), &big.o, &c), 0);
	ck_assert_uint_eq(idlepoll_cpu_policy(c), IDLEPOLL_POLICY_SMART);
	big.o.sz = sizeof(size_t) - 1;
	ck_assert_int_eq(idlepoll_cpu_init(mem, sizeof(mem), &big.o, &c), -EINVAL);
	/* a newer caller: zero tail fine, any non-zero byte past H refused */
	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big);
	big.o.halt_cost_ns = 5000;
	ck_assert_int_eq(idlepoll_cpu_init(mem, sizeof(mem), &big.o, &c), 0);
	ck_assert_int_eq(idlepoll_get_param(c, "halt_cost_ns", &v), 0);
	ck_assert_uint_eq(v, 5000);
	for (size_t i = known; i < sizeof(big); i++) {
		((unsigned char *)&big)[i] = 1;
		ck_assert_int_eq(idlepoll_cpu_init(mem, sizeof(mem), &big.o, &c),
				 -EINVAL);
		((unsigned char *)&big)[i] = 0;
	}
}
END_TEST

/* The macro leaves no byte of the struct unset. */
static __attribute__((noinline)) void dirty_stack(void)
{
	volatile unsigned char junk[4096];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = 0xa5;
}

static __attribute__((noinline)) int macro_zeroes_the_rest(void)
{
	IDLEPOLL_OPTS(o, .policy = IDLEPOLL_POLICY_FIXED);
	struct idlepoll_opts want;

	memset(&want, 0, sizeof(want));
	want.sz = sizeof(want);
	want.policy = IDLEPOLL_POLICY_FIXED;
	return memcmp(&o, &want, sizeof(o)) == 0;
}

START_TEST(opts_macro_zeroes_the_struct)
{
	dirty_stack();
	ck_assert(macro_zeroes_the_rest());
}
END_TEST

/* docs/idlepoll.md states the size of the per-CPU state: it must be the
 * size the code has ("State: N bytes per CPU"). */
START_TEST(doc_states_the_state_size)
{
	const char *path = getenv("IDLEPOLL_DOC");
	static char text[1 << 16];
	unsigned long bytes = 0;
	const char *at;
	size_t n;
	FILE *f;

	ck_assert_msg(path != NULL, "IDLEPOLL_DOC not set");
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	at = strstr(text, "State: ");
	ck_assert_msg(at != NULL, "%s: no \"State: N bytes per CPU\"", path);
	ck_assert_int_eq(sscanf(at, "State: %lu bytes per CPU", &bytes), 1);
	ck_assert_uint_eq(bytes, idlepoll_cpu_size());
}
END_TEST

START_TEST(init_checks_memory_and_options)
{
	_Alignas(64) static unsigned char mem[1 << 14];
	struct idlepoll_cpu *c = NULL;
	struct {
		struct idlepoll_opts o;
		uint64_t tail;
	} big = { .o = { .sz = sizeof(big) } };
	IDLEPOLL_OPTS(opts, .policy = 99);
	uint64_t v;

	ck_assert_uint_le(idlepoll_cpu_size(), sizeof(mem));
	ck_assert_uint_le(idlepoll_cpu_align(), 64);
	ck_assert_int_eq(idlepoll_cpu_init(mem, idlepoll_cpu_size() - 1, NULL, &c),
			 -EINVAL);
	ck_assert_int_eq(idlepoll_cpu_init(mem + 1, sizeof(mem) - 1, NULL, &c),
			 -EINVAL);
	ck_assert_int_eq(idlepoll_cpu_init(mem, sizeof(mem), &opts, &c), -ENOENT);
	opts.policy = IDLEPOLL_POLICY_KVM;
	opts.flags = 1;
	ck_assert_int_eq(idlepoll_cpu_init(mem, sizeof(mem), &opts, &c), -EINVAL);
	big.tail = 1;
	ck_assert_int_eq(idlepoll_cpu_init(mem, sizeof(mem), &big.o, &c), -EINVAL);
	big.tail = 0;
	ck_assert_int_eq(idlepoll_cpu_init(mem, sizeof(mem), &big.o, &c), 0);
	ck_assert_ptr_eq(c, (void *)mem);
	ck_assert_uint_eq(idlepoll_cpu_policy(c), IDLEPOLL_POLICY_SMART);
	ck_assert_int_eq(idlepoll_get_param(c, "halt_cost_ns", &v), 0);
	ck_assert_uint_eq(v, IDLEPOLL_DEFAULT_HALT_COST_NS);
	ck_assert_int_eq(idlepoll_set_param(c, "halt_cost_ns", 0), -EINVAL);
	ck_assert_int_eq(idlepoll_set_param(c, "nope", 1), -ENOENT);
	idlepoll_destroy(NULL);
}
END_TEST

START_TEST(names_and_keys)
{
	ck_assert_str_eq(idlepoll_policy_name(IDLEPOLL_POLICY_HALTPOLL), "haltpoll");
	ck_assert_ptr_null(idlepoll_policy_name(0));
	ck_assert_int_eq(idlepoll_policy_from_name("kvm"), IDLEPOLL_POLICY_KVM);
	ck_assert_int_eq(idlepoll_policy_from_name("smart"), IDLEPOLL_POLICY_SMART);
	ck_assert_int_eq(idlepoll_policy_from_name("oracle"), -ENOENT);
	ck_assert_str_eq(idlepoll_param_key(IDLEPOLL_POLICY_FIXED, 0), "window_ns");
	ck_assert_str_eq(idlepoll_param_key(IDLEPOLL_POLICY_FIXED, 1), "halt_cost_ns");
	ck_assert_ptr_null(idlepoll_param_key(IDLEPOLL_POLICY_FIXED, 2));
	ck_assert_str_eq(idlepoll_param_key(IDLEPOLL_POLICY_HALTPOLL, 4), "allow_shrink");
}
END_TEST

/* Memory idlepoll_cpu_init() never set up has no policy to call: zeroed
 * (policy slot 0, unset), garbage (a slot past the table) or NULL. select
 * halts at once, reflect does nothing, work and the parameter calls say
 * -EINVAL, and nothing crashes (before: a call through a NULL slot). */
START_TEST(uninitialised_state_is_refused_safely)
{
	static _Alignas(64) unsigned char mem[8192];
	struct idlepoll_cpu *c = (struct idlepoll_cpu *)mem;
	uint64_t v = 0;

	ck_assert_uint_le(idlepoll_cpu_size(), sizeof(mem));
	for (int fill = 0; fill < 3; fill++) {
		memset(mem, fill == 0 ? 0 : fill == 1 ? 0xff : 0x04, sizeof(mem));
		ck_assert_uint_eq(idlepoll_select(c, 0, IDLEPOLL_NO_TIMER), 0);
		idlepoll_reflect(c, 1000, 1);
		ck_assert_int_eq(idlepoll_work(c), -EINVAL);
		ck_assert_int_eq(idlepoll_set_param(c, "halt_cost_ns", 5), -EINVAL);
		ck_assert_int_eq(idlepoll_get_param(c, "halt_cost_ns", &v), -EINVAL);
		ck_assert_uint_eq(idlepoll_cpu_policy(c), 0);
		/* nothing was written to it */
		for (size_t i = 0; i < sizeof(mem); i++)
			ck_assert_uint_eq(mem[i], fill == 0 ? 0 : fill == 1 ? 0xff : 0x04);
	}
	ck_assert_uint_eq(idlepoll_select(NULL, 0, 10), 0);
	idlepoll_reflect(NULL, 1000, 0);
	ck_assert_int_eq(idlepoll_work(NULL), -EINVAL);
	ck_assert_uint_eq(idlepoll_cpu_policy(NULL), 0);
}
END_TEST

/* idlepoll_work() finishes in a bounded number of chunks, has nothing to do
 * for the reference policies, and after it select does no upkeep: a
 * second call right away has nothing left either. */
START_TEST(work_is_bounded_and_optional)
{
	for (uint32_t p = 1; p <= IDLEPOLL_POLICY_MAX; p++) {
		struct idlepoll_cpu *c = make(p, 20000);
		long chunks = 0, most = 0;

		for (int i = 0; i < 3000; i++) {
			int n = 0, r;

			period(c, (uint64_t)(i * 7919) % 300000);
			while ((r = idlepoll_work(c)) > 0)
				n++;
			ck_assert_int_eq(r, 0);
			ck_assert_int_eq(idlepoll_work(c), 0);
			chunks += n;
			most = n > most ? n : most;
		}
		if (p == IDLEPOLL_POLICY_SMART) {
			/* learn the period, refresh two windows */
			ck_assert_int_le(most, 3);
			ck_assert_int_gt(chunks, 3000);
		} else {
			ck_assert_int_eq(chunks, 0);
		}
		idlepoll_destroy(c);
	}
}
END_TEST

static Suite *idlepoll_policies_suite(void)
{
	Suite *s = suite_create("idlepoll-policies");
	TCase *tc = tcase_create("policies");

	tcase_add_test(tc, fixed_polls_its_window);
	tcase_add_test(tc, haltpoll_hand_sequence);
	tcase_add_test(tc, haltpoll_parameters);
	tcase_add_test(tc, kvm_hand_sequence);
	tcase_add_test(tc, kvm_grow_caps_and_lowered_max_clamps);
	tcase_add_test(tc, next_timer_bounds_every_policy);
	tcase_add_test(tc, smart_learns_constant_periods);
	tcase_add_test(tc, smart_degrades_gracefully_against_adversary);
	tcase_add_test(tc, init_checks_memory_and_options);
	tcase_add_test(tc, opts_grow_both_ways);
	tcase_add_test(tc, doc_states_the_state_size);
	tcase_add_test(tc, opts_macro_zeroes_the_struct);
	tcase_add_test(tc, names_and_keys);
	tcase_add_test(tc, uninitialised_state_is_refused_safely);
	tcase_add_test(tc, work_is_bounded_and_optional);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(idlepoll_policies_suite)
