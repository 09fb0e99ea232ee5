/* SPDX-License-Identifier: MIT */
/* Built outside the meson tree with `pkg-config exitless-agent` only: a
 * guest arm on slot 0 must come back through the callback injector, on the
 * slot and vector the guest asked for. */
#define _POSIX_C_SOURCE 200809L
#include <exitless/agent.h>
#include <exitless/pvtimer.h>
#include <exitless/pvtimer_guest.h>
#include <stdio.h>
#include <time.h>

#define VECTOR 0xec
/* TSC cycles ahead of now: milliseconds at any TSC rate of a real machine,
 * beyond an adaptive agent's promise (about 1.2 ms). */
#define AHEAD_TSC (1ull << 25)

struct seen {
	int calls;
	uint32_t area, slot;
	uint8_t vector;
};

static int on_fire(void *ctx, uint32_t area, uint32_t slot, uint8_t vector)
{
	struct seen *s = ctx;

	s->area = area;
	s->slot = slot;
	s->vector = vector;
	__atomic_add_fetch(&s->calls, 1, __ATOMIC_RELEASE);
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = ms * 1000000L };

	nanosleep(&ts, NULL);
}

/* Arm until the host takes it (the first tries may precede the agent's
 * first promise), then wait up to 2 s for the callback. */
static int fire_once(struct pvtimer_area *area, struct seen *s)
{
	struct pvtimer_guest g;
	int err, i;

	err = pvtimer_guest_init(&g, pvtimer_area_mem(area),
				 pvtimer_area_bytes(area), 0, VECTOR);
	if (err)
		return err;
	for (i = 0; i < 200; i++) {
		if (pvtimer_guest_arm(&g, PVTIMER_GUEST_READ_TSC() + AHEAD_TSC) ==
		    PVTIMER_GUEST_PV)
			break;
		sleep_ms(5);
	}
	if (i == 200) {
		fprintf(stderr, "the host never took an arm\n");
		return -1;
	}
	for (i = 0; i < 2000 && !__atomic_load_n(&s->calls, __ATOMIC_ACQUIRE); i++)
		sleep_ms(1);
	return __atomic_load_n(&s->calls, __ATOMIC_ACQUIRE) ? 0 : -1;
}

int main(void)
{
	PVTIMER_AREA_OPTS(ao, .slot_count = 2);
	PVAGENT_OPTS(o, .mode = PVAGENT_MODE_ADAPTIVE);
	struct seen seen = { 0 };
	struct pvagent_injector inj = { .kind = PVAGENT_INJ_CALLBACK, .fn = on_fire,
				      .ctx = &seen };
	struct pvagent_stats st = { .sz = sizeof(st) };
	struct pvtimer_area *area = NULL;
	struct pvagent *ag = NULL;
	uint32_t area_id = 99;
	int err;

	err = pvtimer_area_new(&ao, &area);
	if (!err)
		err = pvagent_new(&o, &ag);
	if (!err)
		err = pvagent_attach_area(ag, area, NULL, &area_id);
	if (!err)
		err = pvagent_bind_slot(ag, area_id, 0, &inj);
	if (!err)
		err = pvagent_start(ag);
	if (!err)
		err = fire_once(area, &seen);
	if (!err)
		err = pvagent_stop(ag);
	if (!err)
		err = pvagent_get_stats(ag, &st);
	printf("exitless-agent: %d, callback calls %d (area %u slot %u vector %#x), "
	       "fires %llu, pick_cpu %d\n",
	       err, seen.calls, seen.area, seen.slot, seen.vector,
	       (unsigned long long)st.fires, pvagent_pick_cpu(NULL, 0));
	pvagent_destroy(ag);
	pvtimer_area_destroy(area);
	if (err || seen.calls < 1 || seen.area != area_id || seen.slot != 0 ||
	    seen.vector != VECTOR || st.fires < 1)
		return 1;
	return 0;
}
