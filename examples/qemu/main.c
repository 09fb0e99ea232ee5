/* SPDX-License-Identifier: MIT */
/*
 * exitless-qemu-agent: exitless timers for a stock QEMU, no patch.
 *
 * It is the ivshmem server of an `ivshmem-doorbell` device: it creates the
 * pvtimer area (libpvtimer) in the shared memory it hands QEMU, one eventfd
 * per vCPU (MSI-X vector i, affine to CPU i in the guest), learns the
 * guest's TSC offset by the calibration handshake, then services slot i
 * with libagent through an irqfd injector on eventfd i (under KVM, QEMU
 * turns those eventfds into irqfds: the same injection path as
 * exitless-vmm). SIGUSR1 prints the stats; SIGTERM/SIGINT stop cleanly
 * (every held timer is handed back, guests fall back); QEMU closing the
 * socket does the same. Policy lives here: errors end the program.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "qagent.h"

struct qa_opts {
	const char *socket;
	uint32_t vcpus;
	int json;
	int dedicated;
	int cpu;
	uint64_t margin_ns;
	uint64_t calib_timeout_ms;
};

struct qa {
	struct qa_opts o;
	uint32_t khz;
	int shm_fd, sig_fd, listen_fd, conn;
	void *mem;
	size_t mem_size;
	int efd[PVTIMER_ABI_MAX_SLOTS];
	struct pvtimer_area *area;
	struct pvagent *agent;
	struct qa_calib calib;
};

static void die(const char *what, int err)
{
	fprintf(stderr, "exitless-qemu-agent: %s: %s\n", what, strerror(err));
	exit(1);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: exitless-qemu-agent --socket PATH [--vcpus N] [--json]\n"
		"       [--dedicated] [--cpu N] [--margin-us N] [--calib-timeout-ms N]\n"
		"then: qemu-system-x86_64 ... -chardev socket,path=PATH,id=ivs\n"
		"      -device ivshmem-doorbell,chardev=ivs,vectors=N\n");
	exit(2);
}

static void parse(int argc, char **argv, struct qa_opts *o)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "vcpus", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "dedicated", no_argument, NULL, 'd' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "margin-us", required_argument, NULL, 'm' },
		{ "calib-timeout-ms", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct qa_opts){ .vcpus = 1, .cpu = -1, .margin_ns = 20000,
			       .calib_timeout_ms = 300000 };
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's': o->socket = optarg; break;
		case 'n': o->vcpus = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'j': o->json = 1; break;
		case 'd': o->dedicated = 1; break;
		case 'c': o->cpu = atoi(optarg); break;
		case 'm': o->margin_ns = strtoull(optarg, NULL, 0) * 1000; break;
		case 't': o->calib_timeout_ms = strtoull(optarg, NULL, 0); break;
		default: usage();
		}
	}
	if (!o->socket || o->vcpus == 0 || o->vcpus > PVTIMER_ABI_MAX_SLOTS)
		usage();
}

/* QEMU requires a power-of-two shared memory size. */
static size_t pow2_at_least(size_t n)
{
	size_t p = PVTIMER_ABI_PAGE_SIZE;

	while (p < n)
		p <<= 1;
	return p;
}

