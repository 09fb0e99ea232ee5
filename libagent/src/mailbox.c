/* SPDX-License-Identifier: MIT */
/* The command mailbox (mailbox.h). The pending flag is set after the
 * command is stored and before the eventfd write, under the mutex: the
 * thread obeys the flag (a spinning thread never reads the eventfd), the
 * eventfd only ends a sleep. */
#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "mailbox.h"

int agent_mailbox_init(struct agent_mailbox *mb)
{
	*mb = (struct agent_mailbox){ .wake_fd = -1 };
	mb->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (mb->wake_fd < 0)
		return -errno;
	pthread_mutex_init(&mb->mu, NULL);
	pthread_cond_init(&mb->cv, NULL);
	return 0;
}

void agent_mailbox_fini(struct agent_mailbox *mb)
{
	if (mb->wake_fd < 0)
		return;
	close(mb->wake_fd);
	mb->wake_fd = -1;
	pthread_cond_destroy(&mb->cv);
	pthread_mutex_destroy(&mb->mu);
}

int agent_mailbox_post(struct agent_mailbox *mb, const struct agent_cmd *c)
{
	uint64_t one = 1;
	int rc;

	pthread_mutex_lock(&mb->mu);
	mb->cmd = *c;
	mb->done = false;
	__atomic_store_n(&mb->pending, 1, __ATOMIC_RELEASE);
	if (write(mb->wake_fd, &one, sizeof(one)) < 0) {
		/* cannot fail on a non-saturated eventfd; the flag suffices
		 * for a spinning thread and a sleep ends by itself */
	}
	while (!mb->done)
		pthread_cond_wait(&mb->cv, &mb->mu);
	rc = mb->result;
	pthread_mutex_unlock(&mb->mu);
	return rc;
}

bool agent_mailbox_fetch(struct agent_mailbox *mb, struct agent_cmd *out)
{
	bool got;

	pthread_mutex_lock(&mb->mu);
	got = __atomic_load_n(&mb->pending, __ATOMIC_RELAXED) && !mb->done;
	if (got)
		*out = mb->cmd;
	pthread_mutex_unlock(&mb->mu);
	return got;
}

void agent_mailbox_reply(struct agent_mailbox *mb, int result)
{
	pthread_mutex_lock(&mb->mu);
	mb->result = result;
	mb->done = true;
	__atomic_store_n(&mb->pending, 0, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&mb->cv);
	pthread_mutex_unlock(&mb->mu);
}

void agent_mailbox_drain(struct agent_mailbox *mb)
{
	uint64_t v;

	/* the flag, set before the write, is what the thread obeys */
	if (read(mb->wake_fd, &v, sizeof(v)) < 0)
		return;
}
