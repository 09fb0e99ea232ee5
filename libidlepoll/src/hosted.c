/* SPDX-License-Identifier: MIT */
/* Hosted conveniences: heap-allocated state and the clock. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"

_Static_assert(IP_EINVAL == EINVAL && IP_ENOENT == ENOENT,
	       "the freestanding core's errno values must match libc's");

IDLEPOLL_API int idlepoll_new(const struct idlepoll_opts *opts,
			      struct idlepoll_cpu **out)
{
	size_t align = idlepoll_cpu_align(), size = idlepoll_cpu_size();
	void *mem;
	int err;

	if (!out)
		return -EINVAL;
	if (align < sizeof(void *))
		align = sizeof(void *);
	if (posix_memalign(&mem, align, size))
		return -ENOMEM;
	err = idlepoll_cpu_init(mem, size, opts, out);
	if (err < 0)
		free(mem);
	return err;
}

IDLEPOLL_API void idlepoll_destroy(struct idlepoll_cpu *c)
{
	free(c);
}

IDLEPOLL_API uint64_t idlepoll_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
