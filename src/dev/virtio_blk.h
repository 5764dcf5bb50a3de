/*
 * virtio_blk.h: the virtio-blk model (virtio 1.2 §5.2) for the registry, and the request
 * entry points the fuzz target and the host-side benchmark drive without a guest.
 */
#ifndef KHYVE_DEV_VIRTIO_BLK_H
#define KHYVE_DEV_VIRTIO_BLK_H

#include "dev/device.h"

extern const struct device_model virtio_blk_model;

/* Request types and status values (§5.2.6). */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_ID_BYTES 20

#endif
