/* SPDX-License-Identifier: MIT */
/* Injectors: irqfd write, KVM_SIGNAL_MSI, callback. Shots of one pass are
 * flushed together so that irqfd writes can share one io_uring submission. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "internal.h"

/* A blocking eventfd's io_uring write goes to a kernel worker: it does not
 * complete inline and would make the submission wait. Those go by write(). */
uint8_t agent_injector_ring_ok(const struct pvagent_injector *inj)
{
	int fl;

	if (inj->kind != PVAGENT_INJ_IRQFD)
		return 0;
	fl = fcntl(inj->fd, F_GETFL);
	return fl >= 0 && (fl & O_NONBLOCK);
}

int agent_injector_check(const struct pvagent_injector *inj)
{
	if (!inj)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(inj->reserved) / sizeof(inj->reserved[0]); i++)
		if (inj->reserved[i])
			return -EINVAL; /* a field this version does not know */
	switch (inj->kind) {
	case PVAGENT_INJ_IRQFD:
	case PVAGENT_INJ_MSI:
		return inj->fd >= 0 ? 0 : -EINVAL;
	case PVAGENT_INJ_CALLBACK:
		return inj->fn ? 0 : -EINVAL;
	default:
		return -EINVAL;
	}
}

void agent_queue_shot(struct pvagent *a, const struct agent_slot *s,
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
		.vector = vector, .ring_ok = s->ring_ok,
	};
}

static int write_one(int fd)
{
	uint64_t one = 1;

	return write(fd, &one, sizeof(one)) == (ssize_t)sizeof(one) ? 0 : -errno;
}

static int signal_msi(const struct pvagent_injector *inj, uint8_t vector)
{
	struct kvm_msi msi = {
		.address_lo = (uint32_t)inj->msi_address,
		.address_hi = (uint32_t)(inj->msi_address >> 32),
		/* vector 0: the injector's own (a reject wake for a vector
		 * the host does not accept): msi_data as the VMM set it */
		.data = inj->msi_fixed_vector || !vector
				? inj->msi_data
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
	case PVAGENT_INJ_IRQFD:
		return write_one(sh->inj->fd);
	case PVAGENT_INJ_MSI:
		return signal_msi(sh->inj, sh->vector);
	default:
		return sh->inj->fn(sh->inj->ctx, sh->area, sh->slot, sh->vector);
	}
}

/* irqfd shots go through io_uring when there are enough of them to pay
 * for the submission; everything else goes one by one. Shots the ring did
 * not handle (a short submission, a ring that failed) go by write(); a
 * ring that failed is retired first, so nothing it still holds can be
 * sent twice. Marks the irqfd shots it sent in @sent. */
static void flush_uring(struct pvagent *a, uint8_t *sent)
{
	uint32_t n = 0, min = a->opts.uring_min_batch, k = 0;
	struct agent_uring_res res;

	if (!a->uring || min == PVAGENT_URING_NEVER)
		return;
	for (uint32_t i = 0; i < a->nshots; i++)
		if (a->shots[i].ring_ok)
			a->uring_fds[n++] = a->shots[i].inj->fd;
	if (n < min)
		return;
	agent_uring_write_ones(a->uring, a->uring_fds, n, &res);
	if (res.error) {
		agent_uring_destroy(a->uring);
		a->uring = NULL;
		AGENT_SET(a, uring_min_batch, PVAGENT_URING_NEVER);
	}
	if (!res.handled)
		return;
	AGENT_ADD(a, batches, 1);
	AGENT_ADD(a, batched, res.handled);
	AGENT_ADD(a, injections, res.handled);
	AGENT_ADD(a, inject_errors, res.failed);
	/* the ring handled the first res.handled irqfd shots, in order */
	for (uint32_t i = 0; i < a->nshots && k < res.handled; i++)
		if (a->shots[i].ring_ok) {
			sent[i] = 1;
			k++;
		}
}

bool agent_shots_batch(const struct pvagent *a)
{
	return a->uring && a->opts.uring_min_batch != PVAGENT_URING_NEVER;
}

void agent_flush_shots(struct pvagent *a)
{
	if (!a->nshots)
		return;
	memset(a->shot_sent, 0, a->nshots);
	flush_uring(a, a->shot_sent);
	for (uint32_t i = 0; i < a->nshots; i++) {
		const struct agent_shot *sh = &a->shots[i];

		if (a->shot_sent[i])
			continue;
		AGENT_ADD(a, injections, 1);
		if (shoot(sh) < 0)
			AGENT_ADD(a, inject_errors, 1);
	}
	a->nshots = 0;
}
