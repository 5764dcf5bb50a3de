#!/bin/bash
# run-qemu-virtio.sh [BUILD_DIR]: the guests that need host files, sockets or signals, under
# QEMU (TCG, -M pc) as tests/integration/virtio.sh and power_button.sh run them under khyve:
# virtio_blk (modern-only, transitional driven either way, legacy-only; ro; 4 KiB sectors;
# 4 queues; MSI-X and INTx; discard deallocating the file's blocks; kill -9 after FLUSHED),
# virtio_con with a Unix-socket peer, and pwrbtn with the monitor's system_powerdown.
# Prints "ok"/"not ok" lines and "N passed, N failed". Needs python3 for the sockets.
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build/guest}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0

result() {	# NAME STATUS WHY LOG
	if [ "$2" = 0 ]; then
		pass=$((pass + 1))
		echo "ok $1"
	else
		fail=$((fail + 1))
		echo "not ok $1: $3"
		[ -n "$4" ] && grep -a '^not ok\|^RESULT\|^#' "$4" | tail -n 12 | sed 's/^/    /'
	fi
}

qemu() {	# LOG IMAGE CMDLINE QEMU-ARGS...; runs in the foreground, 60 s limit
	local log=$1 image=$2 cmdline=$3
	shift 3
	timeout 60 qemu-system-x86_64 -M pc -accel tcg -nographic -no-reboot -m 64M -net none \
		-device isa-debug-exit,iobase=0xf4,iosize=4 -kernel "$build/$image" -append "$cmdline" \
		"$@" </dev/null >"$log" 2>&1
}

passed() {	# NAME LOG RC: QEMU exit 0 (PASS through 0xF4) and RESULT: PASS
	local why=
	[ "$3" = 0 ] || why="QEMU exit $3"
	grep -aq '^RESULT: PASS' "$2" || why="${why:+$why; }no RESULT: PASS"
	result "$1" "$([ -z "$why" ]; echo $?)" "$why" "$2"
}

mkdisk() {
	head -c 16M /dev/urandom >"$work/disk.img"
}

allocated() {
	echo $(($(stat -c '%b * %B' "$work/disk.img")))
}

drive() {	# EXTRA-DRIVE-OPTS EXTRA-DEVICE-OPTS
	echo "-drive file=$work/disk.img,if=none,id=d0,format=raw,discard=unmap$1"
	echo "-device virtio-blk-pci,drive=d0,serial=KHYVE-SER-1$2"
}

blk() {	# NAME CMDLINE DRIVE-OPTS DEVICE-OPTS
	local log=$work/$1.log
	# shellcheck disable=SC2046
	qemu "$log" virtio_blk.elf "$2" $(drive "$3" "$4")
	passed "$1" "$log" $?
}

