/* SPDX-License-Identifier: MIT */
/* The vCPU threads: vCPU 0 runs on the main thread, the others on threads
 * pinned through their attributes (a thread created by a pinned thread
 * inherits its pinning, KVM-HERE.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "app.h"

void pin_self(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		fprintf(stderr, "exitless-vmm: cannot pin the vCPU to CPU %d: %s\n",
			cpu, strerror(errno));
}

static void *vcpu_thread(void *arg)
{
	struct vcpu_ctx *vc = arg;
	struct ctx *c = vc->c;

	/* created while the signals were blocked for the agent's sake */
	alarm_mask(SIG_UNBLOCK);
	vc->rc = vcpu_run(&c->vcpu[vc->idx], on_io, vc);
	if (vc->rc)
		stop_all(); /* the others may wait for us at a rendezvous */
	return NULL;
}

void start_vcpu_threads(struct ctx *c)
{
	pthread_t threads[VMM_VCPUS_MAX];

	for (int i = 0; i < c->o.vcpus; i++) {
		c->vc[i] = (struct vcpu_ctx){ .c = c, .idx = i };
		stop_register_run(i, c->vcpu[i].run);
	}
	threads[0] = pthread_self();
	for (int i = 1; i < c->o.vcpus; i++) {
		pthread_attr_t attr;
		int rc = pthread_attr_init(&attr);

		if (!rc && c->o.cpus[i] >= 0) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET(c->o.cpus[i], &set);
			rc = pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
		}
		if (!rc)
			rc = pthread_create(&c->vc[i].thread, &attr, vcpu_thread,
					    &c->vc[i]);
		pthread_attr_destroy(&attr);
		if (rc)
			die("vCPU thread", rc);
		threads[i] = c->vc[i].thread;
	}
	stop_register_threads(threads, c->o.vcpus);
}

/* vCPU 0 on this thread; returns when every vCPU has left KVM_RUN. */
void run_vcpus(struct ctx *c)
{
	c->vc[0].rc = vcpu_run(&c->vcpu[0], on_io, &c->vc[0]);
	if (c->vc[0].rc)
		stop_all();
	for (int i = 1; i < c->o.vcpus; i++)
		pthread_join(c->vc[i].thread, NULL);
}
