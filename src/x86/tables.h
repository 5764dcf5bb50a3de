/*
 * tables.h: firmware tables for direct boot. MP table (Intel MP spec 1.4) at the top of
 * base memory/BIOS area, ACPI tables (RSDP, XSDT, MADT, FADT + minimal DSDT, HPET when
 * emulated, MCFG when PCIe config exists) in the BIOS area, described by the e820 map.
 * SMBIOS (x86/smbios.h) right after the MP table, inside the reserved 0xF0000-0xFFFFF.
 */
#ifndef KHYVE_TABLES_H
#define KHYVE_TABLES_H

#include <stdbool.h>
#include <stdint.h>
#include "x86/cpuid.h"

struct guest_mem;
struct smbios_info;

struct pci_intx_route {
	uint8_t bus, slot, pin;	/* pin 1..4 = INTA..INTD */
	int gsi;
};

struct tables_params {
	const struct cpu_topology *topo;
	bool mptable;		/* x86.mptable */
	bool acpi;		/* -A */
	const struct pci_intx_route *routes;
	int nroutes;
	const struct smbios_info *smbios;	/* strings and UUID; NULL: no SMBIOS */
	uint16_t pm1a_evt_port, pm1a_cnt_port, pm_tmr_port, smi_cmd_port;
	uint8_t sci_irq, acpi_enable_value, acpi_disable_value;
};

/* Write the tables; *rsdp_gpa gets the RSDP address (0 without ACPI). *region_gpa/len span
 * what the e820 map must mark as ACPI (the MP table and SMBIOS lie in the BIOS area, which
 * the e820 map reserves anyway). 0 or -errno. */
int tables_build(struct guest_mem *gm, const struct tables_params *p, uint64_t *rsdp_gpa,
		 uint64_t *region_gpa, uint64_t *region_len);

#endif
