/*
 * pci.h: conventional PCI on bus 0..255 through configuration mechanism #1 (0xCF8/0xCFC),
 * 256-byte type-0 config spaces, BAR sizing and placement, capability lists, INTx routed to
 * IOAPIC pins 16-23 (and to PIC IRQs through the PIIX PIRQ registers in lpc), MSI.
 * PCI Local Bus Specification 3.0 ch. 6; PCI Firmware Specification for routing.
 */
#ifndef KHYVE_PCI_H
#define KHYVE_PCI_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct cfg_node;
struct pci_dev;

enum pci_bar_type { PCI_BAR_NONE, PCI_BAR_IO, PCI_BAR_MEM32, PCI_BAR_MEM64 };

/* Device hooks: all optional. Config hooks see the raw access and may fall back to the core. */
struct pci_dev_ops {
	/* BAR access: offset within the BAR. */
	void (*bar_read)(struct pci_dev *pdev, int bar, uint64_t offset, unsigned size,
			 uint64_t *val);
	void (*bar_write)(struct pci_dev *pdev, int bar, uint64_t offset, unsigned size,
			  uint64_t val);
	/* Return true when handled; false lets the core use its byte array. */
	bool (*cfg_read)(struct pci_dev *pdev, unsigned offset, unsigned size, uint32_t *val);
	bool (*cfg_write)(struct pci_dev *pdev, unsigned offset, unsigned size, uint32_t val);
	void (*reset)(struct pci_dev *pdev);
	void (*destroy)(struct pci_dev *pdev);
	/*
	 * Additive: BAR `bar` started (mapped) or stopped decoding at guest address `addr`
	 * (placement, guest relocation, command register). Called with the bus's config lock.
	 */
	void (*bar_mapped)(struct pci_dev *pdev, int bar, uint64_t addr, bool mapped);
};

struct pci_bar {
	enum pci_bar_type type;
	uint64_t size;
	uint64_t addr;		/* current assignment (guest may move it) */
	bool registered;
};

struct pci_dev {
	struct vm *vm;
	uint8_t bus, slot, func;
	uint8_t cfg[256];
	uint8_t cfg_wmask[256];	/* bits the guest may write in the byte array */
	struct pci_bar bar[6];
	const struct pci_dev_ops *ops;
	void *priv;
	const char *name;
	int intx_pin;		/* 1..4 = INTA..INTD, 0 none */
	int intx_gsi;		/* routed GSI, -1 none */
	bool intx_asserted;
};

/* Set the identity in config space. */
void pci_set_ids(struct pci_dev *pdev, uint16_t vendor, uint16_t device, uint8_t revision,
		 uint8_t class_code, uint8_t subclass, uint8_t prog_if);
void pci_set_subsystem(struct pci_dev *pdev, uint16_t subvendor, uint16_t subdevice);
/* Declare BAR `idx` (size a power of two); the core assigns an address. 0 or -errno. */
int pci_add_bar(struct pci_dev *pdev, int idx, enum pci_bar_type type, uint64_t size);
/* Append a capability (cap[0] = ID; the core links cap[1]). Returns its offset or -ENOSPC. */
int pci_add_capability(struct pci_dev *pdev, const uint8_t *cap, unsigned len);
/*
 * MSI (PCI 3.0 §6.8.1): one 64-bit-address capability with a single message; the guest's
 * writes to it go to the core's byte array. pci_msi_add returns the capability offset or
 * -errno; pci_msi_enabled tells whether the guest turned it on; pci_msi_notify sends the
 * message (false when MSI is off: use INTx then).
 */
int pci_msi_add(struct pci_dev *pdev);
bool pci_msi_enabled(const struct pci_dev *pdev);
bool pci_msi_notify(struct pci_dev *pdev);
/*
 * MSI-X (PCI 3.0 §6.8.2): pci_msix_add appends the capability and declares BAR `bar` as a
 * 32-bit memory BAR that the core serves itself: the table (nvec 16-byte entries, all masked
 * at reset) at offset 0 and the pending-bit array after it. Returns the capability offset or
 * -errno. pci_msix_notify sends vector `vec`, or sets its pending bit while the vector or the
 * function is masked (sent on unmask); 0, or -EINVAL when MSI-X is off or vec is out of range.
 * pci_msix_entry reads an entry (for irqfd routing). Any thread.
 */
