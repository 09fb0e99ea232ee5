/* SPDX-License-Identifier: MIT */
/* One main() for every Check suite: normal output (so the
 * "100%: Checks: N, Failures: 0, Errors: 0" line shows), failures as status. */
#ifndef EXITLESS_CHECK_MAIN_H
#define EXITLESS_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

#define EXITLESS_CHECK_MAIN(suite_fn)                                     \
	int main(void)                                                    \
	{                                                                 \
		SRunner *sr = srunner_create(suite_fn());                 \
		int failed;                                               \
		srunner_run_all(sr, CK_NORMAL);                           \
		failed = srunner_ntests_failed(sr);                       \
		srunner_free(sr);                                         \
		return failed ? EXIT_FAILURE : EXIT_SUCCESS;              \
	}

#endif
