/* SPDX-License-Identifier: MIT */
/* libagent as a guest in someone else's process: options that can grow,
 * an injector with room for more, a thread that takes none of the VMM's
 * signals and says what it is, no calibration busy-wait when the caller
 * knows the TSC rate, and the stats in Prometheus' text format. */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <regex.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/check_main.h"
#include "exitless/agent.h"

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

START_TEST(opts_grow_by_libbpf_rules)
{
	struct {
		struct pvagent_opts o;
		unsigned char tail[16];
	} big;
	struct pvagent *a = NULL;

	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big);
	ck_assert_int_eq(pvagent_new(&big.o, &a), 0); /* zero tail: fine */
	pvagent_destroy(a);
	a = NULL;
	big.tail[7] = 1; /* a field this version does not know */
	ck_assert_int_eq(pvagent_new(&big.o, &a), -EINVAL);
	ck_assert_ptr_null(a);
	/* an older caller, up to sched_priority: defaults for the rest */
	memset(&big, 0, sizeof(big));
	big.o.sz = offsetof(struct pvagent_opts, tsc_khz);
	big.o.tsc_khz = 12345; /* beyond its sz: never read */
	ck_assert_int_eq(pvagent_new(&big.o, &a), 0);
	pvagent_destroy(a);
	{
		PVAGENT_OPTS(o, .mode = PVAGENT_MODE_ADAPTIVE);
		const unsigned char *b = (const unsigned char *)&o;
		size_t end = offsetof(struct pvagent_opts, tsc_khz) + sizeof(uint32_t);

		/* the macro zeroes the tail padding too */
		for (size_t i = end; i < sizeof(o); i++)
			ck_assert_uint_eq(b[i], 0);
	}
}
END_TEST

/* Values that would make deadlines wrap or mean a unit mistake are
 * refused, not silently changed. */
START_TEST(out_of_range_options_are_einval)
{
	struct pvagent *a = NULL;

	{
		PVAGENT_OPTS(o, .max_sleep_ns = UINT64_MAX / 2);
		ck_assert_int_eq(pvagent_new(&o, &a), -EINVAL);
	}
	{
		PVAGENT_OPTS(o, .spin_threshold_ns = 1ull << 62);
		ck_assert_int_eq(pvagent_new(&o, &a), -EINVAL);
	}
	{
		PVAGENT_OPTS(o, .tsc_khz = 2100000000u); /* Hz, not kHz */
		ck_assert_int_eq(pvagent_new(&o, &a), -EINVAL);
	}
	{
		PVAGENT_OPTS(o, .sched_policy = SCHED_FIFO, .sched_priority = 1000);
		ck_assert_int_eq(pvagent_new(&o, &a), -EINVAL);
	}
	ck_assert_ptr_null(a);
}
END_TEST

START_TEST(injector_reserved_must_be_zero)
{
	PVTIMER_AREA_OPTS(po, .slot_count = 1);
	struct pvtimer_area *pa;
	struct pvagent *a;
	uint32_t id;
	struct pvagent_injector inj = { .kind = PVAGENT_INJ_IRQFD, .fd = 0 };

	ck_assert_int_eq(pvtimer_area_new(&po, &pa), 0);
	ck_assert_int_eq(pvagent_new(NULL, &a), 0);
	ck_assert_int_eq(pvagent_attach_area(a, pa, NULL, &id), 0);
	inj.reserved[3] = 1;
	ck_assert_int_eq(pvagent_bind_slot(a, id, 0, &inj), -EINVAL);
	inj.reserved[3] = 0;
	ck_assert_int_eq(pvagent_bind_slot(a, id, 0, &inj), 0);
	pvagent_destroy(a);
	pvtimer_area_destroy(pa);
}
END_TEST

/* The calibration busy-waits ~10 ms of CPU; with the rate given (and the
 * io_uring batch size, the other measurement) pvagent_new burns next to
 * none. Runs in its own process (Check forks), so nothing calibrated
 * before it. */
START_TEST(known_tsc_rate_means_no_busy_wait)
{
	PVAGENT_OPTS(o, .tsc_khz = 2000000, .uring_min_batch = PVAGENT_URING_NEVER);
	struct pvagent *a;
	uint64_t t0 = thread_cpu_ns(), spent;

	ck_assert_int_eq(pvagent_new(&o, &a), 0);
	spent = thread_cpu_ns() - t0;
	pvagent_destroy(a);
	ck_assert_uint_lt(spent, 5000000ull);
}
END_TEST

/* The agent thread's /proc entry: its name, and its blocked signals. */
static int find_agent_thread(char *status, size_t len)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int found = 0;

	ck_assert_ptr_nonnull(d);
	while (!found && (e = readdir(d))) {
		char path[300], comm[64] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) &&
		    strcmp(comm, "exitless-agent\n") == 0) {
			snprintf(status, len, "/proc/self/task/%s/status", e->d_name);
			found = 1;
		}
		fclose(f);
	}
	closedir(d);
	return found;
}

