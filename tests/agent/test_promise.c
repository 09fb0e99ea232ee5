/* SPDX-License-Identifier: MIT */
/* The promise arithmetic (libagent/src/promise.c) and the clock's
 * conversions (clock.h), driven with chosen TSC values: no thread, no
 * clock read, so every bound is exact. A 2.1 GHz TSC (this machine's) and
 * a 1 GHz one (the identity path). */
#include <check.h>
#include <stdint.h>

#include "check_main.h"
#include "internal.h"

#define KHZ 2100000u
#define SPIN_FLOOR_NS 20000u
#define WAKE_FLOOR_NS 150000u

static struct agent_clock clk;

static void setup(struct agent_promise *p)
{
	agent_clock_init(&clk, KHZ);
	agent_promise_init(p, &clk, SPIN_FLOOR_NS, WAKE_FLOOR_NS,
			   AGENT_BOUND_CAP_NS);
}

static uint64_t us(uint64_t n)
{
	return agent_ns_to_tsc(&clk, n * 1000);
}

START_TEST(clock_conversions)
{
	static const uint64_t rates[] = { 1000000, 2100000, 2596000, 3000001,
					  100000000 };

	for (size_t r = 0; r < sizeof(rates) / sizeof(rates[0]); r++) {
		struct agent_clock c;

		agent_clock_init(&c, rates[r]);
		ck_assert_uint_eq(c.identity, rates[r] == 1000000);
		for (uint64_t ns = 1; ns < (1ull << 40); ns = ns * 3 + 7) {
			unsigned __int128 exact =
				(unsigned __int128)ns * rates[r] / 1000000u;
			uint64_t t = agent_ns_to_tsc(&c, ns);
			uint64_t back = agent_tsc_to_ns(&c, t);

			/* within one part in 2^31 of the exact product, and
			 * never above it (a floor, as the division was) */
			ck_assert_uint_le(t, (uint64_t)exact);
			ck_assert_uint_le((uint64_t)exact - t, (uint64_t)exact / (1u << 31) + 1);
			ck_assert_uint_le(back, ns);
			ck_assert_uint_le(ns - back, ns / (1u << 24) + 3);
		}
		/* saturates instead of wrapping */
		ck_assert_uint_eq(agent_ns_to_tsc(&c, UINT64_MAX), UINT64_MAX);
	}
}
END_TEST

START_TEST(spin_bound_follows_two_windows)
{
	struct agent_promise p;

	setup(&p);
	ck_assert_uint_eq(agent_promise_iter_bound(&p), us(20));
	/* one long pass: twice it, for this window and the next */
	ck_assert(!agent_promise_note_iter(&p, us(30)));
	ck_assert_uint_eq(agent_promise_iter_bound(&p), 2 * us(30));
	for (uint32_t i = 1; i < AGENT_ITER_WINDOW - 1; i++)
		ck_assert(!agent_promise_note_iter(&p, us(1)));
	ck_assert(agent_promise_note_iter(&p, us(1)));
	ck_assert_uint_eq(agent_promise_iter_bound(&p), 2 * us(30));
	for (uint32_t i = 0; i < AGENT_ITER_WINDOW - 1; i++)
		ck_assert(!agent_promise_note_iter(&p, us(2)));
	ck_assert(agent_promise_note_iter(&p, us(2)));
	/* the long pass is two windows old: back to the floor */
	ck_assert_uint_eq(agent_promise_iter_bound(&p), us(20));
	/* capped at half a second */
	agent_promise_note_iter(&p, us(10000000));
	ck_assert_uint_eq(agent_promise_iter_bound(&p),
			  agent_ns_to_tsc(&clk, AGENT_BOUND_CAP_NS));
}
END_TEST

