/*
 * platform.c: the ISA devices every khyve machine has (as bhyve): RTC/CMOS on 0x70/0x71 and
 * IRQ 8, the i8042 on 0x60/0x64, bhyve's ACPI PM block with its SCI on IRQ 9, the POST port
 * 0x80 (written values are kept, nothing else), port 0x92 (A20 always on; bit 0 resets) and
 * the PIIX3 reset control register 0xCF9 (a write with bit 2 set resets: exit code 0; bits
 * 1 and 3 only choose soft/hard/full reset, which are all the same here), and the x87 error
 * logic on port 0xF0 and IRQ 13 (fpu_ferr.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "dev/atkbdc.h"
#include "dev/fpu_ferr.h"
#include "dev/platform.h"
#include "dev/pm.h"
#include "dev/rtc.h"
#include "vmm/guest_mem.h"
#include "vmm/io_bus.h"
#include "vmm/vm.h"

#define PORT_RTC 0x70
#define PORT_POST 0x80
#define PORT_A 0x92
#define PORT_RST_CNT 0xcf9
#define RTC_IRQ 8

#define RST_CNT_SYS_RST 0x02
#define RST_CNT_RST_CPU 0x04
#define RST_CNT_FULL_RST 0x08
#define PORTA_FAST_RESET 0x01
#define PORTA_A20 0x02

struct platform {
	struct vm *vm;
	struct rtc *rtc;
	struct atkbdc *kbc;
	struct pm *pm;
	struct fpu_ferr *ferr;
	uint8_t post, porta, rst_cnt;
	bool ports[9];	/* which of plat_ranges are registered */
};

static void plat_isa_irq(struct vm *vm, unsigned irq, bool level)
{
	if (level)
		vm_irq_assert(vm, irq);
	else
		vm_irq_deassert(vm, irq);
}

static void plat_rtc_irq(void *opaque, bool level)
{
	plat_isa_irq(opaque, RTC_IRQ, level);
}

static void plat_ferr_irq(void *opaque, bool level)
{
	plat_isa_irq(opaque, FPU_FERR_IRQ, level);
}

static void plat_sci(void *opaque, bool level)
{
	plat_isa_irq(opaque, PLATFORM_SCI_IRQ, level);
}

static void plat_poweroff(void *opaque)
{
	vm_request_exit(opaque, VM_EXIT_POWEROFF);
}

static void plat_post_io(void *opaque, uint64_t offset, unsigned size, bool write,
			 uint64_t *val)
{
	struct platform *p = opaque;

	if (write)
		p->post = (uint8_t)*val;
	else
		*val = p->post;
}

static void plat_porta_io(void *opaque, uint64_t offset, unsigned size, bool write,
			  uint64_t *val)
{
	struct platform *p = opaque;

	if (!write) {
		*val = p->porta | PORTA_A20;
		return;
	}
	if (!(p->porta & PORTA_FAST_RESET) && (*val & PORTA_FAST_RESET))
		vm_request_exit(p->vm, VM_EXIT_RESET);
	p->porta = (uint8_t)*val;
}

static void plat_rst_cnt_io(void *opaque, uint64_t offset, unsigned size, bool write,
			    uint64_t *val)
{
	struct platform *p = opaque;

	if (!write) {
		*val = p->rst_cnt;
		return;
	}
	/* RST_CPU starts the reset and reads back 0; SYS_RST and FULL_RST are kept. */
	p->rst_cnt = (uint8_t)*val & (RST_CNT_SYS_RST | RST_CNT_FULL_RST);
	if (*val & RST_CNT_RST_CPU)
		vm_request_exit(p->vm, VM_EXIT_RESET);
}

static void plat_pm_evt_io(void *opaque, uint64_t offset, unsigned size, bool write,
			   uint64_t *val)
{
	pm_evt_io(((struct platform *)opaque)->pm, offset, size, write, val);
}

static void plat_pm_cnt_io(void *opaque, uint64_t offset, unsigned size, bool write,
			   uint64_t *val)
{
	pm_cnt_io(((struct platform *)opaque)->pm, offset, size, write, val);
}

static void plat_pm_tmr_io(void *opaque, uint64_t offset, unsigned size, bool write,
			   uint64_t *val)
{
	pm_tmr_io(((struct platform *)opaque)->pm, offset, size, write, val);
}

