/* SPDX-License-Identifier: MIT */
/* The io_uring batch path against the real kernel: a ring smaller than the
 * batch, bad fds among the batch, and a write that blocks in the kernel
 * while signals interrupt the reap. Every eventfd gets exactly one write,
 * every failure is counted once, and the call returns in bounded time.
 * Compiled with libagent's uring.c: the ring size is the seam. */
#define _GNU_SOURCE
#include <check.h>
#include <sched.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "internal.h"

#define NFD 10

static int ring_or_skip(struct agent_uring **r, uint32_t entries)
{
	int rc = agent_uring_new_sized(r, entries);

	if (rc == -ENOSYS || rc == -EPERM || rc == -ENOMEM)
		return 0; /* no liburing at build time, or io_uring refused */
	ck_assert_int_eq(rc, 0);
	return 1;
}

static uint64_t count_of(int fd)
{
	uint64_t v = 0;

	ck_assert_int_eq(read(fd, &v, sizeof(v)), sizeof(v));
	return v;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* 10 writes through a 4-entry ring: chunked by the ring's real size (the
 * old code took 64 SQEs from it and wrote through a NULL one). */
START_TEST(ring_smaller_than_batch)
{
	struct agent_uring *r;
	struct agent_uring_res res;
	int fds[NFD];

	if (!ring_or_skip(&r, 4))
		return;
	for (int i = 0; i < NFD; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	for (int round = 0; round < 3; round++) {
		agent_uring_write_ones(r, fds, NFD, &res);
		ck_assert_int_eq(res.error, 0);
		ck_assert_uint_eq(res.handled, NFD);
		ck_assert_uint_eq(res.failed, 0);
		for (int i = 0; i < NFD; i++)
			ck_assert_uint_eq(count_of(fds[i]), 1);
	}
	for (int i = 0; i < NFD; i++)
		close(fds[i]);
	agent_uring_destroy(r);
}
END_TEST

/* A closed fd and -1 in the batch: each is one failure, the others get
 * their write, and the next batch counts from zero. */
START_TEST(bad_fds_in_batch)
{
	struct agent_uring *r;
	struct agent_uring_res res;
	int fds[NFD];

	if (!ring_or_skip(&r, 4))
		return;
	for (int i = 0; i < NFD; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	close(fds[3]);
	fds[6] = -1;
	agent_uring_write_ones(r, fds, NFD, &res);
	if (!res.error) {
		ck_assert_uint_eq(res.handled, NFD);
		ck_assert_uint_eq(res.failed, 2);
	} else {
		/* a kernel that stops a submission at a bad fd: the ring
		 * is retired, the handled part counted, the rest is the
		 * caller's, and nothing was sent twice */
		ck_assert_uint_le(res.handled, NFD);
		ck_assert_uint_ge(res.failed, 1);
	}
	for (int i = 0; i < NFD; i++)
		if (i != 3 && i != 6 && (uint32_t)i < res.handled)
			ck_assert_uint_eq(count_of(fds[i]), 1);
	agent_uring_destroy(r);
	if (!ring_or_skip(&r, 4))
		return;
	fds[3] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	fds[6] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	for (int i = 0; i < NFD; i++) {
		uint64_t v;

		while (read(fds[i], &v, sizeof(v)) == sizeof(v))
			;
	}
	agent_uring_write_ones(r, fds, NFD, &res);
	ck_assert_int_eq(res.error, 0);
	ck_assert_uint_eq(res.handled, NFD);
	ck_assert_uint_eq(res.failed, 0);
	for (int i = 0; i < NFD; i++) {
		ck_assert_uint_eq(count_of(fds[i]), 1);
		close(fds[i]);
	}
	agent_uring_destroy(r);
}
END_TEST

static volatile sig_atomic_t caught; /* signals the target took */

static void on_sig(int sig)
{
	(void)sig;
	caught = caught + 1;
}

struct pester {
	pthread_t target;
	int stop;
	uint64_t sent;
};

static void *pester_main(void *arg)
{
	struct pester *p = arg;
	struct timespec ts = { .tv_nsec = 100000 };

	while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
		pthread_kill(p->target, SIGUSR1);
		__atomic_fetch_add(&p->sent, 1, __ATOMIC_RELAXED);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* One batch of 6 with fds[2] a blocking eventfd at its maximum count.
 * @return the signals taken during the call. */
static int blocked_batch(struct agent_uring *r)
{
	uint64_t full = UINT64_MAX - 1, t0;
	struct agent_uring_res res;
	int fds[6], before;

	for (int i = 0; i < 6; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC | (i == 2 ? 0 : EFD_NONBLOCK));
	ck_assert_int_eq(write(fds[2], &full, sizeof(full)), sizeof(full));
	before = caught;
	t0 = mono_ns();
	agent_uring_write_ones(r, fds, 6, &res);
	ck_assert_uint_lt(mono_ns() - t0, 1000000000ull);
	before = caught - before;
	ck_assert_int_eq(res.error, 0);
	ck_assert_uint_eq(res.handled, 6);
	ck_assert_uint_eq(res.failed, 1);
	for (int i = 0; i < 6; i++)
		if (i != 2)
			ck_assert_uint_eq(count_of(fds[i]), 1);
	/* the cancelled write did not land later either (blocking read: the
	 * count is there) */
	ck_assert_uint_eq(count_of(fds[2]), full);
	/* next batch, same ring: counted from zero (all non-blocking now: a
	 * blocking eventfd's write goes to a kernel worker, which the agent
	 * never batches) */
	close(fds[2]);
	fds[2] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	agent_uring_write_ones(r, fds, 6, &res);
	ck_assert_int_eq(res.error, 0);
	ck_assert_uint_eq(res.handled, 6);
	ck_assert_uint_eq(res.failed, 0);
	for (int i = 0; i < 6; i++) {
		ck_assert_uint_eq(count_of(fds[i]), 1);
		close(fds[i]);
	}
	return before;
}

/* A blocking eventfd at its maximum count makes its write wait in the
 * kernel; signals keep interrupting the reap. The call returns within a
 * bound with that one write failed (cancelled), the others delivered once,
 * and no stale completion shifts the next batch's count. The old code
 * waited for ever, or returned -EINTR and left completions in the ring.
 * The call lasts a few hundred microseconds: batches are repeated until
 * one of them took a signal while it ran (the pester thread may not have
 * been scheduled during the first ones on a loaded machine), each checked
 * in full. */
START_TEST(blocked_write_and_signals)
{
	struct sigaction sa = { .sa_handler = on_sig }; /* no SA_RESTART */
	struct pester p = { .target = pthread_self() };
	struct agent_uring *r;
	pthread_t th;
	int attempt, hit = 0;

	if (!ring_or_skip(&r, 8))
		return;
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	pthread_create(&th, NULL, pester_main, &p);
	while (!__atomic_load_n(&p.sent, __ATOMIC_RELAXED))
		sched_yield();
	for (attempt = 0; attempt < 1000 && !hit; attempt++)
		hit = blocked_batch(r) > 0;
	__atomic_store_n(&p.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	ck_assert_msg(hit, "no signal landed during %d batches", attempt);
	signal(SIGUSR1, SIG_DFL);
	agent_uring_destroy(r);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("agent-uring");
	TCase *tc = tcase_create("uring");

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, ring_smaller_than_batch);
	tcase_add_test(tc, bad_fds_in_batch);
	tcase_add_test(tc, blocked_write_and_signals);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(suite)
