# lib.sh: shared by the integration tests. Source it; it sets KHYVE, ACCELS and helpers.
#   ACCELS   "soft" always, plus "kvm" where /dev/kvm opens (KHYVE_ACCELS overrides)
#   check NAME ACCEL EXPECTED_EXIT PATTERN TIMEOUT -- khyve args...
#            runs khyve with stdin from /dev/null, prints "ok NAME [ACCEL]" or
#            "not ok NAME [ACCEL]: why" and counts; PATTERN is an extended regex that the
#            output must contain ("" for none)
#   finish   prints the accelerators line and "N passed, N failed"
BUILD=${BUILD:-build}
KHYVE=${KHYVE:-$BUILD/khyve}
GUESTS=${GUESTS:-$BUILD/guest}
if [ -n "${KHYVE_ACCELS:-}" ]; then
	ACCELS=$KHYVE_ACCELS
elif [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	ACCELS="soft kvm"
else
	ACCELS="soft"
fi
PASSED=0
FAILED=0
LOGDIR=$(mktemp -d)
trap 'rm -rf "$LOGDIR"' EXIT

check() {
	local name=$1 accel=$2 want=$3 pattern=$4 tmo=$5 log rc
	shift 6 # the "--"
	log="$LOGDIR/$name.$accel.log"
	timeout --kill-after=5 "$tmo" "$KHYVE" -o accel="$accel" "$@" </dev/null >"$log" 2>&1
	rc=$?
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		echo "not ok $name [$accel]: timed out after ${tmo}s; last output:"
		tail -n 8 "$log" | sed 's/^/    # /'
		FAILED=$((FAILED + 1))
	elif [ "$rc" -ne "$want" ]; then
		echo "not ok $name [$accel]: exit $rc, expected $want; last output:"
		tail -n 8 "$log" | sed 's/^/    # /'
		FAILED=$((FAILED + 1))
	elif [ -n "$pattern" ] && ! grep -qE "$pattern" "$log"; then
		echo "not ok $name [$accel]: output lacks /$pattern/; last output:"
		tail -n 8 "$log" | sed 's/^/    # /'
		FAILED=$((FAILED + 1))
	else
		echo "ok $name [$accel]"
		PASSED=$((PASSED + 1))
	fi
}

finish() {
	echo "accelerators: $ACCELS$([ "$ACCELS" = soft ] && echo ' (kvm not run: /dev/kvm does not open here)')"
	echo "$PASSED passed, $FAILED failed"
	[ $FAILED -eq 0 ]
}

# expect_line NAME ACCEL PATTERN TIMEOUT -- khyve args...
#   passes as soon as PATTERN appears in khyve's output (then stops khyve); for guests that
#   run on past what is checked (a real kernel). Prints the last output lines either way.
expect_line() {
	local name=$1 accel=$2 pattern=$3 tmo=$4 log pid waited=0
	shift 5
	log="$LOGDIR/$name.$accel.log"
	"$KHYVE" -o accel="$accel" "$@" </dev/null >"$log" 2>&1 &
	pid=$!
	while [ $waited -lt $((tmo * 10)) ]; do
		grep -qE "$pattern" "$log" && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
		waited=$((waited + 1))
	done
	if grep -qE "$pattern" "$log"; then
		echo "ok $name [$accel] (after $((waited / 10)).$((waited % 10)) s)"
		PASSED=$((PASSED + 1))
	else
		echo "not ok $name [$accel]: /$pattern/ not seen in ${tmo}s"
		FAILED=$((FAILED + 1))
	fi
	kill $pid 2>/dev/null
	sleep 1
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	tail -n 3 "$log" | sed 's/^/    # /'
}