START_TEST(wake_bound_from_overshoots)
{
	struct agent_promise p;

	setup(&p);
	ck_assert_uint_eq(agent_promise_wake_bound(&p), us(150));
	/* few samples: twice the worst */
	agent_promise_note_wake(&p, us(100));
	ck_assert_uint_ge(p.wake_over_max_ns, 99990);
	ck_assert_uint_eq(agent_promise_wake_bound(&p),
			  agent_ns_to_tsc(&clk, 2 * p.wake_over_max_ns));
	/* many small ones: the floor again, the bucket edge being lower */
	for (uint32_t i = 0; i < AGENT_WAKE_MIN_SAMPLES; i++)
		agent_promise_note_wake(&p, us(10));
	ck_assert_uint_eq(agent_promise_wake_bound(&p), us(150));
	/* a p99.9 in the 2^18 ns bucket: its upper edge, 524288 ns */
	for (uint32_t i = 0; i < 100; i++)
		agent_promise_note_wake(&p, us(300));
	ck_assert_uint_eq(agent_promise_wake_bound(&p),
			  agent_ns_to_tsc(&clk, 2ull << 18));
	ck_assert_uint_ge(p.wake_over_max_ns, 299000);
	/* history halves: old contention fades */
	for (uint32_t i = 0; i < 4 * AGENT_WAKE_WINDOW; i++)
		agent_promise_note_wake(&p, us(10));
	ck_assert_uint_eq(agent_promise_wake_bound(&p), us(150));
}
END_TEST

/* Without a standing promise (start, resume) one is always published:
 * now + the bounds at least. */
START_TEST(first_promise_covers_the_next_pass)
{
	struct agent_promise p;
	uint64_t now = 1000000000ull, v;

	setup(&p);
	v = agent_promise_next(&p, now, 0);
	ck_assert_uint_ge(v, now + agent_promise_iter_bound(&p));
	v = agent_promise_next(&p, now, now + us(500));
	ck_assert_uint_ge(v, now + us(500) + agent_promise_wake_bound(&p));
}
END_TEST

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* The engine's use of the rule, with every duration the bounds allow:
 * publish what agent_promise_next() says before the exchange (at the
 * pass's start), run a pass no longer than the spin bound, then spin or
 * sleep no later than the standing promise allows and wake up to the wake
 * bound late. Every pass must start by the value that stood at the
 * previous pass's exchange (spec §5), and a spinning agent must write the
 * header rarely. */
static void drive(struct agent_promise *p, uint64_t seed, uint32_t sleep_pct,
		  uint64_t *publishes, uint64_t passes)
{
	uint64_t t = 1000000000ull, x = seed;

	*publishes = 0;
	for (uint64_t k = 0; k < passes; k++) {
		uint64_t b = agent_promise_iter_bound(p);
		uint64_t wb = agent_promise_wake_bound(p);
		uint64_t wake = 0, v, covered, len, end;

		if (rnd(&x) % 100 < sleep_pct)
			wake = t + rnd(&x) % us(1000);
		v = agent_promise_next(p, t, wake);
		if (v) {
			ck_assert_uint_gt(v, t);
			p->standing = v;
			(*publishes)++;
		}
		/* at most a second ahead (spec §5) */
		ck_assert_uint_le(p->standing - t, agent_ns_to_tsc(&clk, 1000000000ull));
		covered = p->standing; /* what a guest may rely on now */
		/* mostly short passes, now and then one up to the bound */
		len = rnd(&x) % 16 ? rnd(&x) % (b / 8 + 1) : rnd(&x) % (b + 1);
		end = t + len;
		agent_promise_note_iter(p, len);
		if (wake) {
			uint64_t limit = agent_promise_sleep_limit(p, wb);
			uint64_t over = rnd(&x) % (wb + 1);

			wake = wake < limit ? wake : limit;
			if (wake > end) {
				end = wake + over;
				agent_promise_note_wake(p, over);
			}
		}
		ck_assert_uint_le(end, covered);
		t = end;
	}
}

START_TEST(spinning_publishes_rarely_and_covers_every_pass)
{
	struct agent_promise p;
	uint64_t publishes;

	setup(&p);
	drive(&p, 0x9e3779b97f4a7c15ull, 0, &publishes, 50000);
	/* passes of ~1/16 of b on average: a publish every ~16 passes, the
	 * long ones apart; before hysteresis every pass published */
	ck_assert_uint_gt(publishes, 0);
	ck_assert_uint_lt(publishes, 50000 / 8);
}
END_TEST

START_TEST(sleeping_and_spinning_cover_every_pass)
{
	static const uint32_t pcts[] = { 1, 10, 50, 90, 100 };

	for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
		struct agent_promise p;
		uint64_t publishes;

		setup(&p);
		drive(&p, 0x51ed27ull + i, pcts[i], &publishes, 20000);
		ck_assert_uint_gt(publishes, 0);
	}
}
END_TEST

