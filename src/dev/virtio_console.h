/*
 * virtio_console.h: the multiport virtio-console model (virtio 1.2 §5.3) for the registry;
 * ports are Unix stream sockets khyve listens on (pci.B.S.F.port.N.name / port.N.path).
 */
#ifndef KHYVE_DEV_VIRTIO_CONSOLE_H
#define KHYVE_DEV_VIRTIO_CONSOLE_H

#include "dev/device.h"

extern const struct device_model virtio_console_model;

#endif
