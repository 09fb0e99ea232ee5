/* SPDX-License-Identifier: MIT */
/* Long randomized soak of guest helpers + libpvtimer + libagent (issue 7's
 * Proof): SOAK_VCPUS vCPU threads arm, cancel and halt on their slots and
 * follow every decision; a real agent services them through a callback
 * injector that fails and stalls past max_horizon; a VMM thread pauses,
 * stops, recreates, detaches and rebinds. Checked: every live deadline is
 * delivered to the guest's timer code exactly once, never before it, none
 * lost; the host never fires early or twice, never shoots an unbound slot.
 *
 * Operations (guest operations over all vCPUs): SOAK_OPS at build time
 * (meson -Dstress_ops), EXITLESS_SOAK_OPS at run time; benchmark mode is
 * EXITLESS_SOAK_OPS=10000000 (see docs/reliability.md for the figures). */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "../common/check_main.h"
#include "../common/tsc.h"
#include "soak.h"

#ifndef SOAK_OPS
#define SOAK_OPS 200000
#endif

static const char *const path_names[PATH_COUNT] = {
	"pv", "fallback", "halt-fallback", "fired-fallback", "handback",
	"reject-wake", "early-rearm", "backstop", "hw-recheck",
};

static void report(long ops, double secs)
{
	uint64_t sum[PATH_COUNT] = {0}, arms = 0, cancels = 0, halts = 0;
	uint64_t superseded = 0, spurious = 0, late_max = 0, late_sum = 0, n = 0;
	uint64_t dec[9] = {0}, path_max[PATH_COUNT] = {0};

	for (uint32_t i = 0; i < SOAK_VCPUS; i++) {
		struct soak_vcpu *v = &soak.vcpu[i];

		for (int p = 0; p < PATH_COUNT; p++) {
			sum[p] += v->delivered[p];
			n += v->delivered[p];
			if (v->late_max_path[p] > path_max[p])
				path_max[p] = v->late_max_path[p];
		}
		for (int d = 0; d < 9; d++)
			dec[d] += v->decisions[d];
		arms += v->arms;
		cancels += v->cancels;
		halts += v->halts;
		superseded += v->superseded;
		spurious += v->spurious;
		late_sum += v->late_sum;
		if (v->late_max > late_max)
			late_max = v->late_max;
	}
	printf("soak: %ld guest ops on %u vCPUs in %.2f s (%.0f ops/s): arms %llu, "
	       "cancels %llu, halts %llu, superseded %llu, spurious irqs %llu\n",
	       ops, SOAK_VCPUS, secs, ops / secs, (unsigned long long)arms,
	       (unsigned long long)cancels, (unsigned long long)halts,
	       (unsigned long long)superseded, (unsigned long long)spurious);
	printf("soak: delivered %llu:", (unsigned long long)n);
	for (int p = 0; p < PATH_COUNT; p++)
		printf(" %s %llu", path_names[p], (unsigned long long)sum[p]);
	printf("; lateness mean %.1f us max %.1f us\n",
	       n ? (double)late_sum / n / soak.tpu : 0.0, (double)late_max / soak.tpu);
	printf("soak: max lateness by path (us):");
	for (int p = 0; p < PATH_COUNT; p++)
		printf(" %s %.0f", path_names[p], (double)path_max[p] / soak.tpu);
	printf("\n");
	printf("soak: decisions pv %llu disabled %llu past %llu too_far %llu stale %llu "
	       "too_close %llu rejected %llu fired %llu backstop %llu\n",
	       (unsigned long long)dec[0], (unsigned long long)dec[1],
	       (unsigned long long)dec[2], (unsigned long long)dec[3],
	       (unsigned long long)dec[4], (unsigned long long)dec[5],
	       (unsigned long long)dec[6], (unsigned long long)dec[7],
	       (unsigned long long)dec[8]);
	printf("soak: host: pauses %llu stops %llu recreates %llu detaches %llu "
	       "stalls %llu fail-phases %llu; injector calls %llu failed %llu; "
	       "agent fires %llu handbacks %llu inject_errors %llu; fires checked %llu\n",
	       (unsigned long long)soak.host.pauses, (unsigned long long)soak.host.stops,
	       (unsigned long long)soak.host.recreates,
	       (unsigned long long)soak.host.detaches, (unsigned long long)soak.host.stalls,
	       (unsigned long long)soak.host.fail_phases,
	       (unsigned long long)soak.host.calls, (unsigned long long)soak.host.failures,
	       (unsigned long long)soak.agent_fires,
	       (unsigned long long)soak.agent_handbacks,
	       (unsigned long long)soak.agent_inject_errors,
	       (unsigned long long)soak.host.fires_checked);
}

