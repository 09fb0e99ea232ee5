/* Built outside the meson tree with `pkg-config exitless-agent` only. */
#include <exitless/agent.h>
#include <exitless/pvtimer.h>
#include <exitless/pvtimer_guest.h>
#include <stdio.h>

static int injected;

static int on_fire(void *ctx, uint32_t area, uint32_t slot, uint8_t vector)
{
	(void)ctx;
	(void)area;
	(void)slot;
	(void)vector;
	__atomic_store_n(&injected, 1, __ATOMIC_RELEASE);
	return 0;
}

int main(void)
{
	PVTIMER_AREA_OPTS(ao, .slot_count = 2);
	AGENT_OPTS(o, .mode = AGENT_MODE_ADAPTIVE);
	struct agent_injector inj = { .kind = AGENT_INJ_CALLBACK, .fn = on_fire };
	struct agent_stats st = { .sz = sizeof(st) };
	struct pvtimer_area *area = NULL;
	struct agent *ag = NULL;
	int err;

	err = pvtimer_area_new(&ao, &area);
	if (!err)
		err = agent_new(&o, &ag);
	if (!err)
		err = agent_attach_area(ag, area, NULL, NULL);
	if (!err)
		err = agent_bind_slot(ag, 0, 1, &inj);
	if (!err)
		err = agent_start(ag);
	if (!err)
		err = agent_stop(ag);
	if (!err)
		err = agent_get_stats(ag, &st);
	printf("exitless-agent: start/stop %d, scans %llu, pick_cpu %d\n", err,
	       (unsigned long long)st.scans, agent_pick_cpu(NULL, 0));
	agent_destroy(ag);
	pvtimer_area_destroy(area);
	return err == 0 ? 0 : 1;
}
