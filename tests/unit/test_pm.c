/*
 * test_pm.c: bhyve's ACPI PM block: S5 (SLP_TYP 5, and OVMF's 0) powers off and other sleep
 * types do not, the power button sets PWRBTN_STS and raises the SCI only when enabled,
 * write-1-to-clear, SMI_CMD ACPI enable/disable, the PM timer rate, byte accesses. Also the
 * whole platform on its ports: reset through 0xCF9, 0x92 and the i8042, S5 and the power
 * button through 0x400/0x404, the RTC's CMOS bytes, POST.
 */
#include <errno.h>

#include "config/config.h"
#include "dev/platform.h"
#include "dev/pm.h"
#include "fake_vm.h"
#include "unit.h"

static int64_t fake_now;
static bool sci;
static int poweroffs;

static int64_t fake_clock(void *opaque)
{
	return fake_now;
}

static void fake_sci(void *opaque, bool level)
{
	sci = level;
}

static void fake_poweroff(void *opaque)
{
	poweroffs++;
}

static struct pm *mk(void)
{
	struct pm_params p = { .sci = fake_sci, .poweroff = fake_poweroff,
			       .clock_ns = fake_clock };
	struct pm *pm = NULL;

	sci = false;
	poweroffs = 0;
	fake_now = 1000;
	CHECK(pm_create(&p, &pm) == 0);
	return pm;
}

static uint64_t in(void (*fn)(void *, uint64_t, unsigned, bool, uint64_t *), struct pm *pm,
		   uint64_t off, unsigned size)
{
	uint64_t v = 0;

	fn(pm, off, size, false, &v);
	return v;
}

static void out(void (*fn)(void *, uint64_t, unsigned, bool, uint64_t *), struct pm *pm,
		uint64_t off, unsigned size, uint64_t v)
{
	fn(pm, off, size, true, &v);
}

TEST(pm_s5_powers_off)
{
	struct pm *pm = mk();

	out(pm_cnt_io, pm, 0, 2, 5u << 10);	/* SLP_TYP 5 without SLP_EN */
	CHECK_EQ_U64(poweroffs, 0);
	CHECK_EQ_U64(in(pm_cnt_io, pm, 0, 2), 5u << 10);
	out(pm_cnt_io, pm, 0, 2, 5u << 10 | 0x2000);
	CHECK_EQ_U64(poweroffs, 1);
	CHECK_EQ_U64(in(pm_cnt_io, pm, 0, 2) & 0x2000, 0);	/* SLP_EN reads 0 */
	pm_destroy(pm);
}

TEST(pm_ovmf_slp_typ_0_powers_off)
{
	struct pm *pm = mk();

	out(pm_cnt_io, pm, 0, 2, 0x2000);
	CHECK_EQ_U64(poweroffs, 1);
	pm_destroy(pm);
}

TEST(pm_other_sleep_types_ignored)
{
	struct pm *pm = mk();

	for (unsigned typ = 1; typ < 5; typ++)
		out(pm_cnt_io, pm, 0, 2, typ << 10 | 0x2000);
	out(pm_cnt_io, pm, 0, 2, 6u << 10 | 0x2000);
	CHECK_EQ_U64(poweroffs, 0);
	/* SLP_EN through a byte write of the high half. */
	out(pm_cnt_io, pm, 1, 1, (5u << 2) | 0x20);
	CHECK_EQ_U64(poweroffs, 1);
	pm_destroy(pm);
}

TEST(pm_power_button_and_sci)
{
	struct pm *pm = mk();

	pm_power_button(pm);
	CHECK_EQ_U64(in(pm_evt_io, pm, 0, 2), 0x0100);	/* PWRBTN_STS */
	CHECK(!sci);					/* PWRBTN_EN is clear */
	out(pm_evt_io, pm, 2, 2, 0x0100);		/* PWRBTN_EN */
	CHECK_EQ_U64(in(pm_evt_io, pm, 2, 2), 0x0100);
	CHECK(sci);
	out(pm_evt_io, pm, 0, 2, 0x0000);	/* writing 0 clears nothing */
	CHECK(sci);
	out(pm_evt_io, pm, 0, 2, 0x0100);	/* write 1 to clear */
	CHECK_EQ_U64(in(pm_evt_io, pm, 0, 2), 0);
	CHECK(!sci);
	pm_power_button(pm);			/* enabled now: SCI at once */
	CHECK(sci);
	CHECK_EQ_U64(in(pm_evt_io, pm, 0, 4), 0x01000100);	/* dword: STS | EN << 16 */
	out(pm_evt_io, pm, 0, 4, 0x01000100);	/* dword: clear STS, rewrite EN */
	CHECK(!sci);
	CHECK_EQ_U64(in(pm_evt_io, pm, 2, 2), 0x0100);
	out(pm_evt_io, pm, 3, 1, 0);		/* EN high byte by itself */
	CHECK_EQ_U64(in(pm_evt_io, pm, 2, 2), 0);
	pm_destroy(pm);
}

