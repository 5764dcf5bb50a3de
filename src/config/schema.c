/*
 * schema.c: every global configuration key khyve knows (bhyve_config(5) names, plus khyve's
 * accel, boot.*, restore_file and fw_cfg.*), with its type, default and one line of doc,
 * and the value checks per type. Per-device keys under pci.B.S.F live with the device models
 * (dev/registry.c); man/khyve_config.5 documents this table and must stay in step with it.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "config/config.h"

#define K(n, t, d, doc) { n, t, d, doc, NULL, 0, 0 }
#define KI(n, d, lo, hi, doc) { n, CFG_INT, d, doc, NULL, lo, hi }
#define KE(n, d, ch, doc) { n, CFG_ENUM, d, doc, ch, 0, 0 }

static const struct cfg_schema_key config_keys[] = {
	K("name", CFG_STRING, NULL, "name of the virtual machine (the last argument)"),
	KE("accel", "auto", "auto|kvm|soft",
	   "accelerator: KVM, the software CPU, or KVM when usable else the software CPU"),
	K("accel_stats", CFG_BOOL, "false",
	  "at exit, print on stderr what the accelerator counted (instructions emulated)"),
	KE("cpu.model", NULL, "host|khyve-v1|x86-64",
	   "CPUID level: host (KVM only), khyve-v1 or x86-64; unset: host under hardware KVM, "
	   "else khyve-v1"),
	KI("cpus", "1", 1, 65535, "number of vCPUs (-c); sockets x cores x threads when unset"),
	KI("sockets", NULL, 1, 65535, "CPU sockets (-c sockets=); the value of cpus when unset"),
	KI("cores", "1", 1, 65535, "cores per socket (-c cores=)"),
	KI("threads", "1", 1, 65535, "threads per core (-c threads=)"),
	K("memory.size", CFG_MEMSIZE, "256M",
	  "guest RAM (-m); K/M/G/T suffixes, a bare number below 1 MiB means MiB"),
	K("memory.wired", CFG_BOOL, "false", "lock guest RAM in host memory (-S)"),
	K("memory.guest_in_core", CFG_BOOL, "false", "include guest RAM in core dumps (-C)"),
	K("acpi_tables", CFG_BOOL, "false", "build ACPI tables (-A)"),
	K("acpi_tables_in_memory", CFG_BOOL, "true",
	  "place the ACPI tables in guest memory, not only in fw_cfg"),
	K("destroy_on_poweroff", CFG_BOOL, "false", "destroy the VM instance on power-off (-D)"),
	K("config.dump", CFG_BOOL, "false", "print the configuration as key=value lines and exit 1"),
	K("uuid", CFG_UUID, NULL, "SMBIOS system UUID (-U); derived from host and VM name if unset"),
	K("virtio_msix", CFG_BOOL, "true", "virtio devices use MSI-X; false: MSI (-W)"),
	K("rtc.use_localtime", CFG_BOOL, "true", "RTC keeps host local time; false: UTC (-u)"),
	K("keyboard.layout", CFG_STRING, NULL, "PS/2 keyboard layout for VNC key translation (-K)"),
	K("gdb.address", CFG_STRING, "localhost", "address the GDB stub listens on (-G)"),
	KI("gdb.port", "0", 0, 65535, "TCP port of the GDB stub, 0: no stub (-G)"),
	K("gdb.wait", CFG_BOOL, "false", "wait for the debugger before starting vCPUs (-G w)"),
	{ "vcpu.#.cpuset", CFG_CPUSET, NULL, "host CPUs vCPU N may run on, e.g. 0,2,4-7 (-p)",
	  NULL, 0, 1023 },
	K("domains.#.size", CFG_SIZE, NULL, "memory of NUMA domain N (-n size=)"),
	{ "domains.#.cpus", CFG_CPUSET, NULL, "vCPUs of NUMA domain N (-n cpus=)", NULL, 0,
	  65534 },
	K("domains.#.domain_policy", CFG_STRING, NULL, "host memory policy of NUMA domain N (-n)"),
	K("x86.mptable", CFG_BOOL, "true", "build an MP table; false: none (-Y)"),
	K("x86.x2apic", CFG_BOOL, "false", "local APICs start in x2APIC mode (-x; -a: false)"),
	K("x86.strictio", CFG_BOOL, "false",
	  "stop the VM on access to an unemulated I/O port (-e)"),
	K("x86.strictmsr", CFG_BOOL, "true",
	  "inject #GP on unknown MSRs; false: reads 0, writes ignored (-w)"),
	K("x86.verbosemsr", CFG_BOOL, "false", "log accesses to unknown MSRs"),
	K("x86.vmexit_on_hlt", CFG_BOOL, "false", "idle vCPUs executing HLT yield the host CPU (-H)"),
	K("x86.vmexit_on_pause", CFG_BOOL, "false", "exit to the host on PAUSE (-P)"),
	K("lpc.bootrom", CFG_PATH, NULL, "firmware image mapped to end at 4 GiB (-l bootrom)"),
	K("lpc.bootvars", CFG_PATH, NULL, "writable UEFI variable store (-l bootrom,ROM,VARS)"),
	K("lpc.com1.path", CFG_STRING, NULL, "COM1 (0x3F8, IRQ 4) backend: stdio or a tty path"),
	K("lpc.com2.path", CFG_STRING, NULL, "COM2 (0x2F8, IRQ 3) backend"),
	K("lpc.com3.path", CFG_STRING, NULL, "COM3 (0x3E8, IRQ 4) backend"),
	K("lpc.com4.path", CFG_STRING, NULL, "COM4 (0x2E8, IRQ 3) backend"),
	KE("lpc.fwcfg", "bhyve", "bhyve|qemu", "firmware configuration interface"),
	K("lpc.pc-testdev", CFG_BOOL, "false", "QEMU's PC test device (-l pc-testdev)"),
	K("lpc.pcireg.vendor", CFG_PCIREG, "0x8086", "LPC bridge PCI vendor ID, or host"),
	K("lpc.pcireg.device", CFG_PCIREG, "0x7000", "LPC bridge PCI device ID, or host"),
	K("lpc.pcireg.revid", CFG_PCIREG, "0", "LPC bridge PCI revision, or host"),
	K("lpc.pcireg.subvendor", CFG_PCIREG, "0", "LPC bridge PCI subsystem vendor, or host"),
	K("lpc.pcireg.subdevice", CFG_PCIREG, "0", "LPC bridge PCI subsystem ID, or host"),
	K("bootrom", CFG_PATH, NULL, "firmware image (FreeBSD 15 name of lpc.bootrom)"),
	K("bootvars", CFG_PATH, NULL, "UEFI variable store (FreeBSD 15 name of lpc.bootvars)"),
	K("console", CFG_STRING, NULL, "console backend (FreeBSD 15 arm64)"),
	KE("tpm.type", NULL, "passthru|swtpm", "TPM backend (-l tpm)"),
	K("tpm.path", CFG_PATH, NULL, "host TPM device or swtpm socket (-l tpm)"),
	KE("tpm.version", "2.0", "2.0", "TPM version"),
	K("boot.kernel", CFG_PATH, NULL, "kernel for direct boot: bzImage, ELF vmlinux or PVH ELF"),
	K("boot.initrd", CFG_PATH, NULL, "initial ramdisk for direct boot"),
	K("boot.cmdline", CFG_STRING, NULL, "kernel command line for direct boot"),
	K("restore_file", CFG_PATH, NULL, "snapshot to restore (-r)"),
	K("fw_cfg.#.name", CFG_STRING, NULL, "name of fw_cfg item N (-f)"),
	K("fw_cfg.#.string", CFG_STRING, NULL, "contents of fw_cfg item N (-f name,string=)"),
	K("fw_cfg.#.file", CFG_PATH, NULL, "file holding fw_cfg item N (-f name,file=)"),
	K("bios.vendor", CFG_STRING, "BHYVE", "SMBIOS type 0 vendor"),
	K("bios.version", CFG_STRING, "14.0", "SMBIOS type 0 BIOS version"),
	K("bios.release_date", CFG_STRING, "10/17/2021", "SMBIOS type 0 release date"),
	K("system.family_name", CFG_STRING, "Virtual Machine", "SMBIOS type 1 family"),
	K("system.manufacturer", CFG_STRING, "FreeBSD", "SMBIOS type 1 manufacturer"),
	K("system.product_name", CFG_STRING, "BHYVE", "SMBIOS type 1 product name"),
	K("system.serial_number", CFG_STRING, "None", "SMBIOS type 1 serial number"),
	K("system.sku", CFG_STRING, "None", "SMBIOS type 1 SKU"),
	K("system.version", CFG_STRING, "1.0", "SMBIOS type 1 version"),
	K("board.manufacturer", CFG_STRING, "FreeBSD", "SMBIOS type 2 manufacturer"),
	K("board.product_name", CFG_STRING, "BHYVE", "SMBIOS type 2 product name"),
	K("board.version", CFG_STRING, "1.0", "SMBIOS type 2 version"),
	K("board.serial_number", CFG_STRING, "None", "SMBIOS type 2 serial number"),
	K("board.asset_tag", CFG_STRING, "None", "SMBIOS type 2 asset tag"),
	K("board.location", CFG_STRING, "None", "SMBIOS type 2 location in chassis"),
	K("chassis.manufacturer", CFG_STRING, "FreeBSD", "SMBIOS type 3 manufacturer"),
	K("chassis.version", CFG_STRING, "1.0", "SMBIOS type 3 version"),
	K("chassis.serial_number", CFG_STRING, "None", "SMBIOS type 3 serial number"),
	K("chassis.asset_tag", CFG_STRING, "None", "SMBIOS type 3 asset tag"),
	K("chassis.sku", CFG_STRING, "None", "SMBIOS type 3 SKU"),
	{ NULL, CFG_STRING, NULL, NULL, NULL, 0, 0 },
};

const struct cfg_schema_key *config_schema(void)
{
	return config_keys;
}

/* Does one key component match one pattern component ("#": any decimal number)? */
static bool schema_component_match(const char *pat, size_t plen, const char *key, size_t klen)
{
	if (plen == 1 && pat[0] == '#') {
		if (klen == 0 || klen > 5)
			return false;
		for (size_t i = 0; i < klen; i++)
			if (!isdigit((unsigned char)key[i]))
				return false;
		return klen == 1 || key[0] != '0';
	}
	return plen == klen && memcmp(pat, key, klen) == 0;
}

