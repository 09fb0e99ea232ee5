// SPDX-License-Identifier: GPL-2.0
/*
 * Discovery through PCI (docs/pvtimer-pci.md): an ivshmem device
 * (1af4:1110) whose BAR2 starts with the pvtimer magic and validates as an
 * area; MSI-X vector i, allocated with managed affinity, belongs to CPU i
 * and slot i. The generic ID says nothing about the content, so a device
 * whose memory is not an area is left alone (-ENODEV).
 */
#include <linux/io.h>
#include <linux/pci.h>

#include "xl.h"

#define XL_IVSHMEM_VENDOR 0x1af4
#define XL_IVSHMEM_DEVICE 0x1110
#define XL_IVSHMEM_BAR 2

static struct pci_dev *xl_pdev;
static unsigned int xl_nvec;

static int xl_validate(void *mem, u64 size, u32 *slots)
{
	struct pvtimer_abi_header copy;
	struct pvtimer_geometry geo;
	int rc;

	if (size < PVTIMER_ABI_PAGE_SIZE || (size & (size - 1)))
		return -EINVAL; /* QEMU's ivshmem sizes are powers of two */
	/* the acquire pairs with the host's magic-last store */
	if (smp_load_acquire((u32 *)mem) != PVTIMER_ABI_MAGIC)
		return -ENODEV;
	memcpy(&copy, mem, sizeof(copy));
	rc = pvtimer_geometry_check(&copy, size, &geo);
	if (rc)
		return rc;
	*slots = geo.slot_count;
	return 0;
}

static void xl_free_irqs(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		struct xl_cpu *c = per_cpu_ptr(&xl_cpus, cpu);

		if (c->irq)
			free_irq(c->irq, c);
		c->irq = 0;
	}
	pci_free_irq_vectors(xl_pdev);
	xl_nvec = 0;
}

static int xl_setup_irqs(u32 slots)
{
	struct irq_affinity desc = { 0 };
	unsigned int i;
	int n, rc;

	n = pci_msix_vec_count(xl_pdev);
	if (n <= 0)
		return -ENODEV;
	n = min3((unsigned int)n, slots, num_possible_cpus());
	/* one vector per CPU, spread in order: vector i managed on CPU i */
	rc = pci_alloc_irq_vectors_affinity(xl_pdev, n, n,
					    PCI_IRQ_MSIX | PCI_IRQ_AFFINITY, &desc);
	if (rc < 0)
		return rc;
	xl_nvec = rc;
	for (i = 0; i < xl_nvec; i++) {
		struct xl_cpu *c;

		if (!cpu_possible(i))
			continue;
		c = per_cpu_ptr(&xl_cpus, i);
		c->cpu = i;
		c->irq = pci_irq_vector(xl_pdev, i);
		rc = request_irq(c->irq, xl_irq, IRQF_TIMER, XL_NAME, c);
		if (rc) {
			c->irq = 0;
			xl_free_irqs();
			return rc;
		}
	}
	return 0;
}

static int xl_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	resource_size_t start, len;
	u32 slots = 0;
	void *mem;
	int rc;

	if (xl_pdev)
		return -EBUSY; /* one area per guest */
	rc = pcim_enable_device(pdev);
	if (rc)
		return rc;
	/* MSI-X messages are bus-master writes: without this QEMU drops
	 * every one of them (the eventfds are read, nothing arrives) */
	pci_set_master(pdev);
	start = pci_resource_start(pdev, XL_IVSHMEM_BAR);
	len = pci_resource_len(pdev, XL_IVSHMEM_BAR);
	if (!start || !len)
		return -ENODEV;
	if (!devm_request_mem_region(&pdev->dev, start, len, XL_NAME))
		return -EBUSY;
	/* BAR2 is the host's RAM, write-back: the area is plain memory */
	mem = devm_memremap(&pdev->dev, start, len, MEMREMAP_WB);
	if (IS_ERR(mem))
		return PTR_ERR(mem);
	rc = xl_validate(mem, len, &slots);
	if (rc) {
		dev_info(&pdev->dev, "BAR2 holds no pvtimer area (%d)\n", rc);
		return -ENODEV;
	}
	xl_pdev = pdev;
	xl_area = mem;
	xl_area_size = len;
	xl_calib_run(mem, len);
	rc = xl_setup_irqs(slots);
	if (rc)
		goto fail;
	rc = xl_lapic_calibrate();
	if (rc)
		goto fail_irqs;
	rc = xl_clockevt_start();
	if (rc)
		goto fail_irqs;
	xl_idle_start();
	xl_debugfs_start();
	dev_info(&pdev->dev, "pvtimer area %llu bytes, %u slots, %u vectors\n",
		 (u64)len, slots, xl_nvec);
	return 0;
fail_irqs:
	xl_free_irqs();
fail:
	xl_pdev = NULL;
	xl_area = NULL;
	return rc;
}

static void xl_remove(struct pci_dev *pdev)
{
	if (pdev != xl_pdev)
		return;
	xl_debugfs_stop();
	xl_idle_stop();
	xl_clockevt_stop(); /* every CPU gives its tick back first */
	xl_free_irqs();
	xl_pdev = NULL;
	xl_area = NULL;
}

static const struct pci_device_id xl_ids[] = {
	{ PCI_DEVICE(XL_IVSHMEM_VENDOR, XL_IVSHMEM_DEVICE) },
	{ 0 }
};
MODULE_DEVICE_TABLE(pci, xl_ids);

static struct pci_driver xl_driver = {
	.name = "exitless_pvtimer",
	.id_table = xl_ids,
	.probe = xl_probe,
	.remove = xl_remove,
};

int xl_pci_register(void)
{
	return pci_register_driver(&xl_driver);
}

void xl_pci_unregister(void)
{
	pci_unregister_driver(&xl_driver);
}
