/* SPDX-License-Identifier: MIT */
/* Injectors: irqfd write, KVM_SIGNAL_MSI, callback. Shots of one pass are
 * flushed together so that irqfd writes can share one io_uring submission. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "internal.h"

int agent_injector_check(const struct agent_injector *inj)
{
	if (!inj)
		return -EINVAL;
	switch (inj->kind) {
	case AGENT_INJ_IRQFD:
	case AGENT_INJ_MSI:
		return inj->fd >= 0 ? 0 : -EINVAL;
	case AGENT_INJ_CALLBACK:
		return inj->fn ? 0 : -EINVAL;
	default:
		return -EINVAL;
	}
}

void agent_queue_shot(struct agent *a, const struct agent_slot *s,
		      uint8_t vector)
{
	/* shots_cap covers every slot and a slot is shot at most once per
	 * flush (fire and handback both drop the hold first). */
	if (a->nshots >= a->shots_cap) {
		AGENT_ADD(a, inject_errors, 1);
		return;
	}
	a->shots[a->nshots++] = (struct agent_shot){
		.inj = &s->inj, .area = s->area, .slot = s->index,
		.vector = vector,
	};
}

static int write_one(int fd)
{
	uint64_t one = 1;

	return write(fd, &one, sizeof(one)) == (ssize_t)sizeof(one) ? 0 : -errno;
}

static int signal_msi(const struct agent_injector *inj, uint8_t vector)
{
	struct kvm_msi msi = {
		.address_lo = (uint32_t)inj->msi_address,
		.address_hi = (uint32_t)(inj->msi_address >> 32),
		.data = inj->msi_fixed_vector ? inj->msi_data
					      : (inj->msi_data & ~0xffu) | vector,
	};
	int rc = ioctl(inj->fd, KVM_SIGNAL_MSI, &msi);

	/* 0 means the interrupt was blocked (e.g. masked): not an error of
	 * ours; the guest's LAPIC state decided. */
	return rc < 0 ? -errno : 0;
}

static int shoot(const struct agent_shot *sh)
{
	switch (sh->inj->kind) {
	case AGENT_INJ_IRQFD:
		return write_one(sh->inj->fd);
	case AGENT_INJ_MSI:
		return signal_msi(sh->inj, sh->vector);
	default:
		return sh->inj->fn(sh->inj->ctx, sh->area, sh->slot, sh->vector);
	}
}

/* irqfd shots go through io_uring when there are enough of them to pay
 * for the submission; everything else (and a failed ring) goes one by one. */
static uint32_t flush_uring(struct agent *a)
{
	uint32_t n = 0, min = a->opts.uring_min_batch;
	int bad;

	if (!a->uring || min == AGENT_URING_NEVER)
		return 0;
	for (uint32_t i = 0; i < a->nshots; i++)
		if (a->shots[i].inj->kind == AGENT_INJ_IRQFD)
			a->uring_fds[n++] = a->shots[i].inj->fd;
	if (n < min)
		return 0;
	bad = agent_uring_write_ones(a->uring, a->uring_fds, n);
	if (bad < 0)
		return 0;
	AGENT_ADD(a, batches, 1);
	AGENT_ADD(a, batched, n);
	AGENT_ADD(a, injections, n);
	AGENT_ADD(a, inject_errors, (uint64_t)bad);
	return n;
}

void agent_flush_shots(struct agent *a)
{
	bool uring_done;

	if (!a->nshots)
		return;
	uring_done = flush_uring(a) > 0;
	for (uint32_t i = 0; i < a->nshots; i++) {
		const struct agent_shot *sh = &a->shots[i];

		if (uring_done && sh->inj->kind == AGENT_INJ_IRQFD)
			continue;
		AGENT_ADD(a, injections, 1);
		if (shoot(sh) < 0)
			AGENT_ADD(a, inject_errors, 1);
	}
	a->nshots = 0;
}
