/*
 * fuzz_virtq.c: libFuzzer target for the split-virtqueue walker (src/virtio/virtq.c). The
 * input becomes guest memory from 4 KiB on (descriptor table, avail ring, indirect tables,
 * all of it under the fuzzer's control); its first two bytes pick the queue size and the
 * negotiated ring features. Every chain is popped, checked against guest RAM, and pushed
 * back, until the ring is empty or broken.
 */
/* FUZZ_SOURCES: src/virtio/virtq.c src/vmm/guest_mem.c */
#include <stdint.h>
#include <string.h>

#include "virtio/virtq.h"
#include "vmm/guest_mem.h"

#define FUZZ_RAM (1ULL << 20)
#define FUZZ_BASE 0x1000

static struct virtq_chain chain;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_mem *gm;
	static uint8_t zero[1 << 16];
	struct virtq vq;
	uint16_t qsz;
	uint64_t features = 0;

	if (size < 2)
		return 0;
	if (!gm && gm_create(&gm, FUZZ_RAM) < 0)
		return 0;
	gm_write(gm, FUZZ_BASE, zero, sizeof zero);
	qsz = (uint16_t)(1u << (data[0] % 9));	/* 1 .. 256 */
	if (data[1] & 1)
		features |= 1ULL << 28;
	if (data[1] & 2)
		features |= 1ULL << 29;
	data += 2;
	size -= 2;
	if (size > sizeof zero)
		size = sizeof zero;
	gm_write(gm, FUZZ_BASE, data, size);
	memset(&vq, 0, sizeof vq);
	vq.gm = gm;
	virtq_reset(&vq);
	vq.size = qsz;
	/* The avail ring first, so short inputs reach the descriptors. */
	vq.avail_gpa = FUZZ_BASE;
	vq.desc_gpa = (FUZZ_BASE + 6 + 2ULL * qsz + 15) & ~15ULL;
	vq.used_gpa = vq.desc_gpa + 16ULL * qsz;
	if (virtq_enable(&vq, features) < 0)
		return 0;
	for (unsigned n = 0; n < 4u * qsz; n++) {
		int r = virtq_pop(&vq, &chain);

		if (r <= 0)
			break;
		/* Every segment is a host range inside guest RAM: touch both ends. */
		for (unsigned i = 0; i < (unsigned)chain.nout + chain.nin; i++) {
			volatile uint8_t *p = chain.iov[i].iov_base;

			(void)p[0];
			(void)p[chain.iov[i].iov_len - 1];
			if (i >= chain.nout)
				p[0] = 0;
		}
		virtq_push(&vq, chain.head, chain.in_len);
		virtq_should_interrupt(&vq);
	}
	virtq_set_notify(&vq, true);
	return 0;
}
