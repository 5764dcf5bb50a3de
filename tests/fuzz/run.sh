#!/bin/bash
# run.sh: build every libFuzzer target in tests/fuzz/ with clang (ASan+UBSan) and run each
# briefly. A target names the sources it needs in a line of its own:
#   /* FUZZ_SOURCES: src/x86/emu/*.c */
# FUZZ_SECONDS (default 30) sets each run's length. Closing line: "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
out=${BUILD:-build}/fuzz
secs=${FUZZ_SECONDS:-30}
mkdir -p "$out"
pass=0
fail=0
for target in tests/fuzz/fuzz_*.c; do
	[ -e "$target" ] || continue
	name=$(basename "$target" .c)
	srcs=$(sed -n 's|.*FUZZ_SOURCES:[[:space:]]*\(.*\)\*/.*|\1|p' "$target" | head -n 1)
	libs=$(sed -n 's|.*FUZZ_LIBS:[[:space:]]*\(.*\)\*/.*|\1|p' "$target" | head -n 1)
	# shellcheck disable=SC2086
	if ! clang -std=gnu11 -D_GNU_SOURCE -g -O1 -Isrc -fno-omit-frame-pointer \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-o "$out/$name" "$target" $srcs $libs -lpthread >"$out/$name.build.log" 2>&1; then
		echo "FAIL $name: build"
		tail -n 20 "$out/$name.build.log" | sed 's/^/    /'
		fail=$((fail + 1))
		continue
	fi
	mkdir -p "$out/corpus-$name"
	seeds=tests/fuzz/corpus/$name
	[ -d "$seeds" ] || seeds=
	# shellcheck disable=SC2086
	if "$out/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$out/$name-" \
		"$out/corpus-$name" $seeds >"$out/$name.log" 2>&1; then
		echo "ok   $name ($(grep -oE 'Done [0-9]+ runs' "$out/$name.log" | tail -n 1))"
		pass=$((pass + 1))
	else
		echo "FAIL $name:"
		grep -E 'ERROR|SUMMARY|Test unit written' "$out/$name.log" | head -n 10 | sed 's/^/    /'
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
