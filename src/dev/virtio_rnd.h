/*
 * virtio_rnd.h: the virtio-rnd model (virtio 1.2 §5.4) for the registry, its rate limit,
 * and a counter tests read.
 */
#ifndef KHYVE_DEV_VIRTIO_RND_H
#define KHYVE_DEV_VIRTIO_RND_H

#include <stdint.h>

#include "dev/device.h"

#define VIRTIO_RND_RATE (64 * 1024)	/* bytes per second */
#define VIRTIO_RND_BURST (16 * 1024)	/* bucket size */

extern const struct device_model virtio_rnd_model;

struct pci_dev;
/* Bytes of entropy handed to the guest so far. */
uint64_t virtio_rnd_delivered(struct pci_dev *pdev);

#endif
