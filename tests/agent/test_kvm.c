/* SPDX-License-Identifier: MIT */
/* Through a real KVM: the agent injects via an irqfd (MSI route) and via
 * KVM_SIGNAL_MSI into a VM with an in-kernel irqchip, and the vCPU's
 * irq_injections statistic rises. Skipped (77) without /dev/kvm.
 *
 * The guest is 16 bytes of real mode: a `hlt; out; jmp` loop with
 * interrupts on and an IVT at 0 whose every vector points at `iret`. KVM
 * counts an injection when it enters the vCPU with the interrupt, so the
 * vCPU must be running (halted) for the counter to move. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sim.h"

#define GUEST_MEM 0x10000
#define MSI_ADDR 0xfee00000u /* APIC ID 0 */
#define IRQFD_GSI 1
#define IRQFD_VECTOR 0x41
#define MSI_VECTOR 0x42

struct vm {
	int kvm, fd, vcpu, stats;
	struct kvm_run *run;
	void *mem;
	pthread_t runner;
	int stop;
	uint32_t tsc_khz;
};

static void *vcpu_runner(void *arg)
{
	struct vm *vm = arg;

	while (ioctl(vm->vcpu, KVM_RUN, 0) == 0 &&
	       vm->run->exit_reason == KVM_EXIT_IO &&
	       !__atomic_load_n(&vm->stop, __ATOMIC_ACQUIRE))
		;
	return NULL;
}

