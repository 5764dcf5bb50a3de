#!/bin/bash
# virtio.sh: khyve's virtio devices driven by the freestanding guests of tests/guest through
# the modern and the legacy interface, on every accelerator. virtio-blk on a file: patterns,
# flush, GET_ID against ser=, write-zeroes, discard with the file's blocks deallocated, ro with
# the file unchanged, nodelete, sectorsize=4096, MSI-X, INTx, plain rings, -o pci.B.S.F.* keys;
# flushed data surviving kill -9; backing-path errors (missing, directory, zero size, in use by
# another khyve: exit 4); a loop block device when run as root (discard reaching the file, the
# device's 4 KiB sectors). virtio-console with the host end of a named port's Unix socket.
# virtio-rnd needs no host side: its guest is in tests/guest/guests.txt. QEMU runs the same
# guests in tests/guest/run-qemu-virtio.sh.
. "$(dirname "$0")/lib.sh"

WORK=$LOGDIR/work
mkdir -p "$WORK"
LOOP=
trap '[ -z "$LOOP" ] || losetup -d "$LOOP"; rm -rf "$LOGDIR"' EXIT
BASE=(-A -H -P -c 1 -m 64M -s 0:0,hostbridge -s 31:0,lpc -l com1,stdio)

host_check() {	# NAME ACCEL CONDITION-EXIT-STATUS MESSAGE
	if [ "$3" = 0 ]; then
		echo "ok $1 [$2]"
		PASSED=$((PASSED + 1))
	else
		echo "not ok $1 [$2]: $4"
		FAILED=$((FAILED + 1))
	fi
}

# A 16 MiB disk with every block allocated (random data, so a hole is a real deallocation).
mkdisk() {
	head -c 16M /dev/urandom >"$1"
	sync "$1" 2>/dev/null
}

bytes_allocated() {
	echo $(($(stat -c '%b * %B' "$1")))
}

# blk NAME ACCEL GUEST-CMDLINE DEVICE-OPTIONS: one virtio_blk guest run on $WORK/disk.img.
blk() {
	check "$1" "$2" 1 '^RESULT: PASS' 120 -- "${BASE[@]}" \
		-s "3:0,virtio-blk,$WORK/disk.img$4" -o "boot.kernel=$GUESTS/virtio_blk.elf" \
		-o "boot.cmdline=$3" "vblk-$1"
}

durable() {	# ACCEL MODE
	local accel=$1 mode=$2 log=$LOGDIR/durable.$1.$2.log pid waited=0 why=
	mkdisk "$WORK/disk.img"
	: >"$log"
	"$KHYVE" -o accel="$accel" "${BASE[@]}" -s "3:0,virtio-blk,$WORK/disk.img" \
		-o "boot.kernel=$GUESTS/virtio_blk.elf" -o "boot.cmdline=mode=$mode test=durable at=2048" \
		vblk-durable </dev/null >"$log" 2>&1 &
	pid=$!
	while [ $waited -lt 6000 ] && ! grep -q '^FLUSHED' "$log" && kill -0 $pid 2>/dev/null; do
		sleep 0.01
		waited=$((waited + 1))
	done
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	if ! grep -q '^FLUSHED' "$log"; then
		why="no FLUSHED line: $(tail -n 3 "$log" | tr '\n' ' ')"
	else
		awk 'BEGIN { for (s = 2048; s < 4096; s++) for (r = 0; r < 16; r++)
			printf "s%08d r%02d khyve-durability.\n", s, r }' >"$WORK/expect"
		dd if="$WORK/disk.img" of="$WORK/got" bs=512 skip=2048 count=2048 status=none
		cmp -s "$WORK/expect" "$WORK/got" || why="the flushed 1 MiB differs in the host file"
	fi
	host_check "blk_durable_kill9_$mode" "$accel" "$([ -z "$why" ]; echo $?)" "$why"
}

