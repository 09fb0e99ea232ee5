/* SPDX-License-Identifier: MIT */
/* The command mailbox: how an API thread hands one command (bind, detach,
 * pause, resume, stop) to the running agent thread and waits for its
 * result. One command at a time (the API serialises on the handle's lock);
 * the agent thread polls a flag between passes, so its loop takes no lock
 * unless a command is waiting, and a sleeping agent is woken through an
 * eventfd it polls. Knows nothing of what the commands do (control.c). */
#ifndef AGENT_MAILBOX_H
#define AGENT_MAILBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "exitless/agent.h"

enum agent_cmd_kind {
	AGENT_CMD_NONE,
	AGENT_CMD_BIND,
	AGENT_CMD_DETACH,
	AGENT_CMD_PAUSE,
	AGENT_CMD_RESUME,
	AGENT_CMD_STOP,
};

struct agent_cmd {
	enum agent_cmd_kind kind;
	uint32_t area;
	uint32_t slot;
	struct pvagent_injector inj;
	bool live; /* the thread is servicing (not stopped, not paused) */
};

struct agent_mailbox {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct agent_cmd cmd; /* under mu */
	int result;           /* under mu */
	bool done;            /* under mu */
	int pending;          /* atomic: a command waits for the thread */
	int wake_fd;          /* eventfd: a post wakes a sleeping thread */
};

/* @return 0 or -errno (eventfd). */
int agent_mailbox_init(struct agent_mailbox *mb);
void agent_mailbox_fini(struct agent_mailbox *mb);

/* API side: post @c to the running thread and wait for its result. */
int agent_mailbox_post(struct agent_mailbox *mb, const struct agent_cmd *c);

/* Agent side: is a command waiting? (acquire: its body is visible) */
static inline bool agent_mailbox_pending(struct agent_mailbox *mb)
{
	return __atomic_load_n(&mb->pending, __ATOMIC_ACQUIRE) != 0;
}
/* Agent side: copy the waiting command into @out. @return false if none. */
bool agent_mailbox_fetch(struct agent_mailbox *mb, struct agent_cmd *out);
/* Agent side: complete the fetched command with @result (wakes the poster). */
void agent_mailbox_reply(struct agent_mailbox *mb, int result);
/* Agent side: the fd to poll while sleeping, and its drain after a wake. */
static inline int agent_mailbox_fd(const struct agent_mailbox *mb)
{
	return mb->wake_fd;
}
void agent_mailbox_drain(struct agent_mailbox *mb);

#endif
