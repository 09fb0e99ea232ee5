/* SPDX-License-Identifier: MIT */
/* The vCPU: CPUID (KVM's supported set plus the pvtimer discovery leaves),
 * the 64-bit long-mode state of KVM-HERE.md's recipe (flat GDT, 64-bit TSS,
 * identity paging), the LAPIC in x2APIC mode with its timer in TSC-deadline
 * mode, and the KVM_RUN loop. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <asm/kvm_para.h>

#include <exitless/pvtimer_abi.h>

#include "vmm.h"

#define CPUID_MAX_ENT 512
#define GDT_ENTRIES (5 + 2 * VMM_VCPUS_MAX)
#define PV_BASE PVTIMER_CPUID_SIGNATURE_LEAF_DEFAULT
#define APIC_BASE_BSP (1ull << 8)
#define APIC_BASE_EXTD (1ull << 10) /* x2APIC: EOI is one wrmsr, no MMIO */
#define APIC_BASE_EN (1ull << 11)
#define LAPIC_REG_SVR 0xf0
#define LAPIC_REG_LVTT 0x320
#define LVTT_TSC_DEADLINE (2u << 17)

int vcpu_create(struct vmm *vmm, int id, struct vcpu *out)
{
	int sz, rc;

	memset(out, 0, sizeof(*out));
	out->id = id;
	out->fd = ioctl(vmm->vm, KVM_CREATE_VCPU, id);
	if (out->fd < 0)
		return -errno;
	sz = ioctl(vmm->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz < (int)sizeof(struct kvm_run)) {
		rc = sz < 0 ? -errno : -EPROTO;
		goto fail;
	}
	out->run = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED,
			out->fd, 0);
	if (out->run == MAP_FAILED) {
		rc = -errno;
		goto fail;
	}
	out->run_size = (size_t)sz;
	return 0;
fail:
	close(out->fd);
	out->fd = -1;
	out->run = NULL;
	return rc;
}

static int setup_cpuid(struct vmm *vmm, struct vcpu *v,
		       const struct vcpu_cpuid_pv *pv)
{
	struct kvm_cpuid2 *c;
	uint32_t n;
	int rc = 0;

	c = calloc(1, sizeof(*c) + CPUID_MAX_ENT * sizeof(c->entries[0]));
	if (!c)
		return -ENOMEM;
	c->nent = CPUID_MAX_ENT - 2; /* room for our two leaves */
	if (ioctl(vmm->kvm, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		rc = -errno;
		goto out;
	}
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == KVM_CPUID_SIGNATURE + 1) {
			/* KVM's features: what the guest may enable (PV EOI
			 * among them); withholding a bit is how a VMM turns
			 * a feature off, as QEMU's -cpu kvm-pv-eoi=off */
			v->kvm_features = e->eax;
			if (pv)
				e->eax &= ~pv->kvm_features_withheld;
			continue;
		}
		if (e->function != 1)
			continue;
		/* the baseline needs TSC-deadline, the EOI path x2APIC */
		if (!(e->ecx & (1u << 24)) || !(e->ecx & (1u << 21))) {
			rc = -ENOTSUP;
			goto out;
		}
		e->ebx = (e->ebx & 0x00ffffffu) | ((uint32_t)v->id << 24);
	}
	n = c->nent;
	if (pv) {
		/* docs/pvtimer-abi.md §8: signature leaf, then the area leaf
		 * carrying this vCPU's own slot (CPUID is per vCPU). */
		struct kvm_cpuid_entry2 *e = &c->entries[n++];

		memset(e, 0, 2 * sizeof(*e));
		e->function = PV_BASE;
		e->eax = PV_BASE +
			 PVTIMER_CPUID_AREA_LEAF_OFFSET;
		e->ebx = PVTIMER_CPUID_SIG_EBX;
		e->ecx = PVTIMER_CPUID_SIG_ECX;
		e->edx = PVTIMER_CPUID_SIG_EDX;
		e = &c->entries[n++];
		e->function = PV_BASE +
			      PVTIMER_CPUID_AREA_LEAF_OFFSET;
		e->eax = (uint32_t)pv->area_gpa & ~0xfffu;
		e->ebx = (uint32_t)(pv->area_gpa >> 32);
		e->ecx = pv->slot;
		e->edx = pv->area_pages;
	}
	c->nent = n;
	if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
		rc = -errno;
