/* SPDX-License-Identifier: MIT */
/* Replay driver for fuzz targets in ordinary builds: runs every file named
 * on the command line, then N inputs from a fixed-seed generator, so the
 * target's invariants are checked in every CI build (ASan/UBSan included)
 * even where libFuzzer is not available. usage: replay [-n N] [FILE...] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
	static uint8_t buf[1 << 20];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		perror(path);
		return 1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	return 0;
}

int main(int argc, char **argv)
{
	static uint8_t buf[16384];
	uint64_t x = 0x853c49e6748fea9bull;
	long generated = 2000;
	int files = 0, i = 1;

	if (argc > 2 && !strcmp(argv[1], "-n")) {
		generated = strtol(argv[2], NULL, 0);
		i = 3;
	}
	for (; i < argc; i++, files++)
		if (replay_file(argv[i]))
			return 1;
	for (long k = 0; k < generated; k++) {
		size_t n = 2 + (size_t)(x % (sizeof(buf) - 2));

		for (size_t j = 0; j < n; j++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			/* sparse bytes reach deeper: valid-looking slots */
			buf[j] = (x & 3) ? 0 : (uint8_t)(x >> 32);
		}
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("replayed %d corpus files and %ld generated inputs\n", files, generated);
	return 0;
}
