/* SPDX-License-Identifier: MIT */
/* Ring 0 of the guest payload: entry, the ring 3 switch and the interrupt
 * stubs. Ring 0 is emulated instruction by instruction on this KVM (~1 us
 * each), so the stubs are as short as they can be and all real work runs
 * in ring 3 (guest.c). */
#include "../vmm_abi.h"

	.section .text.entry, "ax"
	.globl _start
_start:
	/* The VMM left us in long mode on this vCPU's kernel stack, with
	 * the vCPU index in rdi. */
	movq %rdi, %rbx
	call kmain
	/* iretq into umain(index) in ring 3 with interrupts on; it starts
	 * as if called (rsp = 8 mod 16), as the ABI expects */
	leaq 1(%rbx), %rax
	shlq $16, %rax /* * VMM_USTACK_SIZE */
	addq $(VMM_USTACK_BASE - 8), %rax
	pushq $VMM_SEL_UDATA
	pushq %rax
	pushq $0x202
	pushq $VMM_SEL_UCODE
	leaq umain(%rip), %rax
	pushq %rax
	movq %rbx, %rdi
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
 * VMM reports), count, EOI through the x2APIC MSR. The vCPU's counters sit
 * at the bottom of its 64 KiB kernel stack, which rsp points into.
 *
 * KVM PV EOI: while MSR_KVM_PV_EOI_EN points at pv_eoi, KVM sets its bit 0
 * on entry when the interrupt it injected is the only one in service and
 * needs no IOAPIC EOI, and does the EOI itself at the next exit if the
 * guest cleared the bit by then. So the stub test-and-clears bit 0 with one
 * instruction (btr: an interrupt cannot split it, and KVM touches the word
 * only while this vCPU is out of guest mode) and writes the EOI MSR only
 * when the bit was clear. A clear bit is always safe: writing the EOI then
 * is what a guest without PV EOI does. */
.macro TIMER_IRQ name, tsc, count
	.globl \name
\name:
	pushq %rax
	pushq %rdx
	rdtsc
	pushq %rcx
	shlq $32, %rdx
	orq %rdx, %rax
	movq %rsp, %rcx
	andq $-VMM_KSTACK_SIZE, %rcx
	movq %rax, \tsc(%rcx)
	incq \count(%rcx)
	incq VMM_PCPU_SEQ(%rcx)
	btrl $0, VMM_PCPU_PV_EOI(%rcx)
	jc 1f
	movl $0x80b, %ecx
	xorl %eax, %eax
	xorl %edx, %edx
	wrmsr
	jmp 2f
1:	incq VMM_PCPU_EOI_SKIPPED(%rcx)
2:	popq %rcx
	popq %rdx
	popq %rax
	iretq
.endm
	TIMER_IRQ irq_lapic, VMM_PCPU_LAPIC_TSC, VMM_PCPU_LAPIC_COUNT
	TIMER_IRQ irq_pv, VMM_PCPU_PV_TSC, VMM_PCPU_PV_COUNT
	/* the pingpong device's completion: the same stamp, count, EOI */
	TIMER_IRQ irq_dev, VMM_PCPU_DEV_TSC, VMM_PCPU_DEV_COUNT

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
