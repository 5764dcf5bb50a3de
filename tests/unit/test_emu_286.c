/*
 * test_emu_286.c: runs the hardware-captured 80286 real-mode vectors (SingleStepTests/80286
 * by Daniel Balsom, MIT; subset in ../shared/testdata/x86-singlestep, see its README)
 * through emu_step on a fake 16 MiB bus and compares registers, flags (under the per-form
 * mask) and memory. Forms marked skip/optional and tests tagged with a documented
 * 286-versus-modern difference are counted and skipped. Data path: $KHYVE_SHARED or ../shared.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "unit.h"
#include "x86/emu/emu.h"

#define RAM_SIZE (16u << 20)

static uint8_t *ram;

static uint8_t *bus_page(void *o, uint64_t gpa, bool write)
{
	return gpa < RAM_SIZE ? ram + (gpa & ~0xfffull) : NULL;
}

static int bus_mmio(void *o, uint64_t gpa, unsigned size, bool write, uint64_t *val)
{
	if (!write)
		*val = ~0ull;
	return 0;
}

static int bus_pio(void *o, uint16_t port, unsigned size, bool write, uint32_t *val)
{
	if (!write)
		*val = 0xffffffffu;
	return 0;
}

static int bus_intr(void *o)
{
	return -1;
}

static void bus_cpuid(void *o, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	memset(out, 0, 16);
}

static int bus_msr(void *o, uint32_t idx, bool write, uint64_t *val)
{
	return -1;
}

static uint64_t bus_tsc(void *o)
{
	return 0;
}

static const struct emu_bus bus = {
	.page_ptr = bus_page, .mmio = bus_mmio, .pio = bus_pio, .intr_ack = bus_intr,
	.cpuid = bus_cpuid, .msr = bus_msr, .tsc = bus_tsc,
};

/* Register order in the data: ax bx cx dx cs ss ds es sp bp si di ip flags */
enum { R_AX, R_BX, R_CX, R_DX, R_CS, R_SS, R_DS, R_ES, R_SP, R_BP, R_SI, R_DI, R_IP, R_FL };
static const char *const reg_names[14] = { "ax", "bx", "cx", "dx", "cs", "ss", "ds",
					   "es", "sp", "bp", "si", "di", "ip", "flags" };

struct ram_ent {
	uint32_t addr;
	uint8_t val;
};

struct vec {
	uint16_t init[14], fin[14];
	struct ram_ent *iram, *fram;
	int niram, nfram;
	int exc_vec;
	uint32_t exc_addr;
	uint16_t mask;
	char tags[128];
	char name[128];
	int idx;
};

static int parse_regs(const char *s, uint16_t r[14])
{
	for (int i = 0; i < 14; i++) {
		char *end;

		r[i] = strtoul(s, &end, 16);
		if (end == s)
			return -1;
		s = end;
	}
	return 0;
}

static int parse_ram(char *s, struct ram_ent **out)
{
	int n = 0, cap = 16;
	struct ram_ent *v = malloc(cap * sizeof *v);

	while (*s) {
		char *end;

		while (*s == ' ')
			s++;
		if (!*s)
			break;
		if (n == cap)
			v = realloc(v, (cap *= 2) * sizeof *v);
		v[n].addr = strtoul(s, &end, 16);
		s = end + 1;	/* ':' */
		v[n].val = strtoul(s, &end, 16);
		s = end;
		n++;
	}
	*out = v;
	return n;
}

/* Split `line` on '|' into at most 11 fields. */
static int split(char *line, char *f[11])
{
	int n = 0;

	f[n++] = line;
	for (char *p = line; *p && n < 11; p++) {
		if (*p == '|') {
			*p = 0;
			f[n++] = p + 1;
		}
	}
	return n;
}

static int parse_vec(char *line, struct vec *v)
{
	char *f[11];

	if (split(line, f) != 11)
		return -1;
	v->idx = atoi(f[0]);
	if (parse_regs(f[2], v->init) || parse_regs(f[4], v->fin))
		return -1;
	v->niram = parse_ram(f[3], &v->iram);
	v->nfram = parse_ram(f[5], &v->fram);
	v->exc_vec = -1;
	if (f[6][0] != '-') {
		v->exc_vec = strtoul(f[6], NULL, 16);
		v->exc_addr = strtoul(strchr(f[6], '@') + 1, NULL, 16);
	}
	v->mask = strtoul(f[7], NULL, 16);
	snprintf(v->tags, sizeof v->tags, "%s", f[8]);
	snprintf(v->name, sizeof v->name, "%s", f[10]);
	v->name[strcspn(v->name, "\n")] = 0;
	return 0;
}