START_TEST(soak_run)
{
	const char *env = getenv("EXITLESS_SOAK_OPS");
	long ops = env ? strtol(env, NULL, 0) : SOAK_OPS;
	PVTIMER_AREA_OPTS(o, .slot_count = SOAK_VCPUS, .features = PVTIMER_F_FIRED_TSC);
	pthread_t vmm;
	void *vmm_rc;
	uint64_t t0;

	soak.tpu = tsc_per_us();
	soak.backstop = 1000 * soak.tpu;
	/* a stalled callback blocks past the horizon and past B */
	o.max_horizon_tsc = 2000 * soak.tpu;
	soak.stall_tsc = 3000 * soak.tpu;
	o.margin_tsc = 2 * soak.tpu;
	soak.skew_tsc = (int64_t)(20 * soak.tpu);
	ck_assert_int_eq(pvtimer_area_new(&o, &soak.area), 0);
	for (uint32_t i = 0; i < SOAK_VCPUS; i++) {
		struct soak_vcpu *v = &soak.vcpu[i];

		v->slot = i;
		v->rng = 0x2545f4914f6cdd1dull * (i + 1);
		v->ops_target = ops / SOAK_VCPUS;
		ck_assert_int_eq(pvtimer_guest_init(&v->g, pvtimer_area_mem(soak.area),
						    pvtimer_area_bytes(soak.area), i,
						    SOAK_VECTOR), 0);
	}
	ck_assert_int_eq(soak_agent_up(PVAGENT_MODE_ADAPTIVE, 0), 0);
	t0 = mono_ns();
	ck_assert_int_eq(pthread_create(&vmm, NULL, soak_vmm_main, NULL), 0);
	for (uint32_t i = 0; i < SOAK_VCPUS; i++)
		ck_assert_int_eq(pthread_create(&soak.vcpu[i].thread, NULL,
						soak_vcpu_main, &soak.vcpu[i]), 0);
	for (uint32_t i = 0; i < SOAK_VCPUS; i++)
		pthread_join(soak.vcpu[i].thread, NULL);
	__atomic_store_n(&soak.vcpus_done, 1, __ATOMIC_RELEASE);
	pthread_join(vmm, &vmm_rc);
	soak_agent_down();
	report(ops / SOAK_VCPUS * SOAK_VCPUS, (double)(mono_ns() - t0) / 1e9);

	ck_assert_msg(vmm_rc == NULL, "a VMM operation failed: %ld", (long)(intptr_t)vmm_rc);
	for (uint32_t i = 0; i < SOAK_VCPUS; i++) {
		struct soak_vcpu *v = &soak.vcpu[i];

		ck_assert_msg(!v->lost, "vCPU %u: %llu timers lost", i,
			      (unsigned long long)v->lost);
		ck_assert_msg(!v->early, "vCPU %u: %llu timers delivered early", i,
			      (unsigned long long)v->early);
		ck_assert_msg(!v->doubles, "vCPU %u: %llu deliveries with nothing live", i,
			      (unsigned long long)v->doubles);
		ck_assert_msg(!v->bad_decisions, "vCPU %u: unknown decisions", i);
	}
	ck_assert_uint_eq(soak.host.bad_shots, 0);
	ck_assert_uint_eq(soak.host.early_fires, 0);
	ck_assert_uint_eq(soak.host.double_fires, 0);
	/* every injection reached the injector, every failure was counted */
	ck_assert_uint_eq(soak.agent_inject_errors, soak.host.failures);
	/* the paths the soak is about must really have been taken */
	ck_assert_uint_gt(soak.vcpu[0].delivered[PATH_PV], 0);
	ck_assert_uint_gt(soak.host.failures, 0);
	ck_assert_uint_gt(soak.host.stalls, 0);
	pvtimer_area_destroy(soak.area);
}
END_TEST

static Suite *soak_suite(void)
{
	Suite *s = suite_create("soak");
	TCase *tc = tcase_create("soak");

	tcase_set_timeout(tc, 3600);
	tcase_add_test(tc, soak_run);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(soak_suite)