START_TEST(thread_is_named_and_takes_no_signals)
{
	PVTIMER_AREA_OPTS(po, .slot_count = 1);
	PVAGENT_OPTS(o, .mode = PVAGENT_MODE_ADAPTIVE);
	struct pvtimer_area *pa;
	struct pvagent *a;
	uint32_t id;
	char status[300], line[256];
	unsigned long long blk = 0;
	FILE *f;

	ck_assert_int_eq(pvtimer_area_new(&po, &pa), 0);
	ck_assert_int_eq(pvagent_new(&o, &a), 0);
	ck_assert_int_eq(pvagent_attach_area(a, pa, NULL, &id), 0);
	ck_assert_int_eq(pvagent_start(a), 0);
	ck_assert(find_agent_thread(status, sizeof(status)));
	f = fopen(status, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "SigBlk: %llx", &blk) == 1)
			break;
	fclose(f);
	/* what a VMM uses: kicks (SIGUSR1, real-time), termination */
	ck_assert(blk & (1ull << (SIGUSR1 - 1)));
	ck_assert(blk & (1ull << (SIGUSR2 - 1)));
	ck_assert(blk & (1ull << (SIGTERM - 1)));
	ck_assert(blk & (1ull << (SIGINT - 1)));
	ck_assert(blk & (1ull << (SIGRTMIN + 1 - 1)));
	ck_assert(blk & (1ull << (SIGRTMAX - 1)));
	ck_assert_int_eq(pvagent_stop(a), 0);
	pvagent_destroy(a);
	pvtimer_area_destroy(pa);
}
END_TEST

/* Prometheus text: one group per family (HELP, TYPE, then a sample per
 * snapshot), every sample line well-formed, a cut buffer terminated. */
static int fmt(const struct pvagent_stats *a, const struct pvagent_stats *b,
	       const char *la, const char *lb, char *buf, size_t size)
{
	const struct pvagent_stats *st[2] = { a, b };
	const char *l[2] = { la, lb };

	return pvagent_stats_format_prometheus(st, l, b ? 2 : 1, buf, size);
}

START_TEST(prometheus_text)
{
	struct pvagent_stats st, old;
	static char buf[65536];
	char small[64], *save = NULL, *fires;
	regex_t sample;
	int n, lines = 0;

	memset(&st, 0, sizeof(st));
	st.sz = sizeof(st);
	st.fires = 42;
	st.backoffs = 3;
	st.late_hist[3] = 5;
	st.late_hist[10] = 2;
	old = st;
	old.sz = offsetof(struct pvagent_stats, backoffs); /* an older caller */
	ck_assert_int_eq(regcomp(&sample,
				 "^exitless_agent_[a-z_]+(\\{[^}]*\\})? [0-9]+$",
				 REG_EXTENDED | REG_NOSUB), 0);
	n = fmt(&st, &old, "vm=\"a\"", "vm=\"b\"", buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_lt(n, (int)sizeof(buf));
	ck_assert_int_eq(fmt(&st, &old, "vm=\"a\"", "vm=\"b\"", NULL, 0), n);
	fires = strstr(buf, "# TYPE exitless_agent_fires_total counter\n");
	ck_assert_ptr_nonnull(fires);
	ck_assert_ptr_nonnull(strstr(fires, "exitless_agent_fires_total{vm=\"a\"} 42\n"
					    "exitless_agent_fires_total{vm=\"b\"} 42\n"));
	ck_assert_ptr_null(strstr(fires + 1, "# TYPE exitless_agent_fires_total "));
	ck_assert_ptr_nonnull(strstr(buf, "exitless_agent_backoffs_total{vm=\"b\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(buf,
		"exitless_agent_lateness_seconds_bucket{vm=\"a\",le=\"+Inf\"} 7\n"));
	ck_assert_ptr_nonnull(strstr(buf,
		"exitless_agent_lateness_seconds_bucket{vm=\"a\",le=\"1.6e-08\"} 5\n"));
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (l[0] == '#')
			continue;
		lines++;
		ck_assert_msg(regexec(&sample, l, 0, NULL, 0) == 0, "bad sample: %s", l);
	}
	ck_assert_int_gt(lines, 80);
	regfree(&sample);
	/* no labels, a short buffer: cut, terminated, full length returned */
	ck_assert_int_eq(fmt(&st, NULL, NULL, NULL, small, sizeof(small)),
			 fmt(&st, NULL, "", NULL, NULL, 0));
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	ck_assert_int_eq(fmt(&st, NULL, "a=\"}\"", NULL, buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(fmt(&st, NULL, "a=\"1\"\nb", NULL, buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(fmt(&st, NULL, NULL, NULL, NULL, 10), -EINVAL);
	ck_assert_int_eq(pvagent_stats_format_prometheus(NULL, NULL, 1, buf, sizeof(buf)),
			 -EINVAL);
	old.sz = 8;
	ck_assert_int_eq(fmt(&old, NULL, NULL, NULL, buf, sizeof(buf)), -EINVAL);
}
END_TEST

static Suite *embed_suite(void)
{
	Suite *s = suite_create("agent-embed");
	TCase *tc = tcase_create("embed");

	tcase_add_test(tc, opts_grow_by_libbpf_rules);
	tcase_add_test(tc, out_of_range_options_are_einval);
	tcase_add_test(tc, injector_reserved_must_be_zero);
	tcase_add_test(tc, known_tsc_rate_means_no_busy_wait);
	tcase_add_test(tc, thread_is_named_and_takes_no_signals);
	tcase_add_test(tc, prometheus_text);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(embed_suite)
