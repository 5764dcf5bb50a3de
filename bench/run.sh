#!/bin/bash
# run.sh: khyve's benchmarks (`make bench`; never part of `make test`). Prints markdown tables:
#  1. start-up: exec-to-exit wall time and peak RSS (bench/measure.c, median of BENCH_RUNS)
#     of the trivial boot ROM (build/guest/rom.bin) under khyve (accel=soft, and accel=kvm
#     where /dev/kvm opens), QEMU -M microvm and -M pc (TCG, and KVM where it opens),
#     bench/kvm_floor (the least a KVM program can do) and /bin/true (the cost of exec and
#     exit alone, the floor where there is no KVM); ratios against each.
#  2. integer throughput: bench/guest/intbench.elf (softcpu.md §1.2's workload) at
#     BENCH_ITER1 and BENCH_ITER2 iterations; MIPS = (ITER2-ITER1) * INSNS_PER_ITER / (t2-t1),
#     so boot time cancels; khyve's software CPU against QEMU TCG in the same run.
#  3. Linux boot (`boot`): Debian's kernel (BENCH_KERNEL, else from KHYVE_TESTDATA as in
#     tests/integration/linux_*.sh) with the busybox initramfs of scripts/mkinitramfs.sh,
#     1 vCPU, the same command line on khyve's software CPU and QEMU TCG (-M pc): wall time
#     from exec to /init's marker line and to the exit after `poweroff -f` (bench/boot.sh),
#     median of BENCH_BOOT_RUNS (3) runs taken in turns, engine after engine, so that both
#     see the same load.
# Every engine is first run once under `timeout` to check that it finishes with the expected
# exit status (and, for intbench, the native checksum); one that does not is reported and
# left out of the timings (boot: each timed run is checked, and the first failure drops the
# engine). BENCH_PARTS="startup throughput boot blk" picks the sections.
set -u
cd "$(dirname "$0")/.." || exit 1
build=${BUILD:-build}
out=$build/bench
runs=${BENCH_RUNS:-21}
truns=${BENCH_TRUNS:-3}
iter1=${BENCH_ITER1:-10}
iter2=${BENCH_ITER2:-210}
limit=${BENCH_TIMEOUT:-300}
qemu=${QEMU:-qemu-system-x86_64}
parts=${BENCH_PARTS:-startup throughput boot blk}
bruns=${BENCH_BOOT_RUNS:-3}

# Instructions per iteration of workload_iter (bench/guest/workload.c as built by
# bench/guest/Makefile with gcc 12.2, Debian 12), from the difference of two native runs:
#   valgrind --tool=callgrind build/bench/intbench-native 10  -> 35,922,781 Ir
#   valgrind --tool=callgrind build/bench/intbench-native 20  -> 71,717,271 Ir
#   (71717271 - 35922781) / 10 = 3,579,449
# bench/count_insns.sh repeats this; it checks the constant too.
INSNS_PER_ITER=3579449

mkdir -p "$out"
cc -O2 -Wall -Wextra -o "$out/measure" bench/measure.c || exit 1
cc -O2 -Wall -Wextra -o "$out/kvm_floor" bench/kvm_floor.c || exit 1
make -s -C bench/guest BUILD="$(cd "$out" && pwd)" || exit 1

khyve=$build/khyve
rom=$build/guest/rom.bin
elf=$out/intbench.elf
for f in "$khyve" "$rom"; do
	[ -e "$f" ] || { echo "bench: $f is missing (run make first)"; exit 1; }
done
have_qemu=0
command -v "$qemu" >/dev/null && have_qemu=1
have_kvm=0
"$out/kvm_floor" >/dev/null 2>&1 && have_kvm=1

echo "# khyve benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- host: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1), $(nproc) CPUs," \
	"$(uname -r); load average at start: $(cut -d ' ' -f 1-3 /proc/loadavg)"
if [ $have_kvm = 1 ]; then
	echo "- /dev/kvm: usable"
else
	echo "- /dev/kvm: not usable here ($( [ -e /dev/kvm ] && echo "present, does not open" || echo "absent")): KVM rows are left out"
fi
[ $have_qemu = 1 ] && echo "- QEMU: $("$qemu" --version | head -n 1)"
echo "- start-up: median of $runs runs; throughput: median of $truns runs at ITER1=$iter1 and ITER2=$iter2 iterations (native: 20 times as many)"
echo

# QEMU options shared by every QEMU run: no default devices, COM1 on stdio, the exit port.
# shellcheck disable=SC2054
QEMU_COMMON=(-nodefaults -no-user-config -nographic -serial stdio -no-reboot -m 64M
	-device isa-debug-exit,iobase=0xf4,iosize=4)