TEST(pm_smi_cmd_acpi_enable)
{
	struct pm *pm = mk();

	CHECK_EQ_U64(in(pm_cnt_io, pm, 0, 2) & 1, 0);
	out(pm_smi_io, pm, 0, 1, PLATFORM_ACPI_ENABLE);
	CHECK_EQ_U64(in(pm_cnt_io, pm, 0, 2) & 1, 1);	/* SCI_EN */
	out(pm_smi_io, pm, 0, 1, 0x55);
	CHECK_EQ_U64(in(pm_cnt_io, pm, 0, 2) & 1, 1);
	out(pm_smi_io, pm, 0, 1, PLATFORM_ACPI_DISABLE);
	CHECK_EQ_U64(in(pm_cnt_io, pm, 0, 2) & 1, 0);
	pm_destroy(pm);
}

TEST(pm_timer_rate)
{
	struct pm *pm = mk();
	uint64_t a, b;

	a = in(pm_tmr_io, pm, 0, 4);
	fake_now += 1000000000LL;
	b = in(pm_tmr_io, pm, 0, 4);
	CHECK_EQ_U64((b - a) & 0xffffffff, 3579545);
	fake_now += 1000;	/* 1 us: 3 or 4 ticks */
	a = in(pm_tmr_io, pm, 0, 4);
	CHECK((a - b) == 3 || (a - b) == 4);
	out(pm_tmr_io, pm, 0, 4, 0);	/* read-only */
	CHECK_EQ_U64(in(pm_tmr_io, pm, 0, 4), a);
	CHECK_EQ_U64(in(pm_tmr_io, pm, 1, 1), (a >> 8) & 0xff);
	pm_destroy(pm);
}

static struct vm *plat_vm(struct platform **out)
{
	struct vm *vm = fake_vm_new();

	cfg_reset();
	CHECK(gm_create(&vm->gm, 64ULL << 20) == 0);
	CHECK(platform_create(vm, cfg_root(), out) == 0);
	return vm;
}

static void plat_free(struct vm *vm, struct platform *p)
{
	platform_destroy(p);
	gm_destroy(vm->gm);
	fake_vm_free(vm);
}

TEST(platform_reset_control_cf9)
{
	struct platform *p;
	struct vm *vm = plat_vm(&p);

	fake_out(vm, 0xcf9, 1, 0x02);	/* SeaBIOS: hard reset type first */
	CHECK_EQ_U64(vm->exit_code, -1);
	CHECK_EQ_U64(fake_in(vm, 0xcf9, 1), 0x02);
	fake_out(vm, 0xcf9, 1, 0x06);
	CHECK_EQ_U64(vm->exit_code, VM_EXIT_RESET);
	plat_free(vm, p);
}

TEST(platform_port92_and_post)
{
	struct platform *p;
	struct vm *vm = plat_vm(&p);

	CHECK_EQ_U64(fake_in(vm, 0x92, 1) & 0x02, 0x02);	/* A20 on */
	fake_out(vm, 0x92, 1, 0x02);
	CHECK_EQ_U64(vm->exit_code, -1);
	fake_out(vm, 0x80, 1, 0x55);
	CHECK_EQ_U64(fake_in(vm, 0x80, 1), 0x55);
	fake_out(vm, 0x92, 1, 0x03);	/* fast reset */
	CHECK_EQ_U64(vm->exit_code, VM_EXIT_RESET);
	plat_free(vm, p);
}

