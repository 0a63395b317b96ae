"""The guest that boots Debian 12's systemd 252 as PID 1 (test_vm_systemd.py).

Unlike the other kinds (busybox init, single binaries copied with their
libraries), this initramfs is the whole unpacked package tree of vmlib kind
"systemd" (systemd, its libraries, mount, nvme-cli, busybox for the shell
tools) minus documentation and the kernel, booted with
rdinit=/lib/systemd/systemd. There is no /etc/initrd-release, so systemd
runs it as a normal system and reaches multi-user.target.

On top (rebuilt every run): the tree `make install DESTDIR=... PREFIX=/usr`
produces (daemon, CLI, unit, default config, man pages) with the daemon's
and the CLI's library closure, the guest scripts (lib.sh, systemd.sh), the
test configs, a drop-in that shortens WatchdogSec= (a stopped daemon is
then restarted within seconds, not 30) and the unit that runs systemd.sh
once multi-user.target is reached.

Cache: $NVMEGATE_VM_CACHE/systemd/ (debs, root-KEY, base-KEY.cpio,
vmlinuz-KEY), as vmlib's kinds; debs already fetched for the 6.1 kind are
hard-linked instead of downloaded again.
"""

import hashlib
import json
import os
import shutil
import subprocess
import time

import vmlib

KIND = vmlib.KINDS["systemd"]
DEST = os.path.join(vmlib.OUT, "systemd-dest")      # make install DESTDIR
# Not copied from the unpacked packages: docs, the kernel (booted from
# outside; its modules go in through vmlib.add_modules).
SKIP = ("boot", "lib/modules", "usr/lib/modules", "usr/share/doc", "usr/share/man",
        "usr/share/locale", "usr/share/info", "usr/share/lintian", "usr/share/bash-completion",
        "usr/share/zsh", "usr/share/fish", "usr/share/bug", "usr/share/polkit-1",
        "usr/lib/linux-image-", "usr/lib/linux-kbuild", "usr/share/gitweb")
# Units that cannot work in this guest (no udev, no D-Bus daemon, no
# console login) are masked, so the boot is quiet and multi-user is reached
# without their timeouts.
MASKED = ["systemd-logind.service", "getty.target", "console-getty.service",
          "systemd-networkd.service", "systemd-resolved.service", "systemd-timesyncd.service",
          "systemd-udevd.service", "systemd-udev-trigger.service", "systemd-udev-settle.service",
          "systemd-hwdb-update.service", "systemd-firstboot.service",
          "systemd-pstore.service", "systemd-ask-password-wall.path",
          "systemd-ask-password-console.path", "systemd-binfmt.service",
          "proc-sys-fs-binfmt_misc.automount", "systemd-random-seed.service",
          "systemd-update-utmp.service", "systemd-update-utmp-runlevel.service",
          "e2scrub_reap.service", "apt-daily.timer", "apt-daily-upgrade.timer",
          # not needed by the test and slow under TCG: early-boot mounts and
          # helpers (the guest script loads the fuse module itself)
          "dev-hugepages.mount", "dev-mqueue.mount", "sys-kernel-debug.mount",
          "sys-kernel-tracing.mount", "sys-kernel-config.mount", "systemd-modules-load.service",
          "systemd-sysusers.service", "systemd-remount-fs.service", "systemd-sysctl.service",
          "kmod-static-nodes.service", "modprobe@dm_mod.service", "modprobe@loop.service",
          "modprobe@drm.service", "modprobe@efi_pstore.service", "modprobe@configfs.service",
          "modprobe@fuse.service", "systemd-journal-catalog-update.service",
          "systemd-machine-id-commit.service", "systemd-update-done.service",
          "systemd-tmpfiles-clean.timer", "systemd-repart.service", "ldconfig.service"]
WATCHDOG_SEC = 5
APPEND = ("rdinit=/lib/systemd/systemd systemd.unit=multi-user.target systemd.getty_auto=0 "
          "systemd.show_status=auto")

TEST_UNIT = """[Unit]
Description=nvmegate systemd guest test (tests/vm/guest/systemd.sh)
After=multi-user.target

[Service]
Type=simple
ExecStart=/bin/sh /vm/systemd.sh
StandardOutput=journal+console
StandardError=journal+console
"""
# Only the watchdog's period: a SIGSTOPped daemon is restarted within
# seconds. Everything else is the installed unit as it is.
DROPIN = "[Service]\nWatchdogSec=%ds\n" % WATCHDOG_SEC


