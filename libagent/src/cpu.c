/* SPDX-License-Identifier: MIT */
/* Where the agent thread runs: CPU choice (libnuma when available) and the
 * thread attributes carrying affinity and scheduling policy. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/sysinfo.h>

#include "internal.h"

#ifdef AGENT_HAVE_LIBNUMA
#include <numa.h>
#endif

static bool is_vcpu_cpu(const int *vcpu_cpus, uint32_t count, int cpu)
{
	for (uint32_t i = 0; i < count; i++)
		if (vcpu_cpus[i] == cpu)
			return true;
	return false;
}

static int node_of(int cpu)
{
#ifdef AGENT_HAVE_LIBNUMA
	if (numa_available() >= 0)
		return numa_node_of_cpu(cpu);
#endif
	(void)cpu;
	return -1;
}

static int scan(const cpu_set_t *allowed, const int *vcpu_cpus,
		uint32_t count, int node)
{
	for (int cpu = CPU_SETSIZE - 1; cpu >= 0; cpu--) {
		if (!CPU_ISSET(cpu, allowed) || is_vcpu_cpu(vcpu_cpus, count, cpu))
			continue;
		if (node >= 0 && node_of(cpu) != node)
			continue;
		return cpu;
	}
	return -ENODEV;
}

/* The process's CPUs, not the calling thread's: a VMM calls this from a
 * thread that may already be pinned to a vCPU's CPU. */
static void process_cpus(cpu_set_t *set)
{
	int n = get_nprocs();

	CPU_ZERO(set);
#ifdef AGENT_HAVE_LIBNUMA
	if (numa_available() >= 0) {
		for (int cpu = 0; cpu < CPU_SETSIZE &&
				  cpu < (int)numa_bitmask_nbytes(numa_all_cpus_ptr) * 8;
		     cpu++)
			if (numa_bitmask_isbitset(numa_all_cpus_ptr, (unsigned)cpu))
				CPU_SET(cpu, set);
		if (CPU_COUNT(set))
			return;
	}
#endif
	for (int cpu = 0; cpu < n && cpu < CPU_SETSIZE; cpu++)
		CPU_SET(cpu, set);
}

int pvagent_pick_cpu(const int *vcpu_cpus, uint32_t count)
{
	cpu_set_t allowed;
	int node = -1, cpu;

	if (count && !vcpu_cpus)
		return -EINVAL;
	process_cpus(&allowed);
	if (count && vcpu_cpus[0] >= 0)
		node = node_of(vcpu_cpus[0]);
	cpu = scan(&allowed, vcpu_cpus, count, node);
	/* Nothing free on the vCPUs' node: a remote CPU beats sharing one. */
	if (cpu < 0 && node >= 0)
		cpu = scan(&allowed, vcpu_cpus, count, -1);
	return cpu;
}

/* A thread created by a pinned or SCHED_FIFO caller inherits both
 * (KVM-HERE.md): set them explicitly in the attributes. */
int agent_thread_attr(struct pvagent *a, pthread_attr_t *attr, bool sched)
{
	int rc = pthread_attr_init(attr);

	if (rc)
		return -rc;
	if (a->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(a->cpu, &set);
		rc = pthread_attr_setaffinity_np(attr, sizeof(set), &set);
	}
	if (!rc && sched && a->opts.sched_policy != SCHED_OTHER) {
		struct sched_param sp = {
			.sched_priority = a->opts.sched_priority,
		};

		rc = pthread_attr_setinheritsched(attr, PTHREAD_EXPLICIT_SCHED);
		if (!rc)
			rc = pthread_attr_setschedpolicy(attr,
							 a->opts.sched_policy);
		if (!rc)
			rc = pthread_attr_setschedparam(attr, &sp);
	}
	if (rc) {
		pthread_attr_destroy(attr);
		return -rc;
	}
	return 0;
}
