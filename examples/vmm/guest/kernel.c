/* SPDX-License-Identifier: MIT */
/* Ring 0 of the exitless-vmm guest payload: the IDTs, the entry from the
 * VMM (kmain), the privileged operations ring 3 asks for through its ud2
 * trap, and the record of a fatal exception for the VMM. Ring 0 is emulated
 * on this KVM (~1 us per instruction), so it does as little as possible;
 * the workload is ring 3's (guest.c). Freestanding: no libc. */
#include <stddef.h>
#include <stdint.h>

#include "../vmm_abi.h"

#define MSR_TSC_DEADLINE 0x6e0u

/* The compiler may emit calls to these even when freestanding. */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n)
{
	unsigned char *p = d;

	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *p = d;
	const unsigned char *q = s;

	while (n--)
		*p++ = *q++;
	return d;
}

struct idt_gate {
	uint16_t off0;
	uint16_t sel;
	uint8_t ist;
	uint8_t type; /* 0x8e: present, DPL 0, 64-bit interrupt gate */
	uint16_t off1;
	uint32_t off2;
	uint32_t zero;
};

struct trap_frame {
	uint64_t rax, rcx, rdx, rsi, rdi, r8, r9, r10, r11;
	uint64_t rip, cs, rflags, rsp, ss;
};

void kmain(uint64_t id);
void trap_dispatch(struct trap_frame *f);
void fatal_record(const uint64_t *frame);
void umain(uint64_t id);

extern void trap_ud(void), irq_lapic(void), irq_pv(void), irq_dev(void),
	irq_spurious(void);
extern void fatal_0(void), fatal_1(void), fatal_2(void), fatal_3(void),
	fatal_4(void), fatal_5(void), fatal_7(void), fatal_8(void),
	fatal_9(void), fatal_10(void), fatal_11(void), fatal_12(void),
	fatal_13(void), fatal_14(void), fatal_15(void), fatal_16(void),
	fatal_17(void), fatal_18(void), fatal_19(void), fatal_20(void),
	fatal_21(void);

/* One IDT per vCPU: vCPU 1 starts while vCPU 0 already takes interrupts
 * through its IDT, so neither may write the table the other uses. */
static struct idt_gate idt[VMM_VCPUS_MAX][256] __attribute__((aligned(16)));

static void (*const exc_stubs[22])(void) = {
	fatal_0,  fatal_1,  fatal_2,  fatal_3,  fatal_4,  fatal_5,
	trap_ud,  fatal_7,  fatal_8,  fatal_9,  fatal_10, fatal_11,
	fatal_12, fatal_13, fatal_14, fatal_15, fatal_16, fatal_17,
	fatal_18, fatal_19, fatal_20, fatal_21,
};

static void set_gate(struct idt_gate *idt, unsigned int v, void (*fn)(void))
{
	uint64_t a = (uint64_t)(uintptr_t)fn;

	idt[v].off0 = (uint16_t)a;
	idt[v].sel = VMM_SEL_KCODE;
	idt[v].type = 0x8e;
	idt[v].off1 = (uint16_t)(a >> 16);
	idt[v].off2 = (uint32_t)(a >> 32);
}

/* Ring 0 set-up of vCPU id: only its IDT. The VMM built the GDT, TSS,
 * page tables and programmed the LAPIC (x2APIC, LVT timer in TSC-deadline
 * mode). Gates left empty are not present: a stray vector faults loudly
 * (#GP → fatal). */
void kmain(uint64_t id)
{
	struct idt_gate *t = idt[id < VMM_VCPUS_MAX ? id : 0];
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = { sizeof(idt[0]) - 1,
					   (uint64_t)(uintptr_t)t };

	for (unsigned int v = 0; v < 22; v++)
		set_gate(t, v, exc_stubs[v]);
	set_gate(t, VMM_VEC_LAPIC, irq_lapic);
	set_gate(t, VMM_VEC_PVTIMER, irq_pv);
	set_gate(t, VMM_VEC_DEVICE, irq_dev);
	set_gate(t, VMM_VEC_SPURIOUS, irq_spurious);
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr"
			 :
			 : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32))
			 : "memory");
}