def _link_known_debs():
    """Hard-link the debs the 6.1 kind already downloaded (same Debian 12
    archive) into this kind's cache, so only the missing ones are fetched."""
    src = os.path.join(vmlib.CACHE, "debs")
    dst = os.path.join(KIND.cache, "debs")
    os.makedirs(dst, exist_ok=True)
    if not os.path.isdir(src):
        return
    for name in os.listdir(src):
        t = os.path.join(dst, name)
        if name.endswith(".deb") and not os.path.exists(t):
            try:
                os.link(os.path.join(src, name), t)
            except OSError:
                shutil.copy(os.path.join(src, name), t)


def _skipped(rel):
    return any(rel == s or rel.startswith(s if s.endswith("-") else s + "/") for s in SKIP)


def build_base(root, kernel_pkg, path):
    tree = vmlib.Tree()
    for d, dirs, files in os.walk(root):
        rel_d = os.path.relpath(d, root)
        keep = []
        for name in dirs + files:
            rel = os.path.normpath(os.path.join(rel_d, name))
            if _skipped(rel) or rel == ".complete":
                continue
            p = os.path.join(d, name)
            if os.path.islink(p):
                tree.add_link("/" + rel, os.readlink(p))
            elif os.path.isfile(p):
                tree.add_file("/" + rel, p)
            elif name in dirs:
                keep.append(name)
        dirs[:] = keep
    busybox = os.path.join(root, "bin/busybox")
    for a in vmlib.out([busybox, "--list"]).split():
        if a != "busybox":
            tree.add_link("/usr/bin/" + a, "busybox")   # the packages' own binaries win
    # the kernel's and systemd's modprobe path (no kmod package: busybox's,
    # with the modules.dep add_modules writes)
    tree.add_link("/usr/sbin/modprobe", "../bin/busybox")
    kver = kernel_pkg[len("linux-image-"):]
    vmlib.add_modules(tree, root, kver, busybox, KIND.kmods)
    tree.add_data("/etc/machine-id", hashlib.md5(b"nvmegate-systemd-guest").hexdigest() + "\n")
    tree.add_data("/etc/hostname", "nvmegate-vm\n")
    tree.add_data("/etc/os-release", 'PRETTY_NAME="Debian GNU/Linux 12 (nvmegate test guest)"\n'
                  'NAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n')
    tree.add_data("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
                  "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
    tree.add_data("/etc/group", "root:x:0:\nadm:x:4:\ntty:x:5:\ndisk:x:6:\nutmp:x:43:\n"
                  "systemd-journal:x:101:\nnogroup:x:65534:\n")
    tree.add_data("/etc/hosts", "127.0.0.1 localhost\n")
    tree.add_data("/etc/nvme/hostnqn", vmlib.GUEST_HOSTNQN + "\n")
    tree.add_data("/etc/nvme/hostid", vmlib.GUEST_HOSTNQN_UUID + "\n")
    for u in MASKED:
        tree.add_link("/etc/systemd/system/" + u, "/dev/null")
    tree.write(path)


def make_install():
    """`make install DESTDIR=build/vm/systemd-dest PREFIX=/usr` (a fresh
    tree each run). Returns DEST."""
    shutil.rmtree(DEST, ignore_errors=True)
    r = subprocess.run(["make", "-s", "-C", vmlib.REPO, "install", "DESTDIR=" + DEST,
                        "PREFIX=/usr"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    if r.returncode != 0:
        raise RuntimeError("make install failed:\n" + r.stdout)
    return DEST


def guest_configs():
    """The configs the guest script switches between (/vm/conf/NAME.json):
    good (the 6.1 guest's plus a FUSE mount and the control socket's
    default place), ns3 (one more namespace), and two the daemon rejects."""
    good = vmlib.guest_config()
    good["subsystems"][0]["namespaces"][0]["device"]["path"] = "/var/lib/nvmegate/ns1.img"
    good["nvmegate"] = {"reactors": 2, "log_level": "info",
                        "fuse": {"mountpoint": "/mnt/nvmegate"}}
    ns3 = json.loads(json.dumps(good))
    ns3["subsystems"][0]["namespaces"].append(vmlib.ns_entry(3, "mem:" + vmlib.NS3_SIZE))
    bad_key = json.loads(json.dumps(good))
    del bad_key["subsystems"][0]["namespaces"][0]["device"]["path"]
    return {"good": json.dumps(good, indent=1) + "\n",
            "ns3": json.dumps(ns3, indent=1) + "\n",
            # a broken edit: the daemon names the line
            "bad-json": '{\n  "ports": [ nonsense\n}\n',
            "bad-key": json.dumps(bad_key, indent=1) + "\n"}


def build_overlay(dest, root, path, scenarios, limit):
    tree = vmlib.Tree()
    libs = vmlib._lib_dirs(root)
    for d, _, files in os.walk(dest):
        for name in files:
            p = os.path.join(d, name)
            rel = "/" + os.path.relpath(p, dest)
            if rel.startswith("/usr/sbin/"):
                vmlib.add_with_libs(tree, p, rel, root=root, lib_path=libs)
            else:
                tree.add_file(rel, p)
    for name in ("lib.sh", "systemd.sh"):
        tree.add_file("/vm/" + name, os.path.join(vmlib.GUEST_DIR, name), mode=0o755)
    for name, text in guest_configs().items():
        tree.add_data("/vm/conf/%s.json" % name, text)
    settings = {"MODE": "systemd", "SCENARIOS": " ".join(scenarios), "SUBNQN": vmlib.SUBNQN,
                "HOSTNQN": vmlib.GUEST_HOSTNQN, "NS1_SIZE": vmlib.NS1_SIZE,
                "WATCHDOG_SEC": str(WATCHDOG_SEC), "GUEST_LIMIT": str(int(limit) - 10)}
    tree.add_data("/vm/settings", "".join("%s='%s'\n" % kv for kv in sorted(settings.items())))
    tree.add_data("/etc/systemd/system/nvmegate-vmtest.service", TEST_UNIT)
    tree.add_link("/etc/systemd/system/multi-user.target.wants/nvmegate-vmtest.service",
                  "../nvmegate-vmtest.service")
    tree.add_data("/etc/systemd/system/nvmegated.service.d/vmtest.conf", DROPIN)
    tree.write(path)


def build(scenarios, limit):
    """Build (cached base) the guest; returns (kernel, initrd)."""
    t0 = time.monotonic()
    os.makedirs(vmlib.OUT, exist_ok=True)
    dest = make_install()
    with vmlib.cache_lock():
        _link_known_debs()
        manifest = vmlib.fetch_packages(KIND)
        key = vmlib.manifest_key(manifest)
        h = hashlib.sha256(key.encode())
        for f in (__file__, vmlib.__file__):
            with open(f, "rb") as fh:
                h.update(fh.read())
        bkey = h.hexdigest()[:16]
        root = vmlib.unpack(manifest, key, KIND)
        base = os.path.join(KIND.cache, "base-%s.cpio" % bkey)
        kernel = os.path.join(KIND.cache, "vmlinuz-%s" % key)
        if not os.path.exists(base):
            vmlib.log("building the base initramfs (systemd)")
            build_base(root, manifest["kernel"], base + ".tmp")
            os.replace(base + ".tmp", base)
        if not os.path.exists(kernel):
            kver = manifest["kernel"][len("linux-image-"):]
            shutil.copy(os.path.join(root, "boot", "vmlinuz-" + kver), kernel + ".tmp")
            os.replace(kernel + ".tmp", kernel)
        vmlib.prune((key, bkey), manifest, KIND)
        overlay = os.path.join(vmlib.OUT, "overlay-systemd.cpio")
        build_overlay(dest, root, overlay, scenarios, limit)
        initrd = os.path.join(vmlib.OUT, "initrd-systemd.cpio")
        with open(initrd + ".tmp", "wb") as o:
            for p in (base, overlay):
                with open(p, "rb") as i:
                    shutil.copyfileobj(i, o, 1 << 20)
        os.replace(initrd + ".tmp", initrd)
    vmlib.log("systemd guest built in %.1fs (%s)" % (time.monotonic() - t0, initrd))
    return kernel, initrd
