/* SPDX-License-Identifier: MIT */
/* The host side of the soak. The injector runs on the agent's thread: it
 * checks every shot (a bound slot, an accepted vector, a fire never before
 * the deadline the guest wrote for that generation and never repeated),
 * fails some calls (the guest must still get its timer: FIRED at halt, the
 * backstop), blocks inside a call past max_horizon when told (a stalled
 * host), and otherwise latches the vCPU's interrupt. The VMM thread pauses
 * and resumes, stops and starts, recreates the agent in the other mode,
 * detaches and rebinds slots, and changes the failure rate and stalls. */
#define _GNU_SOURCE
#include <errno.h>
#include <time.h>

#include "../common/tsc.h"
#include "soak.h"

struct soak soak;

#define HOST_ADD(field, n) __atomic_fetch_add(&soak.host.field, (n), __ATOMIC_RELAXED)

static int find_known(struct soak_vcpu *v, uint32_t gen, uint64_t *deadline)
{
	for (uint32_t i = 0; i < SOAK_KNOWN; i++) {
		struct soak_known *k = &v->known[i];

		if (!__atomic_load_n(&k->valid, __ATOMIC_ACQUIRE) ||
		    __atomic_load_n(&k->gen, __ATOMIC_RELAXED) != gen)
			continue;
		*deadline = __atomic_load_n(&k->deadline, __ATOMIC_RELAXED);
		if (__atomic_load_n(&k->valid, __ATOMIC_ACQUIRE) &&
		    __atomic_load_n(&k->gen, __ATOMIC_RELAXED) == gen)
			return 1;
	}
	return 0;
}

/* The status word names the last decision on the slot: FIRED means this
 * shot is the fire of that generation. @return 1 for a fire. */
static int check_fire(struct soak_vcpu *v)
{
	uint64_t word = __atomic_load_n(&v->g.slot->status_word, __ATOMIC_ACQUIRE);
	uint32_t gen = PVTIMER_STATUS_GEN(word);
	uint64_t deadline, fired;

	if (PVTIMER_STATUS_CODE(word) != PVTIMER_STATUS_FIRED)
		return 0;
	if (__atomic_load_n(&v->fired_any, __ATOMIC_RELAXED) &&
	    __atomic_load_n(&v->last_fired_gen, __ATOMIC_RELAXED) == gen)
		HOST_ADD(double_fires, 1);
	if (find_known(v, gen, &deadline)) {
		fired = __atomic_load_n(&v->g.slot->fired_tsc, __ATOMIC_RELAXED);
		HOST_ADD(fires_checked, 1);
		if ((int64_t)(fired - deadline) < 0)
			HOST_ADD(early_fires, 1);
	}
	__atomic_store_n(&v->last_fired_gen, gen, __ATOMIC_RELAXED);
	return 1;
}

static void spin_until(uint64_t tsc)
{
	while ((int64_t)(tsc_now() - tsc) < 0)
		;
}

int soak_inject(void *ctx, uint32_t area_id, uint32_t slot, uint8_t vector)
{
	uint64_t n = HOST_ADD(calls, 1);
	struct soak_vcpu *v;
	int fire;

	(void)ctx;
	if (area_id != soak.area_id || slot >= SOAK_VCPUS ||
	    !__atomic_load_n(&soak.bound[slot], __ATOMIC_ACQUIRE) ||
	    (vector != 0 && vector != SOAK_VECTOR)) {
		HOST_ADD(bad_shots, 1);
		return -EINVAL;
	}
	v = &soak.vcpu[slot];
	fire = check_fire(v);
	if (__atomic_exchange_n(&soak.stall_next, 0, __ATOMIC_RELAXED))
		spin_until(tsc_now() + soak.stall_tsc); /* the host thread stalls */
	/* a hash of the call number: failures spread over every kind of shot */
	if ((n * 0x9e3779b97f4a7c15ull >> 54) % 1000 <
	    __atomic_load_n(&soak.fail_permille, __ATOMIC_RELAXED)) {
		HOST_ADD(failures, 1);
		return -EIO;
	}
	if (fire)
		__atomic_store_n(&v->fired_any, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&v->irr, 1, __ATOMIC_RELEASE);
	return 0;
}