/* The #UD handler: ring 3's system call. Interrupts are off here (interrupt
 * gate), which is what makes the halt race-free: an interrupt that came
 * after ring 3 read the per-vCPU seq has already bumped it, and one that comes later
 * is taken right after `sti; hlt` (sti's one-instruction shadow). */
void trap_dispatch(struct trap_frame *f)
{
	/* the frame is on this vCPU's kernel stack: its per-vCPU block is
	 * at the bottom (vmm_abi.h) */
	volatile struct vmm_percpu *pc =
		(struct vmm_percpu *)((uintptr_t)f & ~(uintptr_t)(VMM_KSTACK_SIZE - 1));

	f->rip += 2; /* skip the ud2 */
	switch (f->rax) {
	case VMM_TRAP_TSC_DEADLINE:
		wrmsr(MSR_TSC_DEADLINE, f->rdi);
		f->rax = 0;
		break;
	case VMM_TRAP_HALT:
		if (pc->seq != f->rdi) {
			f->rax = 0;
			break;
		}
		__asm__ volatile("sti; hlt; cli" ::: "memory");
		f->rax = 1;
		break;
	case VMM_TRAP_OUT:
		__asm__ volatile("outl %0, %1"
				 :
				 : "a"((uint32_t)f->rdi),
				   "d"((uint16_t)(f->rdi >> 32)));
		f->rax = 0;
		break;
	case VMM_TRAP_PV_EOI:
		/* identity-mapped: the block's address is its GPA. Cleared
		 * before KVM may look at it; turning it off needs nothing
		 * else: KVM clears a set bit at the exit this wrmsr is. */
		if (f->rdi)
			pc->pv_eoi = 0;
		wrmsr(VMM_MSR_KVM_PV_EOI_EN,
		      f->rdi ? (uint64_t)(uintptr_t)&pc->pv_eoi | 1u : 0);
		f->rax = 0;
		break;
	case VMM_TRAP_CPUID: {
		uint32_t a, b, c, d;

		__asm__ volatile("cpuid"
				 : "=a"(a), "=b"(b), "=c"(c), "=d"(d)
				 : "a"((uint32_t)f->rdi), "c"(0));
		f->rax = ((uint64_t)b << 32) | a;
		f->rdx = ((uint64_t)d << 32) | c;
		break;
	}
	default:
		f->rax = (uint64_t)-1;
		break;
	}
}

/* frame: the vector fatal_N pushed, then what the CPU pushed: an error
 * code for some vectors, then rip, cs, rflags, rsp, ss. Each vCPU has its
 * own record (both may fault at once); it is this vCPU's because the frame
 * is on this vCPU's kernel stack. */
void fatal_record(const uint64_t *frame)
{
	volatile struct vmm_mailbox *mb =
		(struct vmm_mailbox *)(uintptr_t)VMM_MAILBOX_GPA;
	uint64_t id = ((uintptr_t)frame - VMM_KSTACK_BASE) / VMM_KSTACK_SIZE;
	uint64_t vec = frame[0], cr2;
	int err = VMM_EXC_HAS_ERROR(vec);
	volatile struct vmm_fatal *f;

	if (id >= VMM_VCPUS_MAX)
		id = 0;
	f = &mb->fatal[id];
	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	f->error = err ? frame[1] : 0;
	f->rip = frame[1 + err];
	f->cs = frame[2 + err];
	f->rflags = frame[3 + err];
	f->rsp = frame[4 + err];
	f->ss = frame[5 + err];
	f->cr2 = cr2;
	f->vector = vec;
	f->valid = 1;
	__asm__ volatile("outb %%al, %%dx"
			 :
			 : "a"((uint8_t)id), "d"(VMM_PORT_FATAL)
			 : "memory");
}

