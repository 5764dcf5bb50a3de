/*
 * virtio_con: the multiport virtio console (virtio 1.2 §5.3) through the interface chosen by
 * "mode=modern|legacy": MULTIPORT negotiated, control queues, DEVICE_READY, PORT_READY for each
 * DEVICE_ADD, PORT_NAME, the port named "port=" (default "port1") opened by the guest; once
 * the host side connects (PORT_OPEN) the guest writes "hello from virtio-console port NAME"
 * and expects a line back that contains "expect=" (default "pong"). Ports 0-3 only.
 */
#include "virtio.h"

#define F_MULTIPORT 1
#define E_DEVICE_READY 0
#define E_DEVICE_ADD 1
#define E_PORT_READY 3
#define E_CONSOLE_PORT 4
#define E_PORT_OPEN 6
#define E_PORT_NAME 7
#define MAX_PORTS 4
#define NBUF 4
#define BUFSZ 128
#define CTRL_RX 2
#define CTRL_TX 3
#define TIMEOUT_US 10000000

struct ctrl {
	uint32_t id;
	uint16_t event, value;
} __attribute__((packed));

static struct vio_dev dev;
/* Receive buffers: [queue][buffer]; heads remembered to find the buffer of a used id. */
static uint8_t rxbuf[VIO_MAX_QUEUES][NBUF][BUFSZ] __attribute__((aligned(64)));
static int rxhead[VIO_MAX_QUEUES][NBUF];
static char names[MAX_PORTS][32];
static bool added[MAX_PORTS], host_open[MAX_PORTS];
static char line[256];
static int line_len;
static int nports;

static int rxq(int port)
{
	return port == 0 ? 0 : 2 * port + 2;
}

static void post_rx(int q, int i)
{
	struct vio_buf b = { rxbuf[q][i], BUFSZ, true };
	rxhead[q][i] = vio_add(&dev, q, &b, 1, false);
}

static int send_ctrl(uint32_t id, uint16_t event, uint16_t value)
{
	static struct ctrl m;
	m = (struct ctrl){ id, event, value };
	struct vio_buf b = { &m, sizeof(m), false };
	return vio_xfer(&dev, CTRL_TX, &b, 1, TIMEOUT_US) < 0 ? -1 : 0;
}

static void control(const uint8_t *p, uint32_t len)
{
	if (len < sizeof(struct ctrl)) {
		printf("# short control message (%u bytes)\n", len);
		return;
	}
	struct ctrl m;
	memcpy(&m, p, sizeof(m));
	if (m.id >= MAX_PORTS) {
		printf("# control event %u for port %u ignored\n", m.event, m.id);
		return;
	}
	switch (m.event) {
	case E_DEVICE_ADD:
		added[m.id] = true;
		printf("# port %u added\n", m.id);
		send_ctrl(m.id, E_PORT_READY, 1);
		break;
	case E_PORT_NAME: {
		uint32_t n = len - (uint32_t)sizeof(m);
		if (n >= sizeof(names[0]))
			n = sizeof(names[0]) - 1;
		memcpy(names[m.id], p + sizeof(m), n);
		names[m.id][n] = 0;
		printf("# port %u named '%s'\n", m.id, names[m.id]);
		break;
	}
	case E_PORT_OPEN:
		host_open[m.id] = m.value != 0;
		printf("# port %u host side %s\n", m.id, m.value ? "open" : "closed");
		break;
	case E_CONSOLE_PORT:
		printf("# port %u is a console port\n", m.id);
		break;
	default:
		printf("# control event %u for port %u (value %u)\n", m.event, m.id, m.value);
		break;
	}
}

/* Handle whatever the device returned on the control queue and on port `port`'s rx queue. */
static void poll_once(int port)
{
	int qs[2] = { CTRL_RX, port >= 0 ? rxq(port) : -1 };
	for (int k = 0; k < 2; k++) {
		int q = qs[k];
		if (q < 0 || !dev.q[q].ready)
			continue;
		uint32_t id, len;
		while (vio_get(&dev, q, &id, &len)) {
			int i = 0;
			while (i < NBUF && rxhead[q][i] != (int)id)
				i++;
			if (i == NBUF) {
				not_ok("used-id", "queue %d returned unknown id %u", q, id);
				finish();
			}
			if (len > BUFSZ) {
				not_ok("used-length", "queue %d: used length %u > %u", q, len, BUFSZ);
				len = BUFSZ;
			}
			if (q == CTRL_RX) {
				control(rxbuf[q][i], len);
			} else {
				for (uint32_t j = 0; j < len && line_len + 1 < (int)sizeof(line); j++)
					line[line_len++] = (char)rxbuf[q][i][j];
				line[line_len] = 0;
			}
			post_rx(q, i);
			vio_kick(&dev, q);
		}
	}
}