static struct {
	int forms, forms_skipped, tests, passed, failed, skipped_tag, skipped_form, retargeted;
	int shown;
} tally;

static void real_seg(struct emu_seg *s, uint16_t sel, bool code)
{
	s->sel = sel;
	s->base = (uint32_t)sel << 4;
	s->limit = 0xffff;
	s->attr = code ? 0x9b : 0x93;
}

/* Run one vector; returns true when it passed. */
static bool run_vec(struct emu_machine *m, struct emu_cpu *cpu, const char *form,
		    const struct vec *v)
{
	struct emu_state st;
	char why[512] = "";
	size_t wl = 0;
	enum emu_exit ex;
	bool ok = true;

	for (int i = 0; i < v->niram; i++)
		ram[v->iram[i].addr] = v->iram[i].val;
	for (int i = 0; i < v->niram; i++)
		emu_machine_invalidate(m, v->iram[i].addr, 1);
	emu_reset_state(&st);
	st.gpr[0] = v->init[R_AX];
	st.gpr[3] = v->init[R_BX];
	st.gpr[1] = v->init[R_CX];
	st.gpr[2] = v->init[R_DX];
	st.gpr[4] = v->init[R_SP];
	st.gpr[5] = v->init[R_BP];
	st.gpr[6] = v->init[R_SI];
	st.gpr[7] = v->init[R_DI];
	st.rip = v->init[R_IP];
	st.rflags = v->init[R_FL] | 2;
	real_seg(&st.seg[EMU_CS], v->init[R_CS], true);
	real_seg(&st.seg[EMU_SS], v->init[R_SS], false);
	real_seg(&st.seg[EMU_DS], v->init[R_DS], false);
	real_seg(&st.seg[EMU_ES], v->init[R_ES], false);
	real_seg(&st.seg[EMU_FS], 0, false);
	real_seg(&st.seg[EMU_GS], 0, false);
	st.cr0 = 0x10;
	emu_set_state(cpu, &st);
	ex = emu_step(cpu);
	emu_get_state(cpu, &st);
	if (ex != EMU_EXIT_BUDGET && ex != EMU_EXIT_HLT && ex != EMU_EXIT_EVENT) {
		wl += snprintf(why + wl, sizeof why - wl, " exit %d (%s)", ex,
			       ex == EMU_EXIT_UNSUPPORTED || ex == EMU_EXIT_TRIPLE_FAULT ?
				       emu_last_error(cpu) : "");
		ok = false;
	}
	uint64_t got[14] = {
		st.gpr[0], st.gpr[3], st.gpr[1], st.gpr[2], st.seg[EMU_CS].sel,
		st.seg[EMU_SS].sel, st.seg[EMU_DS].sel, st.seg[EMU_ES].sel, st.gpr[4],
		st.gpr[5], st.gpr[6], st.gpr[7], st.rip, st.rflags,
	};
	for (int i = 0; i < 14 && ok; i++) {
		uint16_t mask = i == R_FL ? v->mask : 0xffff;

		if (((got[i] ^ v->fin[i]) & mask) || (i != R_FL && got[i] > 0xffff))
			wl += snprintf(why + wl, sizeof why - wl, " %s=%04llx want %04x",
				       reg_names[i], (unsigned long long)got[i], v->fin[i]);
	}
	for (int i = 0; i < v->nfram && ok; i++) {
		uint8_t mask = 0xff;
		uint32_t a = v->fram[i].addr;

		if (v->exc_vec >= 0 && a == v->exc_addr)
			mask = v->mask & 0xff;
		else if (v->exc_vec >= 0 && a == v->exc_addr + 1)
			mask = v->mask >> 8;
		if ((ram[a] ^ v->fram[i].val) & mask && wl < sizeof why - 40)
			wl += snprintf(why + wl, sizeof why - wl, " [%06x]=%02x want %02x", a,
				       ram[a], v->fram[i].val);
	}
	if (wl)
		ok = false;
	if (!ok && tally.shown < 40) {
		tally.shown++;
		printf("  FAIL %s #%d %s:%s\n", form, v->idx, v->name, why);
	}
	/* Leave memory zero for the next vector. */
	for (int i = 0; i < v->niram; i++)
		ram[v->iram[i].addr] = 0;
	for (int i = 0; i < v->nfram; i++)
		ram[v->fram[i].addr] = 0;
	return ok;
}

