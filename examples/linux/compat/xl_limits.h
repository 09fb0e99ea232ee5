/* SPDX-License-Identifier: GPL-2.0 */
/* The <stdint.h> limit macros the MIT libraries use, in kernel terms
 * (linux/types.h has the types, not the limits). */
#ifndef XL_LIMITS_H
#define XL_LIMITS_H
#include <linux/limits.h>
#ifndef UINT64_MAX
#define UINT64_MAX U64_MAX
#endif
#ifndef UINT32_MAX
#define UINT32_MAX U32_MAX
#endif
#ifndef INT64_MAX
#define INT64_MAX S64_MAX
#endif
#endif