static void plat_pm_smi_io(void *opaque, uint64_t offset, unsigned size, bool write,
			   uint64_t *val)
{
	pm_smi_io(((struct platform *)opaque)->pm, offset, size, write, val);
}

static void plat_rtc_io(void *opaque, uint64_t offset, unsigned size, bool write,
			uint64_t *val)
{
	rtc_io(((struct platform *)opaque)->rtc, offset, size, write, val);
}

static void plat_ferr_io(void *opaque, uint64_t offset, unsigned size, bool write,
			 uint64_t *val)
{
	fpu_ferr_io(((struct platform *)opaque)->ferr, offset, size, write, val);
}

struct plat_range {
	uint16_t port, len;
	io_handler_fn fn;
	const char *name;
};

static const struct plat_range plat_ranges[] = {
	{ PORT_RTC, 2, plat_rtc_io, "rtc" },
	{ PORT_POST, 1, plat_post_io, "post" },
	{ PORT_A, 1, plat_porta_io, "port92" },
	{ PORT_RST_CNT, 1, plat_rst_cnt_io, "reset-control" },
	{ PLATFORM_PM1A_EVT, 4, plat_pm_evt_io, "pm1a-evt" },
	{ PLATFORM_PM1A_CNT, 2, plat_pm_cnt_io, "pm1a-cnt" },
	{ PLATFORM_PM_TMR, 4, plat_pm_tmr_io, "pm-tmr" },
	{ PLATFORM_SMI_CMD, 1, plat_pm_smi_io, "smi-cmd" },
	{ FPU_FERR_PORT, 1, plat_ferr_io, "fpu-error" },
};
#define PLAT_NRANGES (sizeof plat_ranges / sizeof plat_ranges[0])
_Static_assert(PLAT_NRANGES <= sizeof ((struct platform *)0)->ports, "platform.ports too small");

void platform_destroy(struct platform *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < PLAT_NRANGES; i++)
		if (p->ports[i])
			io_bus_unregister(vm_io(p->vm), IO_SPACE_PIO, plat_ranges[i].port);
	atkbdc_destroy(p->kbc);
	rtc_destroy(p->rtc);
	pm_destroy(p->pm);
	fpu_ferr_destroy(p->ferr);
	free(p);
}

int platform_create(struct vm *vm, struct cfg_node *root, struct platform **out)
{
	struct platform *p = calloc(1, sizeof *p);
	struct guest_mem *gm = vm_mem(vm);
	struct rtc_params rp = {
		.irq = plat_rtc_irq,
		.irq_opaque = vm,
		.loop = vm_event_loop(vm),
		.ncpus = vm_ncpus(vm),
		.lowmem = gm_lowmem_size(gm),
		.highmem = gm_highmem_size(gm),
	};
	struct pm_params pp = { .sci = plat_sci, .poweroff = plat_poweroff, .opaque = vm };
	int ret;

	*out = NULL;
	if (!p)
		return -ENOMEM;
	p->vm = vm;
	ret = cfg_get_bool(root, "rtc.use_localtime", true, &rp.localtime);
	if (ret < 0) {
		fprintf(stderr, "khyve: rtc.use_localtime: not a boolean\n");
		goto fail;
	}
	if ((ret = rtc_create(&rp, &p->rtc)) || (ret = pm_create(&pp, &p->pm)) ||
	    (ret = atkbdc_create(vm, &p->kbc)) ||
	    (ret = fpu_ferr_create(plat_ferr_irq, vm, &p->ferr)))
		goto fail;
	for (size_t i = 0; i < PLAT_NRANGES; i++) {
		const struct plat_range *r = &plat_ranges[i];

		ret = io_bus_register(vm_io(vm), IO_SPACE_PIO, r->port, r->len, r->fn, p, r->name);
		if (ret < 0) {
			fprintf(stderr, "khyve: platform: cannot claim port %#x (%s): %s\n", r->port,
				r->name, strerror(-ret));
			goto fail;
		}
		p->ports[i] = true;
	}
	*out = p;
	return 0;
fail:
	platform_destroy(p);
	return ret;
}

void platform_power_button(struct platform *p)
{
	if (p)
		pm_power_button(p->pm);
}

bool platform_ferr(struct platform *p, bool asserted)
{
	if (!p)
		return false;
	fpu_ferr_set(p->ferr, asserted);
	return fpu_ferr_ignne(p->ferr);
}