ratio() {	# ratio A B: A/B with two decimals, or - when either is missing
	if [ -z "${1:-}" ] || [ -z "${2:-}" ]; then
		echo -
		return
	fi
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}

want_part() {
	case " $parts " in *" $1 "*) return 0 ;; esac
	return 1
}

if want_part startup; then
# ---- start-up ----
# shellcheck disable=SC2054 # commas belong to the options
KHYVE_ROM=(-c 1 -m 64M -s 0,hostbridge -s 31,lpc -l com1,stdio -l "bootrom,$rom" romguest)

names=()
declare -A cmd show want wall rss
add() {	# add NAME WANTED_EXIT command...
	local name=$1 w=$2
	shift 2
	names+=("$name")
	want[$name]=$w
	cmd[$name]=$(printf '%q ' "$@")
	show[$name]="$*"
}
add exec_floor 0 /bin/true
add khyve-soft 1 "$khyve" -o accel=soft "${KHYVE_ROM[@]}"
if [ $have_kvm = 1 ]; then
	add khyve-kvm 1 "$khyve" -o accel=kvm "${KHYVE_ROM[@]}"
	add kvm_floor 0 "$out/kvm_floor"
fi
if [ $have_qemu = 1 ]; then
	add qemu-microvm-tcg 1 "$qemu" -M microvm -accel tcg "${QEMU_COMMON[@]}" -bios "$rom"
	add qemu-pc-tcg 1 "$qemu" -M pc -accel tcg "${QEMU_COMMON[@]}" -bios "$rom"
	if [ $have_kvm = 1 ]; then
		add qemu-microvm-kvm 1 "$qemu" -M microvm -accel kvm "${QEMU_COMMON[@]}" -bios "$rom"
		add qemu-pc-kvm 1 "$qemu" -M pc -accel kvm "${QEMU_COMMON[@]}" -bios "$rom"
	fi
fi

echo "## Start-up: trivial boot ROM, exec to exit"
echo
echo "| engine | wall ms | peak RSS KiB | exit | command |"
echo "|---|---|---|---|---|"
for n in "${names[@]}"; do
	eval "timeout $limit ${cmd[$n]}" </dev/null >/dev/null 2>&1
	rc=$?
	if [ "$rc" != "${want[$n]}" ]; then
		echo "| $n | - | - | $rc (want ${want[$n]}) | \`${show[$n]}\` |"
		continue
	fi
	# shellcheck disable=SC2086
	read -r _ w r e < <(eval "$out/measure $n $runs -- ${cmd[$n]}")
	wall[$n]=$w
	rss[$n]=$r
	echo "| $n | $w | $r | $e | \`${show[$n]}\` |"
done
echo

echo "| comparison | time ratio | RSS ratio | target |"
echo "|---|---|---|---|"
for k in khyve-soft khyve-kvm; do
	[ -n "${wall[$k]:-}" ] || continue
	for q in qemu-microvm-tcg qemu-pc-tcg qemu-microvm-kvm qemu-pc-kvm; do
		[ -n "${wall[$q]:-}" ] || continue
		t=">= 10x faster, >= 8x smaller (microvm)"
		[ "$q" = qemu-microvm-tcg ] || [ "$q" = qemu-microvm-kvm ] || t=
		echo "| $q / $k | $(ratio "${wall[$q]}" "${wall[$k]}")x | $(ratio "${rss[$q]}" "${rss[$k]}")x | $t |"
	done
done
if [ -n "${wall[khyve-kvm]:-}" ] && [ -n "${wall[kvm_floor]:-}" ]; then
	echo "| khyve-kvm / kvm_floor | $(ratio "${wall[khyve-kvm]}" "${wall[kvm_floor]}")x |" \
		"$(ratio "${rss[khyve-kvm]}" "${rss[kvm_floor]}")x | <= 2x |"
fi
if [ -n "${wall[khyve-soft]:-}" ] && [ -n "${wall[exec_floor]:-}" ]; then
	echo "| khyve-soft / exec_floor | $(ratio "${wall[khyve-soft]}" "${wall[exec_floor]}")x |" \
		"$(ratio "${rss[khyve-soft]}" "${rss[exec_floor]}")x | |"
fi
if [ -n "${wall[khyve-soft]:-}" ] && [ -n "${wall[kvm_floor]:-}" ]; then
	echo "| khyve-soft / kvm_floor | $(ratio "${wall[khyve-soft]}" "${wall[kvm_floor]}")x |" \
		"$(ratio "${rss[khyve-soft]}" "${rss[kvm_floor]}")x | |"
