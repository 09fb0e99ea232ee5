/* SPDX-License-Identifier: MIT */
/* io_uring batching of irqfd writes: one submission for a pass's shots.
 * Without liburing at build time the ring never exists and inject.c uses
 * write(); a kernel refusing io_uring gives the same fallback at run time. */
#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

#ifdef AGENT_HAVE_LIBURING
#include <liburing.h>

#define RING_ENTRIES 64u
/* Calibration: batch sizes 2..CAL_MAX, CAL_ROUNDS submissions each. */
#define CAL_MAX 32u
#define CAL_ROUNDS 16u

struct agent_uring {
	struct io_uring ring;
};

int agent_uring_new(struct agent_uring **out)
{
	struct agent_uring *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return -ENOMEM;
	rc = io_uring_queue_init(RING_ENTRIES, &r->ring, 0);
	if (rc < 0) {
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void agent_uring_destroy(struct agent_uring *r)
{
	if (!r)
		return;
	io_uring_queue_exit(&r->ring);
	free(r);
}

static const uint64_t one = 1;

/* Submit up to RING_ENTRIES writes and reap them all: eventfd writes
 * complete inline, so the wait does not block. */
static int chunk(struct agent_uring *r, const int *fds, uint32_t n)
{
	struct io_uring_cqe *cqe;
	int bad = 0, rc;

	for (uint32_t i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);

		io_uring_prep_write(sqe, fds[i], &one, sizeof(one), 0);
	}
	rc = io_uring_submit_and_wait(&r->ring, n);
	if (rc < 0)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		rc = io_uring_wait_cqe(&r->ring, &cqe);
		if (rc < 0)
			return rc;
		if (cqe->res != (int)sizeof(one))
			bad++;
		io_uring_cqe_seen(&r->ring, cqe);
	}
	return bad;
}

int agent_uring_write_ones(struct agent_uring *r, const int *fds, uint32_t n)
{
	int bad = 0;

	while (n) {
		uint32_t k = n < RING_ENTRIES ? n : RING_ENTRIES;
		int rc = chunk(r, fds, k);

		if (rc < 0)
			return rc;
		bad += rc;
		fds += k;
		n -= k;
	}
	return bad;
}

/* Per-shot cost of @n eventfd writes, by write() or by one submission. */
static uint64_t cost(struct agent_uring *r, const int *fds, uint32_t n,
		     bool ring)
{
	uint64_t val = 1, t0 = agent_tsc();

	for (uint32_t k = 0; k < CAL_ROUNDS; k++) {
		if (ring) {
			if (agent_uring_write_ones(r, fds, n) < 0)
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
	uint32_t found = AGENT_URING_NEVER, made = 0;

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
	return AGENT_URING_NEVER;
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

int agent_uring_write_ones(struct agent_uring *r, const int *fds, uint32_t n)
{
	(void)r;
	(void)fds;
	(void)n;
	return -ENOSYS;
}

#endif
