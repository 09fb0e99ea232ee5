/* SPDX-License-Identifier: MIT */
/* Fixture of the docgen-rejects-missing-docs test: each function lacks
 * something scripts/docgen.py check requires. Never installed. */
#include <stdint.h>

/** Has no @param for b. @param a first @return a sum */
int fixture_missing_param(int a, int b);

/** Returns a value but says nothing of it. @param x input */
uint64_t fixture_missing_return(uint64_t x);

static inline void fixture_no_comment(void)
{
}
