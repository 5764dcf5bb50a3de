/*
 * virtio_rnd.c: the virtio entropy device (virtio 1.2 §5.4), bhyve's `-s N,virtio-rnd`:
 * one request queue whose writable buffers are filled from getrandom(2). A token bucket
 * (64 KiB/s, bursts of 16 KiB) keeps a guest from spinning a host core: when it runs dry the
 * remaining buffers wait for a timerfd on the event loop. No device configuration.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "dev/virtio_rnd.h"
#include "pci/pci.h"
#include "util/event_loop.h"
#include "virtio/virtio_pci.h"
#include "vmm/guest_mem.h"
#include "vmm/vm.h"

#define VRND_QUEUE_SIZE 64
#define VRND_MIN_GRANT 256	/* bytes: a chain is taken only with this much in the bucket */

struct vrnd {
	struct virtio_dev vd;
	struct event_loop *loop;
	int timer_fd;
	bool timer_armed;
	uint64_t rate, burst;	/* bytes per second, bucket size */
	uint64_t tokens;	/* bytes left in the bucket */
	uint64_t last_ns;	/* when tokens were last topped up */
	uint64_t delivered;	/* total bytes handed to the guest */
	struct virtq_chain chain;
};

static uint64_t vrnd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* vd.lock held. */
static void vrnd_refill(struct vrnd *dev)
{
	uint64_t now = vrnd_now_ns(), add;

	if (now <= dev->last_ns)
		return;
	add = (now - dev->last_ns) * dev->rate / 1000000000ULL;
	if (add == 0)
		return;
	dev->last_ns = now;
	dev->tokens = dev->tokens + add > dev->burst ? dev->burst : dev->tokens + add;
}

/* vd.lock held: wake up when VRND_MIN_GRANT tokens will be there. */
static void vrnd_arm(struct vrnd *dev)
{
	uint64_t need = VRND_MIN_GRANT - dev->tokens, ns = need * 1000000000ULL / dev->rate + 1;
	struct itimerspec its = { .it_value = { (time_t)(ns / 1000000000ULL),
					        (long)(ns % 1000000000ULL) } };

	if (dev->timer_fd < 0 || dev->timer_armed)
		return;
	if (timerfd_settime(dev->timer_fd, 0, &its, NULL) == 0)
		dev->timer_armed = true;
}

/* Fill the chain's writable buffers with up to `max` random bytes; returns the count. */
static uint32_t vrnd_fill(struct virtq_chain *c, uint64_t max)
{
	uint32_t done = 0;

	for (unsigned i = c->nout; i < (unsigned)c->nout + c->nin && done < max; i++) {
		size_t want = c->iov[i].iov_len;
		ssize_t n;

		if (want > max - done)
			want = (size_t)(max - done);
		n = getrandom(c->iov[i].iov_base, want, GRND_NONBLOCK);
		if (n <= 0)
			break;
		done += (uint32_t)n;
		if ((size_t)n < want)
			break;
	}
	return done;
}

static void vrnd_process(struct vrnd *dev)
{
	struct virtio_dev *vd = &dev->vd;
	struct virtq *vq = &vd->queues[0].vq;
	bool pushed = false;

	pthread_mutex_lock(&vd->lock);
	while (virtio_running(vd)) {
		uint32_t n;
		int ret;

		vrnd_refill(dev);
		if (dev->tokens < VRND_MIN_GRANT) {
			vrnd_arm(dev);
			break;
		}
		ret = virtq_pop(vq, &dev->chain);
		if (ret < 0) {
			virtio_needs_reset(vd, vq->why);
			break;
		}
		if (ret == 0) {
			if (virtq_set_notify(vq, true))
				continue;
			break;
		}
		n = vrnd_fill(&dev->chain, dev->tokens);
		dev->tokens -= n;
		dev->delivered += n;
		for (unsigned i = dev->chain.nout; n && i < dev->chain.nout + dev->chain.nin; i++)
			gm_ptr(vm_mem(vd->pdev->vm), dev->chain.gpa[i], dev->chain.iov[i].iov_len,
			       true);
		virtq_push(vq, dev->chain.head, n);
		pushed = true;
	}
	if (pushed)
		virtio_queue_interrupt(vd, 0);
	pthread_mutex_unlock(&vd->lock);
}

