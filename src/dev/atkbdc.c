/*
 * atkbdc.c: the Intel 8042 keyboard controller as PCs use it (IBM PC/AT Technical Reference,
 * "Keyboard Controller"): status register, command byte (0x20/0x60), self-tests (0xAA -> 0x55,
 * 0xAB/0xA9 -> 0), port enables, output port (0xD0/0xD1; bit 0 low resets), pulse commands
 * (0xFE and any 0xF0-0xFF with bit 0 clear reset the machine: exit code 0), the A20 commands
 * (accepted; A20 is always on), and 0xD2/0xD3 echoes. No keyboard or mouse is attached yet:
 * bytes sent to them get no answer, which PS/2 drivers take as "no device".
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "dev/atkbdc.h"
#include "vmm/io_bus.h"
#include "vmm/vm.h"

#define KBC_DATA_PORT 0x60
#define KBC_CMD_PORT 0x64

#define KBS_OBF 0x01
#define KBS_SYS 0x04
#define KBS_CMD 0x08	/* last write was to the command port */
#define KBS_UNLOCKED 0x10
#define KBS_AUX_OBF 0x20

#define KBC_CB_KBD_INT 0x01
#define KBC_CB_AUX_INT 0x02
#define KBC_CB_SYS 0x04
#define KBC_CB_KBD_DIS 0x10
#define KBC_CB_AUX_DIS 0x20
#define KBC_CB_XLATE 0x40

#define KBC_OUT_RESET 0x01	/* active low */
#define KBC_OUT_A20 0x02

#define KBC_QUEUE 16
#define KBC_IRQ_KBD 1
#define KBC_IRQ_AUX 12

struct kbc_byte {
	uint8_t v;
	bool aux;
};

struct atkbdc {
	struct vm *vm;
	pthread_mutex_t lock;
	uint8_t status, cmd_byte, outport;
	uint8_t pending;	/* command waiting for its data byte, 0 none */
	struct kbc_byte q[KBC_QUEUE];
	unsigned qhead, qlen;
	int irq_line;		/* ISA line asserted for the head byte, 0 none */
};

/* Lock held: assert the line for the byte at the head of the output buffer. */
static void kbc_update_irq(struct atkbdc *kbc)
{
	int want = 0;

	if (kbc->qlen) {
		bool aux = kbc->q[kbc->qhead].aux;

		if (aux && (kbc->cmd_byte & KBC_CB_AUX_INT))
			want = KBC_IRQ_AUX;
		else if (!aux && (kbc->cmd_byte & KBC_CB_KBD_INT))
			want = KBC_IRQ_KBD;
	}
	if (want == kbc->irq_line)
		return;
	if (kbc->irq_line)
		vm_irq_deassert(kbc->vm, (unsigned)kbc->irq_line);
	if (want)
		vm_irq_assert(kbc->vm, (unsigned)want);
	kbc->irq_line = want;
}

static void kbc_push(struct atkbdc *kbc, uint8_t v, bool aux)
{
	if (kbc->qlen == KBC_QUEUE)
		return;
	kbc->q[(kbc->qhead + kbc->qlen) % KBC_QUEUE] = (struct kbc_byte){ v, aux };
	kbc->qlen++;
}

static uint8_t kbc_status(const struct atkbdc *kbc)
{
	uint8_t s = kbc->status;

	if (kbc->qlen) {
		s |= KBS_OBF;
		if (kbc->q[kbc->qhead].aux)
			s |= KBS_AUX_OBF;
	}
	return s;
}

static void kbc_command(struct atkbdc *kbc, uint8_t cmd)
{
	kbc->status |= KBS_CMD;
	switch (cmd) {
	case 0x20:	/* read command byte */
		kbc_push(kbc, kbc->cmd_byte, false);
		break;
	case 0x60: case 0xd1: case 0xd2: case 0xd3: case 0xd4:
		kbc->pending = cmd;
		break;
	case 0xa7:
		kbc->cmd_byte |= KBC_CB_AUX_DIS;
		break;
	case 0xa8:
		kbc->cmd_byte &= (uint8_t)~KBC_CB_AUX_DIS;
		break;
	case 0xa9:	/* aux interface test: OK */
	case 0xab:	/* keyboard interface test: OK */
		kbc_push(kbc, 0x00, false);
		break;
	case 0xaa:	/* controller self-test */
		kbc->status |= KBS_SYS;
		kbc->cmd_byte |= KBC_CB_SYS;
		kbc_push(kbc, 0x55, false);
		break;
	case 0xad:
		kbc->cmd_byte |= KBC_CB_KBD_DIS;
		break;
	case 0xae:
		kbc->cmd_byte &= (uint8_t)~KBC_CB_KBD_DIS;
		break;
	case 0xc0:	/* read input port: keyboard not inhibited */
		kbc_push(kbc, 0x80, false);
		break;
	case 0xd0:
		kbc_push(kbc, kbc->outport, false);
		break;
	case 0xdd:	/* A20 off / on (HP Vectra): A20 stays on */
	case 0xdf:
		break;
	default:
		if (cmd >= 0xf0 && !(cmd & 0x01))
			vm_request_exit(kbc->vm, VM_EXIT_RESET);	/* pulse the reset line */
		break;
	}
}

