/*
 * virtio_console.c: the multiport virtio console (virtio 1.2 §5.3), bhyve's
 * `-s N,virtio-console,name1=/sock1[,name2=/sock2...]`: each port is a Unix stream socket
 * khyve listens on (one client at a time, a second one is turned away), named to the guest
 * through the control queues (DEVICE_ADD, PORT_NAME, PORT_OPEN). Data moves on the event
 * loop (host to guest) and on the notifying thread (guest to host, never blocking). Left out:
 * console ports and resize (F_SIZE), emergency write, hot-unplug.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config/config.h"
#include "dev/virtio_console.h"
#include "pci/pci.h"
#include "util/event_loop.h"
#include "virtio/virtio_pci.h"
#include "vmm/guest_mem.h"
#include "vmm/vm.h"

#define VIRTIO_CONSOLE_F_MULTIPORT 1

#define VCON_DEVICE_READY 0
#define VCON_DEVICE_ADD 1
#define VCON_PORT_READY 3
#define VCON_PORT_OPEN 6
#define VCON_PORT_NAME 7

#define VCON_MAX_PORTS 16
#define VCON_QUEUE_SIZE 64
#define VCON_CTRL_RX 2
#define VCON_CTRL_TX 3
#define VCON_CTRL_MAX 64	/* control messages waiting for guest buffers */
#define VCON_NAME_MAX 128

struct vcon;

struct vcon_port {
	struct vcon *dev;
	unsigned id;
	char name[VCON_NAME_MAX];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int listen_fd, conn_fd;
	uint32_t watching;	/* epoll events registered for conn_fd */
	bool ready;		/* the guest sent PORT_READY (always true without MULTIPORT) */
	bool tx_pending;	/* txc is partly written: waiting for EPOLLOUT */
	size_t tx_off;
	struct virtq_chain txc;
};

struct vcon_msg {
	uint32_t len;
	uint8_t data[8 + VCON_NAME_MAX];
};

struct vcon {
	struct virtio_dev vd;
	struct event_loop *loop;
	unsigned nports;
	struct vcon_port ports[VCON_MAX_PORTS];
	struct vcon_msg ctrl[VCON_CTRL_MAX];
	unsigned ctrl_head, ctrl_count;
	struct virtq_chain chain;	/* scratch, under vd.lock */
};

static unsigned vcon_rxq(unsigned port)
{
	return port == 0 ? 0 : 2 + 2 * port;
}

static bool vcon_multiport(const struct vcon *dev)
{
	return virtio_has(&dev->vd, VIRTIO_CONSOLE_F_MULTIPORT);
}

/* ---- control queue (device to driver) ---- */

/* vd.lock held: hand queued control messages to the driver's buffers. */
static void vcon_ctrl_flush(struct vcon *dev)
{
	struct virtq *vq = &dev->vd.queues[VCON_CTRL_RX].vq;
	bool pushed = false;

	while (dev->ctrl_count && virtio_running(&dev->vd)) {
		struct vcon_msg *m = &dev->ctrl[dev->ctrl_head];
		uint32_t done = 0;
		int ret = virtq_pop(vq, &dev->chain);

		if (ret < 0) {
			virtio_needs_reset(&dev->vd, vq->why);
			break;
		}
		if (ret == 0)
			break;
		for (unsigned i = dev->chain.nout; i < dev->chain.nout + dev->chain.nin &&
						     done < m->len; i++) {
			uint32_t k = m->len - done;

			if (k > dev->chain.iov[i].iov_len)
				k = (uint32_t)dev->chain.iov[i].iov_len;
			memcpy(dev->chain.iov[i].iov_base, m->data + done, k);
			done += k;
		}
		virtq_push(vq, dev->chain.head, done);
		pushed = true;
		dev->ctrl_head = (dev->ctrl_head + 1) % VCON_CTRL_MAX;
		dev->ctrl_count--;
	}
	if (pushed)
		virtio_queue_interrupt(&dev->vd, VCON_CTRL_RX);
}