static uint64_t vcpu_stat(struct vm *vm, const char *name)
{
	struct kvm_stats_header h;
	size_t dsz;
	char *d;
	uint64_t v = UINT64_MAX;

	if (pread(vm->stats, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return v;
	dsz = sizeof(struct kvm_stats_desc) + h.name_size;
	d = calloc(h.num_desc, dsz);
	if (pread(vm->stats, d, dsz * h.num_desc, h.desc_offset) !=
	    (ssize_t)(dsz * h.num_desc))
		goto out;
	for (uint32_t i = 0; i < h.num_desc; i++) {
		struct kvm_stats_desc *k = (void *)(d + i * dsz);

		if (strcmp(k->name, name) == 0) {
			if (pread(vm->stats, &v, sizeof(v),
				  h.data_offset + k->offset) != (ssize_t)sizeof(v))
				v = UINT64_MAX;
			break;
		}
	}
out:
	free(d);
	return v;
}

static void vm_create(struct vm *vm)
{
	static const unsigned char loop[] = { 0xf4, 0xe6, 0x10, 0xeb, 0xfb };
	struct kvm_userspace_memory_region reg = { .memory_size = GUEST_MEM };
	struct kvm_sregs sr;
	struct kvm_regs regs = { .rip = 0x1000, .rflags = 0x202, .rsp = 0x8000 };
	struct kvm_lapic_state la;
	uint16_t *ivt;
	int rsz;

	vm->fd = ioctl(vm->kvm, KVM_CREATE_VM, 0);
	ck_assert_int_ge(vm->fd, 0);
	ck_assert_int_eq(ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0), 0);
	vm->mem = mmap(NULL, GUEST_MEM, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(vm->mem, MAP_FAILED);
	reg.userspace_addr = (uint64_t)(uintptr_t)vm->mem;
	ck_assert_int_eq(ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &reg), 0);
	ivt = vm->mem;
	for (int v = 0; v < 256; v++) {
		ivt[2 * v] = 0x2000; /* offset */
		ivt[2 * v + 1] = 0;  /* segment */
	}
	((unsigned char *)vm->mem)[0x2000] = 0xcf; /* iret */
	memcpy((char *)vm->mem + 0x1000, loop, sizeof(loop));

	vm->vcpu = ioctl(vm->fd, KVM_CREATE_VCPU, 0);
	ck_assert_int_ge(vm->vcpu, 0);
	rsz = ioctl(vm->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	vm->run = mmap(NULL, (size_t)rsz, PROT_READ | PROT_WRITE, MAP_SHARED,
		       vm->vcpu, 0);
	ck_assert_ptr_ne(vm->run, MAP_FAILED);
	ck_assert_int_eq(ioctl(vm->vcpu, KVM_GET_SREGS, &sr), 0);
	sr.cs.base = 0;
	sr.cs.selector = 0;
	ck_assert_int_eq(ioctl(vm->vcpu, KVM_SET_SREGS, &sr), 0);
	ck_assert_int_eq(ioctl(vm->vcpu, KVM_SET_REGS, &regs), 0);
	/* a LAPIC out of reset is software-disabled and drops fixed
	 * interrupts: enable it in the spurious vector register */
	ck_assert_int_eq(ioctl(vm->vcpu, KVM_GET_LAPIC, &la), 0);
	la.regs[0xf0] = (char)0xff;
	la.regs[0xf1] |= 0x01;
	ck_assert_int_eq(ioctl(vm->vcpu, KVM_SET_LAPIC, &la), 0);
	vm->stats = ioctl(vm->vcpu, KVM_GET_STATS_FD, 0);
	ck_assert_int_ge(vm->stats, 0);
	ck_assert_uint_ne(vcpu_stat(vm, "irq_injections"), UINT64_MAX);
	/* vCPU ioctls wait for a running KVM_RUN: ask before it starts */
	vm->tsc_khz = (uint32_t)ioctl(vm->vcpu, KVM_GET_TSC_KHZ, 0);
	pthread_create(&vm->runner, NULL, vcpu_runner, vm);
}

static void vm_destroy(struct vm *vm)
{
	struct kvm_msi msi = { .address_lo = MSI_ADDR, .data = 0x30 };

	__atomic_store_n(&vm->stop, 1, __ATOMIC_RELEASE);
	ioctl(vm->fd, KVM_SIGNAL_MSI, &msi); /* wake the halted vCPU */
	pthread_join(vm->runner, NULL);
	close(vm->stats);
	close(vm->vcpu);
	close(vm->fd);
	munmap(vm->mem, GUEST_MEM);
}

static int irqfd_route(struct vm *vm, int efd)
{
	/* header and flexible entries[] in one buffer (clang rejects a
	 * field after a flexible-array struct) */
	union {
		struct kvm_irq_routing r;
		uint8_t bytes[sizeof(struct kvm_irq_routing) +
			      sizeof(struct kvm_irq_routing_entry)];
	} rt = { .r = { .nr = 1 } };
	struct kvm_irqfd irqfd = { .fd = (uint32_t)efd, .gsi = IRQFD_GSI };

	rt.r.entries[0].gsi = IRQFD_GSI;
	rt.r.entries[0].type = KVM_IRQ_ROUTING_MSI;
	rt.r.entries[0].u.msi.address_lo = MSI_ADDR;
	rt.r.entries[0].u.msi.data = IRQFD_VECTOR;
	if (ioctl(vm->fd, KVM_SET_GSI_ROUTING, &rt) < 0)
		return -errno;
	return ioctl(vm->fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
}

/* Arm @p slot, wait for the agent to fire it and the counter to rise. */
static void fire_and_count(struct vm *vm, struct pvagent *ag,
			   struct pvtimer_area *area, uint32_t slot,
			   uint8_t vector, uint64_t want_fires)
{
	struct pvtimer_guest g;
	struct pvagent_stats st = { .sz = sizeof(st) };
	uint64_t before = vcpu_stat(vm, "irq_injections"), after = before;
	int r = -1;

	ck_assert_int_eq(pvtimer_guest_init(&g, pvtimer_area_mem(area),
					    pvtimer_area_bytes(area), slot,
					    vector), 0);
	r = sim_arm_pv(&g, sim_tsc() + sim_ns_to_tsc(50000000));
	ck_assert_int_eq(r, PVTIMER_GUEST_PV);
	for (int i = 0; i < 2000 && after <= before; i++) {
		sim_sleep_ns(1000000);
		after = vcpu_stat(vm, "irq_injections");
	}
	ck_assert_uint_gt(after, before);
	ck_assert_int_eq(pvagent_get_stats(ag, &st), 0);
	ck_assert_uint_eq(st.fires, want_fires);
	ck_assert_uint_eq(st.inject_errors, 0);
}

START_TEST(kvm_irqfd_and_signal_msi)
{
	struct vm vm = { .kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC) };
	struct pvtimer_area *area = sim_area(2);
	struct pvagent *ag = NULL;
	struct pvagent_injector irqfd = { .kind = PVAGENT_INJ_IRQFD };
	struct pvagent_injector msi = { .kind = PVAGENT_INJ_MSI,
				      .msi_address = MSI_ADDR };
	struct pvtimer_tsc_map map;

	ck_assert_int_ge(vm.kvm, 0);
	vm_create(&vm);
	/* KVM's view of the vCPU TSC; offset 0 on this host */
	ck_assert_int_eq(pvtimer_tsc_map_init(&map, vm.tsc_khz, vm.tsc_khz, 0),
			 0);
	irqfd.fd = eventfd(0, EFD_CLOEXEC);
	ck_assert_int_ge(irqfd.fd, 0);
	ck_assert_int_eq(irqfd_route(&vm, irqfd.fd), 0);
	msi.fd = vm.fd;

	ck_assert_int_eq(pvagent_new(NULL, &ag), 0);
	ck_assert_int_eq(pvagent_attach_area(ag, area, &map, NULL), 0);
	ck_assert_int_eq(pvagent_bind_slot(ag, 0, 0, &irqfd), 0);
	ck_assert_int_eq(pvagent_bind_slot(ag, 0, 1, &msi), 0);
	ck_assert_int_eq(pvagent_start(ag), 0);
	fire_and_count(&vm, ag, area, 0, IRQFD_VECTOR, 1);
	fire_and_count(&vm, ag, area, 1, MSI_VECTOR, 2);
	pvagent_destroy(ag);
	vm_destroy(&vm);
	close(irqfd.fd);
	close(vm.kvm);
	pvtimer_area_destroy(area);
}
END_TEST

int main(void)
{
	Suite *s;
	TCase *tc;
	SRunner *sr;
	int failed, fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return 77;
	close(fd);
	s = suite_create("agent-kvm");
	tc = tcase_create("kvm");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, kvm_irqfd_and_signal_msi);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
