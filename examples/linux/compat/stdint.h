/* SPDX-License-Identifier: GPL-2.0 */
/* kbuild compiles with -nostdinc: libidlepoll's <stdint.h> is this. */
#include <linux/types.h>
#include "xl_limits.h"
