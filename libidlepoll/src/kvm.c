/* SPDX-License-Identifier: MIT */
/* kvm: KVM's host halt-polling rule (virt/kvm/kvm_main.c, kvm_vcpu_halt with
 * grow_halt_poll_ns and shrink_halt_poll_ns). Unlike haltpoll it judges the
 * whole halt, poll included, and runs after every halt: nothing when the
 * poll caught the wake-up, shrink (to 0 below grow_start) after a block
 * longer than the maximum, grow after a shorter one. */
#include "internal.h"

static uint64_t kvm_select(struct idlepoll_cpu *c)
{
	struct ip_kvm *k = &c->u.kvm;

	/* The maximum may have been lowered at run time. */
	if (k->poll_ns > k->max_ns)
		k->poll_ns = k->max_ns;
	return ip_decided(c, k->poll_ns);
}

static void kvm_grow(struct ip_kvm *k)
{
	uint64_t val;

	if (!k->grow)
		return;
	val = k->poll_ns * k->grow;
	if (val < k->grow_start_ns)
		val = k->grow_start_ns;
	if (val > k->max_ns)
		val = k->max_ns;
	k->poll_ns = val;
}

static void kvm_shrink(struct ip_kvm *k)
{
	uint64_t val = k->shrink ? k->poll_ns / k->shrink : 0;

	k->poll_ns = val < k->grow_start_ns ? 0 : val;
}

static void kvm_reflect(struct idlepoll_cpu *c, uint64_t idle_ns, int polled)
{
	struct ip_kvm *k = &c->u.kvm;

	(void)polled; /* KVM judges the halt's length, not how it ended */
	if (!k->max_ns)
		k->poll_ns = 0;
	else if (idle_ns <= k->poll_ns)
		; /* the poll caught it */
	else if (k->poll_ns && idle_ns > k->max_ns)
		kvm_shrink(k);
	else if (k->poll_ns < k->max_ns && idle_ns < k->max_ns)
		kvm_grow(k);
}

static const struct ip_param kvm_params[] = {
	IP_PARAM("max_ns", u.kvm.max_ns, 0, 1ull << 32, 200000),
	IP_PARAM("grow", u.kvm.grow, 0, 1024, 2),
	IP_PARAM("grow_start_ns", u.kvm.grow_start_ns, 0, 1ull << 32, 10000),
	IP_PARAM("shrink", u.kvm.shrink, 0, 1024, 2),
};

const struct ip_policy ip_policy_kvm = {
	.name = "kvm",
	.params = kvm_params,
	.nparams = sizeof(kvm_params) / sizeof(kvm_params[0]),
	.select = kvm_select,
	.reflect = kvm_reflect,
};