static void kbc_data(struct atkbdc *kbc, uint8_t v)
{
	uint8_t cmd = kbc->pending;

	kbc->status &= (uint8_t)~KBS_CMD;
	kbc->pending = 0;
	switch (cmd) {
	case 0x60:
		kbc->cmd_byte = v;
		if (v & KBC_CB_SYS)
			kbc->status |= KBS_SYS;
		else
			kbc->status &= (uint8_t)~KBS_SYS;
		break;
	case 0xd1:
		kbc->outport = (uint8_t)(v | KBC_OUT_A20);
		if (!(v & KBC_OUT_RESET))
			vm_request_exit(kbc->vm, VM_EXIT_RESET);
		break;
	case 0xd2:
		kbc_push(kbc, v, false);
		break;
	case 0xd3:
		kbc_push(kbc, v, true);
		break;
	default:
		/* 0xd4 (to the mouse) or a byte for the keyboard: nothing is attached. */
		break;
	}
}

static void kbc_io(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val,
		   bool cmd_port)
{
	struct atkbdc *kbc = opaque;

	pthread_mutex_lock(&kbc->lock);
	if (cmd_port) {
		if (write)
			kbc_command(kbc, (uint8_t)*val);
		else
			*val = kbc_status(kbc);
	} else if (write) {
		kbc_data(kbc, (uint8_t)*val);
	} else if (kbc->qlen) {
		*val = kbc->q[kbc->qhead].v;
		kbc->qhead = (kbc->qhead + 1) % KBC_QUEUE;
		kbc->qlen--;
	} else {
		*val = 0;
	}
	kbc_update_irq(kbc);
	pthread_mutex_unlock(&kbc->lock);
}

static void kbc_data_io(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val)
{
	kbc_io(opaque, offset, size, write, val, false);
}

static void kbc_cmd_io(void *opaque, uint64_t offset, unsigned size, bool write, uint64_t *val)
{
	kbc_io(opaque, offset, size, write, val, true);
}

int atkbdc_create(struct vm *vm, struct atkbdc **out)
{
	struct atkbdc *kbc = calloc(1, sizeof *kbc);
	int ret;

	*out = NULL;
	if (!kbc)
		return -ENOMEM;
	kbc->vm = vm;
	pthread_mutex_init(&kbc->lock, NULL);
	kbc->status = KBS_UNLOCKED | KBS_SYS;
	kbc->cmd_byte = KBC_CB_XLATE | KBC_CB_SYS | KBC_CB_KBD_INT;
	kbc->outport = KBC_OUT_RESET | KBC_OUT_A20;
	ret = io_bus_register(vm_io(vm), IO_SPACE_PIO, KBC_DATA_PORT, 1, kbc_data_io, kbc,
			      "atkbdc-data");
	if (ret == 0) {
		ret = io_bus_register(vm_io(vm), IO_SPACE_PIO, KBC_CMD_PORT, 1, kbc_cmd_io, kbc,
				      "atkbdc-cmd");
		if (ret < 0)
			io_bus_unregister(vm_io(vm), IO_SPACE_PIO, KBC_DATA_PORT);
	}
	if (ret < 0) {
		pthread_mutex_destroy(&kbc->lock);
		free(kbc);
		return ret;
	}
	*out = kbc;
	return 0;
}

void atkbdc_destroy(struct atkbdc *kbc)
{
	if (!kbc)
		return;
	io_bus_unregister(vm_io(kbc->vm), IO_SPACE_PIO, KBC_DATA_PORT);
	io_bus_unregister(vm_io(kbc->vm), IO_SPACE_PIO, KBC_CMD_PORT);
	if (kbc->irq_line)
		vm_irq_deassert(kbc->vm, (unsigned)kbc->irq_line);
	pthread_mutex_destroy(&kbc->lock);
	free(kbc);
}