int pci_msix_add(struct pci_dev *pdev, int bar, unsigned nvec);
bool pci_msix_enabled(const struct pci_dev *pdev);
unsigned pci_msix_count(const struct pci_dev *pdev);
int pci_msix_notify(struct pci_dev *pdev, unsigned vec);
int pci_msix_entry(struct pci_dev *pdev, unsigned vec, uint64_t *addr, uint32_t *data,
		   bool *masked);
/* Ask for an INTx line (pin INTA); routed by slot. */
int pci_intx_request(struct pci_dev *pdev);
void pci_intx_assert(struct pci_dev *pdev);
void pci_intx_deassert(struct pci_dev *pdev);

/* Config-space helpers for devices. */
static inline uint16_t pci_cfg_read16(const struct pci_dev *p, unsigned off)
{
	return (uint16_t)(p->cfg[off] | p->cfg[off + 1] << 8);
}
static inline void pci_cfg_write16(struct pci_dev *p, unsigned off, uint16_t v)
{
	p->cfg[off] = (uint8_t)v;
	p->cfg[off + 1] = (uint8_t)(v >> 8);
}

/*
 * Accelerator notifiers the machine may offer devices (KVM's ioeventfd and irqfd, see
 * accel.h); a member left NULL, or no notifiers at all (the software CPU, unit tests), means
 * devices keep the direct paths. vm.c sets them right after pci_bus_create, before devices
 * are added. pci_notifiers() returns the bus's set or NULL.
 */
struct pci_notifiers {
	void *opaque;
	int (*ioeventfd)(void *opaque, bool mmio, uint64_t addr, unsigned len, int fd,
			 bool assign);
	int (*irqfd_msi)(void *opaque, int fd, uint64_t addr, uint32_t data);
	int (*irqfd_update)(void *opaque, int handle, uint64_t addr, uint32_t data);
	int (*irqfd_remove)(void *opaque, int fd, int handle);
};

/* Machine side: create the PCI bus and its 0xCF8/0xCFC ports, then add devices from config. */
struct pci_bus;
int pci_bus_create(struct vm *vm, struct pci_bus **out);
/* Add a device at B:S:F; returns the zeroed pci_dev for the model's init to fill. */
int pci_bus_add(struct pci_bus *bus, uint8_t b, uint8_t s, uint8_t f, struct pci_dev **out);
/* After all devices: assign BARs and register them on the io bus. */
int pci_bus_finalize(struct pci_bus *bus);
void pci_bus_reset(struct pci_bus *bus);
void pci_bus_set_notifiers(struct pci_bus *bus, const struct pci_notifiers *n);
const struct pci_notifiers *pci_notifiers(const struct pci_dev *pdev);
void pci_bus_destroy(struct pci_bus *bus);
/*
 * For the MP/ACPI tables: iterate devices with an INTx line; pin is 1..4 (INTA..INTD), gsi the
 * IOAPIC input. Routing follows the i440FX firmware rule: link (slot + pin - 2) mod 4, and
 * links A-D are GSIs 16-19 (PIC IRQs through the PIIX3 PIRQ registers).
 */
int pci_bus_intx_routes(struct pci_bus *bus, void (*fn)(void *opaque, uint8_t b, uint8_t s,
							uint8_t pin, int gsi), void *opaque);

/*
 * The PCI-ISA bridge (lpc.c) claims the bus's PIRQ routing: -EBUSY when another bridge has it.
 * pci_pirq_set() then takes a guest write to PIRQRC[link] (PIIX3 0x60-0x63): bit 7 set
 * disables the link's PIC routing, bits 3:0 give the PIC IRQ.
 */
int pci_pirq_attach(struct pci_dev *bridge);
void pci_pirq_set(struct pci_dev *bridge, int link, uint8_t route);

/* Window the core assigns BARs from (also what the ACPI _CRS should describe). */
#define PCI_IO_WINDOW_BASE 0x2000
#define PCI_IO_WINDOW_END 0x10000
#define PCI_MEM32_WINDOW_BASE 0xc0000000ULL
#define PCI_MEM32_WINDOW_END 0xfec00000ULL
#define PCI_INTX_GSI_BASE 16

#endif
