# One boot of the power-cut test (tests/vm/test_vm_power.py), run as the
# guest's script: stdout goes to the results port (ttyS1), acknowledgements
# of the writers to the third port (ttyS2). Parameters on the kernel command
# line: power.mkfs=1 (first boot: a new ext4 on /dev/vda), power.last=1 (only
# check, write nothing), power.tcpmode=tcp-wce|tcp-nowce, power.seed=N.
#
# Every boot: e2fsck -fy the virtio disk (journal replay after the cut),
# mount it, print the blocks the previous boot's writers left (power-writer
# check: "C TAG BLOCK SEQ" lines), then start over on new sparse files:
# nvmegated serves tcp.img as namespace 1 (NVMe/TCP, the kernel host in this
# guest, tag 1) and fuse.img as namespace 2 (its FUSE file, tag 2), and both
# writers run until the host kills QEMU.
. /vm/lib.sh
DISK=/dev/vda
MNT=/mnt/disk
FMNT=/mnt/fuse
NBLOCKS=2048                       # 8 MiB per file: rewrites as well as new blocks
PW=/vm/power-writer
arg() { sed -n "s/.*power\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }

KV=$(uname -r)
for m in $(cat /vm/power-modules); do
	insmod /lib/modules/$KV/$m 2>/dev/null || say "insmod $m failed"
done
for m in nvme-tcp ext4 crc32c-intel; do modprobe $m || say "modprobe $m failed"; done
_i=0
while [ ! -b $DISK ]; do
	_i=$((_i + 1)); [ $_i -gt 100 ] && { echo "@@POWER-ERROR no $DISK"; exit 1; }; sleep 0.1
done
say "modules loaded"
if [ "$(arg mkfs)" = 1 ]; then
	$MKFS -q -F -t ext4 $DISK || { echo "@@POWER-ERROR mkfs"; exit 1; }
fi
$FSCK -fy $DISK > /tmp/fsck.out 2>&1
echo "@@FSCK $?"
cat /tmp/fsck.out
say "fsck done"
mkdir -p $MNT $FMNT
# commit=60: ext4 itself commits nothing for a minute, so only the daemon's
# own fdatasync/RWF_DSYNC can make an acknowledged block durable in time
mount -t ext4 -o commit=60 $DISK $MNT || { echo "@@POWER-ERROR mount"; exit 1; }
for t in 1 2; do
	f=$MNT/tcp.img; [ $t = 2 ] && f=$MNT/fuse.img
	[ -e $f ] && $PW check $f $t $NBLOCKS
done
say "check done"
echo "@@CHECKED"
[ "$(arg last)" = 1 ] && { umount $MNT; exit 0; }

rm -f $MNT/tcp.img $MNT/fuse.img
truncate -s $((NBLOCKS * 4))K $MNT/tcp.img
truncate -s $((NBLOCKS * 4))K $MNT/fuse.img
sync                               # the new empty files survive the cut
cat > /vm/conf/power.json <<EOF
{"hosts": [{"nqn": "$HOSTNQN"}],
 "ports": [{"portid": 1, "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": "4420"}, "subsystems": ["$SUBNQN"]},
           {"portid": 2, "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": "8009"}, "subsystems": []}],
 "subsystems": [{"nqn": "$SUBNQN", "attr": {"allow_any_host": "0", "serial": "$SERIAL", "model": "$MODEL"},
                 "allowed_hosts": ["$HOSTNQN"],
                 "namespaces": [{"nsid": 1, "device": {"path": "$MNT/tcp.img"}, "lba_size": 4096},
                                {"nsid": 2, "device": {"path": "$MNT/fuse.img"}, "lba_size": 4096}]}],
 "nvmegate": {"reactors": 2, "log_level": "info",
              "fuse": {"mountpoint": "$FMNT", "aliases": {"$SUBNQN": "vm"}}}}
EOF
say "files ready"
daemon_start power || { echo "@@POWER-ERROR daemon"; tail -n 30 $DLOG; exit 1; }
_i=0
while ! grep -q " $FMNT fuse.nvmegate " /proc/mounts; do
	_i=$((_i + 1)); [ $_i -gt 200 ] && { echo "@@POWER-ERROR no FUSE mount"; exit 1; }; sleep 0.1
done
connect
SEED=$(arg seed)
$PW write $DEV1 $(arg tcpmode) 1 $SEED $NBLOCKS /dev/ttyS2 2> /tmp/pw1.err &
$PW write $FMNT/vm/n2 fuse 2 $SEED $NBLOCKS /dev/ttyS2 2> /tmp/pw2.err &
echo "@@WRITING"
sleep 60
# not killed: say why the writers stopped
echo "@@POWER-ERROR not killed within 60s"
cat /tmp/pw1.err /tmp/pw2.err
tail -n 30 $DLOG
