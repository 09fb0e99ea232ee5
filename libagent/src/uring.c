/* SPDX-License-Identifier: MIT */
/* io_uring batching of irqfd writes: one submission for a pass's shots.
 * Without liburing at build time the ring never exists and inject.c uses
 * write(); a kernel refusing io_uring gives the same fallback at run time.
 *
 * Invariants: the ring is empty (no SQE, no CQE of ours) between calls;
 * a call never waits unboundedly; every write is counted once, as
 * handled (delivered or failed) or as left for the caller's write(). */
#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

#ifdef AGENT_HAVE_LIBURING
#include <liburing.h>

#define RING_ENTRIES 64u
#define RING_ENTRIES_MAX RING_ENTRIES
/* Calibration: batch sizes 2..CAL_MAX, CAL_ROUNDS submissions each. */
#define CAL_MAX 32u
#define CAL_ROUNDS 16u
/* io_uring_submit() calls that made no progress before the ring is
 * retired (its unsubmitted entries must never go out after a write()). */
#define SUBMIT_TRIES 4
/* Eventfd writes complete inline, during the submission: anything still
 * outstanding after this long is blocked (a saturated blocking eventfd)
 * and is cancelled rather than waited for. */
#define REAP_WAIT_NS 50000ull
/* How long a cancelled write may take to report; beyond it the ring is
 * retired (destroying it cancels whatever is left). */
#define CANCEL_WAIT_NS 20000000ull
/* user_data: batch tag in the high half, index in the batch below;
 * cancel requests carry CANCEL_BIT so their own completions are told
 * apart from the writes they cancel. */
#define CANCEL_BIT (1ull << 31)

struct agent_uring {
	struct io_uring ring;
	uint32_t entries; /* the ring's real SQ size: one chunk at most */
	uint32_t tag;     /* of the chunk in flight; older tags are stale */
	struct agent_clock clk; /* the reap's bounded waits */
};

int agent_uring_new_sized(struct agent_uring **out, uint32_t entries)
{
	struct agent_uring *r;
	int rc;

	if (!entries || entries > RING_ENTRIES_MAX)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	rc = io_uring_queue_init(entries, &r->ring, 0);
	if (rc < 0) {
		free(r);
		return rc;
	}
	agent_clock_init(&r->clk, agent_tsc_khz());
	r->entries = r->ring.sq.ring_entries < entries ? r->ring.sq.ring_entries
							: entries;
	*out = r;
	return 0;
}

int agent_uring_new(struct agent_uring **out)
{
	return agent_uring_new_sized(out, RING_ENTRIES);
}

void agent_uring_destroy(struct agent_uring *r)
{
	if (!r)
		return;
	io_uring_queue_exit(&r->ring);
	free(r);
}

static const uint64_t one = 1;

/* One chunk in flight: which of its writes have reported, and how. */
struct chunk_state {
	uint64_t got[(RING_ENTRIES_MAX + 63) / 64];
	uint32_t submitted; /* writes 0..submitted-1 reached the kernel */
	uint32_t reaped;
	uint32_t failed;
};

static uint64_t data_of(const struct agent_uring *r, uint32_t i)
{
	return (uint64_t)r->tag << 32 | i;
}

/* Take every completion already posted. Completions of earlier chunks
 * (a cancelled write reporting late) and of cancel requests are stale:
 * consumed, never counted, so they cannot shift this chunk's count. */
static void reap_ready(struct agent_uring *r, struct chunk_state *c)
{
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;

	io_uring_for_each_cqe(&r->ring, head, cqe) {
		uint64_t d = io_uring_cqe_get_data64(cqe);
		uint32_t i = (uint32_t)d;

		seen++;
		if (d >> 32 != r->tag || (i & CANCEL_BIT) || i >= c->submitted ||
		    (c->got[i / 64] >> (i % 64) & 1))
			continue;
		c->got[i / 64] |= 1ull << (i % 64);
		c->reaped++;
		if (cqe->res != (int)sizeof(one))
			c->failed++;
	}
	io_uring_cq_advance(&r->ring, seen);
}

/* Reap until every submitted write reported or @ns passed. A signal
 * (EINTR) only ends one wait: the loop re-checks the clock, so it neither
 * returns early nor miscounts. */
static void reap_for(struct agent_uring *r, struct chunk_state *c, uint64_t ns)
{
	uint64_t end = agent_tsc() + agent_ns_to_tsc(&r->clk, ns);

	reap_ready(r, c);
	while (c->reaped < c->submitted) {
		uint64_t now = agent_tsc(), left;
		struct __kernel_timespec ts;
		struct io_uring_cqe *cqe;
		int rc;

		if (now >= end)
			return;
		left = agent_tsc_to_ns(&r->clk, end - now);
		ts.tv_sec = (long long)(left / 1000000000ull);
		ts.tv_nsec = (long long)(left % 1000000000ull);
		rc = io_uring_wait_cqe_timeout(&r->ring, &cqe, &ts);
		if (rc < 0 && rc != -EINTR && rc != -ETIME)
			return;
		reap_ready(r, c);
	}
}

/* Cancel the writes still outstanding (blocked in the kernel) and wait,
 * bounded, for them to report. @return 0, or -EIO if some never did. */