static bool schema_match(const char *pat, const char *key)
{
	for (;;) {
		const char *pd = strchr(pat, '.'), *kd = strchr(key, '.');
		size_t pl = pd ? (size_t)(pd - pat) : strlen(pat);
		size_t kl = kd ? (size_t)(kd - key) : strlen(key);

		if (pl == 1 && pat[0] == '*' && !pd)
			return kl > 0;		/* trailing ".*": the whole subtree */
		if (!schema_component_match(pat, pl, key, kl))
			return false;
		if (!pd || !kd)
			return !pd && !kd;
		pat = pd + 1;
		key = kd + 1;
	}
}

const struct cfg_schema_key *config_schema_find(const char *key)
{
	for (const struct cfg_schema_key *k = config_keys; k->name; k++)
		if (schema_match(k->name, key))
			return k;
	return NULL;
}

static bool check_uuid(const char *v)
{
	if (strlen(v) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (v[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)v[i])) {
			return false;
		}
	}
	return true;
}

/* "0,2,4-7": numbers and ascending ranges, each at most max. */
static bool check_cpuset(const char *v, uint64_t max)
{
	const char *p = v;

	for (;;) {
		uint64_t lo, hi;
		char *end;

		if (!isdigit((unsigned char)*p))
			return false;
		lo = hi = strtoull(p, &end, 10);
		p = end;
		if (*p == '-') {
			p++;
			if (!isdigit((unsigned char)*p))
				return false;
			hi = strtoull(p, &end, 10);
			p = end;
		}
		if (lo > hi || hi > max)
			return false;
		if (*p == '\0')
			return true;
		if (*p++ != ',')
			return false;
	}
}