fi
echo

fi

if want_part throughput; then
# ---- integer throughput ----
echo "## Integer throughput: intbench ($INSNS_PER_ITER instructions per iteration)"
echo
native_sum=$("$out/intbench-native" "$iter1" | sed -n 's/.*checksum=\([0-9a-f]*\).*/\1/p')

tnames=()
declare -A tcmd tshow twant tscale
tadd() {	# tadd NAME SCALE WANTED_EXIT command... (@ITERS@: SCALE times the iteration count)
	local name=$1 w=$3
	tscale[$name]=$2
	shift 3
	tnames+=("$name")
	twant[$name]=$w
	tcmd[$name]=$(printf '%q ' "$@")
	tshow[$name]="$*"
}
# shellcheck disable=SC2054
KHYVE_ELF=(-c 1 -m 64M -s 0,hostbridge -s 31,lpc -l com1,stdio -o "boot.kernel=$elf"
	-o boot.cmdline=iters=@ITERS@ benchvm)
QEMU_ELF=(-M pc "${QEMU_COMMON[@]}" -kernel "$elf" -append iters=@ITERS@)
tadd khyve-soft 1 1 "$khyve" -o accel=soft "${KHYVE_ELF[@]}"
[ $have_kvm = 1 ] && tadd khyve-kvm 1 1 "$khyve" -o accel=kvm "${KHYVE_ELF[@]}"
if [ $have_qemu = 1 ]; then
	tadd qemu-tcg 1 0 "$qemu" -accel tcg "${QEMU_ELF[@]}"
	[ $have_kvm = 1 ] && tadd qemu-kvm 1 0 "$qemu" -accel kvm "${QEMU_ELF[@]}"
fi
# Native runs 20 times the iterations, so that its time is not mostly exec and exit.
tadd native 20 0 "$out/intbench-native" @ITERS@

