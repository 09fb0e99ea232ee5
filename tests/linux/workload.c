/* SPDX-License-Identifier: MIT */
/*
 * Guest workload of the Linux suite (linked static, runs as a process of the
 * busybox initramfs): one child pinned to every online CPU sleeps
 * `--count` times with clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) for a
 * random 50 us..5 ms and checks, against CLOCK_MONOTONIC itself, that no
 * sleep returned before its deadline. A lost timer hangs the child: the host
 * side of the test notices by the missing summary line.
 *
 * Output, one line per CPU then a total (parsed by run_linux.py):
 *   XLW cpu=N sleeps=S early=E late_p50_us=A late_p99_us=B late_max_us=C
 *   XLW total sleeps=S early=E fails=F
 * Exit status 0 only when every child completed with no early return.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIN_NS 50000ull
#define MAX_NS 5000000ull

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* One CPU's run; returns the number of early wake-ups (or -1 on error). */
static int run_cpu(int cpu, unsigned int count, uint64_t seed)
{
	uint64_t *late = calloc(count, sizeof(*late));
	unsigned int i, early = 0;
	cpu_set_t set;

	if (!late)
		return -1;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0) {
		perror("sched_setaffinity");
		return -1;
	}
	for (i = 0; i < count; i++) {
		uint64_t d = MIN_NS + xorshift(&seed) % (MAX_NS - MIN_NS);
		uint64_t target = mono_ns() + d, now;
		struct timespec ts = { .tv_sec = (time_t)(target / 1000000000ull),
				       .tv_nsec = (long)(target % 1000000000ull) };
		int rc;

		do
			rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		while (rc == EINTR);
		if (rc != 0) {
			fprintf(stderr, "clock_nanosleep: %s\n", strerror(rc));
			return -1;
		}
		now = mono_ns();
		if (now < target) {
			early++;
			fprintf(stderr, "XLW EARLY cpu=%d by_ns=%llu\n", cpu,
				(unsigned long long)(target - now));
			late[i] = 0;
		} else {
			late[i] = now - target;
		}
	}
	qsort(late, count, sizeof(*late), cmp_u64);
	printf("XLW cpu=%d sleeps=%u early=%u late_p50_us=%llu late_p99_us=%llu late_max_us=%llu\n",
	       cpu, count, early,
	       (unsigned long long)(late[count / 2] / 1000),
	       (unsigned long long)(late[(uint64_t)count * 99 / 100] / 1000),
	       (unsigned long long)(late[count - 1] / 1000));
	fflush(stdout);
	free(late);
	return (int)early;
}

int main(int argc, char **argv)
{
	unsigned int count = 1000, fails = 0, early = 0;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--count") && i + 1 < argc)
			count = (unsigned int)strtoul(argv[++i], NULL, 0);
		else {
			fprintf(stderr, "usage: %s [--count N]\n", argv[0]);
			return 2;
		}
	}
	if (count == 0 || ncpu < 1)
		return 2;
	fflush(stdout);
	for (i = 0; i < ncpu; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			int e = run_cpu(i, count, 0x9e3779b97f4a7c15ull ^
						  ((uint64_t)i << 32) ^ mono_ns());

			_exit(e == 0 ? 0 : e < 0 ? 2 : 1);
		}
	}
	for (i = 0; i < ncpu; i++) {
		int st;

		if (wait(&st) < 0)
			break;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fails++;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 1)
			early++;
	}
	printf("XLW total cpus=%ld sleeps=%llu early_cpus=%u fails=%u\n", ncpu,
	       (unsigned long long)count * (unsigned long long)ncpu, early, fails);
	return fails ? 1 : 0;
}