# console LABEL ACCEL MODE [EXTRA-CMDLINE [PORTS-BEFORE]]: the guest talks on the port named
# port1; PORTS-BEFORE ("name=/sock,...") puts other ports ahead of it, so it is not port 0.
# A second khyve on a disk that a running khyve has open for writing is refused (exit 4).
in_use() {	# ACCEL
	local accel=$1 log=$LOGDIR/inuse.$1.log pid waited=0
	mkdisk "$WORK/disk.img"
	: >"$log"
	"$KHYVE" -o accel="$accel" "${BASE[@]}" -s "3:0,virtio-blk,$WORK/disk.img" \
		-o "boot.kernel=$GUESTS/virtio_blk.elf" -o "boot.cmdline=test=durable" vblk-holder \
		</dev/null >"$log" 2>&1 &
	pid=$!
	while [ $waited -lt 6000 ] && ! grep -q '^FLUSHED' "$log" && kill -0 $pid 2>/dev/null; do
		sleep 0.01
		waited=$((waited + 1))
	done
	check blk_path_in_use "$accel" 4 'in use' 20 -- "${BASE[@]}" \
		-s "3:0,virtio-blk,$WORK/disk.img" -o "boot.kernel=$GUESTS/virtio_blk.elf" vblk-second
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
}

console() {
	local name=$1 accel=$2 mode=$3 extra=${4:-} before=${5:-}
	local sock=$WORK/con.sock peer=$LOGDIR/peer.$1.$2.log
	rm -f "$sock" "$WORK"/other*.sock
	python3 - "$sock" >"$peer" 2>&1 <<'EOF' &
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
	local ppid=$!
	check "console_$name" "$accel" 1 '^RESULT: PASS' 120 -- "${BASE[@]}" \
		-s "3:0,virtio-console,${before}port1=$sock" -o "boot.kernel=$GUESTS/virtio_con.elf" \
		-o "boot.cmdline=mode=$mode port=port1 expect=pong $extra" vcon
	kill $ppid 2>/dev/null
	wait $ppid 2>/dev/null
	grep -q 'peer got: hello from virtio-console port port1' "$peer"
	host_check "console_host_read_$name" "$accel" $? "host read: $(tr '\n' ' ' <"$peer")"
}