static bool tag_skips(const char *tags)
{
	return strcmp(tags, "-") != 0;
}

/*
 * INS/OUTS that fault on the memory operand (#GP at offset FFFF): the 286 has already moved
 * SI/DI (and CX under REP) by one element when it takes the fault; a 386 or later faults
 * before that iteration changes any register, so that the instruction restarts (SDM Vol. 1
 * §7.3.9.1). Re-target the expected registers to the modern behaviour.
 */
static void retarget_string_io_fault(const char *form, struct vec *v)
{
	bool outs = !strcmp(form, "6E") || !strcmp(form, "6F");
	bool ins = !strcmp(form, "6C") || !strcmp(form, "6D");
	unsigned size = (!strcmp(form, "6D") || !strcmp(form, "6F")) ? 2 : 1;
	int reg = outs ? R_SI : R_DI;
	uint16_t step = (v->init[R_FL] & 0x400) ? -size : size;

	if ((!outs && !ins) || v->exc_vec != 0x0d)
		return;
	v->fin[reg] -= step;
	if (v->init[R_CX] != v->fin[R_CX])
		v->fin[R_CX]++;
	tally.retargeted++;
}

static void run_form(struct emu_machine *m, struct emu_cpu *cpu, const char *dir,
		     const char *form)
{
	char path[700], *line = NULL;
	size_t cap = 0;
	FILE *f;

	snprintf(path, sizeof path, "%s/%s.txt", dir, form);
	f = fopen(path, "r");
	CHECK(f != NULL);
	if (!f)
		return;
	tally.forms++;
	while (getline(&line, &cap, f) > 0) {
		struct vec v;

		if (line[0] == '#' || line[0] == '\n')
			continue;
		memset(&v, 0, sizeof v);
		if (parse_vec(line, &v)) {
			CHECK(!"malformed test line");
			continue;
		}
		if (tag_skips(v.tags)) {
			tally.skipped_tag++;
		} else {
			retarget_string_io_fault(form, &v);
			tally.tests++;
			if (run_vec(m, cpu, form, &v))
				tally.passed++;
			else
				tally.failed++;
		}
		free(v.iram);
		free(v.fram);
	}
	free(line);
	fclose(f);
}

TEST(emu_286_real_mode_vectors)
{
	const char *shared = getenv("KHYVE_SHARED") ? getenv("KHYVE_SHARED") : "../shared";
	char dir[512], path[600], *line = NULL;
	size_t cap = 0;
	FILE *idx;
	struct emu_machine *m;
	struct emu_cpu *cpu;

	snprintf(dir, sizeof dir, "%s/testdata/x86-singlestep/80286", shared);
	snprintf(path, sizeof path, "%s/index.txt", dir);
	idx = fopen(path, "r");
	if (!idx) {
		printf("  cannot open %s (set KHYVE_SHARED)\n", path);
		CHECK(idx != NULL);
		return;
	}
	ram = calloc(1, RAM_SIZE);
	m = emu_machine_create();
	cpu = emu_cpu_create(m, &bus);
	CHECK(ram && m && cpu);
	while (cpu && getline(&line, &cap, idx) > 0) {
		char *f[11];

		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (split(line, f) < 8)
			continue;
		if (strcmp(f[7], "run") != 0) {
			tally.forms_skipped++;
			tally.skipped_form += atoi(f[3]);
			continue;
		}
		run_form(m, cpu, dir, f[0]);
	}
	free(line);
	fclose(idx);
	printf("  80286: %d forms run (%d skipped as optional/skip: %d tests), %d tests run, "
	       "%d passed, %d failed, %d skipped by tag (lock-ud, len-gp, ss-fault, fsgs), "
	       "%d INS/OUTS faults re-targeted to 386+ register behaviour\n",
	       tally.forms, tally.forms_skipped, tally.skipped_form, tally.tests, tally.passed,
	       tally.failed, tally.skipped_tag, tally.retargeted);
	CHECK(tally.tests > 12000);
	CHECK_EQ_U64(tally.failed, 0);
	emu_cpu_destroy(cpu);
	emu_machine_destroy(m);
	free(ram);
}
