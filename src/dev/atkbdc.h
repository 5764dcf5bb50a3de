/*
 * atkbdc.h: the i8042 keyboard controller (atkbdc.c), ports 0x60/0x64, created by platform.c.
 */
#ifndef KHYVE_DEV_ATKBDC_H
#define KHYVE_DEV_ATKBDC_H

struct vm;
struct atkbdc;

int atkbdc_create(struct vm *vm, struct atkbdc **out);
void atkbdc_destroy(struct atkbdc *kbc);

#endif