static bool check_enum(const char *choices, const char *v)
{
	size_t len = strlen(v);

	for (const char *c = choices; c && *c;) {
		const char *bar = strchr(c, '|');
		size_t cl = bar ? (size_t)(bar - c) : strlen(c);

		if (cl == len && memcmp(c, v, len) == 0)
			return true;
		c = bar ? bar + 1 : NULL;
	}
	return false;
}

int config_check_value(enum cfg_type type, const char *choices, uint64_t min, uint64_t max,
		       const char *value)
{
	uint64_t n;
	bool b;

	switch (type) {
	case CFG_STRING:
		return 0;
	case CFG_PATH:
		return value[0] ? 0 : -EINVAL;
	case CFG_BOOL:
		return cfg_parse_bool(value, &b);
	case CFG_INT:
		if (cfg_parse_u64(value, &n))
			return -EINVAL;
		return n < min || (max && n > max) ? -EINVAL : 0;
	case CFG_SIZE:
		return cfg_parse_size(value, &n);
	case CFG_MEMSIZE:
		if (cfg_parse_memsize(value, &n) || n == 0)
			return -EINVAL;
		return 0;
	case CFG_ENUM:
		return check_enum(choices, value) ? 0 : -EINVAL;
	case CFG_UUID:
		return check_uuid(value) ? 0 : -EINVAL;
	case CFG_CPUSET:
		return check_cpuset(value, max) ? 0 : -EINVAL;
	case CFG_PCIREG:
		if (strcmp(value, "host") == 0)
			return 0;
		if (cfg_parse_u64(value, &n) || n > 0xffff)
			return -EINVAL;
		return 0;
	}
	return -EINVAL;
}
