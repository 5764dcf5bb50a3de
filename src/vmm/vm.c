/*
 * vm.c: the machine. vm_build() reads the frozen config tree and builds, in order: guest
 * memory, the I/O bus, the event loop, the accelerator, the platform devices, the PCI bus
 * with one model per pci.B.S.F node, firmware tables and e820 (direct boot), then loads the
 * kernel or the boot ROM and maps memory into the accelerator. vm_run() starts the vCPU
 * threads and runs the event loop on the calling thread until an exit code is requested.
 * Gaps: bootroms get no tables from here (the firmware builds or fetches its own).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config/config.h"
#include "dev/device.h"
#include "dev/platform.h"
#include "pci/pci.h"
#include "util/event_loop.h"
#include "vmm/guest_mem.h"
#include "vmm/io_bus.h"
#include "vmm/vm_internal.h"
#include "x86/e820.h"
#include "x86/smbios.h"
#include "x86/tables.h"

#define VM_E820_MAX 32
#define VM_MAX_CPUS 1024

/* Keys whose feature comes later: refused here too, whatever wrote them (-o, -k). */
static const struct {
	const char *key, *what;
} vm_not_yet[] = {
	{ "gdb.port", "the GDB stub (-G)" },
	{ "restore_file", "snapshot restore (-r)" },
	{ "tpm.type", "TPM devices (-l tpm)" },
	{ "lpc.bootvars", "UEFI variable stores (-l bootrom,ROM,VARS)" },
	{ "bootvars", "UEFI variable stores (bootvars)" },
	{ "fw_cfg", "fw_cfg items (-f)" },
	{ "domains", "NUMA domains (-n)" },
};

