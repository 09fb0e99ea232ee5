#!/bin/busybox sh
# SPDX-License-Identifier: MIT
# /init of the Linux suite's initramfs. Runs the steps named on the kernel
# command line (xlplan=step,step,...) and powers off. Every line the host
# test parses starts with "XL": "XL> step" when a step begins, "XL@ action"
# when the host must act now (run_linux.py signals the agent), "XL= ..." for
# a result, "XL! ..." for a failure.
/bin/busybox mkdir -p /proc /sys /dev /tmp /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mkdir -p /dev/shm && mount -t tmpfs shm /dev/shm # cyclictest's shm_open

arg() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" /proc/cmdline; }
plan=$(arg xlplan)
count=$(arg xlcount)
modparams=$(arg xlmod | tr : ' ')
[ -n "$count" ] || count=500

ticks() {
	# "Per CPU device: N" is followed by "Clock Event Device: NAME"
	awk '/^Per CPU device:/ { cpu = $4 }
	     /^Clock Event Device:/ { if (cpu != "") print "XL= tick cpu=" cpu " dev=" $4; cpu = "" }' \
		/proc/timer_list
}

counters() {
	d=/sys/kernel/debug/exitless_pvtimer
	if [ -r $d/counters ]; then
		sed 's/^/XL= counter /' $d/counters
	fi
	grep -i 'exitless\|LOC:\|SPU:' /proc/interrupts | sed 's/^/XL= interrupts /'
}

for step in $(echo "$plan" | tr , ' '); do
	echo "XL> $step"
	case $step in
	load)
		if insmod /exitless_pvtimer.ko $modparams; then
			echo "XL= load ok"
		else
			echo "XL! load failed"
		fi
		dmesg | grep 'exitless_pvtimer' | sed 's/^/XL= dmesg /'
		;;
	unload)
		counters
		if rmmod exitless_pvtimer; then echo "XL= unload ok"; else echo "XL! unload failed"; fi
		;;
	ticks) ticks ;;
	work)
		if /workload --count "$count"; then echo "XL= work ok"; else echo "XL! work failed"; fi
		;;
	cyclictest)
		if [ -x /cyclictest ]; then
			/cyclictest -q -S -m -i 1000 -l 1000 -D 5 2>&1 | sed 's/^/XL= cyclictest /'
			echo "XL= cyclictest done"
		fi
		;;
	offline)
		# CPU 1 leaves and comes back while timers run on CPU 0
		echo 0 > /sys/devices/system/cpu/cpu1/online && sleep 1 &&
			echo 1 > /sys/devices/system/cpu/cpu1/online &&
			echo "XL= offline ok" || echo "XL! offline failed"
		;;
	stop2|kill|term|snap|ping)
		# the host acts on this line; idle meanwhile (4 s covers a 2 s stop)
		echo "XL@ $step"
		sleep 4
		;;
	counters) counters ;;
	idle)
		# nothing runs: what an idle guest costs (backstops, pv fires)
		echo "XL= idle_begin_s $(cut -d' ' -f1 /proc/uptime)"
		sleep 3
		echo "XL= idle_end_s $(cut -d' ' -f1 /proc/uptime)"
		;;
	*) echo "XL! unknown step $step" ;;
	esac
done
counters
echo "XL> poweroff"
poweroff -f
