/* SPDX-License-Identifier: MIT */
/* Ring 0 of the guest payload: entry, the ring 3 switch and the interrupt
 * stubs. Ring 0 is emulated instruction by instruction on this KVM (~1 us
 * each), so the stubs are as short as they can be and all real work runs
 * in ring 3 (guest.c). */
#include "../vmm_abi.h"

	.section .text.entry, "ax"
	.globl _start
_start:
	/* The VMM left us in long mode on the kernel stack. */
	call kmain
	/* iretq into ring 3 with interrupts on; umain starts as if called
	 * (rsp = 8 mod 16), as the ABI expects at a function entry */
	pushq $VMM_SEL_UDATA
	pushq $(VMM_USTACK_TOP - 8)
	pushq $0x202
	pushq $VMM_SEL_UCODE
	leaq umain(%rip), %rax
	pushq %rax
	iretq

	.text
/* #UD: the trap gate ring 3 uses for privileged operations. Save the
 * caller-saved registers as a struct trap_frame and let C decide. */
	.globl trap_ud
trap_ud:
	pushq %r11
	pushq %r10
	pushq %r9
	pushq %r8
	pushq %rdi
	pushq %rsi
	pushq %rdx
	pushq %rcx
	pushq %rax
	movq %rsp, %rdi
	call trap_dispatch
	popq %rax
	popq %rcx
	popq %rdx
	popq %rsi
	popq %rdi
	popq %r8
	popq %r9
	popq %r10
	popq %r11
	iretq

/* Timer interrupts: stamp the arrival TSC first (that is the lateness the
 * VMM reports), count, EOI through the x2APIC MSR. */
.macro TIMER_IRQ name, tsc, count
	.globl \name
\name:
	pushq %rax
	pushq %rdx
	rdtsc
	shlq $32, %rdx
	orq %rdx, %rax
	movq %rax, \tsc(%rip)
	incq \count(%rip)
	incq irq_seq(%rip)
	pushq %rcx
	movl $0x80b, %ecx
	xorl %eax, %eax
	xorl %edx, %edx
	wrmsr
	popq %rcx
	popq %rdx
	popq %rax
	iretq
.endm
	TIMER_IRQ irq_lapic, irq_lapic_tsc, irq_lapic_count
	TIMER_IRQ irq_pv, irq_pv_tsc, irq_pv_count

	.globl irq_spurious
irq_spurious:
	iretq

/* Any other exception is a bug: record what the CPU pushed, tell the VMM. */
.macro FATAL vec
	.globl fatal_\vec
fatal_\vec:
	pushq $\vec
	jmp fatal_common
.endm
	.irp v, 0,1,2,3,4,5,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21
	FATAL \v
	.endr

fatal_common:
	/* stack: vector, then the CPU's frame (error code first for some) */
	movq %rsp, %rdi
	andq $-16, %rsp
	call fatal_record
1:	cli
	hlt
	jmp 1b

	.section .note.GNU-stack, "", @progbits
