/* SPDX-License-Identifier: MIT */
/* idlepoll-tracegen: synthetic traces of idle durations, deterministic for a
 * given family, seed and length. */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rng {
	uint64_t s;
};

/* splitmix64: tiny, and the same sequence on every platform. */
static uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in (0, 1]. */
static double unif(struct rng *r)
{
	return ((double)(rng_next(r) >> 11) + 1.0) / 9007199254740992.0;
}

static double expo(struct rng *r, double mean)
{
	return -mean * log(unif(r));
}

/* Normal by Box-Muller (one of the pair). */
static double gauss(struct rng *r, double mean, double sd)
{
	double u = unif(r), v = unif(r);

	return mean + sd * sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

static uint64_t clamp_ns(double x)
{
	if (x < 100.0)
		return 100;
	if (x > 1e9)
		return 1000000000ull;
	return (uint64_t)x;
}

/* Each family models one idle pattern a vCPU sees (docs/idlepoll.md). */
static uint64_t gen(const char *family, struct rng *r, uint64_t i, int *st)
{
	if (!strcmp(family, "exponential")) /* Poisson wake-ups, mean 40 us */
		return clamp_ns(expo(r, 40000));
	if (!strcmp(family, "bimodal")) /* I/O completions + long sleeps */
		return clamp_ns(unif(r) < 0.7 ? gauss(r, 8000, 2000)
					      : gauss(r, 600000, 150000));
	if (!strcmp(family, "periodic")) /* 4 kHz tick minus work, jittered */
		return clamp_ns(gauss(r, 180000, 12000));
	if (!strcmp(family, "heavytail")) /* Pareto alpha 1.1, x_m 3 us */
		return clamp_ns(3000.0 * pow(unif(r), -1.0 / 1.1));
	if (!strcmp(family, "bursts")) {
		/* Bursts of 10-60 short idles (2-12 us), then 0.5-3 ms apart. */
		if (*st <= 0) {
			*st = 10 + (int)(rng_next(r) % 51);
			return clamp_ns(500000 + unif(r) * 2500000);
		}
		(*st)--;
		return clamp_ns(2000 + unif(r) * 10000);
	}
	if (!strcmp(family, "phases")) {
		/* Every 500 periods the workload switches between a chatty
		 * phase (mean 6 us), a mid phase (mean 60 us) and a sleepy one
		 * (mean 400 us). */
		static const double means[] = { 6000, 60000, 400000 };

		return clamp_ns(expo(r, means[(i / 500) % 3]));
	}
	return 0;
}

static const char *const families[] = {
	"exponential", "bimodal", "periodic", "heavytail", "bursts", "phases",
};

static void usage(FILE *f)
{
	fputs("usage: idlepoll-tracegen --family NAME [--events N] [--seed S]\n"
	      "\n"
	      "Print a synthetic trace of idle durations (ns, one per line) to\n"
	      "stdout, the same for the same arguments.\n"
	      "Families: exponential bimodal periodic heavytail bursts phases\n", f);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "family", required_argument, NULL, 'f' },
		{ "events", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *family = NULL;
	uint64_t n = 4000, seed = 1, i;
	struct rng r;
	size_t k;
	int opt, st = 0, known = 0;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			family = optarg;
			break;
		case 'n':
			n = strtoull(optarg, NULL, 0);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	for (k = 0; family && k < sizeof(families) / sizeof(families[0]); k++)
		known |= !strcmp(family, families[k]);
	if (!known || optind != argc || n == 0) {
		usage(stderr);
		return 2;
	}
	r.s = seed;
	printf("# idlepoll-tracegen --family %s --events %" PRIu64
	       " --seed %" PRIu64 "\n", family, n, seed);
	for (i = 0; i < n; i++)
		printf("%" PRIu64 "\n", gen(family, &r, i, &st));
	return 0;
}