for accel in $ACCELS; do
	for mode in modern legacy; do
		mkdisk "$WORK/disk.img"
		before=$(bytes_allocated "$WORK/disk.img")
		blk "blk_$mode" "$accel" \
			"mode=$mode size=16M ser=KHYVE-SER-1 need=flush,discard,wz hostile=1" ",ser=KHYVE-SER-1"
		after=$(bytes_allocated "$WORK/disk.img")
		# The guest discards 1 MiB; splitting the file's extent can cost the file
		# system a metadata block or a few, which stat counts.
		host_check "blk_discard_deallocates_$mode" "$accel" \
			"$([ $((before - after)) -ge $((1048576 - 65536)) ]; echo $?)" \
			"allocated bytes $before before, $after after (want about 1 MiB less)"

		mkdisk "$WORK/disk.img"
		sum=$(md5sum <"$WORK/disk.img")
		blk "blk_ro_$mode" "$accel" "mode=$mode ro=1 hostile=1" ",ro"
		host_check "blk_ro_unchanged_$mode" "$accel" \
			"$([ "$(md5sum <"$WORK/disk.img")" = "$sum" ]; echo $?)" "the file changed"

		durable "$accel" "$mode"

		console "$mode" "$accel" "$mode"
	done

	mkdisk "$WORK/disk.img"
	before=$(bytes_allocated "$WORK/disk.img")
	blk blk_nodelete "$accel" "mode=modern" ",nodelete"
	after=$(bytes_allocated "$WORK/disk.img")
	host_check blk_nodelete_keeps_blocks "$accel" "$([ "$before" = "$after" ]; echo $?)" \
		"allocated bytes $before before, $after after"
	blk blk_sectorsize_4096 "$accel" "mode=modern bs=4096 size=16M" ",sectorsize=4096"
	blk blk_msix_modern "$accel" "mode=modern irq=msix" ""
	blk blk_msix_legacy "$accel" "mode=legacy irq=msix" ""
	blk blk_intx_modern "$accel" "mode=modern irq=intx" ""
	blk blk_intx_legacy "$accel" "mode=legacy irq=intx" ""
	blk blk_plain_rings "$accel" "mode=modern indirect=0 evidx=0" ""
	blk blk_plain_rings_legacy "$accel" "mode=legacy indirect=0 evidx=0" ""
	# The same options as -o pci.B.S.F.* keys.
	mkdisk "$WORK/disk.img"
	check blk_config_keys "$accel" 1 '^RESULT: PASS' 120 -- "${BASE[@]}" \
		-o pci.0.3.0.device=virtio-blk -o "pci.0.3.0.path=$WORK/disk.img" \
		-o pci.0.3.0.ser=CFGKEYS -o pci.0.3.0.sectorsize=4096 \
		-o "boot.kernel=$GUESTS/virtio_blk.elf" -o "boot.cmdline=ser=CFGKEYS bs=4096 size=16M" vk
	sum=$(md5sum <"$WORK/disk.img")
	check blk_config_keys_ro "$accel" 1 '^RESULT: PASS' 120 -- "${BASE[@]}" \
		-o pci.0.3.0.device=virtio-blk -o "pci.0.3.0.path=$WORK/disk.img" -o pci.0.3.0.ro=true \
		-o "boot.kernel=$GUESTS/virtio_blk.elf" -o "boot.cmdline=mode=legacy ro=1" vk
	host_check blk_config_keys_ro_unchanged "$accel" \
		"$([ "$(md5sum <"$WORK/disk.img")" = "$sum" ]; echo $?)" "the file changed"

	for bad in "missing:$WORK/no/such.img" "directory:$WORK"; do
		check "blk_path_${bad%%:*}" "$accel" 4 'virtio-blk' 20 -- "${BASE[@]}" \
			-s "3:0,virtio-blk,${bad#*:}" -o "boot.kernel=$GUESTS/virtio_blk.elf" vblk-bad
	done
	: >"$WORK/empty.img"
	check blk_path_zero_size "$accel" 4 'virtio-blk' 20 -- "${BASE[@]}" \
		-s "3:0,virtio-blk,$WORK/empty.img" -o "boot.kernel=$GUESTS/virtio_blk.elf" vblk-bad
	in_use "$accel"

	# A block device: a loop device over a file (root only; skipped elsewhere).
	mkdisk "$WORK/disk.img"
	if [ "$(id -u)" = 0 ] && LOOP=$(losetup -f --show "$WORK/disk.img" 2>/dev/null); then
		before=$(bytes_allocated "$WORK/disk.img")
		check blk_block_device "$accel" 1 '^RESULT: PASS' 120 -- "${BASE[@]}" \
			-s "3:0,virtio-blk,$LOOP,ser=LOOPDEV" -o "boot.kernel=$GUESTS/virtio_blk.elf" \
			-o "boot.cmdline=mode=modern size=16M ser=LOOPDEV need=flush,discard,wz" vblk-loop
		sync
		after=$(bytes_allocated "$WORK/disk.img")
		host_check blk_block_device_discard "$accel" \
			"$([ $((before - after)) -ge $((1048576 - 65536)) ]; echo $?)" \
			"allocated bytes $before before, $after after (want about 1 MiB less)"
		losetup -d "$LOOP"
		LOOP=
		if LOOP=$(losetup -f --show --sector-size 4096 "$WORK/disk.img" 2>/dev/null); then
			check blk_block_device_4k "$accel" 1 '^RESULT: PASS' 120 -- "${BASE[@]}" \
				-s "3:0,virtio-blk,$LOOP" -o "boot.kernel=$GUESTS/virtio_blk.elf" \
				-o "boot.cmdline=mode=legacy size=16M bs=4096" vblk-loop4k
			losetup -d "$LOOP"
			LOOP=
		fi
	else
		echo "# block-device cases skipped: not root or no loop device"
	fi
	console modern_plain_rings "$accel" modern "evidx=0"
	console legacy_third_port "$accel" legacy "" "other0=$WORK/other0.sock,other1=$WORK/other1.sock,"
done
finish