TEST(platform_i8042)
{
	struct platform *p;
	struct vm *vm = plat_vm(&p);

	CHECK_EQ_U64(fake_in(vm, 0x64, 1) & 0x01, 0);	/* output buffer empty */
	fake_out(vm, 0x64, 1, 0xaa);
	CHECK_EQ_U64(fake_in(vm, 0x64, 1) & 0x05, 0x05);	/* OBF, SYS */
	CHECK_EQ_U64(fake_in(vm, 0x60, 1), 0x55);
	fake_out(vm, 0x64, 1, 0x20);
	CHECK_EQ_U64(fake_in(vm, 0x60, 1), 0x45);	/* translate, SYS, keyboard IRQ */
	fake_out(vm, 0x64, 1, 0x60);
	fake_out(vm, 0x60, 1, 0x44);
	fake_out(vm, 0x64, 1, 0x20);
	CHECK_EQ_U64(vm->irq_level[1], 0);	/* keyboard interrupt now off */
	CHECK_EQ_U64(fake_in(vm, 0x60, 1), 0x44);
	fake_out(vm, 0x64, 1, 0xd2);	/* echo through the keyboard buffer, IRQ 1 */
	fake_out(vm, 0x60, 1, 0x99);
	CHECK_EQ_U64(fake_in(vm, 0x60, 1), 0x99);
	fake_out(vm, 0x64, 1, 0xdf);	/* A20 on: accepted */
	fake_out(vm, 0x64, 1, 0xd1);	/* output port with the reset bit high */
	fake_out(vm, 0x60, 1, 0x03);
	CHECK_EQ_U64(vm->exit_code, -1);
	fake_out(vm, 0x64, 1, 0xfe);	/* pulse reset */
	CHECK_EQ_U64(vm->exit_code, VM_EXIT_RESET);
	plat_free(vm, p);
}

TEST(platform_i8042_output_port_reset)
{
	struct platform *p;
	struct vm *vm = plat_vm(&p);

	fake_out(vm, 0x64, 1, 0xd1);
	fake_out(vm, 0x60, 1, 0x02);	/* bit 0 low: reset */
	CHECK_EQ_U64(vm->exit_code, VM_EXIT_RESET);
	plat_free(vm, p);
}

TEST(platform_acpi_ports)
{
	struct platform *p;
	struct vm *vm = plat_vm(&p);

	fake_out(vm, PLATFORM_SMI_CMD, 1, PLATFORM_ACPI_ENABLE);
	CHECK_EQ_U64(fake_in(vm, PLATFORM_PM1A_CNT, 2) & 1, 1);
	fake_out(vm, PLATFORM_PM1A_EVT + 2, 2, 0x0100);
	platform_power_button(p);
	CHECK_EQ_U64(fake_in(vm, PLATFORM_PM1A_EVT, 2), 0x0100);
	CHECK_EQ_U64(vm->irq_level[PLATFORM_SCI_IRQ], 1);
	fake_out(vm, PLATFORM_PM1A_EVT, 2, 0x0100);
	CHECK_EQ_U64(vm->irq_level[PLATFORM_SCI_IRQ], 0);
	CHECK(fake_in(vm, PLATFORM_PM_TMR, 4) != 0xffffffff);
	fake_out(vm, PLATFORM_PM1A_CNT, 2, 0x3401);	/* SLP_TYP 5 | SLP_EN */
	CHECK_EQ_U64(vm->exit_code, VM_EXIT_POWEROFF);
	plat_free(vm, p);
}

TEST(platform_cmos_from_guest_memory)
{
	struct platform *p;
	struct vm *vm = plat_vm(&p);

	fake_out(vm, 0x70, 1, 0x34);
	CHECK_EQ_U64(fake_in(vm, 0x71, 1), 0x00);	/* (64M - 16M) / 64K = 0x300 */
	fake_out(vm, 0x70, 1, 0x35);
	CHECK_EQ_U64(fake_in(vm, 0x71, 1), 0x03);
	fake_out(vm, 0x70, 1, 0x0d);
	CHECK_EQ_U64(fake_in(vm, 0x71, 1), 0x80);
	plat_free(vm, p);
	cfg_reset();
}

TEST(platform_rtc_localtime_key)
{
	struct platform *p;
	struct vm *vm = fake_vm_new();

	cfg_reset();
	CHECK(gm_create(&vm->gm, 64ULL << 20) == 0);
	cfg_set(cfg_root(), "rtc.use_localtime", "maybe");
	CHECK(platform_create(vm, cfg_root(), &p) == -EINVAL);
	cfg_set(cfg_root(), "rtc.use_localtime", "false");
	CHECK(platform_create(vm, cfg_root(), &p) == 0);
	plat_free(vm, p);
	cfg_reset();
}
