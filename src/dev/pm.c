/*
 * pm.c: the fixed-hardware ACPI registers bhyve emulates (ACPI 6.x §4.8 "ACPI Hardware
 * Model"; bhyve's pm.c): PM1a_STS/PM1a_EN (write-1-to-clear status; power button), PM1a_CNT
 * (SCI_EN, SLP_TYP, SLP_EN: S5, SLP_TYP 5 as in bhyve's \_S5, or 0 as OVMF writes, powers
 * off), a 32-bit PM timer at 3.579545 MHz, and SMI_CMD taking ACPI_ENABLE/ACPI_DISABLE.
 * The SCI (IRQ 9, level) is raised while a status bit and its enable bit are both set.
 * Leaves out: timer-overflow status (TMR_STS), sleep states S1-S4, GPE blocks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "dev/platform.h"
#include "dev/pm.h"

#define PM1_TMR_STS 0x0001
#define PM1_BM_STS 0x0010
#define PM1_GBL_STS 0x0020
#define PM1_PWRBTN_STS 0x0100
#define PM1_SLPBTN_STS 0x0200
#define PM1_RTC_STS 0x0400
#define PM1_WAK_STS 0x8000
#define PM1_STS_MASK (PM1_TMR_STS | PM1_BM_STS | PM1_GBL_STS | PM1_PWRBTN_STS | \
		      PM1_SLPBTN_STS | PM1_RTC_STS | PM1_WAK_STS)
#define PM1_EN_MASK (PM1_TMR_STS | PM1_GBL_STS | PM1_PWRBTN_STS | PM1_SLPBTN_STS | PM1_RTC_STS)

#define PM1_SCI_EN 0x0001
#define PM1_SLP_TYP_SHIFT 10
#define PM1_SLP_TYP_MASK (7u << PM1_SLP_TYP_SHIFT)
#define PM1_SLP_EN 0x2000
#define PM1_CNT_MASK 0x1c07	/* SCI_EN, BM_RLD, GBL_RLS, SLP_TYP; SLP_EN reads 0 */

#define PM_SLP_TYP_S5 5
#define PM_SLP_TYP_S5_OVMF 0
#define PM_TMR_HZ 3579545ULL

struct pm {
	pthread_mutex_t lock;
	struct pm_params p;
	uint16_t sts, en, cnt;
	bool sci;
	int64_t tmr_base_ns;
};

static int64_t pm_now_ns(struct pm *pm)
{
	struct timespec ts;

	if (pm->p.clock_ns)
		return pm->p.clock_ns(pm->p.opaque);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Lock held. */
static void pm_update_sci(struct pm *pm)
{
	bool level = (pm->sts & pm->en & PM1_EN_MASK) != 0;

	if (level != pm->sci) {
		pm->sci = level;
		if (pm->p.sci)
			pm->p.sci(pm->p.opaque, level);
	}
}

static uint64_t pm_read_bytes(uint64_t reg, uint64_t offset, unsigned size)
{
	uint64_t v = reg >> (8 * offset);

	return size >= 8 ? v : v & ((1ULL << (8 * size)) - 1);
}

void pm_evt_io(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val)
{
	struct pm *pm = opaque;
	uint32_t reg;

	pthread_mutex_lock(&pm->lock);
	reg = (uint32_t)pm->sts | (uint32_t)pm->en << 16;
	if (!write) {
		*val = offset < 4 ? pm_read_bytes(reg, offset, size) : ~0ULL;
	} else {
		for (unsigned i = 0; i < size && offset + i < 4; i++) {
			uint8_t b = (uint8_t)(*val >> (8 * i));
			unsigned pos = (unsigned)offset + i;

			if (pos < 2)	/* PM1_STS: write 1 to clear */
				pm->sts &= (uint16_t)~((unsigned)b << (8 * pos));
			else
				pm->en = (uint16_t)((pm->en & ~(0xffu << (8 * (pos - 2)))) |
						    ((unsigned)b << (8 * (pos - 2))));
		}
		pm->sts &= PM1_STS_MASK;
		pm->en &= PM1_EN_MASK;
		pm_update_sci(pm);
	}
	pthread_mutex_unlock(&pm->lock);
}

void pm_cnt_io(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val)
{
	struct pm *pm = opaque;
	bool poweroff = false;

	pthread_mutex_lock(&pm->lock);
	if (!write) {
		*val = offset < 2 ? pm_read_bytes(pm->cnt, offset, size) : ~0ULL;
	} else {
		uint32_t v = pm->cnt;

		for (unsigned i = 0; i < size && offset + i < 2; i++) {
			unsigned shift = 8 * ((unsigned)offset + i);

			v = (v & ~(0xffu << shift)) | (((uint32_t)(*val >> (8 * i)) & 0xff) << shift);
		}
		pm->cnt = (uint16_t)(v & PM1_CNT_MASK);
		if (v & PM1_SLP_EN) {
			unsigned typ = (v & PM1_SLP_TYP_MASK) >> PM1_SLP_TYP_SHIFT;

			poweroff = typ == PM_SLP_TYP_S5 || typ == PM_SLP_TYP_S5_OVMF;
		}
	}
	pthread_mutex_unlock(&pm->lock);
	if (poweroff && pm->p.poweroff)
		pm->p.poweroff(pm->p.opaque);
}

void pm_tmr_io(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val)
{
	struct pm *pm = opaque;
	int64_t ns;
	uint32_t ticks;

	if (write)
		return;
	ns = pm_now_ns(pm) - pm->tmr_base_ns;
	/* ns * 3579545 / 1e9 without overflow for centuries of uptime */
	ticks = (uint32_t)((uint64_t)(ns / 1000000000LL) * PM_TMR_HZ +
			   (uint64_t)(ns % 1000000000LL) * PM_TMR_HZ / 1000000000ULL);
	*val = offset < 4 ? pm_read_bytes(ticks, offset, size) : ~0ULL;
}

void pm_smi_io(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val)
{
	struct pm *pm = opaque;

	if (!write || offset != 0)
		return;
	pthread_mutex_lock(&pm->lock);
	if ((uint8_t)*val == PLATFORM_ACPI_ENABLE)
		pm->cnt |= PM1_SCI_EN;
	else if ((uint8_t)*val == PLATFORM_ACPI_DISABLE)
		pm->cnt &= (uint16_t)~PM1_SCI_EN;
	pthread_mutex_unlock(&pm->lock);
}

void pm_power_button(struct pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->sts |= PM1_PWRBTN_STS;
	pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

int pm_create(const struct pm_params *p, struct pm **out)
{
	struct pm *pm = calloc(1, sizeof *pm);

	*out = NULL;
	if (!pm)
		return -ENOMEM;
	pm->p = *p;
	pthread_mutex_init(&pm->lock, NULL);
	pm->tmr_base_ns = pm_now_ns(pm);
	*out = pm;
	return 0;
}

void pm_destroy(struct pm *pm)
{
	if (!pm)
		return;
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}
