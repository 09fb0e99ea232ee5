/* SPDX-License-Identifier: MIT */
/* The frozen ABI 1.0 layout: every offset and size, asserted at compile time
 * (a change fails the build) and reported at run time by Check. */
#include <check.h>

#include "../common/check_main.h"
#include <stddef.h>
#include <stdlib.h>

#include "exitless/pvtimer_abi.h"

#define OFF(type, field, value)                                           \
	_Static_assert(offsetof(struct type, field) == (value),           \
		       #type "." #field " moved")
#define SIZE(type, field, value)                                          \
	_Static_assert(sizeof(((struct type *)0)->field) == (value),      \
		       #type "." #field " resized")

OFF(pvtimer_abi_header, magic, 0x00);           SIZE(pvtimer_abi_header, magic, 4);
OFF(pvtimer_abi_header, abi_major, 0x04);       SIZE(pvtimer_abi_header, abi_major, 2);
OFF(pvtimer_abi_header, abi_minor, 0x06);       SIZE(pvtimer_abi_header, abi_minor, 2);
OFF(pvtimer_abi_header, features, 0x08);        SIZE(pvtimer_abi_header, features, 8);
OFF(pvtimer_abi_header, header_size, 0x10);     SIZE(pvtimer_abi_header, header_size, 4);
OFF(pvtimer_abi_header, slot_count, 0x14);      SIZE(pvtimer_abi_header, slot_count, 4);
OFF(pvtimer_abi_header, slot_stride, 0x18);     SIZE(pvtimer_abi_header, slot_stride, 4);
OFF(pvtimer_abi_header, slots_offset, 0x1c);    SIZE(pvtimer_abi_header, slots_offset, 4);
OFF(pvtimer_abi_header, pending_offset, 0x20);  SIZE(pvtimer_abi_header, pending_offset, 4);
OFF(pvtimer_abi_header, pending_words, 0x24);   SIZE(pvtimer_abi_header, pending_words, 4);
OFF(pvtimer_abi_header, area_size, 0x28);       SIZE(pvtimer_abi_header, area_size, 4);
OFF(pvtimer_abi_header, tsc_khz, 0x2c);         SIZE(pvtimer_abi_header, tsc_khz, 4);
OFF(pvtimer_abi_header, margin_tsc, 0x30);      SIZE(pvtimer_abi_header, margin_tsc, 8);
OFF(pvtimer_abi_header, max_horizon_tsc, 0x38); SIZE(pvtimer_abi_header, max_horizon_tsc, 8);
OFF(pvtimer_abi_header, host_flags, 0x40);      SIZE(pvtimer_abi_header, host_flags, 4);
OFF(pvtimer_abi_header, host_epoch, 0x44);      SIZE(pvtimer_abi_header, host_epoch, 4);
OFF(pvtimer_abi_header, next_sync_tsc, 0x48);   SIZE(pvtimer_abi_header, next_sync_tsc, 8);
OFF(pvtimer_abi_header, heartbeat_tsc, 0x50);   SIZE(pvtimer_abi_header, heartbeat_tsc, 8);
OFF(pvtimer_abi_header, reserved1, 0x58);       SIZE(pvtimer_abi_header, reserved1, 40);
OFF(pvtimer_abi_header, vector_min, 0x80);      SIZE(pvtimer_abi_header, vector_min, 1);
OFF(pvtimer_abi_header, vector_max, 0x81);      SIZE(pvtimer_abi_header, vector_max, 1);
OFF(pvtimer_abi_header, reserved2, 0x82);       SIZE(pvtimer_abi_header, reserved2, 62);
OFF(pvtimer_abi_header, reserved3, 0xc0);       SIZE(pvtimer_abi_header, reserved3, 64);
_Static_assert(sizeof(struct pvtimer_abi_header) == PVTIMER_ABI_HEADER_SIZE, "header");

OFF(pvtimer_abi_pending, summary, 0x00);        SIZE(pvtimer_abi_pending, summary, 8);
OFF(pvtimer_abi_pending, reserved, 0x08);       SIZE(pvtimer_abi_pending, reserved, 56);
OFF(pvtimer_abi_pending, words, 0x40);
_Static_assert(sizeof(struct pvtimer_abi_pending) == 64, "pending block head");

OFF(pvtimer_abi_slot, seq, 0x00);               SIZE(pvtimer_abi_slot, seq, 4);
OFF(pvtimer_abi_slot, arm_gen, 0x04);           SIZE(pvtimer_abi_slot, arm_gen, 4);
OFF(pvtimer_abi_slot, deadline_tsc, 0x08);      SIZE(pvtimer_abi_slot, deadline_tsc, 8);
OFF(pvtimer_abi_slot, vector, 0x10);            SIZE(pvtimer_abi_slot, vector, 1);
OFF(pvtimer_abi_slot, arm_flags, 0x11);         SIZE(pvtimer_abi_slot, arm_flags, 1);
OFF(pvtimer_abi_slot, reserved0, 0x12);         SIZE(pvtimer_abi_slot, reserved0, 2);
OFF(pvtimer_abi_slot, guest_features, 0x14);    SIZE(pvtimer_abi_slot, guest_features, 4);
OFF(pvtimer_abi_slot, reserved2, 0x18);         SIZE(pvtimer_abi_slot, reserved2, 40);
OFF(pvtimer_abi_slot, next_sync_tsc, 0x40);     SIZE(pvtimer_abi_slot, next_sync_tsc, 8);
OFF(pvtimer_abi_slot, status_word, 0x48);       SIZE(pvtimer_abi_slot, status_word, 8);
OFF(pvtimer_abi_slot, fired_gen, 0x50);         SIZE(pvtimer_abi_slot, fired_gen, 4);
OFF(pvtimer_abi_slot, reserved3, 0x54);         SIZE(pvtimer_abi_slot, reserved3, 4);
OFF(pvtimer_abi_slot, fired_tsc, 0x58);         SIZE(pvtimer_abi_slot, fired_tsc, 8);
OFF(pvtimer_abi_slot, reserved4, 0x60);         SIZE(pvtimer_abi_slot, reserved4, 32);
_Static_assert(sizeof(struct pvtimer_abi_slot) == PVTIMER_ABI_SLOT_STRIDE, "slot");

/* Guest-written and host-written fields on different cache lines. */
_Static_assert(offsetof(struct pvtimer_abi_slot, reserved2) + 40 <=
		       offsetof(struct pvtimer_abi_slot, next_sync_tsc) &&
	       offsetof(struct pvtimer_abi_slot, next_sync_tsc) % 64 == 0,
	       "guest and host lines overlap");

START_TEST(magic_spells_xptm)
{
	const unsigned int magic = PVTIMER_ABI_MAGIC;
	const char *bytes = (const char *)&magic;

	ck_assert_int_eq(bytes[0], 'X');
	ck_assert_int_eq(bytes[1], 'P');
	ck_assert_int_eq(bytes[2], 'T');
	ck_assert_int_eq(bytes[3], 'M');
}
END_TEST

START_TEST(cpuid_signature_spells_name)
{
	const unsigned int sig[3] = {PVTIMER_CPUID_SIG_EBX, PVTIMER_CPUID_SIG_ECX,
				     PVTIMER_CPUID_SIG_EDX};

	ck_assert_mem_eq(sig, "ExitlessPvTm", 12);
	/* Our leaves must stay out of KVM's block (0x40000000..0x400000ff). */
	ck_assert_uint_ge(PVTIMER_CPUID_SIGNATURE_LEAF_DEFAULT, 0x40000100u);
}
END_TEST

START_TEST(status_word_round_trips)
{
	uint64_t w = PVTIMER_STATUS_WORD(0xfffffffeu, PVTIMER_STATUS_REJECTED,
					 PVTIMER_REJECT_FAR);

	ck_assert_uint_eq(PVTIMER_STATUS_GEN(w), 0xfffffffeu);
	ck_assert_uint_eq(PVTIMER_STATUS_CODE(w), PVTIMER_STATUS_REJECTED);
	ck_assert_uint_eq(PVTIMER_STATUS_REASON(w), PVTIMER_REJECT_FAR);
	ck_assert_uint_eq(w >> 48, 0);
}
END_TEST

static Suite *pvtimer_layout_suite(void)
{
	Suite *s = suite_create("pvtimer-layout");
	TCase *tc = tcase_create("abi-1.0");

	tcase_add_test(tc, magic_spells_xptm);
	tcase_add_test(tc, cpuid_signature_spells_name);
	tcase_add_test(tc, status_word_round_trips);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(pvtimer_layout_suite)