out:
	free(c);
	return rc;
}

/* The GDT is shared; each vCPU has its own TSS (its own rsp0: the bottom
 * of its kernel stack holds its per-vCPU block). Rewriting the GDT for
 * every vCPU writes the same bytes. */
static void write_gdt_tss(struct vmm *vmm, int id)
{
	uint64_t *gdt = mem_gpa(vmm, VMM_GDT_GPA, GDT_ENTRIES * 8);
	unsigned char *tss = mem_gpa(vmm, VMM_TSS_GPA(id), 104);
	uint64_t rsp0 = VMM_KSTACK_TOP(id), limit = 103;

	gdt[0] = 0;
	gdt[1] = 0x00af9a000000ffffull; /* 0x08 ring 0 code, L=1 */
	gdt[2] = 0x00cf92000000ffffull; /* 0x10 ring 0 data */
	gdt[3] = 0x00cff2000000ffffull; /* 0x18 ring 3 data */
	gdt[4] = 0x00affa000000ffffull; /* 0x20 ring 3 code, L=1 */
	/* 0x28 + 16 i: 64-bit TSS of vCPU i, 16 bytes; the CPU loads rsp0
	 * from it on every interrupt taken in ring 3 */
	for (int i = 0; i < VMM_VCPUS_MAX; i++) {
		uint64_t base = VMM_TSS_GPA(i);

		gdt[5 + 2 * i] = (limit & 0xffff) | ((base & 0xffffff) << 16) |
				 (0x89ull << 40) |
				 (((limit >> 16) & 0xf) << 48) |
				 (((base >> 24) & 0xff) << 56);
		gdt[6 + 2 * i] = base >> 32;
	}
	memset(tss, 0, 104);
	memcpy(tss + 4, &rsp0, sizeof(rsp0));
	/* I/O bitmap offset past the limit: no bitmap */
	tss[102] = 104;
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, int code)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->g = 1;
	s->l = code ? 1 : 0;
	s->db = code ? 0 : 1;
}

