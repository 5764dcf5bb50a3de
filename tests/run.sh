#!/bin/bash
# run.sh: every khyve test, then one closing "N passed, N failed" line.
#   unit        build/tests/unit/test_* (no KVM needed)
#   integration tests/integration/*.sh: test guests and Debian's kernel under khyve, on the
#               software CPU always and on KVM too where /dev/kvm opens
#   variants    (--full, the default under `make test`) clang -Werror build + unit tests,
#               ASan+UBSan build + unit and integration tests, short libFuzzer runs,
#               the include-direction check
# Options: --quick (unit + integration in the main build only), --slow (adds check-slow tests).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
mode=full
for a in "$@"; do
	case "$a" in
	--quick) mode=quick ;;
	--slow) mode=slow ;;
	*) echo "usage: $0 [--quick|--slow]" >&2; exit 64 ;;
	esac
done

total_pass=0
total_fail=0
failed_list=()

# Add a program's "N passed, N failed" line to the totals; a program that printed no such
# line (crashed) counts as one failure.
count() {
	local label=$1 log=$2 rc=$3 line p f
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	if [ -z "$line" ]; then
		echo "FAIL $label: no result line (exit $rc); last output:"
		tail -n 20 "$log" | sed 's/^/    /'
		total_fail=$((total_fail + 1))
		failed_list+=("$label")
		return
	fi
	p=${line%% passed*}
	f=${line#*, }
	f=${f%% failed*}
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	if [ "$f" -ne 0 ] || [ "$rc" -ne 0 ]; then
		grep -E '^(FAIL|not ok)' "$log" | sed "s|^|  [$label] |"
		[ "$f" -ne 0 ] || { total_fail=$((total_fail + 1)); echo "FAIL $label: exit $rc"; }
		failed_list+=("$label")
	fi
	echo "$label: $line"
}

run_unit() {
	local build=$1 t log rc
	for t in "$build"/tests/unit/test_*; do
		[ -x "$t" ] || continue
		log=$(mktemp)
		KHYVE_SHARED=${KHYVE_SHARED:-$PWD/../shared} timeout 600 "$t" >"$log" 2>&1
		rc=$?
		count "unit/$(basename "$t")${2:+ ($2)}" "$log" $rc
		rm -f "$log"
	done
}

run_integration() {
	local build=$1 s log rc
	for s in tests/integration/*.sh; do
		[ -x "$s" ] || continue
		log=$(mktemp)
		BUILD=$build SLOW=$([ $mode = slow ] && echo 1 || echo 0) timeout 1800 "$s" >"$log" 2>&1
		rc=$?
		grep -E '^(ok|not ok|accelerators)' "$log" | sed 's/^/    /'
		count "integration/$(basename "$s" .sh)${2:+ ($2)}" "$log" $rc
		rm -f "$log"
	done
}

# A build variant: compile everything with other flags, then run its tests.
variant() {
	local name=$1 dir=$2 tests=$3; shift 3
	local log
	log=$(mktemp)
	if make -j"$(nproc)" BUILD="$dir" "$@" all >"$log" 2>&1; then
		total_pass=$((total_pass + 1))
		echo "ok build ($name)"
		run_unit "$dir" "$name"
		[ "$tests" != integration ] || run_integration "$dir" "$name"
	else
		total_fail=$((total_fail + 1))
		failed_list+=("build ($name)")
		echo "FAIL build ($name):"
		grep -E 'error|Error' "$log" | head -n 20 | sed 's/^/    /'
	fi
	rm -f "$log"
}

echo "== unit tests ($BUILD)"
run_unit "$BUILD"
echo "== integration tests ($BUILD)"
run_integration "$BUILD"

if [ $mode != quick ]; then
	echo "== include directions"
	log=$(mktemp)
	scripts/check-includes.sh >"$log" 2>&1
	count "check-includes" "$log" $?
	rm -f "$log"
	echo "== clang build"
	variant clang build-clang unit CC=clang
	echo "== ASan+UBSan build"
	variant asan build-asan integration CC=clang SAN=1
	echo "== fuzz (short runs)"
	log=$(mktemp)
	tests/fuzz/run.sh >"$log" 2>&1
	count "fuzz" "$log" $?
	rm -f "$log"
fi

if [ ${#failed_list[@]} -gt 0 ]; then
	echo "failed: ${failed_list[*]}"
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
