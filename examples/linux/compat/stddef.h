/* SPDX-License-Identifier: GPL-2.0 */
/* kbuild compiles with -nostdinc: libidlepoll's <stddef.h> is this. */
#include <linux/stddef.h>
#include <linux/types.h>
