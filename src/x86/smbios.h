/*
 * smbios.h: SMBIOS 2.8 tables (DMTF DSP0134) for direct-booted guests: the 32-bit entry point
 * ("_SM_"/"_DMI_") that Linux's dmi_scan and FreeBSD's smbios(4) find by scanning
 * 0xF0000-0xFFFFF, and structures 0, 1, 2, 3, 4 (one per socket), 16, 17, 19, 32 and 127,
 * with the strings from the bios.*, system.*, board.* and chassis.* keys and the uuid (-U).
 */
#ifndef KHYVE_SMBIOS_H
#define KHYVE_SMBIOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg_node;
struct cpu_topology;

/* The configurable strings, in the order of smbios_keys[]. */
enum smbios_string {
	SMBIOS_BIOS_VENDOR,
	SMBIOS_BIOS_VERSION,
	SMBIOS_BIOS_RELEASE_DATE,
	SMBIOS_SYSTEM_FAMILY_NAME,
	SMBIOS_SYSTEM_MANUFACTURER,
	SMBIOS_SYSTEM_PRODUCT_NAME,
	SMBIOS_SYSTEM_SERIAL_NUMBER,
	SMBIOS_SYSTEM_SKU,
	SMBIOS_SYSTEM_VERSION,
	SMBIOS_BOARD_MANUFACTURER,
	SMBIOS_BOARD_PRODUCT_NAME,
	SMBIOS_BOARD_VERSION,
	SMBIOS_BOARD_SERIAL_NUMBER,
	SMBIOS_BOARD_ASSET_TAG,
	SMBIOS_BOARD_LOCATION,
	SMBIOS_CHASSIS_MANUFACTURER,
	SMBIOS_CHASSIS_VERSION,
	SMBIOS_CHASSIS_SERIAL_NUMBER,
	SMBIOS_CHASSIS_ASSET_TAG,
	SMBIOS_CHASSIS_SKU,
	SMBIOS_NSTRINGS
};

/* Config key of each string ("bios.vendor", ...). */
extern const char *const smbios_keys[SMBIOS_NSTRINGS];

struct smbios_info {
	const char *str[SMBIOS_NSTRINGS];	/* NULL or "": the structure names no string */
	uint8_t uuid[16];			/* type 1 UUID field, bytes as SMBIOS stores them */
};

/*
 * The strings from the config keys (their schema defaults when unset) and the UUID from
 * `uuid` or, unset, derived as bhyve does from vm_name and the host name. The strings live
 * until the next cfg_set on the tree. 0, or -EINVAL with err filled (bad UUID or reference).
 */
int smbios_info_from_config(struct cfg_node *root, const char *vm_name, struct smbios_info *out,
			    char *err, size_t errlen);

/* "8-4-4-4-12" text into the SMBIOS field: the first three fields little-endian, the rest in
 * order (DSP0134 7.2.1). 0 or -EINVAL. */
int smbios_uuid_parse(const char *s, uint8_t out[16]);
/* bhyve's derived UUID: MD5 of the VM name followed by the host name in a zero-filled
 * 256-byte buffer, version 3 and RFC 4122 variant bits set, stored as the digest's bytes. */
void smbios_uuid_derive(const char *vm_name, const char *host_name, uint8_t out[16]);
/* RFC 1321 MD5 of len bytes (for the UUID; exposed for tests). */
void smbios_md5(const void *data, size_t len, uint8_t digest[16]);

/*
 * Build the entry point at buf[0] (to be loaded at guest address gpa, 16-byte aligned, in
 * 0xF0000-0xFFFFF) and the structure table right after it. lowmem/highmem: RAM below and
 * above 4 GiB. *len gets the bytes used. 0, -EINVAL, or -E2BIG when cap is too small or the
 * table outgrows the 16-bit length of a 2.x entry point.
 */
int smbios_build(const struct smbios_info *si, const struct cpu_topology *topo, uint64_t lowmem,
		 uint64_t highmem, bool acpi, uint32_t gpa, uint8_t *buf, size_t cap, size_t *len);

#endif
