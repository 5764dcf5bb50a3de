/*
 * platform.h: the ISA devices every khyve machine has, whatever -s/-l say (as in bhyve):
 * RTC/CMOS (0x70/0x71, IRQ 8), i8042 enough for the reset command (0x60/0x64), POST port
 * 0x80, 0xCF9 reset control, bhyve's ACPI PM block (PM1a event/control, PM timer, SMI_CMD,
 * SCI on IRQ 9). lpc.c adds com1-com4 and pc-testdev from its config node.
 */
#ifndef KHYVE_PLATFORM_H
#define KHYVE_PLATFORM_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct cfg_node;
struct platform;

/* The PM block's ports and values, for the FADT. */
#define PLATFORM_SMI_CMD 0xb2
#define PLATFORM_ACPI_ENABLE 0xa0
#define PLATFORM_ACPI_DISABLE 0xa1
#define PLATFORM_PM1A_EVT 0x400
#define PLATFORM_PM1A_CNT 0x404
#define PLATFORM_PM_TMR 0x408
#define PLATFORM_SCI_IRQ 9

int platform_create(struct vm *vm, struct cfg_node *root, struct platform **out);
void platform_destroy(struct platform *p);
/* SIGTERM: press the ACPI power button (PWRBTN_STS, SCI if enabled). */
void platform_power_button(struct platform *p);
/* The CPU's x87 FERR# output to the chipset (dev/fpu_ferr.c); returns IGNNE#. */
bool platform_ferr(struct platform *p, bool asserted);

#endif