/* vd.lock held: queue a control message {id, event, value} with an optional name. */
static void vcon_ctrl_send(struct vcon *dev, uint32_t id, uint16_t event, uint16_t value,
			   const char *name)
{
	struct vcon_msg *m;
	size_t n = name ? strlen(name) : 0;

	if (!vcon_multiport(dev) || dev->ctrl_count == VCON_CTRL_MAX)
		return;
	m = &dev->ctrl[(dev->ctrl_head + dev->ctrl_count++) % VCON_CTRL_MAX];
	memcpy(m->data, &id, 4);
	memcpy(m->data + 4, &event, 2);
	memcpy(m->data + 6, &value, 2);
	memcpy(m->data + 8, name ? name : "", n);
	m->len = (uint32_t)(8 + n);
	vcon_ctrl_flush(dev);
}

/* ---- sockets ---- */

static void vcon_conn_event(void *opaque, int fd, uint32_t events);

/* vd.lock held: register conn_fd for what the port waits for now. */
static void vcon_watch(struct vcon_port *p)
{
	uint32_t want = 0;

	if (p->conn_fd < 0 || !p->dev->loop)
		return;
	if (p->ready && virtio_running(&p->dev->vd))
		want |= EPOLLIN;
	if (p->tx_pending)
		want |= EPOLLOUT;
	if (want == p->watching)
		return;
	if (p->watching)
		evl_del_fd(p->dev->loop, p->conn_fd);
	p->watching = 0;
	if (want && evl_add_fd(p->dev->loop, p->conn_fd, want, vcon_conn_event, p) == 0)
		p->watching = want;
}

/* vd.lock held: the client went away. */
static void vcon_disconnect(struct vcon_port *p)
{
	if (p->conn_fd < 0)
		return;
	if (p->watching)
		evl_del_fd(p->dev->loop, p->conn_fd);
	p->watching = 0;
	close(p->conn_fd);
	p->conn_fd = -1;
	if (p->tx_pending) {
		struct virtq *vq = &p->dev->vd.queues[vcon_rxq(p->id) + 1].vq;

		p->tx_pending = false;
		virtq_push(vq, p->txc.head, 0);
		virtio_queue_interrupt(&p->dev->vd, vcon_rxq(p->id) + 1);
	}
	if (p->ready)
		vcon_ctrl_send(p->dev, p->id, VCON_PORT_OPEN, 0, NULL);
}