static int setup_long_mode(struct vmm *vmm, struct vcpu *v)
{
	struct kvm_sregs sr;

	if (ioctl(v->fd, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	write_gdt_tss(vmm, v->id);
	seg(&sr.cs, VMM_SEL_KCODE, 11, 1);
	seg(&sr.ds, VMM_SEL_KDATA, 3, 0);
	sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
	memset(&sr.tr, 0, sizeof(sr.tr));
	sr.tr.base = VMM_TSS_GPA(v->id);
	sr.tr.limit = 103;
	sr.tr.selector = VMM_SEL_TSS(v->id);
	sr.tr.type = 11; /* 64-bit TSS, busy */
	sr.tr.present = 1;
	sr.gdt.base = VMM_GDT_GPA;
	sr.gdt.limit = GDT_ENTRIES * 8 - 1;
	sr.idt.base = 0;
	sr.idt.limit = 0;
	sr.cr0 = 0x80010033; /* PG WP NE ET MP PE */
	sr.cr3 = VMM_PML4_GPA;
	sr.cr4 = 0x620;      /* OSXMMEXCPT OSFXSR PAE */
	sr.efer = 0x500;     /* LMA LME */
	sr.apic_base = 0xfee00000ull | APIC_BASE_EN | APIC_BASE_EXTD |
		       (v->id == 0 ? APIC_BASE_BSP : 0);
	return ioctl(v->fd, KVM_SET_SREGS, &sr) < 0 ? -errno : 0;
}

static void lapic_w32(struct kvm_lapic_state *la, int reg, uint32_t val)
{
	memcpy(&la->regs[reg], &val, sizeof(val));
}

/* A LAPIC out of reset is software-disabled and drops fixed interrupts:
 * enable it, and put the timer in TSC-deadline mode on VMM_VEC_LAPIC so the
 * guest's only timer operation is one wrmsr. Done here rather than in the
 * guest because guest ring 0 is emulated and slow. */
static int setup_lapic(struct vcpu *v)
{
	struct kvm_lapic_state la;

	if (ioctl(v->fd, KVM_GET_LAPIC, &la) < 0)
		return -errno;
	lapic_w32(&la, LAPIC_REG_SVR, 0x100u | VMM_VEC_SPURIOUS);
	lapic_w32(&la, LAPIC_REG_LVTT, LVTT_TSC_DEADLINE | VMM_VEC_LAPIC);
	return ioctl(v->fd, KVM_SET_LAPIC, &la) < 0 ? -errno : 0;
}

int vcpu_setup(struct vmm *vmm, struct vcpu *v, uint64_t entry,
	       const struct vcpu_cpuid_pv *pv)
{
	struct kvm_regs regs = {
		.rip = entry,
		.rsp = VMM_KSTACK_TOP(v->id),
		.rdi = (uint64_t)v->id, /* _start passes it to umain() */
		.rflags = 0x2,
	};
	/* with the in-kernel irqchip an AP waits for INIT/SIPI; we set its
	 * whole state ourselves, so let it run */
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
	int rc;

	if (v->id >= VMM_VCPUS_MAX)
		return -EINVAL;

	rc = setup_cpuid(vmm, v, pv);
	if (!rc)
		rc = setup_long_mode(vmm, v);
	if (!rc)
		rc = setup_lapic(v);
	if (!rc && ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		rc = -errno;
	if (!rc && v->id != 0 && ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0)
		rc = -errno;
	return rc;
}

int vcpu_get_msr(struct vcpu *v, uint32_t index, uint64_t *value)
{
	/* one entry after the flexible array's header (a struct holding both
	 * would be a GNU extension clang rejects) */
	union {
		struct kvm_msrs h;
		unsigned char bytes[sizeof(struct kvm_msrs) +
				    sizeof(struct kvm_msr_entry)];
	} m;
	int n;

	memset(&m, 0, sizeof(m));
	m.h.nmsrs = 1;
	m.h.entries[0].index = index;
	n = ioctl(v->fd, KVM_GET_MSRS, &m);
	if (n < 0)
		return -errno;
	if (n != 1)
		return -ENOENT;
	*value = m.h.entries[0].data;
	return 0;
}

/* 0 when KVM cannot tell; vCPU ioctls wait for a running KVM_RUN, so ask
 * before the vCPU starts. */
uint32_t vcpu_tsc_khz(struct vcpu *v)
{
	int khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);

	return khz > 0 ? (uint32_t)khz : 0;
}

int vcpu_tsc_offset(struct vcpu *v, int64_t *offset)
{
	uint64_t off = 0;
	struct kvm_device_attr a = {
		.group = KVM_VCPU_TSC_CTRL,
		.attr = KVM_VCPU_TSC_OFFSET,
		.addr = (uint64_t)(uintptr_t)&off,
	};

	if (ioctl(v->fd, KVM_HAS_DEVICE_ATTR, &a) < 0 ||
	    ioctl(v->fd, KVM_GET_DEVICE_ATTR, &a) < 0)
		return -errno;
	*offset = (int64_t)off;
	return 0;
}

int vcpu_run(struct vcpu *v, vcpu_io_fn on_io, void *ctx)
{
	struct kvm_run *run = v->run;

	for (;;) {
		int rc;

		if (ioctl(v->fd, KVM_RUN, 0) < 0)
			return -errno; /* -EINTR: the watchdog */
		switch (run->exit_reason) {
		case KVM_EXIT_IO: {
			uint32_t val = 0;
			const unsigned char *data =
				(const unsigned char *)run + run->io.data_offset;

			if (run->io.direction != KVM_EXIT_IO_OUT ||
			    run->io.size > sizeof(val) || run->io.count != 1)
				return -EPROTO;
			memcpy(&val, data, run->io.size);
			rc = on_io(ctx, run->io.port, val);
			if (rc)
				return rc > 0 ? 0 : rc;
			break;
		}
		default:
			v->last_exit = run->exit_reason;
			return -EPROTO;
		}
	}
}

void vcpu_destroy(struct vcpu *v)
{
	if (v->run)
		munmap(v->run, v->run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}
