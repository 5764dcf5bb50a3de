/*
 * pc_testdev.h: bhyve's and QEMU's PC test device (`-l pc-testdev`, kvm-unit-tests), created
 * by lpc.c. Ports: 0xF4 exit (status (V << 1) | 1), 0xE0 and 0xE8 scratch, 0xE4 flush page,
 * 0x2000 + pin IRQ lines 0-23; MMIO scratch 64 KiB at 0xFF000000.
 */
#ifndef KHYVE_DEV_PC_TESTDEV_H
#define KHYVE_DEV_PC_TESTDEV_H

struct vm;
struct pc_testdev;

int pc_testdev_create(struct vm *vm, struct pc_testdev **out);
void pc_testdev_destroy(struct pc_testdev *t);

#endif