/* Paced passes (engine.c): a spinning agent passes only on the turns that
 * publish, and turns without a pass (mostly tiny, now and then one up to
 * the bound) still count in the bound. Each pass must begin by the value
 * that stood at the previous pass (spec §5), and passes are rare. */
START_TEST(paced_passes_begin_by_the_previous_promise)
{
	struct agent_promise p;
	uint64_t t = 1000000000ull, x = 0x2545f4914f6cdd1dull, pass_promise = 0;
	uint64_t passes = 0, turns = 200000;

	setup(&p);
	for (uint64_t k = 0; k < turns; k++) {
		uint64_t b = agent_promise_iter_bound(&p);
		uint64_t v = agent_promise_next(&p, t, 0), len;

		if (v) {
			/* a pass: it begins this turn */
			if (pass_promise)
				ck_assert_uint_le(t, pass_promise);
			p.standing = v;
			pass_promise = v;
			passes++;
			len = rnd(&x) % (b / 4 + 1);
		} else {
			len = rnd(&x) % 64 ? rnd(&x) % (b / 64 + 1)
					   : rnd(&x) % (b + 1);
		}
		agent_promise_note_iter(&p, len);
		t += len;
	}
	ck_assert_uint_gt(passes, 0);
	ck_assert_uint_lt(passes, turns / 16);
}
END_TEST

/* The cases the rule names, one by one. */
START_TEST(standing_promise_kept_while_it_covers)
{
	struct agent_promise p;
	uint64_t t = 1000000000ull, b, v;

	setup(&p);
	b = agent_promise_iter_bound(&p);
	v = agent_promise_next(&p, t, 0);
	ck_assert_uint_eq(v, t + 2 * b); /* room to skip */
	p.standing = v;
	/* up to b later the next pass is still covered: nothing written */
	ck_assert_uint_eq(agent_promise_next(&p, t + 1, 0), 0);
	ck_assert_uint_eq(agent_promise_next(&p, t + b, 0), 0);
	/* past half of it: published again */
	ck_assert_uint_eq(agent_promise_next(&p, t + b + 1, 0), t + b + 1 + 2 * b);
	/* the bound grew (a long pass): the standing one no longer covers */
	agent_promise_note_iter(&p, 3 * b);
	ck_assert_uint_ne(agent_promise_next(&p, t + 1, 0), 0);
}
END_TEST

START_TEST(sleep_promise_and_its_limit)
{
	struct agent_promise p;
	uint64_t t = 1000000000ull, wb, b, v;

	setup(&p);
	wb = agent_promise_wake_bound(&p);
	b = agent_promise_iter_bound(&p);
	p.standing = t + 2 * b;
	/* a sleep beyond what stands: exactly wake + wb, no slack */
	v = agent_promise_next(&p, t, t + us(900));
	ck_assert_uint_eq(v, t + us(900) + wb);
	p.standing = v;
	ck_assert_uint_eq(agent_promise_sleep_limit(&p, wb), t + us(900));
	/* a shorter sleep within the slack keeps it; a much shorter one
	 * shrinks it (promises may shrink at any time) */
	ck_assert_uint_eq(agent_promise_next(&p, t, t + us(900) - b), 0);
	ck_assert_uint_eq(agent_promise_next(&p, t, t + us(100)), t + us(100) + wb);
	/* after the sleep, spinning: the wide promise is published down */
	ck_assert_uint_eq(agent_promise_next(&p, t + us(900), 0),
			  t + us(900) + 2 * b);
	/* nothing standing: no sleep at all is allowed */
	p.standing = 0;
	ck_assert_uint_eq(agent_promise_sleep_limit(&p, wb), 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("agent-promise");
	TCase *tc = tcase_create("promise");

	tcase_add_test(tc, clock_conversions);
	tcase_add_test(tc, spin_bound_follows_two_windows);
	tcase_add_test(tc, wake_bound_from_overshoots);
	tcase_add_test(tc, first_promise_covers_the_next_pass);
	tcase_add_test(tc, spinning_publishes_rarely_and_covers_every_pass);
	tcase_add_test(tc, sleeping_and_spinning_cover_every_pass);
	tcase_add_test(tc, paced_passes_begin_by_the_previous_promise);
	tcase_add_test(tc, standing_promise_kept_while_it_covers);
	tcase_add_test(tc, sleep_promise_and_its_limit);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(suite)