static int find_port(const char *name)
{
	for (int i = 0; i < nports; i++)
		if (added[i] && !strncmp(names[i], name, sizeof(names[0])))
			return i;
	return -1;
}

static bool has_text(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++)
		if (!strncmp(hay, needle, n))
			return true;
	return false;
}

void test_main(void)
{
	char want[32], expect[32];
	if (!cmdline_get("port", want, sizeof(want)))
		memcpy(want, "port1", 6);
	if (!cmdline_get("expect", expect, sizeof(expect)))
		memcpy(expect, "pong", 5);
	if (vio_find(&dev, VIRTIO_ID_CONSOLE, vio_cmdline_mode(), 0)) {
		not_ok("find-device", "no virtio-console device");
		finish();
	}
	ok("find-device");
	uint16_t subsys = pci_read16(0, dev.slot, dev.fn, 0x2e);
	if (dev.device_id == 0x1003)
		check(dev.revision == 0 && subsys == VIRTIO_ID_CONSOLE, "pci-ids",
		      "transitional device: revision %u (want 0), subsystem %x (want 3)",
		      dev.revision, subsys);
	else
		check(dev.revision >= 1, "pci-ids", "non-transitional device: revision %u", dev.revision);
	uint64_t feat = 1ull << F_MULTIPORT;
	if (cmdline_num("evidx", 1))
		feat |= 1ull << VIRTIO_F_EVENT_IDX;
	if (vio_init(&dev, feat)) {
		not_ok("negotiate", "feature negotiation failed");
		finish();
	}
	if (!(dev.drv_features & (1ull << F_MULTIPORT))) {
		not_ok("multiport", "VIRTIO_CONSOLE_F_MULTIPORT not offered");
		finish();
	}
	ok("multiport");
	uint32_t max = vio_cfg32(&dev, 4);
	printf("# max_nr_ports %u\n", max);
	check(max >= 1 && max <= 0x8000, "max-nr-ports", "max_nr_ports %u", max);
	nports = max < MAX_PORTS ? (int)max : MAX_PORTS;
	int bad = 0;
	for (int p = 0; p < nports; p++)
		bad += vio_queue_setup(&dev, rxq(p), 64) + vio_queue_setup(&dev, rxq(p) + 1, 64);
	bad += vio_queue_setup(&dev, CTRL_RX, 64) + vio_queue_setup(&dev, CTRL_TX, 64);
	if (bad) {
		not_ok("queue-setup", "%d queues could not be set up", -bad);
		finish();
	}
	for (int p = 0; p < nports; p++)
		for (int i = 0; i < NBUF; i++)
			post_rx(rxq(p), i);
	for (int i = 0; i < NBUF; i++)
		post_rx(CTRL_RX, i);
	vio_driver_ok(&dev);
	for (int p = 0; p < nports; p++)
		vio_kick(&dev, rxq(p));
	vio_kick(&dev, CTRL_RX);
	check(!send_ctrl(0, E_DEVICE_READY, 1), "device-ready", "control message not consumed");

	int port = -1;
	uint64_t end = tsc_deadline(5000000);
	while (port < 0 && (int64_t)(rdtsc() - end) < 0) {
		poll_once(-1);
		port = find_port(want);
	}
	if (port < 0) {
		not_ok("port-found", "no port named '%s'", want);
		finish();
	}
	ok("port-found");
	check(!send_ctrl((uint32_t)port, E_PORT_OPEN, 1), "port-open", "control message not consumed");

	end = tsc_deadline(60000000);
	while (!host_open[port] && (int64_t)(rdtsc() - end) < 0)
		poll_once(port);
	if (!host_open[port]) {
		not_ok("host-connected", "no PORT_OPEN from the host in 60 s");
		finish();
	}
	ok("host-connected");

	static char msg[80];
	int n = snprintf(msg, sizeof(msg), "hello from virtio-console port %s\n", want);
	struct vio_buf b = { msg, (uint32_t)n, false };
	int64_t used = vio_xfer(&dev, rxq(port) + 1, &b, 1, TIMEOUT_US);
	check(used >= 0, "write-line", "transmit buffer not returned");

	end = tsc_deadline(30000000);
	while ((int64_t)(rdtsc() - end) < 0) {
		poll_once(port);
		bool nl = false;
		for (int i = 0; i < line_len; i++)
			nl |= line[i] == '\n';
		if (nl)
			break;
	}
	for (int i = 0; i < line_len; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	printf("# received '%s'\n", line);
	check(has_text(line, expect), "read-reply", "no '%s' in what came back", expect);
	check(!vio_broken(&dev), "device-healthy", "status %x", vio_status(&dev));
	vio_reset(&dev);
	finish();
}