/* Print "khyve: <message>" as one line on stderr and return ret. */
static int __attribute__((format(printf, 2, 3))) vm_fail(int ret, const char *fmt, ...)
{
	va_list ap;

	fputs("khyve: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return ret;
}

static int vm_get_u64(struct cfg_node *root, const char *key, uint64_t def, uint64_t *out)
{
	if (cfg_get_u64(root, key, def, out))
		return vm_fail(-EINVAL, "bad value '%s' for %s", cfg_get(root, key), key);
	return 0;
}

static int vm_get_bool(struct cfg_node *root, const char *key, bool def, bool *out)
{
	if (cfg_get_bool(root, key, def, out))
		return vm_fail(-EINVAL, "bad value '%s' for %s", cfg_get(root, key), key);
	return 0;
}

/*
 * cpus/sockets/cores/threads as bhyve's -c: cpus alone means that many sockets; without
 * cpus it is sockets x cores x threads; given both, they must agree.
 */
static int vm_read_topology(struct cfg_node *root, struct vm *vm)
{
	uint64_t cpus, sockets, cores, threads;

	if (vm_get_u64(root, "cores", 1, &cores) || vm_get_u64(root, "threads", 1, &threads))
		return -EINVAL;
	if (cores == 0 || threads == 0 || cores > VM_MAX_CPUS || threads > VM_MAX_CPUS)
		return vm_fail(-EINVAL, "bad CPU topology: cores=%llu threads=%llu",
			       (unsigned long long)cores, (unsigned long long)threads);
	if (cfg_get(root, "cpus")) {
		if (vm_get_u64(root, "cpus", 1, &cpus))
			return -EINVAL;
		if (cfg_get(root, "sockets")) {
			if (vm_get_u64(root, "sockets", 1, &sockets))
				return -EINVAL;
		} else {
			sockets = cpus / (cores * threads);
		}
	} else {
		if (vm_get_u64(root, "sockets", 1, &sockets))
			return -EINVAL;
		cpus = sockets * cores * threads;
	}
	if (cpus == 0 || cpus > VM_MAX_CPUS)
		return vm_fail(-EINVAL, "%llu vCPUs requested; khyve runs 1 to %d",
			       (unsigned long long)cpus, VM_MAX_CPUS);
	if (sockets * cores * threads != cpus)
		return vm_fail(-EINVAL, "CPU topology sockets=%llu x cores=%llu x threads=%llu "
			       "does not make cpus=%llu", (unsigned long long)sockets,
			       (unsigned long long)cores, (unsigned long long)threads,
			       (unsigned long long)cpus);
	vm->ncpus = (int)cpus;
	vm->topo = (struct cpu_topology){
		.cpus = (int)cpus, .sockets = (int)sockets, .cores = (int)cores,
		.threads = (int)threads,
	};
	return 0;
}

static int vm_read_pinning(struct cfg_node *root, struct vm *vm)
{
	for (int i = 0; i < vm->ncpus; i++) {
		char key[32];
		const char *v;

		snprintf(key, sizeof key, "vcpu.%d.cpuset", i);
		v = cfg_get(root, key);
		if (!v)
			continue;
		if (vcpu_parse_cpuset(v, &vm->vcpus[i].cpuset))
			return vm_fail(-EINVAL, "bad CPU list '%s' for %s", v, key);
		vm->vcpus[i].pinned = true;
	}
	return 0;
}

static void vm_mem_written(void *opaque, uint64_t gpa, uint64_t len)
{
	struct vm *vm = opaque;

	accel_memory_written(vm->accel, gpa, len);
}

static int vm_create_memory(struct cfg_node *root, struct vm *vm)
{
	const char *v = cfg_get(root, "memory.size");
	uint64_t size = 256ULL << 20;
	bool wired, in_core;
	int ret;

	if (v && (cfg_parse_memsize(v, &size) || size == 0))
		return vm_fail(-EINVAL, "bad memory size '%s'", v);
	if (vm_get_bool(root, "memory.wired", false, &wired) ||
	    vm_get_bool(root, "memory.guest_in_core", false, &in_core))
		return -EINVAL;
	ret = gm_create(&vm->mem, size);
	if (ret)
		return vm_fail(ret, "cannot allocate %llu bytes of guest memory: %s",
			       (unsigned long long)size, strerror(-ret));
	for (int i = 0; !in_core && i < gm_region_count(vm->mem); i++) {
		const struct gm_region *r = gm_region(vm->mem, i);

		madvise(r->host, r->size, MADV_DONTDUMP);
	}
	if (wired) {
		ret = gm_wire(vm->mem);
		if (ret)
			return vm_fail(ret, "cannot wire guest memory (-S): %s%s", strerror(-ret),
				       ret == -ENOMEM || ret == -EPERM
					       ? " (raise RLIMIT_MEMLOCK: ulimit -l)" : "");
	}
	return 0;
}

static int vm_create_accel(struct cfg_node *root, struct vm *vm)
{
	const char *kind = cfg_get(root, "accel");
	struct accel_config ac = {
		.kind = ACCEL_AUTO,
		.ncpus = vm->ncpus,
		.io = &vm->io_ops,
		.x2apic = vm->x2apic,
		.apic_ids = vm->apic_ids,
	};
	char err[256] = "";
	bool strictmsr;
	int ret;

	if (vm_get_bool(root, "x86.strictmsr", true, &strictmsr) ||
	    vm_get_bool(root, "x86.verbosemsr", false, &ac.verbose_msrs) ||
	    vm_get_bool(root, "accel_stats", false, &ac.stats))
		return -EINVAL;
	ac.cpu_model = cfg_get(root, "cpu.model");
	ac.ignore_msrs = !strictmsr;
	if (!kind || strcmp(kind, "auto") == 0)
		ac.kind = ACCEL_AUTO;
	else if (strcmp(kind, "kvm") == 0)
		ac.kind = ACCEL_KVM;
	else if (strcmp(kind, "soft") == 0)
		ac.kind = ACCEL_SOFT;
	else
		return vm_fail(-EINVAL, "bad value '%s' for accel (auto, kvm or soft)", kind);

	vm->io_ops = (struct accel_io_ops){
		.opaque = vm, .pio = vcpu_pio, .mmio = vcpu_mmio, .ferr = vcpu_ferr,
	};
	vm->apic_ids = calloc((size_t)vm->ncpus, sizeof *vm->apic_ids);
	if (!vm->apic_ids)
		return -ENOMEM;
	for (int i = 0; i < vm->ncpus; i++)
		vm->apic_ids[i] = cpuid_apic_id(&vm->topo, i);
	ac.apic_ids = vm->apic_ids;

	ret = accel_create(&ac, &vm->accel, err, sizeof err);
	if (ret)
		return vm_fail(ret, "accel=%s: %s", kind ? kind : "auto",
			       err[0] ? err : strerror(-ret));
	gm_set_write_hook(vm->mem, vm_mem_written, vm);
	ret = accel_supported_cpuid(vm->accel, vm->supported, ACCEL_CPUID_MAX_ENTRIES);
	if (ret < 0)
		return vm_fail(ret, "cannot read the accelerator's CPUID leaves: %s",
			       strerror(-ret));
	vm->nsupported = ret;
	return 0;
}

/* A decimal config path component within [0, max]. */
static int vm_node_number(struct cfg_node *n, unsigned max)
{
	const char *s = cfg_node_name(n);
	char *end;
	unsigned long v;

	if (!s || *s < '0' || *s > '9')
		return -1;
	v = strtoul(s, &end, 10);
	if (*end || v > max)
		return -1;
	return (int)v;
}

static int vm_add_pci_device(struct vm *vm, struct cfg_node *fn, int b, int s, int f)
{
	const char *name = cfg_get(fn, "device");
	const struct device_model *model;
	struct pci_dev *pdev;
	char path[48];
	int ret;

	snprintf(path, sizeof path, "pci.%d.%d.%d", b, s, f);
	if (!name)
		return vm_fail(-EINVAL, "%s has no device", path);
	model = device_find(name);
	if (!model)
		return vm_fail(-ENODEV, "%s: unknown PCI emulation '%s'", path, name);
	if (model->not_yet || !model->init)
		return vm_fail(-ENOTSUP, "%s: not supported yet: %s", path, name);
	ret = pci_bus_add(vm->pci, (uint8_t)b, (uint8_t)s, (uint8_t)f, &pdev);
	if (ret)
		return vm_fail(ret, "%s: cannot add %s to the PCI bus", path, name);
	if (!pdev->name)
		pdev->name = model->name;
	ret = model->init(vm, pdev, fn);
	if (ret)
		return ret;	/* the model printed why */
	return 0;
}

/* The accelerator's notifiers as devices see them (opaque is the struct accel). */
static int vm_ioeventfd(void *opaque, bool mmio, uint64_t addr, unsigned len, int fd,
			bool assign)
{
	return accel_ioeventfd(opaque, mmio, addr, len, fd, assign);
}

static int vm_irqfd_msi(void *opaque, int fd, uint64_t addr, uint32_t data)
{
	return accel_irqfd_msi(opaque, fd, addr, data);
}

static int vm_irqfd_update(void *opaque, int handle, uint64_t addr, uint32_t data)
{
	return accel_irqfd_update(opaque, handle, addr, data);
}

static int vm_irqfd_remove(void *opaque, int fd, int handle)
{
	return accel_irqfd_remove(opaque, fd, handle);
}

/* One device per pci.B.S.F node (bus 0-255, slot 0-31, function 0-7). */
static int vm_create_pci(struct cfg_node *root, struct vm *vm)
{
	struct cfg_node *pci = cfg_find(root, "pci");
	int ret = pci_bus_create(vm, &vm->pci);

	if (ret)
		return vm_fail(ret, "cannot create the PCI bus: %s", strerror(-ret));
	/* Under KVM, queue kicks and interrupts bypass the vCPU exit path (design.md rule 7);
	 * the software CPU keeps the direct calls. */
	if (accel_kind(vm->accel) == ACCEL_KVM) {
		vm->pci_notifiers = (struct pci_notifiers){
			.opaque = vm->accel,
			.ioeventfd = vm_ioeventfd,
			.irqfd_msi = vm_irqfd_msi,
			.irqfd_update = vm_irqfd_update,
			.irqfd_remove = vm_irqfd_remove,
		};
		pci_bus_set_notifiers(vm->pci, &vm->pci_notifiers);
	}
	for (struct cfg_node *bn = pci ? cfg_first_child(pci) : NULL; bn;
	     bn = cfg_next_sibling(bn)) {
		int b = vm_node_number(bn, 255);

		if (b < 0 || cfg_node_value(bn))
			return vm_fail(-EINVAL, "bad PCI bus 'pci.%s'", cfg_node_name(bn));
		for (struct cfg_node *sn = cfg_first_child(bn); sn; sn = cfg_next_sibling(sn)) {
			int s = vm_node_number(sn, 31);

			if (s < 0 || cfg_node_value(sn))
				return vm_fail(-EINVAL, "bad PCI slot '%s' on bus %s",
					       cfg_node_name(sn), cfg_node_name(bn));
			for (struct cfg_node *fn = cfg_first_child(sn); fn;
			     fn = cfg_next_sibling(fn)) {
				int f = vm_node_number(fn, 7);

				if (f < 0 || cfg_node_value(fn))
					return vm_fail(-EINVAL, "bad PCI function '%s' in slot %s",
						       cfg_node_name(fn), cfg_node_name(sn));
				ret = vm_add_pci_device(vm, fn, b, s, f);
				if (ret)
					return ret;
			}
		}
	}
	ret = pci_bus_finalize(vm->pci);
	if (ret)
		return vm_fail(ret, "cannot place the PCI BARs: %s", strerror(-ret));
	return 0;
}

struct vm_routes {
	struct pci_intx_route r[256];
	int n;
};

static void vm_collect_route(void *opaque, uint8_t b, uint8_t s, uint8_t pin, int gsi)
{
	struct vm_routes *routes = opaque;

	if (routes->n < (int)(sizeof routes->r / sizeof routes->r[0]))
		routes->r[routes->n++] = (struct pci_intx_route){
			.bus = b, .slot = s, .pin = pin, .gsi = gsi,
		};
}

/* MP (unless x86.mptable=false), ACPI (-A) and SMBIOS tables for a direct-booted kernel. */
static int vm_build_tables(struct cfg_node *root, struct vm *vm, uint64_t *rsdp,
			   uint64_t *region, uint64_t *region_len)
{
	static struct vm_routes routes;
	struct smbios_info smbios;
	struct tables_params tp = {
		.topo = &vm->topo,
		.smbios = &smbios,
		.pm1a_evt_port = PLATFORM_PM1A_EVT,
		.pm1a_cnt_port = PLATFORM_PM1A_CNT,
		.pm_tmr_port = PLATFORM_PM_TMR,
		.smi_cmd_port = PLATFORM_SMI_CMD,
		.sci_irq = PLATFORM_SCI_IRQ,
		.acpi_enable_value = PLATFORM_ACPI_ENABLE,
		.acpi_disable_value = PLATFORM_ACPI_DISABLE,
	};
	char err[256] = "";
	int ret;

	if (vm_get_bool(root, "acpi_tables", false, &tp.acpi) ||
	    vm_get_bool(root, "x86.mptable", true, &tp.mptable))
		return -EINVAL;
	ret = smbios_info_from_config(root, vm->name, &smbios, err, sizeof err);
	if (ret)
		return vm_fail(ret, "%s", err);
	routes.n = 0;
	pci_bus_intx_routes(vm->pci, vm_collect_route, &routes);
	tp.routes = routes.r;
	tp.nroutes = routes.n;
	ret = tables_build(vm->mem, &tp, rsdp, region, region_len);
	if (ret)
		return vm_fail(ret, "cannot build the firmware tables: %s", strerror(-ret));
	return 0;
}

/* Direct kernel boot: firmware tables, e820, then the kernel itself. */
static int vm_boot_kernel(struct cfg_node *root, struct vm *vm, const char *kernel)
{
	struct e820_entry e820[VM_E820_MAX];
	struct loader_kernel_params p = {
		.kernel = kernel,
		.initrd = cfg_get(root, "boot.initrd"),
		.cmdline = cfg_get(root, "boot.cmdline"),
	};
	uint64_t rsdp = 0, region = 0, region_len = 0;
	char err[256] = "";
	int n, ret;

	ret = vm_build_tables(root, vm, &rsdp, &region, &region_len);
	if (ret)
		return ret;
	n = e820_build(vm->mem, region, region_len, e820, VM_E820_MAX);
	if (n < 0)
		return vm_fail(n, "cannot build the e820 map: %s", strerror(-n));
	p.e820 = e820;
	p.e820_count = n;
	p.rsdp_gpa = rsdp;
	ret = loader_load_kernel(vm->mem, &p, &vm->bsp, err, sizeof err);
	if (ret)
		return vm_fail(ret, "%s", err[0] ? err : strerror(-ret));
	return 0;
}

static int vm_boot(struct cfg_node *root, struct vm *vm)
{
	const char *kernel = cfg_get(root, "boot.kernel");
	const char *rom = cfg_get(root, "lpc.bootrom");
	char err[256] = "";
	int ret;

	if (kernel)
		return vm_boot_kernel(root, vm, kernel);
	if (!rom)
		rom = cfg_get(root, "bootrom");
	ret = loader_load_bootrom(vm->mem, rom, &vm->bsp, err, sizeof err);
	if (ret)
		return vm_fail(ret, "%s", err[0] ? err : strerror(-ret));
	return 0;
}

static int vm_map_memory(struct vm *vm)
{
	for (int i = 0; i < gm_region_count(vm->mem); i++) {
		const struct gm_region *r = gm_region(vm->mem, i);
		int ret = accel_map_memory(vm->accel, r->gpa, r->size, r->host, r->kind == GM_ROM);

		if (ret)
			return vm_fail(ret, "cannot map guest memory 0x%llx-0x%llx: %s",
				       (unsigned long long)r->gpa,
				       (unsigned long long)(r->gpa + r->size - 1), strerror(-ret));
	}
	return 0;
}

/* SIGTERM: only an eventfd write here; the loop thread presses the button. */
static int vm_term_fd = -1;

int vm_build(struct cfg_node *root, struct vm **out)
{
	const char *name = cfg_get(root, "name");
	struct vm *vm;
	int ret;

	*out = NULL;
	for (size_t i = 0; i < sizeof vm_not_yet / sizeof vm_not_yet[0]; i++) {
		const char *v = cfg_get(root, vm_not_yet[i].key);

		if ((v && strcmp(v, "0") != 0) || cfg_find(root, vm_not_yet[i].key))
			return vm_fail(-ENOTSUP, "not supported yet: %s (%s)", vm_not_yet[i].what,
				       vm_not_yet[i].key);
	}
	if (!cfg_get(root, "boot.kernel") && !cfg_get(root, "lpc.bootrom") &&
	    !cfg_get(root, "bootrom"))
		return vm_fail(-EINVAL, "no bootrom was configured");

	vm = calloc(1, sizeof *vm);
	if (!vm)
		return -ENOMEM;
	atomic_init(&vm->exit_code, -1);
	vm->term_fd = -1;
	pthread_mutex_init(&vm->start_lock, NULL);
	pthread_cond_init(&vm->start_cond, NULL);
	snprintf(vm->name, sizeof vm->name, "%s", name ? name : "khyve");

	ret = vm_read_topology(root, vm);
	if (ret)
		goto fail;
	vm->vcpus = calloc((size_t)vm->ncpus, sizeof *vm->vcpus);
	if (!vm->vcpus) {
		ret = -ENOMEM;
		goto fail;
	}
	for (int i = 0; i < vm->ncpus; i++) {
		vm->vcpus[i].vm = vm;
		vm->vcpus[i].index = i;
	}
	if ((ret = vm_read_pinning(root, vm)) ||
	    (ret = vm_get_bool(root, "x86.strictio", false, &vm->strictio)) ||
	    (ret = vm_get_bool(root, "x86.x2apic", false, &vm->x2apic)))
		goto fail;

	if ((ret = vm_create_memory(root, vm)))
		goto fail;
	if ((ret = io_bus_create(&vm->io)) || (ret = evl_create(&vm->loop))) {
		vm_fail(ret, "cannot create the I/O bus or event loop: %s", strerror(-ret));
		goto fail;
	}
	if ((ret = vm_create_accel(root, vm)))
		goto fail;
	ret = platform_create(vm, root, &vm->platform);
	if (ret) {
		vm_fail(ret, "cannot create the platform devices: %s", strerror(-ret));
		goto fail;
	}
	if ((ret = vm_create_pci(root, vm)) || (ret = vm_boot(root, vm)) ||
	    (ret = vm_map_memory(vm)))
		goto fail;
	*out = vm;
	return 0;
fail:
	vm_destroy(vm);
	return ret < 0 ? ret : -EINVAL;
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	if (vm->pci)
		pci_bus_destroy(vm->pci);
	if (vm->platform)
		platform_destroy(vm->platform);
	for (int i = 0; vm->vcpus && i < vm->ncpus; i++) {
		struct accel_vcpu *av = atomic_load(&vm->vcpus[i].accel);

		if (av)
			accel_vcpu_destroy(av);
	}
	accel_destroy(vm->accel);
	evl_destroy(vm->loop);
	io_bus_destroy(vm->io);
	gm_destroy(vm->mem);
	if (vm->term_fd >= 0) {
		signal(SIGTERM, SIG_DFL);
		vm_term_fd = -1;
		close(vm->term_fd);
	}
	pthread_cond_destroy(&vm->start_cond);
	pthread_mutex_destroy(&vm->start_lock);
	free(vm->vcpus);
	free(vm->apic_ids);
	free(vm);
}

struct guest_mem *vm_mem(struct vm *vm)
{
	return vm->mem;
}

struct io_bus *vm_io(struct vm *vm)
{
	return vm->io;
}

struct event_loop *vm_event_loop(struct vm *vm)
{
	return vm->loop;
}

int vm_ncpus(const struct vm *vm)
{
	return vm->ncpus;
}

const char *vm_name(const struct vm *vm)
{
	return vm->name;
}

void vm_request_exit(struct vm *vm, enum vm_exit_code code)
{
	vm_request_exit_status(vm, (int)code);
}

/* The status becomes the process's exit status, so only its low 8 bits can matter. */
void vm_request_exit_status(struct vm *vm, int status)
{
	int none = -1;

	if (!atomic_compare_exchange_strong(&vm->exit_code, &none, status & 0xff))
		return;
	for (int i = 0; i < vm->ncpus; i++) {
		struct accel_vcpu *av = atomic_load(&vm->vcpus[i].accel);

		if (av)
			accel_vcpu_kick(av);
	}
	evl_stop(vm->loop);
}

void vm_press_power_button(struct vm *vm)
{
	platform_power_button(vm->platform);
}


static void vm_sigterm(int sig)
{
	uint64_t one = 1;
	int saved = errno;

	(void)sig;
	if (write(vm_term_fd, &one, sizeof one) < 0) {
		/* the counter is already non-zero: the press is pending anyway */
	}
	errno = saved;
}

static void vm_term_ready(void *opaque, int fd, uint32_t events)
{
	uint64_t v;

	(void)events;
	if (read(fd, &v, sizeof v) == sizeof v)
		vm_press_power_button(opaque);
}

static int vm_install_signals(struct vm *vm)
{
	struct sigaction sa;
	int ret;

	vm->term_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->term_fd < 0)
		return -errno;
	ret = evl_add_fd(vm->loop, vm->term_fd, EPOLLIN, vm_term_ready, vm);
	if (ret)
		return ret;
	vm_term_fd = vm->term_fd;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = vm_sigterm;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0)
		return -errno;
	/* A closed socket or pipe on a backend is an error return, not the end of the VM. */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int vm_run(struct vm *vm)
{
	int ret, started = 0;

	ret = vm_install_signals(vm);
	if (ret) {
		fprintf(stderr, "khyve: cannot set up SIGTERM handling: %s\n", strerror(-ret));
		return VM_EXIT_ERROR;
	}
	for (int i = 0; i < vm->ncpus; i++) {
		struct vcpu *vc = &vm->vcpus[i];

		ret = pthread_create(&vc->thread, NULL, vcpu_thread, vc);
		if (ret) {
			fprintf(stderr, "khyve: cannot start vcpu %d: %s\n", i, strerror(ret));
			vm_request_exit(vm, VM_EXIT_ERROR);
			break;
		}
		vc->started = true;
		started++;
	}
	/* Every vCPU exists before any runs, so the first IPI finds its target. */
	pthread_mutex_lock(&vm->start_lock);
	while (vm->nready < started)
		pthread_cond_wait(&vm->start_cond, &vm->start_lock);
	vm->go = true;
	pthread_cond_broadcast(&vm->start_cond);
	pthread_mutex_unlock(&vm->start_lock);

	/*
	 * Always enter the loop: it returns only once vm_request_exit has kicked every vCPU
	 * (evl_stop comes last there), so no thread is joined while a kick may still reach it.
	 */
	ret = evl_run(vm->loop);
	if (atomic_load(&vm->exit_code) < 0) {
		fprintf(stderr, "khyve: the event loop failed: %s\n",
			strerror(ret < 0 ? -ret : EIO));
		vm_request_exit(vm, VM_EXIT_ERROR);
	}
	for (int i = 0; i < vm->ncpus; i++)
		if (vm->vcpus[i].started)
			pthread_join(vm->vcpus[i].thread, NULL);
	return atomic_load(&vm->exit_code);
}