for variant in modern:,disable-legacy=on modern: legacy: legacy:,disable-modern=on; do
	mode=${variant%%:*} dev=${variant#*:}
	name=blk_${mode}${dev//[,=]/_}
	mkdisk
	before=$(allocated)
	blk "$name" "mode=$mode size=16M ser=KHYVE-SER-1 need=flush,discard,wz" "" "$dev"
	after=$(allocated)
	# 1 MiB discarded, less any extent-tree block the file system had to add
	result "${name}_discard_deallocates" \
		"$([ $((before - after)) -ge $((1048576 - 65536)) ]; echo $?)" \
		"allocated $before before, $after after"
	sum=$(md5sum <"$work/disk.img")
	blk "${name}_ro" "mode=$mode ro=1" ",readonly=on" "$dev"
	result "${name}_ro_unchanged" "$([ "$(md5sum <"$work/disk.img")" = "$sum" ]; echo $?)" \
		"the file changed"
done
blk blk_sectorsize_4096 "mode=modern bs=4096 size=16M" "" \
	",logical_block_size=4096,physical_block_size=4096"
blk blk_msix_modern "mode=modern irq=msix" "" ""
blk blk_multiqueue_modern "mode=modern" "" ",num-queues=4"
blk blk_multiqueue_legacy "mode=legacy" "" ",num-queues=4"
blk blk_msix_legacy "mode=legacy irq=msix" "" ""
blk blk_intx_modern "mode=modern irq=intx" "" ""
blk blk_intx_legacy "mode=legacy irq=intx" "" ""
blk blk_plain_rings "mode=modern indirect=0 evidx=0" "" ""

# kill -9 as soon as the guest reports its flush; the flushed megabyte must be in the file.
for mode in modern legacy; do
	mkdisk
	log=$work/durable.$mode.log
	: >"$log"	# before the background start, so no earlier FLUSHED is seen
	# shellcheck disable=SC2046
	qemu-system-x86_64 -M pc -accel tcg -nographic -no-reboot -m 64M -net none \
		-kernel "$build/virtio_blk.elf" -append "mode=$mode test=durable at=2048" \
		$(drive "" "") </dev/null >"$log" 2>&1 &
	pid=$!
	for _ in $(seq 600); do
		grep -aq '^FLUSHED' "$log" && break
		sleep 0.1
	done
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	awk 'BEGIN { for (s = 2048; s < 4096; s++) for (r = 0; r < 16; r++)
		printf "s%08d r%02d khyve-durability.\n", s, r }' >"$work/expect"
	dd if="$work/disk.img" of="$work/got" bs=512 skip=2048 count=2048 status=none
	why=
	grep -aq '^FLUSHED' "$log" || why="no FLUSHED line"
	cmp -s "$work/expect" "$work/got" || why="${why:+$why; }flushed data differs"
	result "blk_durable_kill9_$mode" "$([ -z "$why" ]; echo $?)" "$why" "$log"
done

# virtio-console: the peer reads the guest's line from the socket and answers.
peer() {
	python3 - "$1" <<'EOF'
import os, socket, sys, time
path, end = sys.argv[1], time.time() + 60
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
while True:
    try:
        s.connect(path)
        break
    except OSError:
        if time.time() > end:
            sys.exit("cannot connect to " + path)
        time.sleep(0.05)
s.settimeout(60)
data = b""
while b"\n" not in data:
    chunk = s.recv(256)
    if not chunk:
        break
    data += chunk
print("peer got: " + data.decode(errors="replace").strip())
if not data:
    sys.exit("the guest closed the port without a line")
s.sendall(b"pong from the host\n")
time.sleep(1)
EOF
}
for variant in modern:,disable-legacy=on:1 legacy::2 legacy:,disable-modern=on:3; do
	IFS=: read -r mode dev nr <<<"$variant"
	sock=$work/con.sock log=$work/con.log
	rm -f "$sock"
	peer "$sock" >"$work/peer.log" 2>&1 &
	ppid=$!
	qemu "$log" virtio_con.elf "mode=$mode port=port1 expect=pong" \
		-device "virtio-serial-pci,max_ports=4$dev" \
		-chardev "socket,id=c1,path=$sock,server=on,wait=off" \
		-device "virtserialport,chardev=c1,name=port1,nr=$nr"
	rc=$?
	wait $ppid
	passed "console_${mode}${dev//[,=]/_}" "$log" $rc
	grep -q 'peer got: hello from virtio-console port port1' "$work/peer.log"
	result "console_host_read_${mode}${dev//[,=]/_}" $? "$(cat "$work/peer.log")"
done

# Power button: system_powerdown through the monitor after READY.
log=$work/pwrbtn.log
mon=$work/mon.sock
qemu "$log" pwrbtn.elf "wait=60" -monitor "unix:$mon,server=on,wait=off" &
pid=$!
for _ in $(seq 600); do
	grep -aq '^READY' "$log" && break
	sleep 0.1
done
python3 - "$mon" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
time.sleep(0.2)
s.sendall(b"system_powerdown\n")
time.sleep(0.5)
EOF
wait $pid
passed pwrbtn "$log" $?

echo "$pass passed, $fail failed"
[ $fail = 0 ]
