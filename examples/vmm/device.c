/* SPDX-License-Identifier: MIT */
/* The pingpong device: a host thread standing for hardware. It watches the
 * guest's request line (shared memory, so posting costs the guest no
 * exit), completes each request the service time after it saw it, and
 * raises the completion interrupt by writing the irqfd. It spins, as a
 * device's own engine would; its CPU is the device's, not a cost of any
 * waiting configuration, and is not reported. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <x86intrin.h>

#include "vmm.h"

struct device {
	pthread_t thread;
	int efd;
	volatile struct vmm_pp_request *req; /* guest-written */
	uint64_t service_tsc; /* atomic: set between phases */
	int stop;             /* atomic */
	uint64_t completions, inject_errors;
	/* the request line before any vCPU runs: read here, by the thread,
	 * it could already hold the first request (a thread may first run
	 * milliseconds after pthread_create on a busy CPU), which would then
	 * never be completed */
	uint64_t start_seq;
	uint32_t khz;
	uint32_t start_delay_ms; /* test hook: a late-running thread */
};

static void *device_main(void *arg)
{
	struct device *d = arg;
	uint64_t last = d->start_seq;

	if (d->start_delay_ms) {
		struct timespec t = { .tv_sec = d->start_delay_ms / 1000,
				      .tv_nsec = (long)(d->start_delay_ms % 1000) *
						 1000000L };

		nanosleep(&t, NULL);
	}

	while (!__atomic_load_n(&d->stop, __ATOMIC_ACQUIRE)) {
		/* guest memory: read once; any change is one new request
		 * (the guest waits for each completion before the next) */
		uint64_t seq = __atomic_load_n(&d->req->seq, __ATOMIC_ACQUIRE);
		uint64_t due, one = 1;

		if (seq == last) {
			_mm_pause();
			continue;
		}
		last = seq;
		due = __rdtsc() + __atomic_load_n(&d->service_tsc,
						  __ATOMIC_RELAXED);
		while ((int64_t)(__rdtsc() - due) < 0)
			_mm_pause();
		if (write(d->efd, &one, sizeof(one)) != (ssize_t)sizeof(one))
			d->inject_errors++;
		else
			d->completions++;
	}
	return NULL;
}

int device_start(struct device **out, volatile struct vmm_pp_request *req,
		 int efd, int cpu, uint32_t host_khz, uint32_t start_delay_ms)
{
	struct device *d = calloc(1, sizeof(*d));
	pthread_attr_t attr;
	int rc;

	if (!d)
		return -ENOMEM;
	d->efd = efd;
	d->req = req;
	d->start_seq = __atomic_load_n(&req->seq, __ATOMIC_ACQUIRE);
	d->khz = host_khz;
	d->start_delay_ms = start_delay_ms;
	rc = pthread_attr_init(&attr);
	if (!rc && cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		rc = pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	}
	if (!rc)
		rc = pthread_create(&d->thread, &attr, device_main, d);
	pthread_attr_destroy(&attr);
	if (rc) {
		free(d);
		return -rc;
	}
	*out = d;
	return 0;
}

void device_set_service(struct device *d, uint32_t us)
{
	__atomic_store_n(&d->service_tsc, (uint64_t)us * d->khz / 1000,
			 __ATOMIC_RELAXED);
}

void device_stop(struct device *d, uint64_t *completions,
		 uint64_t *inject_errors)
{
	if (!d)
		return;
	__atomic_store_n(&d->stop, 1, __ATOMIC_RELEASE);
	pthread_join(d->thread, NULL);
	if (completions)
		*completions = d->completions;
	if (inject_errors)
		*inject_errors = d->inject_errors;
	free(d);
}
