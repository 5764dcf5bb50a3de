/*
 * workload.c: the integer benchmark's work, compiled -O1 -mno-sse -mgeneral-regs-only with
 * no builtins and no libc, so the loops stay loops of general-purpose integer instructions
 * (loads, stores, ALU, shifts, compares, branches, MUL and DIV). Every iteration starts from
 * the same state, so it executes the same number of instructions.
 */
#include "workload.h"

#define SIEVE_N 65536
#define SORT_N 1024
#define CRC_N 4096
#define MULDIV_N 2048

static uint8_t sieve[SIEVE_N];
static uint64_t words[SORT_N];
static uint8_t crc_buf[CRC_N];

static uint64_t lcg(uint64_t *state)
{
	*state = *state * 6364136223846793005ull + 1442695040888963407ull;
	return *state >> 16;
}

static uint64_t do_sieve(void)
{
	uint64_t count = 0;

	for (uint32_t i = 0; i < SIEVE_N; i++)
		sieve[i] = 1;
	sieve[0] = sieve[1] = 0;
	for (uint32_t i = 2; i * i < SIEVE_N; i++) {
		if (!sieve[i])
			continue;
		for (uint32_t j = i * i; j < SIEVE_N; j += i)
			sieve[j] = 0;
	}
	for (uint32_t i = 0; i < SIEVE_N; i++)
		count += sieve[i];
	return count;
}

static uint64_t do_sort(void)
{
	uint64_t state = 12345, sum = 0;

	for (int i = 0; i < SORT_N; i++)
		words[i] = lcg(&state);
	for (int i = 1; i < SORT_N; i++) {
		uint64_t v = words[i];
		int j = i - 1;

		while (j >= 0 && words[j] > v) {
			words[j + 1] = words[j];
			j--;
		}
		words[j + 1] = v;
	}
	for (int i = 0; i < SORT_N; i++)
		sum = sum * 31 + (words[i] ^ (uint64_t)i);
	return sum;
}

static uint64_t do_crc32(void)
{
	uint32_t crc = 0xffffffffu;

	for (int i = 0; i < CRC_N; i++)
		crc_buf[i] = (uint8_t)(i * 7 + (i >> 5));
	for (int i = 0; i < CRC_N; i++) {
		crc ^= crc_buf[i];
		for (int b = 0; b < 8; b++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
	}
	return ~crc;
}

static uint64_t do_muldiv(void)
{
	uint64_t a = 0x123456789abcdefull, acc = 1;

	for (uint64_t i = 1; i <= MULDIV_N; i++) {
		a = a * 0x9e3779b97f4a7c15ull + i;
		acc += a / (i | 0x10001) + a % (i + 3);
	}
	return acc;
}

uint64_t workload_iter(void)
{
	return do_sieve() ^ (do_sort() << 1) ^ (do_crc32() << 2) ^ (do_muldiv() << 3);
}

uint64_t workload_run(uint64_t iters)
{
	uint64_t sum = 0;

	for (uint64_t i = 0; i < iters; i++)
		sum = (sum << 7 | sum >> 57) ^ workload_iter();
	return sum;
}