static void vrnd_notify(struct virtio_dev *vd, unsigned q)
{
	vrnd_process(vd->priv);
}

static void vrnd_timer(void *opaque, int fd, uint32_t events)
{
	struct vrnd *dev = opaque;
	uint64_t expirations;

	if (read(fd, &expirations, sizeof expirations) < 0)
		return;
	pthread_mutex_lock(&dev->vd.lock);
	dev->timer_armed = false;
	pthread_mutex_unlock(&dev->vd.lock);
	vrnd_process(dev);
}

static void vrnd_reset(struct virtio_dev *vd)
{
	(void)vd;	/* nothing per driver: the bucket keeps its level across resets */
}

static void vrnd_destroy(struct virtio_dev *vd)
{
	struct vrnd *dev = vd->priv;

	if (dev->timer_fd >= 0) {
		if (dev->loop)
			evl_del_fd(dev->loop, dev->timer_fd);
		close(dev->timer_fd);
	}
	virtio_pci_fini(vd);
	free(dev);
}

static const struct virtio_ops vrnd_ops = {
	.notify = vrnd_notify,
	.reset = vrnd_reset,
	.destroy = vrnd_destroy,
};

uint64_t virtio_rnd_delivered(struct pci_dev *pdev)
{
	struct virtio_dev *vd = pdev->priv;
	struct vrnd *dev = vd->priv;
	uint64_t n;

	pthread_mutex_lock(&vd->lock);
	n = dev->delivered;
	pthread_mutex_unlock(&vd->lock);
	return n;
}

static int vrnd_init(struct vm *vm, struct pci_dev *pdev, struct cfg_node *node)
{
	struct virtio_pci_params p = {
		.device_id = 0x1005, .device_type = 4, .class_code = 0x10, .subclass = 0x80,
		.nqueues = 1, .queue_size = VRND_QUEUE_SIZE,
	};
	struct vrnd *dev = calloc(1, sizeof *dev);
	bool msix = true;
	int ret;

	(void)node;
	if (!dev)
		return -ENOMEM;
	if (cfg_get_bool(cfg_root(), "virtio_msix", true, &msix)) {
		free(dev);
		return -EINVAL;
	}
	p.msix = msix;
	dev->rate = VIRTIO_RND_RATE;
	dev->burst = VIRTIO_RND_BURST;
	dev->tokens = dev->burst;
	dev->last_ns = vrnd_now_ns();
	dev->loop = vm_event_loop(vm);
	dev->timer_fd = -1;
	ret = virtio_pci_init(&dev->vd, pdev, &vrnd_ops, &p, dev);
	if (ret < 0) {
		free(dev);
		fprintf(stderr, "khyve: pci %u:%u:%u: virtio-rnd: cannot set up the PCI function\n",
			pdev->bus, pdev->slot, pdev->func);
		return ret;
	}
	/* The timer is watched only once the state its callback locks exists. */
	if (dev->loop) {
		dev->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (dev->timer_fd < 0 ||
		    evl_add_fd(dev->loop, dev->timer_fd, EPOLLIN, vrnd_timer, dev) < 0) {
			fprintf(stderr, "khyve: pci %u:%u:%u: virtio-rnd: cannot create its timer\n",
				pdev->bus, pdev->slot, pdev->func);
			if (dev->timer_fd >= 0)
				close(dev->timer_fd);
			dev->timer_fd = -1;
			return -EIO;	/* the bus teardown frees the device (ops->destroy) */
		}
	}
	return 0;
}

static const struct device_key vrnd_keys[] = { { NULL, KEY_STRING, NULL, NULL } };

const struct device_model virtio_rnd_model = {
	.name = "virtio-rnd",
	.keys = vrnd_keys,
	.init = vrnd_init,
};