/* vd.lock held: write what remains of p->txc; false when the socket is full. */
static bool vcon_tx_write(struct vcon_port *p)
{
	struct virtq_chain *c = &p->txc;
	size_t skip = p->tx_off;

	for (unsigned i = 0; i < c->nout; i++) {
		const uint8_t *b = c->iov[i].iov_base;
		size_t len = c->iov[i].iov_len;

		if (skip >= len) {
			skip -= len;
			continue;
		}
		while (skip < len) {
			ssize_t n;

			if (p->conn_fd < 0)
				return true;	/* nobody listens: the data is dropped, as bhyve */
			n = send(p->conn_fd, b + skip, len - skip, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return false;
			if (n <= 0) {
				vcon_disconnect(p);
				return true;
			}
			skip += (size_t)n;
			p->tx_off += (size_t)n;
		}
		skip = 0;
	}
	return true;
}

/* vd.lock held: move guest output to the socket until it is full or the queue empty. */
static void vcon_tx(struct vcon_port *p)
{
	unsigned q = vcon_rxq(p->id) + 1;
	struct virtq *vq = &p->dev->vd.queues[q].vq;
	bool pushed = false;

	for (;;) {
		int ret;

		if (!p->tx_pending) {
			if (!virtio_running(&p->dev->vd))
				break;
			ret = virtq_pop(vq, &p->txc);
			if (ret < 0) {
				virtio_needs_reset(&p->dev->vd, vq->why);
				break;
			}
			if (ret == 0)
				break;
			p->tx_pending = true;
			p->tx_off = 0;
		}
		if (!vcon_tx_write(p))
			break;
		if (p->tx_pending) {
			p->tx_pending = false;
			virtq_push(vq, p->txc.head, 0);
			pushed = true;
		}
	}
	if (pushed)
		virtio_queue_interrupt(&p->dev->vd, q);
	vcon_watch(p);
}

/* vd.lock held: move client input into the guest's receive buffers. */
static void vcon_rx(struct vcon_port *p)
{
	unsigned q = vcon_rxq(p->id);
	struct vcon *dev = p->dev;
	struct virtq *vq = &dev->vd.queues[q].vq;
	bool pushed = false;

	while (p->conn_fd >= 0 && p->ready && virtio_running(&dev->vd)) {
		int avail = 0, ret;
		ssize_t n;

		if (ioctl(p->conn_fd, FIONREAD, &avail) < 0 || avail <= 0) {
			char c;

			/* Nothing buffered: either EOF (the client left) or just no data yet. */
			n = recv(p->conn_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				vcon_disconnect(p);
			break;
		}
		ret = virtq_pop(vq, &dev->chain);
		if (ret < 0) {
			virtio_needs_reset(&dev->vd, vq->why);
			break;
		}
		if (ret == 0) {
			/* No buffers: stop watching until the driver adds some (rx notify). */
			if (virtq_set_notify(vq, true))
				continue;
			if (p->watching & EPOLLIN) {
				evl_del_fd(dev->loop, p->conn_fd);
				p->watching = 0;
				if (p->tx_pending && evl_add_fd(dev->loop, p->conn_fd, EPOLLOUT,
								vcon_conn_event, p) == 0)
					p->watching = EPOLLOUT;
			}
			goto out;
		}
		n = readv(p->conn_fd, &dev->chain.iov[dev->chain.nout], dev->chain.nin);
		if (n < 0)
			n = 0;
		for (unsigned i = dev->chain.nout; n && i < dev->chain.nout + dev->chain.nin; i++)
			gm_ptr(vm_mem(dev->vd.pdev->vm), dev->chain.gpa[i], dev->chain.iov[i].iov_len,
			       true);
		virtq_push(vq, dev->chain.head, (uint32_t)n);
		pushed = true;
	}
	vcon_watch(p);
out:
	if (pushed)
		virtio_queue_interrupt(&dev->vd, q);
}

static void vcon_conn_event(void *opaque, int fd, uint32_t events)
{
	struct vcon_port *p = opaque;

	pthread_mutex_lock(&p->dev->vd.lock);
	if (p->conn_fd == fd && p->tx_pending && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
		vcon_tx(p);
	if (p->conn_fd == fd && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		if (p->watching & EPOLLIN) {
			vcon_rx(p);
		} else if (p->watching) {
			/* A hang-up we cannot act on yet: park until the port can read again. */
			evl_del_fd(p->dev->loop, fd);
			p->watching = 0;
		}
	}
	pthread_mutex_unlock(&p->dev->vd.lock);
}

static void vcon_accept(void *opaque, int fd, uint32_t events)
{
	struct vcon_port *p = opaque;
	int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (c < 0)
		return;
	pthread_mutex_lock(&p->dev->vd.lock);
	if (p->conn_fd >= 0) {
		close(c);	/* one client at a time */
	} else {
		p->conn_fd = c;
		p->watching = 0;
		if (p->ready)
			vcon_ctrl_send(p->dev, p->id, VCON_PORT_OPEN, 1, NULL);
		vcon_watch(p);
	}
	pthread_mutex_unlock(&p->dev->vd.lock);
}

/* ---- driver side ---- */

/* vd.lock held: a control message from the driver. */
static void vcon_control(struct vcon *dev, const uint8_t *msg, uint32_t len)
{
	uint32_t id;
	uint16_t event, value;
	struct vcon_port *p;

	if (len < 8)
		return;
	memcpy(&id, msg, 4);
	memcpy(&event, msg + 4, 2);
	memcpy(&value, msg + 6, 2);
	if (event == VCON_DEVICE_READY) {
		if (value == 1)
			for (unsigned i = 0; i < dev->nports; i++)
				vcon_ctrl_send(dev, i, VCON_DEVICE_ADD, 0, NULL);
		return;
	}
	if (id >= dev->nports)
		return;
	p = &dev->ports[id];
	if (event == VCON_PORT_READY && value == 1 && !p->ready) {
		p->ready = true;
		vcon_ctrl_send(dev, id, VCON_PORT_NAME, 1, p->name);
		if (p->conn_fd >= 0)
			vcon_ctrl_send(dev, id, VCON_PORT_OPEN, 1, NULL);
		vcon_watch(p);
	}
	/* The guest's PORT_OPEN changes nothing here: its driver drops data for closed ports. */
}

static void vcon_notify(struct virtio_dev *vd, unsigned q)
{
	struct vcon *dev = vd->priv;

	pthread_mutex_lock(&vd->lock);
	if (q == VCON_CTRL_RX) {
		vcon_ctrl_flush(dev);
	} else if (q == VCON_CTRL_TX) {
		struct virtq *vq = &vd->queues[q].vq;
		uint8_t msg[8];
		int ret;

		while ((ret = virtq_pop(vq, &dev->chain)) > 0) {
			uint32_t got = 0;

			for (unsigned i = 0; i < dev->chain.nout && got < sizeof msg; i++) {
				uint32_t k = (uint32_t)sizeof msg - got;

				if (k > dev->chain.iov[i].iov_len)
					k = (uint32_t)dev->chain.iov[i].iov_len;
				memcpy(msg + got, dev->chain.iov[i].iov_base, k);
				got += k;
			}
			virtq_push(vq, dev->chain.head, 0);
			vcon_control(dev, msg, got);
		}
		if (ret < 0)
			virtio_needs_reset(vd, vq->why);
		virtio_queue_interrupt(vd, q);
	} else {
		unsigned port = q < 2 ? 0 : (q - 2) / 2;

		if (port < dev->nports) {
			if (q % 2)
				vcon_tx(&dev->ports[port]);
			else
				vcon_watch(&dev->ports[port]);	/* new buffers: read again */
		}
	}
	pthread_mutex_unlock(&vd->lock);
}

static void vcon_driver_ok(struct virtio_dev *vd)
{
	struct vcon *dev = vd->priv;

	/* Without MULTIPORT, port 0 is there from the start (§5.3.6). */
	if (!vcon_multiport(dev) && dev->nports)
		dev->ports[0].ready = true;
	for (unsigned i = 0; i < dev->nports; i++)
		vcon_watch(&dev->ports[i]);
}

static void vcon_reset(struct virtio_dev *vd)
{
	struct vcon *dev = vd->priv;

	dev->ctrl_count = 0;
	for (unsigned i = 0; i < dev->nports; i++) {
		struct vcon_port *p = &dev->ports[i];

		p->ready = p->tx_pending = false;
		if (p->conn_fd >= 0 && p->watching) {
			evl_del_fd(dev->loop, p->conn_fd);
			p->watching = 0;
		}
	}
}

static void vcon_destroy(struct virtio_dev *vd)
{
	struct vcon *dev = vd->priv;

	for (unsigned i = 0; i < dev->nports; i++) {
		struct vcon_port *p = &dev->ports[i];

		if (p->conn_fd >= 0) {
			if (p->watching)
				evl_del_fd(dev->loop, p->conn_fd);
			close(p->conn_fd);
		}
		if (p->listen_fd >= 0) {
			evl_del_fd(dev->loop, p->listen_fd);
			close(p->listen_fd);
		}
	}
	virtio_pci_fini(vd);
	free(dev);
}

static const struct virtio_ops vcon_ops = {
	.notify = vcon_notify,
	.reset = vcon_reset,
	.driver_ok = vcon_driver_ok,
	.destroy = vcon_destroy,
};

/* ---- construction ---- */

static int vcon_listen(struct vcon_port *p, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	memcpy(sa.sun_path, p->path, strlen(p->path) + 1);
	/* A socket left by an earlier run is replaced; any other file is not touched. */
	if (lstat(p->path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(p->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 1) < 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "port %s: cannot listen on %s: %s", p->name, p->path,
			 strerror(e));
		return -e;
	}
	p->listen_fd = fd;
	return 0;
}

static int vcon_fail(struct pci_dev *pdev, struct vcon *dev, int ret, const char *msg)
{
	fprintf(stderr, "khyve: pci %u:%u:%u: virtio-console: %s\n", pdev->bus, pdev->slot,
		pdev->func, msg);
	if (dev) {
		for (unsigned i = 0; i < dev->nports; i++)
			if (dev->ports[i].listen_fd >= 0)
				close(dev->ports[i].listen_fd);
		free(dev);
	}
	return ret;
}

static int vcon_init(struct vm *vm, struct pci_dev *pdev, struct cfg_node *node)
{
	struct virtio_pci_params p = {
		.device_id = 0x1003, .device_type = 3, .class_code = 0x07, .subclass = 0x80,
		.queue_size = VCON_QUEUE_SIZE, .config_size = 12,
		.features = 1ULL << VIRTIO_CONSOLE_F_MULTIPORT,
	};
	struct vcon *dev = calloc(1, sizeof *dev);
	bool msix = true;
	char err[256];
	int ret;

	if (!dev)
		return vcon_fail(pdev, NULL, -ENOMEM, "out of memory");
	dev->loop = vm_event_loop(vm);
	for (unsigned i = 0; i < VCON_MAX_PORTS; i++) {
		dev->ports[i].listen_fd = dev->ports[i].conn_fd = -1;
		dev->ports[i].dev = dev;
		dev->ports[i].id = i;
	}
	if (cfg_get_bool(cfg_root(), "virtio_msix", true, &msix))
		return vcon_fail(pdev, dev, -EINVAL, "bad virtio_msix");
	for (unsigned i = 0; i < VCON_MAX_PORTS; i++) {
		struct vcon_port *pt = &dev->ports[i];
		const char *name, *path;
		char key[32];

		snprintf(key, sizeof key, "port.%u.name", i);
		name = cfg_get(node, key);
		snprintf(key, sizeof key, "port.%u.path", i);
		path = cfg_get(node, key);
		if (!name && !path)
			break;
		if (!name || !path || !*name || strlen(name) >= sizeof pt->name ||
		    strlen(path) >= sizeof pt->path) {
			snprintf(err, sizeof err, "port %u needs a name and a socket path (at most "
				 "%zu characters)", i, sizeof pt->path - 1);
			return vcon_fail(pdev, dev, -EINVAL, err);
		}
		memcpy(pt->name, name, strlen(name) + 1);
		memcpy(pt->path, path, strlen(path) + 1);
		dev->nports++;
		ret = vcon_listen(pt, err, sizeof err);
		if (ret < 0)
			return vcon_fail(pdev, dev, ret, err);
	}
	p.msix = msix;
	p.nqueues = 2 * ((dev->nports ? dev->nports : 1) + 1);
	ret = virtio_pci_init(&dev->vd, pdev, &vcon_ops, &p, dev);
	if (ret < 0)
		return vcon_fail(pdev, dev, ret, "cannot set up the PCI function");
	/* Clients are accepted only once the state the callbacks lock exists. */
	for (unsigned i = 0; dev->loop && i < dev->nports; i++) {
		ret = evl_add_fd(dev->loop, dev->ports[i].listen_fd, EPOLLIN, vcon_accept,
				 &dev->ports[i]);
		if (ret < 0) {
			fprintf(stderr, "khyve: pci %u:%u:%u: virtio-console: cannot watch the port "
				"sockets\n", pdev->bus, pdev->slot, pdev->func);
			return ret;	/* the bus teardown frees the device (ops->destroy) */
		}
	}
	/* cols, rows (no F_SIZE), max_nr_ports, emerg_wr. */
	dev->vd.config[4] = (uint8_t)(dev->nports ? dev->nports : 1);
	return 0;
}

static int vcon_legacy_parse(struct cfg_node *node, const char *opts, char *err,
			     size_t errlen)
{
	char *copy, *rest, *tok;
	unsigned idx = 0;
	int ret = 0;

	if (!opts || !*opts)
		return 0;
	copy = rest = strdup(opts);
	if (!copy)
		return -ENOMEM;
	while (ret == 0 && (tok = strsep(&rest, ",")) != NULL) {
		char *eq = strchr(tok, '=');
		char key[32];

		if (*tok == '\0')
			continue;
		if (!eq || eq == tok || idx >= VCON_MAX_PORTS) {
			snprintf(err, errlen, "expected name=/socket (at most 16 ports): '%s'", tok);
			ret = -EINVAL;
			break;
		}
		*eq = '\0';
		snprintf(key, sizeof key, "port.%u.name", idx);
		if (cfg_set(node, key, tok) < 0)
			ret = -EINVAL;
		snprintf(key, sizeof key, "port.%u.path", idx);
		if (ret == 0 && cfg_set(node, key, eq + 1) < 0)
			ret = -EINVAL;
		idx++;
	}
	free(copy);
	return ret;
}

static const struct device_key vcon_keys[] = {
	{ "port.*", KEY_STRING, NULL, "port.N.name (guest-visible name), port.N.path (socket)" },
	{ NULL, KEY_STRING, NULL, NULL },
};

const struct device_model virtio_console_model = {
	.name = "virtio-console",
	.keys = vcon_keys,
	.legacy_parse = vcon_legacy_parse,
	.init = vcon_init,
};