static int bind(uint32_t s)
{
	struct pvagent_injector inj = { .kind = PVAGENT_INJ_CALLBACK, .fn = soak_inject };

	__atomic_store_n(&soak.bound[s], 1, __ATOMIC_RELEASE);
	return pvagent_bind_slot(soak.agent, soak.area_id, s, &inj);
}

static int detach(uint32_t s)
{
	int rc = pvagent_detach_slot(soak.agent, soak.area_id, s);

	/* a handback may be shot during the detach, nothing after it */
	__atomic_store_n(&soak.bound[s], 0, __ATOMIC_RELEASE);
	return rc;
}

int soak_agent_up(uint32_t mode, int64_t skew_tsc)
{
	PVAGENT_OPTS(o, .mode = mode, .uring_min_batch = PVAGENT_URING_NEVER,
		   .max_sleep_ns = 200000);
	struct pvtimer_tsc_map map;
	int rc = pvtimer_tsc_map_init(&map, 1000000, 1000000, skew_tsc);

	if (!rc)
		rc = pvagent_new(&o, &soak.agent);
	if (!rc)
		rc = pvagent_attach_area(soak.agent, soak.area, &map, &soak.area_id);
	for (uint32_t s = 0; !rc && s < SOAK_VCPUS; s++)
		rc = bind(s);
	if (!rc)
		rc = pvagent_start(soak.agent);
	return rc;
}

void soak_agent_down(void)
{
	struct pvagent_stats st = { .sz = sizeof(st) };

	pvagent_stop(soak.agent);
	if (pvagent_get_stats(soak.agent, &st) == 0) {
		soak.agent_fires += st.fires;
		soak.agent_handbacks += st.handbacks;
		soak.agent_inject_errors += st.inject_errors;
	}
	pvagent_destroy(soak.agent);
	soak.agent = NULL;
	for (uint32_t s = 0; s < SOAK_VCPUS; s++)
		__atomic_store_n(&soak.bound[s], 0, __ATOMIC_RELEASE);
}

static void sleep_us(uint64_t us)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)(us * 1000) };

	nanosleep(&ts, NULL);
}

static int vmm_step(uint64_t r, uint32_t *mode)
{
	static const uint32_t rates[4] = {0, 20, 100, 400};
	uint32_t s = (uint32_t)(r >> 16) % SOAK_VCPUS;
	uint64_t hold = 100 + (r >> 24) % 900;
	int rc = 0;

	switch ((r >> 8) % 8) {
	case 0:
		rc = pvagent_pause(soak.agent);
		sleep_us(hold);
		if (!rc)
			rc = pvagent_resume(soak.agent);
		HOST_ADD(pauses, 1);
		break;
	case 1:
		rc = pvagent_stop(soak.agent);
		sleep_us(hold);
		if (!rc)
			rc = pvagent_start(soak.agent);
		HOST_ADD(stops, 1);
		break;
	case 2: /* a new agent in the other mode, every other pair with a
		 * clock running ahead: it fires early (FIRED before D) */
		soak_agent_down();
		*mode ^= 1;
		sleep_us(hold);
		rc = soak_agent_up(*mode, (soak.host.recreates & 2) ? soak.skew_tsc : 0);
		HOST_ADD(recreates, 1);
		break;
	case 3:
	case 4:
		rc = detach(s);
		sleep_us(hold);
		if (!rc)
			rc = bind(s);
		HOST_ADD(detaches, 1);
		break;
	case 5:
		__atomic_store_n(&soak.stall_next, 1, __ATOMIC_RELAXED);
		HOST_ADD(stalls, 1);
		break;
	default:
		__atomic_store_n(&soak.fail_permille, rates[(r >> 32) % 4],
				 __ATOMIC_RELAXED);
		HOST_ADD(fail_phases, 1);
		break;
	}
	return rc;
}

/* Until every vCPU is done: now and then, something a VMM does. */
void *soak_vmm_main(void *arg)
{
	uint64_t r = 0x9e3779b97f4a7c15ull;
	uint32_t mode = PVAGENT_MODE_ADAPTIVE;
	intptr_t rc = 0;

	(void)arg;
	while (!rc && !__atomic_load_n(&soak.vcpus_done, __ATOMIC_ACQUIRE)) {
		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		sleep_us(500 + (r >> 44) % 4000);
		rc = vmm_step(r, &mode);
	}
	return (void *)rc;
}
