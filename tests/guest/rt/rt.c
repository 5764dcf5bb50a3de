/*
 * rt.c: runtime start-up (copies the PVH hvm_start_info, Xen public/arch-x86/hvm/start_info.h),
 * COM1 output through a polled 16550, printf-style formatting (%d %u %x %s %c %p with l/ll,
 * width and zero padding only), string helpers, the ok/not ok/RESULT protocol, command-line
 * parsing. No floating point, no locale, no %n.
 */
#include "rt.h"

#define COM1 0x3f8
#define START_INFO_MAGIC 0x336ec578

struct rt_bootinfo bootinfo;

void *memset(void *d, int c, size_t n)
{
	uint8_t *p = d;
	while (n--)
		*p++ = (uint8_t)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	uint8_t *p = d;
	const uint8_t *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *p = a, *q = b;
	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p - *q;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (uint8_t)*a - (uint8_t)*b;
		if (!*a)
			break;
	}
	return 0;
}

void serial_init(void)
{
	outb(COM1 + 1, 0x00);	/* no interrupts */
	outb(COM1 + 3, 0x80);	/* DLAB */
	outb(COM1 + 0, 0x01);	/* 115200 */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03);	/* 8N1 */
	outb(COM1 + 2, 0x07);	/* FIFO on, cleared */
	outb(COM1 + 4, 0x03);	/* DTR, RTS */
}

static volatile int serial_lock;

static void serial_raw(char c)
{
	for (int i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++)
		cpu_relax();
	outb(COM1, (uint8_t)c);
}

void serial_putc(char c)
{
	if (c == '\n')
		serial_raw('\r');
	serial_raw(c);
}

struct fmt_out {
	char *buf;
	size_t len, pos;
};

static void fmt_put(struct fmt_out *o, char c)
{
	if (o->pos + 1 < o->len)
		o->buf[o->pos] = c;
	o->pos++;
}

int vsnprintf(char *buf, size_t len, const char *fmt, va_list ap)
{
	struct fmt_out o = { buf, len, 0 };
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			fmt_put(&o, *fmt);
			continue;
		}
		fmt++;
		bool zero = false;
		int width = 0, lng = 0;
		if (*fmt == '0') {
			zero = true;
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l') {
			lng++;
			fmt++;
		}
		char tmp[24];
		int n = 0;
		uint64_t v;
		bool neg = false;
		switch (*fmt) {
		case 'c':
			fmt_put(&o, (char)va_arg(ap, int));
			continue;
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			int l = (int)strlen(s);
			for (; l < width; width--)
				fmt_put(&o, ' ');
			while (*s)
				fmt_put(&o, *s++);
			continue;
		}
		case 'd': {
			int64_t s = lng > 1 ? va_arg(ap, long long) : lng ? va_arg(ap, long) : va_arg(ap, int);
			neg = s < 0;
			v = neg ? -(uint64_t)s : (uint64_t)s;
			do
				tmp[n++] = (char)('0' + v % 10);
			while (v /= 10);
			break;
		}
		case 'u':
		case 'x':
		case 'p': {
			unsigned base = *fmt == 'u' ? 10 : 16;
			if (*fmt == 'p') {
				v = (uintptr_t)va_arg(ap, void *);
				fmt_put(&o, '0');
				fmt_put(&o, 'x');
			} else {
				v = lng > 1   ? va_arg(ap, unsigned long long)
				    : lng ? va_arg(ap, unsigned long)
					  : va_arg(ap, unsigned);
			}
			do
				tmp[n++] = "0123456789abcdef"[v % base];
			while (v /= base);
			break;
		}
		case '%':
			fmt_put(&o, '%');
			continue;
		default:
			fmt_put(&o, '?');
			continue;
		}
		if (neg)
			tmp[n++] = '-';
		for (int pad = width - n; pad > 0; pad--)
			fmt_put(&o, zero ? '0' : ' ');
		while (n)
			fmt_put(&o, tmp[--n]);
	}
	if (o.len)
		o.buf[o.pos < o.len ? o.pos : o.len - 1] = 0;
	return (int)o.pos;
}

