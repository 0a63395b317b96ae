# One boot of the power-cut test (tests/vm/test_vm_power.py), run as the
# guest's script: stdout goes to the results port (ttyS1), acknowledgements
# of the writers to the third port (ttyS2). Parameters on the kernel command
# line: power.mkfs=1 (first boot: new ext4 file systems), power.last=1 (only
# check, write nothing), power.tcpmode=tcp-flush|tcp-fua|tcp-nowce,
# power.fusemode=fuse-fsync|fuse-dsync, power.seed=N.
#
# Every boot: e2fsck -fy both virtio disks (journal replay after the cut),
# mount them, print the blocks the previous boot's writers left (power-writer
# check: "C TAG BLOCK SEQ" lines), then start over on new sparse files:
# nvmegated serves vda's tcp.img as namespace 1 (NVMe/TCP through the kernel
# host in this guest, tag 1) and vdb's fuse.img as namespace 2 (its FUSE
# file, tag 2), and both writers run until the host kills QEMU. One file
# system each: an fdatasync for one file commits ext4's whole journal, and
# would make up for a missing one of the other.
. /vm/lib.sh
FMNT=/mnt/fuse
NBLOCKS=512                        # 2 MiB per file: rewrites as well as new blocks
PW=/vm/power-writer
arg() { sed -n "s/.*power\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
perr() { echo "@@POWER-ERROR $*"; exit 1; }

KV=$(uname -r)
for m in $(cat /vm/power-modules); do
	insmod /lib/modules/$KV/$m 2>/dev/null || say "insmod $m failed"
done
for m in nvme-tcp ext4 crc32c-intel; do modprobe $m || say "modprobe $m failed"; done
for d in vda vdb; do
	wait_until 10 test -b /dev/$d || perr "no /dev/$d"
done
say "modules loaded"
for d in vda vdb; do
	if [ "$(arg mkfs)" = 1 ]; then
		$MKFS -q -F -t ext4 /dev/$d || perr "mkfs $d"
	fi
	$FSCK -fy /dev/$d > /tmp/fsck.out 2>&1
	echo "@@FSCK $d $?"
	cat /tmp/fsck.out
	mkdir -p /mnt/$d
	# commit=60: ext4 commits nothing by itself for a minute, so only the
	# daemon's own fdatasync/RWF_DSYNC can make an acknowledged block durable
	mount -t ext4 -o commit=60 /dev/$d /mnt/$d || perr "mount $d"
done
say "fsck done"
TCPF=/mnt/vda/tcp.img
FUSEF=/mnt/vdb/fuse.img
[ -e $TCPF ] && $PW check $TCPF 1 $NBLOCKS
[ -e $FUSEF ] && $PW check $FUSEF 2 $NBLOCKS
say "check done"
echo "@@CHECKED"
[ "$(arg last)" = 1 ] && { umount /mnt/vda /mnt/vdb; exit 0; }

rm -f $TCPF $FUSEF
truncate -s $((NBLOCKS * 4))K $TCPF
truncate -s $((NBLOCKS * 4))K $FUSEF
sync                               # the new empty files survive the cut
mkdir -p $FMNT
cat > /vm/conf/power.json <<EOC
{"hosts": [{"nqn": "$HOSTNQN"}],
 "ports": [{"portid": 1, "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": "4420"}, "subsystems": ["$SUBNQN"]},
           {"portid": 2, "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": "8009"}, "subsystems": []}],
 "subsystems": [{"nqn": "$SUBNQN", "attr": {"allow_any_host": "0", "serial": "$SERIAL", "model": "$MODEL"},
                 "allowed_hosts": ["$HOSTNQN"],
                 "namespaces": [{"nsid": 1, "device": {"path": "$TCPF"}, "lba_size": 4096},
                                {"nsid": 2, "device": {"path": "$FUSEF"}, "lba_size": 4096}]}],
 "nvmegate": {"reactors": 2, "log_level": "info",
              "fuse": {"mountpoint": "$FMNT", "aliases": {"$SUBNQN": "vm"}}}}
EOC
say "files ready"
daemon_start power || { tail -n 30 $DLOG; perr "daemon"; }
wait_until 20 grep -q " $FMNT fuse.nvmegate " /proc/mounts || perr "no FUSE mount"
connect
SEED=$(arg seed)
# their errors and progress go to the host with the acknowledgements
$PW write $DEV1 $(arg tcpmode) 1 $SEED $NBLOCKS /dev/ttyS2 2> /dev/ttyS2 &
$PW write $FMNT/vm/n2 $(arg fusemode) 2 $SEED $NBLOCKS /dev/ttyS2 2> /dev/ttyS2 &
echo "@@WRITING"
sleep 60
tail -n 30 $DLOG
perr "not killed within 60s"