static void setup_area(struct qa *q)
{
	int rc;

	q->mem_size = pow2_at_least(pvtimer_area_size_for(q->o.vcpus));
	q->shm_fd = memfd_create("exitless-pvtimer", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (q->shm_fd < 0 || ftruncate(q->shm_fd, (off_t)q->mem_size) != 0)
		die("memfd", errno);
	/* QEMU maps it for the guest: it must never shrink under us */
	if (fcntl(q->shm_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0)
		die("memfd seals", errno);
	q->mem = mmap(NULL, q->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      q->shm_fd, 0);
	if (q->mem == MAP_FAILED)
		die("mmap", errno);
	PVTIMER_AREA_OPTS(ao, .slot_count = q->o.vcpus, .tsc_khz = q->khz,
			  .margin_tsc = q->o.margin_ns * q->khz / 1000000u,
			  .mem = q->mem, .mem_size = q->mem_size);
	rc = pvtimer_area_new(&ao, &q->area);
	if (rc)
		die("pvtimer_area_new", -rc);
	qa_calib_offer(q->mem);
	for (uint32_t i = 0; i < q->o.vcpus; i++) {
		q->efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (q->efd[i] < 0)
			die("eventfd", errno);
	}
}

static void setup_signals(struct qa *q)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	/* before pvagent_new(): its threads inherit the mask */
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		die("sigmask", EINVAL);
	q->sig_fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (q->sig_fd < 0)
		die("signalfd", errno);
}

static int next_signal(struct qa *q)
{
	struct signalfd_siginfo si;

	if (read(q->sig_fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return 0;
	return (int)si.ssi_signo;
}

static void start_agent(struct qa *q)
{
	struct pvagent_injector inj = { .kind = PVAGENT_INJ_IRQFD };
	struct pvtimer_tsc_map map;
	int rc;
	PVAGENT_OPTS(ao, .mode = q->o.dedicated ? PVAGENT_MODE_DEDICATED
					      : PVAGENT_MODE_ADAPTIVE,
		   .cpu_policy = q->o.cpu >= 0 ? PVAGENT_CPU_FIXED : PVAGENT_CPU_ANY,
		   .cpu = q->o.cpu);

	/* same rate (TCG: the host TSC; KVM without TSC scaling), learnt
	 * offset; khz only has to be equal on both sides here */
	rc = pvtimer_tsc_map_init(&map, q->khz, q->khz, q->calib.offset);
	if (!rc)
		rc = pvagent_new(&ao, &q->agent);
	if (!rc)
		rc = pvagent_attach_area(q->agent, q->area, &map, NULL);
	for (uint32_t i = 0; !rc && i < q->o.vcpus; i++) {
		inj.fd = q->efd[i]; /* MSI-X vector i, affine to guest CPU i */
		rc = pvagent_bind_slot(q->agent, 0, i, &inj);
	}
	if (!rc)
		rc = pvagent_start(q->agent);
	if (rc)
		die("agent set-up", -rc);
}

/* Until the guest's module calibrates: SIGUSR1 reports, TERM/INT end. */
static int calibrate(struct qa *q)
{
	for (;;) {
		int rc = qa_calib_run(q->area, q->khz, q->sig_fd,
				      q->o.calib_timeout_ms, &q->calib);
		int sig;

		if (rc != -EINTR)
			return rc;
		sig = next_signal(q);
		if (sig == SIGTERM || sig == SIGINT)
			return -EINTR;
		if (sig == SIGUSR1 && q->o.json)
			printf("{\"event\": \"calibrating\"}\n");
		fflush(stdout);
	}
}

static void serve(struct qa *q)
{
	for (;;) {
		struct pollfd p[2] = { { .fd = q->sig_fd, .events = POLLIN },
				       { .fd = q->conn, .events = POLLIN } };
		char buf[64];
		int sig;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll", errno);
		}
		/* QEMU never writes to the server: readable means it left */
		if (p[1].revents && read(q->conn, buf, sizeof(buf)) <= 0) {
			pvagent_stop(q->agent);
			qa_print_stats(q->agent, q->area, &q->calib, "qemu-gone", q->o.json);
			return;
		}
		if (!(p[0].revents & POLLIN))
			continue;
		sig = next_signal(q);
		if (sig == SIGUSR2) {
			uint64_t one = 1;

			for (uint32_t i = 0; i < q->o.vcpus; i++)
				if (write(q->efd[i], &one, sizeof(one)) < 0)
					perror("ping");
		} else if (sig == SIGUSR1) {
			qa_print_stats(q->agent, q->area, &q->calib, "stats", q->o.json);
		} else if (sig == SIGTERM || sig == SIGINT) {
			/* hand back every held timer before going away */
			pvagent_stop(q->agent);
			qa_print_stats(q->agent, q->area, &q->calib, "exit", q->o.json);
			return;
		}
	}
}

int main(int argc, char **argv)
{
	struct qa q = { 0 };
	int rc;

	parse(argc, argv, &q.o);
	setup_signals(&q);
	q.khz = qa_tsc_khz();
	setup_area(&q);
	q.listen_fd = qa_ivshmem_listen(q.o.socket);
	if (q.listen_fd < 0)
		die("listen", -q.listen_fd);
	printf("listening %s (%u vCPUs, %zu bytes, host TSC %u kHz)\n",
	       q.o.socket, q.o.vcpus, q.mem_size, q.khz);
	fflush(stdout);
	q.conn = qa_ivshmem_accept(q.listen_fd, q.shm_fd, q.efd, q.o.vcpus);
	if (q.conn < 0)
		die("accept", -q.conn);
	rc = calibrate(&q);
	if (rc == -EINTR)
		return 0;
	if (rc)
		die("TSC calibration", -rc);
	if (q.o.json)
		printf("{\"event\": \"calibrated\", \"calib_offset\": %lld, "
		       "\"calib_error_tsc\": %llu, \"calib_samples\": %u, "
		       "\"tsc_khz\": %u}\n",
		       (long long)q.calib.offset,
		       (unsigned long long)q.calib.error_tsc, q.calib.samples,
		       q.khz);
	fflush(stdout);
	start_agent(&q);
	serve(&q);
	pvagent_destroy(q.agent);
	pvtimer_area_destroy(q.area);
	for (uint32_t i = 0; i < q.o.vcpus; i++)
		close(q.efd[i]);
	close(q.conn);
	close(q.listen_fd);
	unlink(q.o.socket);
	munmap(q.mem, q.mem_size);
	close(q.shm_fd);
	return 0;
}