int snprintf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return n;
}

static void vprint(const char *fmt, va_list ap)
{
	char buf[256];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	while (__atomic_exchange_n(&serial_lock, 1, __ATOMIC_ACQUIRE))
		cpu_relax();
	for (const char *p = buf; *p; p++)
		serial_putc(*p);
	__atomic_store_n(&serial_lock, 0, __ATOMIC_RELEASE);
}

void printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprint(fmt, ap);
	va_end(ap);
}

static volatile int nfail;

void ok(const char *name)
{
	printf("ok %s\n", name);
}

static void vnot_ok(const char *name, const char *fmt, va_list ap)
{
	char buf[200];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	__atomic_add_fetch(&nfail, 1, __ATOMIC_SEQ_CST);
	printf("not ok %s: %s\n", name, buf);
}

void not_ok(const char *name, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vnot_ok(name, fmt, ap);
	va_end(ap);
}

void check(bool cond, const char *name, const char *fmt, ...)
{
	if (cond) {
		ok(name);
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	vnot_ok(name, fmt, ap);
	va_end(ap);
}

int failures(void)
{
	return nfail;
}

void finish(void)
{
	if (nfail)
		printf("RESULT: FAIL %d\n", nfail);
	else
		printf("RESULT: PASS\n");
	power_off(nfail ? 1 : 0);
}

uint64_t parse_num(const char *s, const char **end)
{
	uint64_t v = 0;
	unsigned base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (;; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			break;
		v = v * base + d;
	}
	switch (*s) {
	case 'k': case 'K': v <<= 10; s++; break;
	case 'm': case 'M': v <<= 20; s++; break;
	case 'g': case 'G': v <<= 30; s++; break;
	default: break;
	}
	if (end)
		*end = s;
	return v;
}

const char *cmdline_get(const char *key, char *buf, size_t len)
{
	size_t kl = strlen(key);
	const char *p = bootinfo.cmdline;
	while (*p) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, kl) && p[kl] == '=') {
			p += kl + 1;
			size_t n = 0;
			while (p[n] && p[n] != ' ' && n + 1 < len) {
				buf[n] = p[n];
				n++;
			}
			buf[n] = 0;
			return buf;
		}
		while (*p && *p != ' ')
			p++;
	}
	return NULL;
}

uint64_t cmdline_num(const char *key, uint64_t def)
{
	char buf[32];
	if (!cmdline_get(key, buf, sizeof(buf)) || !buf[0])
		return def;
	return parse_num(buf, NULL);
}

static void read_start_info(uint32_t pa)
{
	const uint8_t *si = (const uint8_t *)(uintptr_t)pa;
	bootinfo.start_info_version = 0xffffffff;
	if (!pa || *(const uint32_t *)si != START_INFO_MAGIC)
		return;
	bootinfo.start_info_version = *(const uint32_t *)(si + 4);
	uint64_t cmd = *(const uint64_t *)(si + 24);
	bootinfo.rsdp_paddr = *(const uint64_t *)(si + 32);
	if (cmd && cmd < (1ull << 32)) {
		const char *c = (const char *)(uintptr_t)cmd;
		size_t i = 0;
		for (; c[i] && i + 1 < sizeof(bootinfo.cmdline); i++)
			bootinfo.cmdline[i] = c[i];
		bootinfo.cmdline[i] = 0;
	}
	if (bootinfo.start_info_version >= 1) {
		uint64_t mm = *(const uint64_t *)(si + 40);
		uint32_t n = *(const uint32_t *)(si + 48);
		if (mm && mm < (1ull << 32)) {
			if (n > RT_MEMMAP_MAX)
				n = RT_MEMMAP_MAX;
			memcpy(bootinfo.memmap, (const void *)(uintptr_t)mm, n * sizeof(struct rt_memmap));
			bootinfo.memmap_count = (int)n;
		}
	}
}

void rt_start(uint32_t start_info);
void rt_start(uint32_t start_info)
{
	read_start_info(start_info);
	serial_init();
	pic_disable();
	idt_init();
	tss_init();
	test_main();
	finish();
}