declare -A mips
echo "| engine | t(ITER1) ms | t(ITER2) ms | MIPS | checksum | command (at ITER2) |"
echo "|---|---|---|---|---|---|"
for n in "${tnames[@]}"; do
	i1=$((iter1 * tscale[$n]))
	i2=$((iter2 * tscale[$n]))
	c1=${tcmd[$n]//@ITERS@/$i1}
	c2=${tcmd[$n]//@ITERS@/$i2}
	s1=${tshow[$n]//@ITERS@/$i1}
	s2=${tshow[$n]//@ITERS@/$i2}
	got=$(eval "timeout $limit $c1" </dev/null 2>&1)
	rc=$?
	sum=$(printf '%s\n' "$got" | tr -d '\r' | sed -n 's/.*checksum=\([0-9a-f]*\).*/\1/p' | head -n 1)
	want_sum=$native_sum
	[ "$i1" = "$iter1" ] || want_sum=$sum	# a scaled native run is its own reference
	if [ "$rc" != "${twant[$n]}" ] || [ "$sum" != "$want_sum" ]; then
		why="exit $rc (want ${twant[$n]})"
		[ "$sum" = "$want_sum" ] || why="$why, checksum '${sum}' (want $native_sum)"
		echo "| $n | - | - | - | $why | \`$s1\` |"
		continue
	fi
	read -r _ t1 _ _ < <(eval "$out/measure $n $truns -- timeout $limit $c1")
	read -r _ t2 _ e2 < <(eval "$out/measure $n $truns -- timeout $limit $c2")
	if [ "$e2" != "${twant[$n]}" ]; then
		echo "| $n | $t1 | - | - | exit $e2 at $i2 iterations | \`$s2\` |"
		continue
	fi
	m=$(awk -v a="$t1" -v b="$t2" -v n=$((i2 - i1)) -v k=$INSNS_PER_ITER \
		'BEGIN { if (b > a) printf "%.0f", n * k / ((b - a) / 1000) / 1e6; else print "-" }')
	mips[$n]=$m
	echo "| $n | $t1 | $t2 | $m | ok | \`$s2\` |"
done
echo
echo "| comparison | ratio | target |"
echo "|---|---|---|"
[ -n "${mips[khyve-soft]:-}" ] && [ -n "${mips[qemu-tcg]:-}" ] &&
	echo "| khyve-soft / qemu-tcg | $(ratio "${mips[khyve-soft]}" "${mips[qemu-tcg]}") | >= 0.17 (1/6), stretch 0.25; Bochs 0.13 |"
[ -n "${mips[khyve-soft]:-}" ] && [ -n "${mips[native]:-}" ] &&
	echo "| khyve-soft / native | $(ratio "${mips[khyve-soft]}" "${mips[native]}") | |"
[ -n "${mips[qemu-tcg]:-}" ] && [ -n "${mips[native]:-}" ] &&
	echo "| qemu-tcg / native | $(ratio "${mips[qemu-tcg]}" "${mips[native]}") | |"
[ -n "${mips[khyve-kvm]:-}" ] && [ -n "${mips[native]:-}" ] &&
	echo "| khyve-kvm / native | $(ratio "${mips[khyve-kvm]}" "${mips[native]}") | |"
fi

if want_part boot; then
# ---- Linux boot ----
echo
echo "## Linux boot: exec to the userspace marker (1 vCPU, median of $bruns runs)"
echo
data=${KHYVE_TESTDATA:-/var/cache/khyve}
kernel=${BENCH_KERNEL:-$(ls "$data"/kernel/boot/vmlinuz-* 2>/dev/null | head -n 1)}
initrd=$out/initramfs.cpio.gz
marker=KHYVE-USERSPACE-OK
if [ -z "$kernel" ] || [ ! -f "$kernel" ]; then
	echo "no kernel (${kernel:-none in $data/kernel/boot}; scripts/setup.sh --test): section skipped"
elif ! scripts/mkinitramfs.sh "$initrd"; then
	echo "scripts/mkinitramfs.sh failed (busybox-static installed?): section skipped"
else
	# The same command line for both: the console on COM1, no timing options for either.
	bcmd="console=ttyS0 panic=-1 khyve.end=poweroff"
	bnames=()
	declare -A bcmds bshow bwant bfail bmark bexit
	badd() {	# badd NAME WANTED_EXIT command...
		local name=$1
		bnames+=("$name")
		bwant[$name]=$2
		shift 2
		bcmds[$name]=$(printf '%q ' "$@")
		local a show=
		for a in "$@"; do	# shown with quotes where an argument has spaces
			case "$a" in *" "*) a="'$a'" ;; esac
			show="$show $a"
		done
		bshow[$name]=${show# }
	}
	badd khyve-soft 1 "$khyve" -o accel=soft -c 1 -m 512M -A -s 0,hostbridge -s 31,lpc \
		-l com1,stdio -o "boot.kernel=$kernel" -o "boot.initrd=$initrd" \
		-o "boot.cmdline=$bcmd" linuxguest
	[ $have_qemu = 1 ] && badd qemu-tcg 0 "$qemu" -accel tcg -M pc -smp 1 -m 512M \
		-nodefaults -no-user-config -nographic -serial stdio -no-reboot \
		-kernel "$kernel" -initrd "$initrd" -append "$bcmd"
	for ((i = 0; i < bruns; i++)); do
		for n in "${bnames[@]}"; do
			[ -z "${bfail[$n]:-}" ] || continue
			read -r m e rc < <(eval "bench/boot.sh $marker $limit -- ${bcmds[$n]}")
			if [ "$m" = - ] || [ "$rc" != "${bwant[$n]}" ]; then
				bfail[$n]="exit $rc (want ${bwant[$n]})"
				[ "$m" = - ] && bfail[$n]="${bfail[$n]}, no $marker line"
				continue
			fi
			bmark[$n]="${bmark[$n]:-} $m"
			bexit[$n]="${bexit[$n]:-} $e"
		done
	done
	median() {	# median of the numbers given
		printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
			if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
	}
	declare -A bmed
	echo "| engine | to marker ms | to exit ms | runs (to marker) | exit | command |"
	echo "|---|---|---|---|---|---|"
	for n in "${bnames[@]}"; do
		if [ -n "${bfail[$n]:-}" ]; then
			echo "| $n | - | - | | ${bfail[$n]} | \`${bshow[$n]}\` |"
			continue
		fi
		# shellcheck disable=SC2086 # the lists are space-separated numbers
		bmed[$n]=$(median ${bmark[$n]})
		# shellcheck disable=SC2086
		echo "| $n | ${bmed[$n]} | $(median ${bexit[$n]}) | ${bmark[$n]# } | ${bwant[$n]} |" \
			"\`${bshow[$n]}\` |"
	done
	echo
	echo "| comparison | time ratio | target |"
	echo "|---|---|---|"
	[ -n "${bmed[khyve-soft]:-}" ] && [ -n "${bmed[qemu-tcg]:-}" ] &&
		echo "| khyve-soft / qemu-tcg (to marker) | $(ratio "${bmed[khyve-soft]}" "${bmed[qemu-tcg]}")x | <= 2x (within 2x of QEMU TCG) |"
fi
fi

if want_part blk; then
	echo
	BUILD=$build bench/blk.sh
fi
exit 0
