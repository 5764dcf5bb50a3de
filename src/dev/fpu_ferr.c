/*
 * fpu_ferr.c: the chipset side of legacy x87 error reporting (fpu_ferr.h): IRQ 13 is high
 * while FERR# is asserted and port 0xF0 has not been written since; the write asserts IGNNE#,
 * which stays until FERR# goes away. Leaves out the AT's port 0xF1 (80287 reset) and any
 * enable bit (PC chipsets have the logic on by default, and the guest cannot turn it off here).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "dev/fpu_ferr.h"

struct fpu_ferr {
	pthread_mutex_t lock;
	void (*irq)(void *opaque, bool level);
	void *opaque;
	bool ferr, ignne, irq_level;
};

/* Lock held. */
static void ferr_update(struct fpu_ferr *f)
{
	bool level = f->ferr && !f->ignne;

	if (level != f->irq_level) {
		f->irq_level = level;
		if (f->irq)
			f->irq(f->opaque, level);
	}
}

int fpu_ferr_create(void (*irq)(void *opaque, bool level), void *opaque, struct fpu_ferr **out)
{
	struct fpu_ferr *f = calloc(1, sizeof *f);

	*out = NULL;
	if (!f)
		return -ENOMEM;
	pthread_mutex_init(&f->lock, NULL);
	f->irq = irq;
	f->opaque = opaque;
	*out = f;
	return 0;
}

void fpu_ferr_destroy(struct fpu_ferr *f)
{
	if (!f)
		return;
	pthread_mutex_destroy(&f->lock);
	free(f);
}

void fpu_ferr_reset(struct fpu_ferr *f)
{
	pthread_mutex_lock(&f->lock);
	f->ferr = f->ignne = false;
	ferr_update(f);
	pthread_mutex_unlock(&f->lock);
}

void fpu_ferr_set(struct fpu_ferr *f, bool asserted)
{
	pthread_mutex_lock(&f->lock);
	f->ferr = asserted;
	if (!asserted)
		f->ignne = false;	/* IGNNE# is never asserted without FERR# */
	ferr_update(f);
	pthread_mutex_unlock(&f->lock);
}

bool fpu_ferr_ignne(struct fpu_ferr *f)
{
	bool ignne;

	pthread_mutex_lock(&f->lock);
	ignne = f->ignne;
	pthread_mutex_unlock(&f->lock);
	return ignne;
}

void fpu_ferr_io(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val)
{
	struct fpu_ferr *f = opaque;

	if (!write) {
		*val = ~0ull;
		return;
	}
	pthread_mutex_lock(&f->lock);
	if (f->ferr)
		f->ignne = true;
	ferr_update(f);
	pthread_mutex_unlock(&f->lock);
}