static int cancel_rest(struct agent_uring *r, struct chunk_state *c)
{
	uint32_t asked = 0;

	for (uint32_t i = 0; i < c->submitted; i++) {
		struct io_uring_sqe *sqe;

		if (c->got[i / 64] >> (i % 64) & 1)
			continue;
		sqe = io_uring_get_sqe(&r->ring);
		if (!sqe)
			break;
		io_uring_prep_cancel64(sqe, data_of(r, i), 0);
		io_uring_sqe_set_data64(sqe, data_of(r, i | CANCEL_BIT));
		asked++;
	}
	if (asked && io_uring_submit(&r->ring) != (int)asked)
		return -EIO;
	reap_for(r, c, CANCEL_WAIT_NS);
	return c->reaped == c->submitted ? 0 : -EIO;
}

/* Submit @n <= entries writes, resubmitting what a short submission left
 * in the SQ. The kernel takes entries in order, so writes 0..return-1 went
 * out. *stuck: some prepared entries are still in the SQ. */
static uint32_t submit_chunk(struct agent_uring *r, const int *fds, uint32_t n,
			     bool *stuck)
{
	uint32_t prepared = 0, submitted = 0;

	for (; prepared < n; prepared++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);

		if (!sqe)
			break; /* cannot happen on a ring we keep empty */
		io_uring_prep_write(sqe, fds[prepared], &one, sizeof(one), 0);
		io_uring_sqe_set_data64(sqe, data_of(r, prepared));
	}
	for (int tries = 0; submitted < prepared && tries < SUBMIT_TRIES;) {
		int rc = io_uring_submit(&r->ring);

		if (rc > 0) {
			submitted += (uint32_t)rc;
			continue;
		}
		tries++;
	}
	*stuck = submitted < prepared;
	return submitted;
}

/* One chunk of at most r->entries writes. */
static void chunk(struct agent_uring *r, const int *fds, uint32_t n,
		  struct agent_uring_res *res)
{
	struct chunk_state c = { 0 };
	bool stuck = false;

	r->tag++;
	c.submitted = submit_chunk(r, fds, n, &stuck);
	/* entries left in the SQ would go out with a later submission, after
	 * the caller wrote those fds itself: retire the ring */
	if (stuck || !c.submitted)
		res->error = -EIO;
	reap_for(r, &c, REAP_WAIT_NS);
	if (c.reaped < c.submitted && cancel_rest(r, &c) < 0)
		res->error = -EIO;
	/* a write that never reported is not known to be delivered */
	res->failed += c.failed + (c.submitted - c.reaped);
	res->handled += c.submitted;
}

void agent_uring_write_ones(struct agent_uring *r, const int *fds, uint32_t n,
			    struct agent_uring_res *res)
{
	*res = (struct agent_uring_res){ 0 };
	while (n && !res->error) {
		uint32_t k = n < r->entries ? n : r->entries;
		uint32_t before = res->handled;

		chunk(r, fds, k, res);
		fds += res->handled - before;
		n -= res->handled - before;
	}
}

/* Per-shot cost of @n eventfd writes, by write() or by one submission. */
static uint64_t cost(struct agent_uring *r, const int *fds, uint32_t n,
		     bool ring)
{
	uint64_t val = 1, t0 = agent_tsc();

	for (uint32_t k = 0; k < CAL_ROUNDS; k++) {
		if (ring) {
			struct agent_uring_res res;

			agent_uring_write_ones(r, fds, n, &res);
			if (res.error || res.handled != n || res.failed)
				return UINT64_MAX;
			continue;
		}
		for (uint32_t i = 0; i < n; i++)
			if (write(fds[i], &val, sizeof(val)) < 0)
				return UINT64_MAX;
	}
	return (agent_tsc() - t0) / ((uint64_t)CAL_ROUNDS * n);
}

uint32_t agent_uring_calibrate(struct agent_uring *r)
{
	int fds[CAL_MAX];
	uint32_t found = PVAGENT_URING_NEVER, made = 0;

	for (; made < CAL_MAX; made++) {
		fds[made] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fds[made] < 0)
			break;
	}
	for (uint32_t n = 2; made == CAL_MAX && n <= CAL_MAX; n *= 2) {
		uint64_t w = cost(r, fds, n, false), u = cost(r, fds, n, true);

		if (u < w) {
			found = n;
			break;
		}
	}
	for (uint32_t i = 0; i < made; i++)
		close(fds[i]);
	return found;
}

#else

uint32_t agent_uring_calibrate(struct agent_uring *r)
{
	(void)r;
	return PVAGENT_URING_NEVER;
}

int agent_uring_new(struct agent_uring **out)
{
	*out = NULL;
	return -ENOSYS;
}

void agent_uring_destroy(struct agent_uring *r)
{
	(void)r;
}

int agent_uring_new_sized(struct agent_uring **out, uint32_t entries)
{
	(void)entries;
	return agent_uring_new(out);
}

void agent_uring_write_ones(struct agent_uring *r, const int *fds, uint32_t n,
			    struct agent_uring_res *res)
{
	(void)r;
	(void)fds;
	(void)n;
	*res = (struct agent_uring_res){ .error = -ENOSYS };
}

#endif
