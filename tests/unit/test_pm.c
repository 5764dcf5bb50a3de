/*
 * test_pm.c: bhyve's ACPI PM block: S5 (SLP_TYP 5, and OVMF's 0) powers off and other sleep
 * types do not, the power button sets PWRBTN_STS and raises the SCI only when enabled,
 * write-1-to-clear, SMI_CMD ACPI enable/disable, the PM timer rate, byte accesses.
 */
#include "dev/platform.h"
#include "dev/pm.h"
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
