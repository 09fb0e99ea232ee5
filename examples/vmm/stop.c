/* SPDX-License-Identifier: MIT */
/* Stopping the vCPUs: the watchdog (a lost timer leaves the guest halted
 * for ever) and errors (the other vCPU may wait at a rendezvous). A vCPU
 * in KVM_RUN leaves it on a signal or, entering it, on immediate_exit. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>

#include "app.h"

/* stop_runs[] is filled before any vCPU runs; stop_threads[i] is
 * published by the release store of stop_nthreads. Several threads (a
 * failing vCPU, the one it stopped, the watchdog's handler) may call
 * stop_all() at once, so every shared access here is atomic. */
static struct kvm_run *stop_runs[VMM_VCPUS_MAX];
static pthread_t stop_threads[VMM_VCPUS_MAX];
static int stop_nthreads;
static volatile sig_atomic_t watchdog_fired;
static int stopping;

void stop_register_run(int idx, struct kvm_run *run)
{
	__atomic_store_n(&stop_runs[idx], run, __ATOMIC_RELEASE);
}

void stop_register_threads(const pthread_t *threads, int n)
{
	for (int i = 0; i < n; i++)
		stop_threads[i] = threads[i];
	__atomic_store_n(&stop_nthreads, n, __ATOMIC_RELEASE);
}

/* Async-signal-safe: KVM_RUN returns -EINTR at once when entered after
 * immediate_exit is set; SIGUSR1 interrupts one already running. A vCPU
 * thread not yet published in stop_threads[] has immediate_exit set
 * before it can enter KVM_RUN. */
void stop_all(void)
{
	pthread_t self = pthread_self();
	int n;

	for (int i = 0; i < VMM_VCPUS_MAX; i++) {
		struct kvm_run *run = __atomic_load_n(&stop_runs[i],
						      __ATOMIC_ACQUIRE);

		if (run)
			__atomic_store_n(&run->immediate_exit, 1,
					 __ATOMIC_RELEASE);
	}
	if (__atomic_exchange_n(&stopping, 1, __ATOMIC_ACQ_REL))
		return;
	n = __atomic_load_n(&stop_nthreads, __ATOMIC_ACQUIRE);
	for (int i = 0; i < n; i++)
		if (!pthread_equal(stop_threads[i], self))
			pthread_kill(stop_threads[i], SIGUSR1);
}

int stopped(void)
{
	return __atomic_load_n(&stopping, __ATOMIC_ACQUIRE);
}

int watchdog_expired(void)
{
	return watchdog_fired;
}

static void on_alarm(int sig)
{
	(void)sig;
	watchdog_fired = 1;
	stop_all();
}

static void on_usr1(int sig)
{
	(void)sig; /* its only job is to interrupt KVM_RUN */
}

void stop_install_handlers(void)
{
	/* no SA_RESTART: the point is to interrupt KVM_RUN */
	struct sigaction sa = { .sa_handler = on_alarm };
	struct sigaction su = { .sa_handler = on_usr1 };

	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGUSR1, &su, NULL);
}

/* Helper threads (the agent's, the device's) must not take these signals:
 * only a vCPU thread can turn them into an exit from KVM_RUN. */
void alarm_mask(int how)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGALRM);
	sigaddset(&s, SIGUSR1);
	pthread_sigmask(how, &s, NULL);
}
