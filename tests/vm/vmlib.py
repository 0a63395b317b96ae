"""Build and boot the QEMU guest that runs a real Linux NVMe/TCP host.

The guest is a kernel + initramfs made from Debian packages (kernel with
its modules, busybox-static, nvme-cli, fio, e2fsprogs) plus our daemon, of
one of two kinds (KINDS): "6.1" (Debian 12, the default) or "trixie"
(Debian 13, kernel 6.12, with keyutils and tlshd for NVMe/TCP TLS). See
shared docs vm-testing.md for the recipe and its gotchas.

Caching (outside the repository, so a fresh clone reuses it):
  $NVMEGATE_VM_CACHE (default /var/cache/nvmegate-vm)/
    debs/                  apt-get download'ed packages (file names carry versions)
    manifest.json          the package set of the last successful resolve (offline fallback)
    root-<key>/            the packages unpacked (dpkg-deb -x), key = hash of the .deb names
    base-<key>.cpio        the initramfs without daemon and scripts
    vmlinuz-<key>
    trixie/                the same for the Debian 13 / Linux 6.12 guest (kind
                           "trixie"), plus apt/: its private apt root
The daemon, its libraries, the guest scripts and configs go into a small
second cpio archive appended to the cached base at every build (the kernel
unpacks concatenated archives), so a rebuilt daemon is always picked up.

Booting: always TCG (never KVM), `timeout -k 5 N qemu-system-x86_64`, console
on ttyS0 (a file), results on ttyS1 (another file). The guest writes
    @@RESULT <name> PASS|FAIL <seconds>
    @@LOG-BEGIN <name> ... @@LOG-END <name>
    @@DONE
lines there; parse_results() reads them back.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
GUEST_DIR = os.path.join(HERE, "guest")
CACHE = os.environ.get("NVMEGATE_VM_CACHE", "/var/cache/nvmegate-vm")
OUT = os.path.join(REPO, "build", "vm")

# iproute2: ip (netns, veth), tc (netem) and ss -K for the hostile-network
# scenarios (guest/hostile.sh); busybox's ip cannot do those.
GUEST_PKGS = ["busybox-static", "nvme-cli", "fio", "e2fsprogs", "iproute2"]
# Packages whose dependencies are not followed and which are not downloaded:
# they bring no shared library a guest binary needs (checked: the ldd
# closure of every copied binary must resolve, or the build fails).
NO_FOLLOW = re.compile(r"^(perl.*|libperl.*|python3.*|libpython3.*|debconf.*|cdebconf|dpkg|adduser|"
                       r"passwd|init-system-helpers|usrmerge|usr-is-merged|install-info|tar|mailcap|"
                       r"media-types|mime-support|libpam.*|logsave|uuid-runtime|dmsetup|readline-common|"
                       r"libfile-find-rule-perl|libnumber-compare-perl|libtext-glob-perl|"
                       r"libdebian-installer4|libtextwrap1|libnewt0.52|libslang2|"
                       r"libsemanage.*|libaudit.*|libcap-ng0|sensible-utils|lsb-base|sysvinit-utils)$")
# Guest binaries copied with their ldd closure (paths inside the packages).
GUEST_BINS = ["usr/sbin/nvme", "usr/bin/fio", "sbin/mke2fs", "sbin/e2fsck", "sbin/dumpe2fs",
              "bin/ip", "bin/ss", "sbin/tc"]
GUEST_LINKS = {"usr/sbin/mkfs.ext4": "mke2fs", "usr/sbin/fsck.ext4": "e2fsck"}
KMODS = ["nvme-core", "nvme-fabrics", "nvme-tcp", "nvmet", "nvmet-tcp", "brd", "ext4",
         "crc32c-intel", "crc32c_generic", "libcrc32c", "configfs",
         # hostile networks: a veth pair between namespaces, netem on it, and
         # ss -K (socket destroy through inet_diag; INET_DIAG_DESTROY=y)
         "veth", "sch_netem", "tcp_diag", "inet_diag"]



class Kind:
    """One guest flavour: where its packages come from (apt options), which
    ones, and where its cache lives. "6.1" is the host's own Debian 12
    (the cache's top level, as before kinds existed); "trixie" is Debian 13
    with kernel 6.12 from a private apt root under $CACHE/trixie/apt."""

    def __init__(self, name, cache, pkgs, bins, links, kmods, apt_root=None, no_follow=None):
        self.name = name
        self.no_follow = no_follow or NO_FOLLOW
        self.cache = cache
        self.pkgs = pkgs
        self.bins = bins
        self.links = links
        self.kmods = kmods
        self.apt_root = apt_root

    def apt_opts(self):
        if not self.apt_root:
            return []
        a = self.apt_root
        return ["-o", "Dir::Etc::SourceList=" + os.path.join(a, "sources.list"),
                "-o", "Dir::Etc::SourceParts=/dev/null",
                "-o", "Dir::Etc::Preferences=/dev/null",
                "-o", "Dir::Etc::PreferencesParts=/dev/null",
                "-o", "Dir::State::Lists=" + os.path.join(a, "lists"),
                "-o", "Dir::Cache=" + os.path.join(a, "cache"),
                "-o", "Dir::State::status=" + os.path.join(a, "status"),
                "-o", "APT::Sandbox::User=root"]

    def lists_dir(self):
        return os.path.join(self.apt_root, "lists") if self.apt_root else "/var/lib/apt/lists"


TRIXIE_CACHE = os.path.join(CACHE, "trixie")
KINDS = {
    "6.1": Kind("6.1", CACHE, GUEST_PKGS, GUEST_BINS, GUEST_LINKS, KMODS),
    # Debian 13: kernel 6.12 (NVMe/TCP TLS and DH-HMAC-CHAP on both host and
    # target side), nvme-cli 2.13, keyutils (keyctl), ktls-utils (tlshd).
    # Its modules ship as .ko.xz; unpack() decompresses them once.
    "trixie": Kind(
        "trixie", TRIXIE_CACHE,
        ["busybox-static", "nvme-cli", "libnvme1t64", "fio", "e2fsprogs", "keyutils", "ktls-utils"],
        ["usr/sbin/nvme", "usr/bin/fio", "usr/sbin/mke2fs", "usr/sbin/e2fsck", "usr/sbin/dumpe2fs",
         "usr/bin/keyctl", "usr/sbin/tlshd"],
        GUEST_LINKS,
        ["nvme-core", "nvme-fabrics", "nvme-tcp", "nvme-keyring", "nvme-auth", "tls", "nvmet",
         "nvmet-tcp", "brd", "ext4", "crc32c-intel", "crc32c_generic", "libcrc32c", "configfs",
         # kTLS's ciphers (tlshd hands the kernel AES-GCM or AES-CCM keys)
         "gcm", "ghash-generic", "ghash-clmulni-intel", "aesni-intel", "ccm"],
        apt_root=os.path.join(TRIXIE_CACHE, "apt")),
}
# Debian 12's systemd 252 as PID 1 (test_vm_systemd.py, systemd_guest.py
# builds its initramfs: the whole unpacked package tree, not single binaries).
# systemd needs PAM and audit, which the other kinds leave out.
SYSTEMD_NO_FOLLOW = re.compile(r"^(perl.*|libperl.*|python3.*|libpython3.*|debconf.*|cdebconf|dpkg|"
                               r"adduser|passwd|init-system-helpers|usrmerge|usr-is-merged|"
                               r"install-info|tar|mailcap|media-types|mime-support|logsave|"
                               r"readline-common|sensible-utils|lsb-base|sysvinit-utils|"
                               r"libpam-modules.*|libpam-runtime)$")
KINDS["systemd"] = Kind(
    "systemd", os.path.join(CACHE, "systemd"), ["busybox-static", "systemd", "nvme-cli"],
    [], {}, ["nvme-tcp", "fuse", "crc32c_generic", "crc32c-intel"], no_follow=SYSTEMD_NO_FOLLOW)
DEFAULT_KIND = "6.1"
TRIXIE_REFRESH_DAYS = 30      # the private apt root's lists are renewed after this


def kind_of(kind):
    return KINDS[kind or DEFAULT_KIND] if not isinstance(kind, Kind) else kind


GUEST_HOSTNQN_UUID = "6a1f0c2e-7b7d-4a43-9c8e-0d4c1e2a9b01"
GUEST_HOSTNQN = "nqn.2014-08.org.nvmexpress:uuid:" + GUEST_HOSTNQN_UUID
OTHER_HOSTNQN_UUID = "0b7f3d55-1c2e-4f6a-8e3d-9a2b4c6d8e10"
OTHER_HOSTNQN = "nqn.2014-08.org.nvmexpress:uuid:" + OTHER_HOSTNQN_UUID
SUBNQN = "nqn.2026-11.io.nvmegate:vm"
SERIAL = "vmtest0001"
MODEL = "nvmegate-vm"
NS1_SIZE = "512M"        # file namespace (sparse file on the guest's tmpfs)
NS2_SIZE = "256M"        # RAM namespace
NS3_SIZE = "64M"         # RAM namespace added/removed by SIGHUP


def log(msg):
    sys.stderr.write("[vm] %s\n" % msg)
    sys.stderr.flush()


def run(cmd, **kw):
    kw.setdefault("check", True)
    return subprocess.run(cmd, **kw)


def out(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, universal_newlines=True,
                          **kw).stdout


@contextlib.contextmanager
def cache_lock():
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, "lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ------------------------------------------------------------ package set

def _apt_depends(pkgs, kind=None):
    """{pkg: [dependency names]} (Depends and PreDepends; first alternative;
    a virtual package resolved to its first provider)."""
    text = out(["apt-cache"] + kind_of(kind).apt_opts() +
               ["depends", "--no-recommends", "--no-suggests", "--no-conflicts",
                "--no-breaks", "--no-replaces", "--no-enhances"] + list(pkgs),
               stderr=subprocess.DEVNULL)
    deps = {}
    cur = None
    pending_virtual = False
    skip_alt = False
    for line in text.splitlines():
        if not line.startswith(" "):
            cur = line.strip()
            deps.setdefault(cur, [])
            pending_virtual = skip_alt = False
            continue
        s = line.strip()
        m = re.match(r"^(\|?)(Depends|PreDepends): (.+)$", s)
        if m:
            alt, name = m.group(1), m.group(3)
            pending_virtual = False
            if skip_alt:
                skip_alt = bool(alt)   # still inside an alternative chain already satisfied
                continue
            skip_alt = bool(alt)
            if name.startswith("<"):
                pending_virtual = True
            else:
                deps[cur].append(name.split(":")[0])
            continue
        if re.match(r"^(Recommends|Suggests|Conflicts|Breaks|Replaces|Enhances):", s):
            pending_virtual = False
            continue
        if pending_virtual:            # first provider of a virtual package
            deps[cur].append(s.split(":")[0])
            pending_virtual = False
    return deps


def _kernel_package(kind=None):
    for name in _apt_depends(["linux-image-amd64"], kind).get("linux-image-amd64", []):
        if re.match(r"^linux-image-\d.*-amd64$", name):
            return name
    raise RuntimeError("cannot find the kernel package behind linux-image-amd64")


def _resolve(kind=None):
    """[(package, version)] for the kernel, the guest tools and their libraries."""
    kind = kind_of(kind)
    kernel = _kernel_package(kind)
    seen = set()
    todo = list(kind.pkgs)
    while todo:
        batch = [p for p in todo if p not in seen]
        todo = []
        if not batch:
            break
        seen.update(batch)
        for p, ds in _apt_depends(batch, kind).items():
            for d in ds:
                if d not in seen and not kind.no_follow.match(d):
                    todo.append(d)
    pkgs = sorted(p for p in seen if not kind.no_follow.match(p)) + [kernel]
    text = out(["apt-cache"] + kind.apt_opts() + ["show", "--no-all-versions"] + pkgs,
               stderr=subprocess.DEVNULL)
    versions = {}
    for stanza in text.split("\n\n"):
        f = dict(re.findall(r"^(Package|Version|Architecture): (.+)$", stanza, re.M))
        if "Package" in f and f["Package"] not in versions:
            versions[f["Package"]] = (f["Version"], f["Architecture"])
    missing = [p for p in pkgs if p not in versions]
    if missing:
        raise RuntimeError("apt-cache knows no candidate for %s" % " ".join(missing))
    return kernel, [(p,) + versions[p] for p in pkgs]


def _lists_stamp(kind=None):
    """Identifies the state of apt's package lists (a resolve is cached until
    they change)."""
    d = kind_of(kind).lists_dir()
    try:
        names = sorted(n for n in os.listdir(d) if n.endswith("_Packages") or "_Packages." in n)
    except OSError:
        return ""
    h = hashlib.sha256()
    for n in names:
        st = os.stat(os.path.join(d, n))
        h.update(("%s %d %d\n" % (n, st.st_size, st.st_mtime)).encode())
    return h.hexdigest()[:16]


def deb_name(pkg, version, arch):
    return "%s_%s_%s.deb" % (pkg, version.replace(":", "%3a"), arch)


def _download(pkgs, debs_dir, kind=None):
    """apt-get download the [(package, version, arch)] not yet in debs_dir;
    returns the manifest of the whole set."""
    names = [deb_name(*p) for p in pkgs]
    want = [p for p, d in zip(pkgs, names) if not os.path.exists(os.path.join(debs_dir, d))]
    if want:
        log("downloading %d packages into %s" % (len(want), debs_dir))
        res = subprocess.run(["apt-get"] + kind_of(kind).apt_opts() +
                             ["download", "-q", "-o", "APT::Sandbox::User=root"] +
                             ["%s=%s" % (p[0], p[1]) for p in want],
                             cwd=debs_dir, stdout=subprocess.DEVNULL)
        missing = [d for d in names if not os.path.exists(os.path.join(debs_dir, d))]
        if res.returncode != 0 or missing:
            raise RuntimeError("apt-get download failed (missing %s)" % " ".join(missing))
    return {"debs": names}


def _host_mirror():
    """The Debian mirror of the host's own apt sources (the main suite's URI,
    not -security's), from sources.list or sources.list.d/*.sources/*.list."""
    files = ["/etc/apt/sources.list"]
    d = "/etc/apt/sources.list.d"
    if os.path.isdir(d):
        files += sorted(os.path.join(d, n) for n in os.listdir(d)
                        if n.endswith(".sources") or n.endswith(".list"))
    for path in files:
        try:
            text = open(path).read()
        except OSError:
            continue
        if path.endswith(".sources"):    # deb822 stanzas
            for stanza in re.split(r"\n\s*\n", text):
                f = dict(re.findall(r"^([A-Za-z-]+):[ \t]*(.*)$", stanza, re.M))
                suites = f.get("Suites", "").split()
                if "deb" in f.get("Types", "").split() and f.get("Enabled", "yes") != "no" and \
                        any(not re.search(r"[-/]", x) for x in suites) and \
                        "main" in f.get("Components", "").split():
                    return f["URIs"].split()[0]
        else:
            for line in text.splitlines():
                m = re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+([^\s/-]+)\s+.*\bmain\b", line)
                if m:
                    return m.group(1)
    raise RuntimeError("no Debian mirror (a 'deb URI SUITE main' source) in the host's apt sources")


def _apt_root_update(kind):
    """Create the private apt root of kind (its sources.list names the host's
    mirror) and run apt-get update on it. Never touches the host's apt state."""
    a = kind.apt_root
    for d in ("lists/partial", "cache/archives/partial"):
        os.makedirs(os.path.join(a, d), exist_ok=True)
    status = os.path.join(a, "status")
    if not os.path.exists(status):
        open(status, "w").close()        # an empty dpkg status: nothing installed
    src = "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n" % (
        _host_mirror(), kind.name)
    with open(os.path.join(a, "sources.list"), "w") as f:
        f.write(src)
    log("apt-get update of the %s apt root (%s)" % (kind.name, src.split("] ")[1].strip()))
    return subprocess.run(["apt-get"] + kind.apt_opts() + ["update", "-qq"]).returncode == 0


def _apt_root_fresh(kind):
    """Has the private apt root lists younger than TRIXIE_REFRESH_DAYS?"""
    try:
        age = time.time() - os.stat(os.path.join(kind.apt_root, "updated")).st_mtime
    except OSError:
        return False
    return age < TRIXIE_REFRESH_DAYS * 86400


def _apt_update(kind):
    if kind.apt_root:
        ok = _apt_root_update(kind)
        if ok:
            open(os.path.join(kind.apt_root, "updated"), "w").close()
        return ok
    return os.getuid() == 0 and subprocess.run(["apt-get", "update", "-qq"]).returncode == 0


def fetch_packages(kind=None):
    """Resolve and download (cached) the guest's packages. Returns the manifest
    {"kernel": package, "debs": [file names], "lists": apt lists stamp}."""
    kind = kind_of(kind)
    debs_dir = os.path.join(kind.cache, "debs")
    os.makedirs(debs_dir, exist_ok=True)
    manifest_path = os.path.join(kind.cache, "manifest.json")
    try:
        with open(manifest_path) as f:
            cached = json.load(f)
        complete = all(os.path.exists(os.path.join(debs_dir, d)) for d in cached["debs"])
    except (OSError, ValueError, KeyError):
        cached, complete = None, False
    if kind.apt_root and not _apt_root_fresh(kind):
        # first use, or the lists are old: renew them (offline: go on with
        # what is there, the cached set below if need be)
        _apt_update(kind)
    if complete and cached.get("lists") == _lists_stamp(kind) and \
            cached.get("pkgs") == list(kind.pkgs):
        return cached            # apt's lists and the package list have not changed
    for attempt in (1, 2):
        try:
            kernel, pkgs = _resolve(kind)
            manifest = _download(pkgs, debs_dir, kind)
            break
        except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
            # no or stale apt lists (a candidate the mirror no longer has)
            if attempt == 1 and (kind.apt_root or os.getuid() == 0):
                log("%s: apt-get update, then again" % e)
                if _apt_update(kind):
                    continue
            if complete:         # offline: the last resolved set, all cached
                log("using the cached package set (%s)" % e)
                return cached
            raise RuntimeError("cannot get the guest's packages: %s" % e)
    manifest["kernel"] = kernel
    manifest["lists"] = _lists_stamp(kind)
    manifest["pkgs"] = list(kind.pkgs)
    with open(manifest_path + ".tmp", "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(manifest_path + ".tmp", manifest_path)
    return manifest


def manifest_key(manifest, recipe=False):
    """Cache key of a package set; with recipe, also of this file (the base
    initramfs is rebuilt when the build recipe changes)."""
    h = hashlib.sha256()
    for d in sorted(manifest["debs"]):
        h.update(d.encode() + b"\n")
    if recipe:
        with open(__file__, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def unpack(manifest, key, kind=None):
    kind = kind_of(kind)
    root = os.path.join(kind.cache, "root-" + key)
    if os.path.exists(os.path.join(root, ".complete")):
        return root
    tmp = root + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    log("unpacking %d packages" % len(manifest["debs"]))
    for d in manifest["debs"]:
        run(["dpkg-deb", "-x", os.path.join(kind.cache, "debs", d), tmp])
    # compressed modules (Debian 13): busybox's modprobe and our modules.dep
    # walk want plain .ko files
    xz = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(tmp, "lib/modules"))
          for f in fs if f.endswith(".ko.xz")] + \
         [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(tmp, "usr/lib/modules"))
          for f in fs if f.endswith(".ko.xz")]
    if xz:
        log("decompressing %d kernel modules" % len(xz))
        for i in range(0, len(xz), 500):
            run(["xz", "-d", "-T0", "-q"] + xz[i:i + 500])
    open(os.path.join(tmp, ".complete"), "w").close()
    shutil.rmtree(root, ignore_errors=True)
    os.rename(tmp, root)
    return root


def prune(keys, manifest, kind=None):
    """Drop cache entries of other package sets (keeps /var/cache bounded)."""
    cache = kind_of(kind).cache
    keep = set(manifest["debs"])
    for name in os.listdir(cache):
        p = os.path.join(cache, name)
        m = re.match(r"^(root|base|vmlinuz)-([0-9a-f]+)", name)
        if m and m.group(2) not in keys:
            if os.path.isdir(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)
    for name in os.listdir(os.path.join(cache, "debs")):
        if name.endswith(".deb") and name not in keep:
            os.unlink(os.path.join(cache, "debs", name))


# ------------------------------------------------------------------ cpio

class Cpio:
    """A newc cpio archive writer (what the kernel's initramfs unpacker reads)."""

    def __init__(self, f):
        self.f = f
        self.ino = 1
        self.dirs = set()

    def _entry(self, name, mode, data=b""):
        name = name.lstrip("/").encode()
        hdr = "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X" % (
            self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0)
        self.ino += 1
        buf = hdr.encode() + name + b"\0"
        buf += b"\0" * (-len(buf) % 4)
        self.f.write(buf)
        self.f.write(data)
        self.f.write(b"\0" * (-len(data) % 4))

    def dir(self, name):
        name = name.strip("/")
        if not name or name in self.dirs:
            return
        self.dir(os.path.dirname(name))
        self.dirs.add(name)
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name, data, mode=0o755):
        self.dir(os.path.dirname(name.strip("/")))
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name, target):
        self.dir(os.path.dirname(name.strip("/")))
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def close(self):
        self._entry("TRAILER!!!", 0)


class Tree:
    """Files for the guest, {guest path: ("file", bytes, mode) | ("link",
    target, None)}, in a merged-/usr layout."""

    def __init__(self):
        self.files = {}

    @staticmethod
    def merged(path):
        path = "/" + path.lstrip("/")
        for top in ("/lib64/", "/lib/", "/bin/", "/sbin/"):
            if path.startswith(top):
                return "/usr" + path
        return path

    def add_file(self, guest, src, mode=None):
        with open(src, "rb") as f:
            data = f.read()
        if mode is None:
            mode = stat.S_IMODE(os.stat(src).st_mode)
        self.files[self.merged(guest)] = ("file", data, mode)

    def add_data(self, guest, data, mode=0o644):
        if isinstance(data, str):
            data = data.encode()
        self.files[self.merged(guest)] = ("file", data, mode)

    def add_link(self, guest, target):
        """A symlink, unless something is there already."""
        self.files.setdefault(self.merged(guest), ("link", target, None))

    def write(self, path):
        with open(path + ".tmp", "wb") as f:
            c = Cpio(f)
            for top in ("bin", "sbin", "lib", "lib64"):
                c.symlink(top, "usr/" + top)
            for d in ("dev", "proc", "sys", "tmp", "run", "data", "mnt", "etc", "root", "var"):
                c.dir(d)
            for name in sorted(self.files):
                kind, payload, mode = self.files[name]
                if kind == "link":
                    c.symlink(name, payload)
                else:
                    c.file(name, payload, mode)
            c.close()
        os.replace(path + ".tmp", path)


def _lib_dirs(root):
    """Every directory of the unpacked packages that holds shared libraries."""
    dirs = []
    for d, subdirs, files in os.walk(root):
        subdirs[:] = [s for s in subdirs if os.path.join(d, s) not in
                      (os.path.join(root, "lib/modules"), os.path.join(root, "usr/share"))]
        if any(".so" in f for f in files):
            dirs.append(d)
    return dirs


def add_with_libs(tree, binary, guest_path, root=None, lib_path=None):
    """Copy binary to guest_path plus its shared-library closure (ldd, with the
    unpacked packages first on the library path, the host's after that)."""
    tree.add_file(guest_path, binary)
    env = dict(os.environ)
    if lib_path:
        env["LD_LIBRARY_PATH"] = ":".join(lib_path)
    res = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, env=env)
    if "not a dynamic executable" in res.stdout or "statically linked" in res.stdout:
        return
    if res.returncode != 0:
        raise RuntimeError("ldd %s failed:\n%s" % (binary, res.stdout))
    for line in res.stdout.splitlines():
        line = line.strip()
        if "not found" in line:
            raise RuntimeError("%s: library %s" % (binary, line))
        m = re.match(r"^(\S+) => (\S+) \(0x", line) or re.match(r"^(/\S+) \(0x", line)
        if not m:
            continue
        src = m.group(m.lastindex)
        guest = src
        if root and src.startswith(root + "/"):
            guest = src[len(root):]
        if m.lastindex == 2:   # name => path: the loader looks the soname up in that dir
            guest = os.path.join(os.path.dirname(guest), m.group(1))
        if m.lastindex == 1 and root:
            # the loader must come from the same glibc build as libc.so.6
            staged = os.path.join(root, "lib/x86_64-linux-gnu", os.path.basename(src))
            if os.path.exists(staged):
                src = staged
        tree.add_file(guest, os.path.realpath(src), mode=0o755)


def add_with_loader(tree, binary, guest_path, root):
    """Copy a binary of the unpacked packages plus its library closure as
    their own loader resolves it (`ld.so --list`, never the host's ldd):
    every library must come from root, so no host library lands in the
    guest (Debian 13's glibc is newer than the host's)."""
    tree.add_file(guest_path, binary)
    loader = os.path.join(root, "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    res = subprocess.run([loader, "--list", "--library-path", ":".join(_lib_dirs(root)), binary],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    if res.returncode != 0:
        raise RuntimeError("%s --list %s failed:\n%s" % (loader, binary, res.stdout))
    for line in res.stdout.splitlines():
        line = line.strip()
        if "not found" in line:
            raise RuntimeError("%s: library %s" % (binary, line))
        m = re.match(r"^(\S+) => (\S+) \(0x", line)
        if not m:
            continue                       # linux-vdso, the loader itself
        src = m.group(2)
        if not src.startswith(root + "/"):
            raise RuntimeError("%s: %s resolves outside the packages (%s)"
                               % (binary, m.group(1), src))
        guest = os.path.join(os.path.dirname(src[len(root):]), m.group(1))
        tree.add_file(guest, os.path.realpath(src), mode=0o755)
    tree.add_file("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", os.path.realpath(loader),
                  mode=0o755)
    tree.add_link("/usr/lib64/ld-linux-x86-64.so.2", "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")


def add_host_closure(tree, binary, guest_dir):
    """A binary built on this host, with the host's loader and its ldd
    closure, all in guest_dir (apart from the guest's own libraries). Returns
    the guest command line that starts it through that loader."""
    name = os.path.basename(binary)
    libdir = guest_dir + "/lib"
    tree.add_file("%s/%s" % (guest_dir, name), binary, mode=0o755)
    res = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True)
    if res.returncode != 0:
        raise RuntimeError("ldd %s failed:\n%s" % (binary, res.stdout))
    loader = None
    for line in res.stdout.splitlines():
        line = line.strip()
        if "not found" in line:
            raise RuntimeError("%s: library %s" % (binary, line))
        m = re.match(r"^(\S+) => (\S+) \(0x", line)
        if m:
            tree.add_file("%s/%s" % (libdir, m.group(1)), os.path.realpath(m.group(2)), mode=0o755)
        m = re.match(r"^(/\S+) \(0x", line)
        if m:
            loader = m.group(1)
    if not loader:
        raise RuntimeError("%s: no program interpreter in ldd's output" % binary)
    tree.add_file("%s/%s" % (libdir, os.path.basename(loader)), os.path.realpath(loader),
                  mode=0o755)
    return "%s/%s --library-path %s %s/%s" % (libdir, os.path.basename(loader), libdir,
                                              guest_dir, name)


def _modinfo_depends(path):
    """The depends= list from a .ko's .modinfo section."""
    with open(path, "rb") as f:
        data = f.read()
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def sect(i):
        base = shoff + i * shentsize
        name, _typ, _flags, _addr, off, size = struct.unpack_from("<IIQQQQ", data, base)
        return name, off, size
    _, stroff, _ = sect(shstrndx)
    for i in range(shnum):
        name, off, size = sect(i)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name:end] == b".modinfo":
            for item in data[off:off + size].split(b"\0"):
                if item.startswith(b"depends="):
                    return [d for d in item[8:].decode().split(",") if d]
            return []
    return []


def add_modules(tree, root, kver, busybox, kmods=KMODS):
    moddir = os.path.join(root, "lib/modules", kver)
    if not os.path.isdir(moddir):        # Debian 13: /usr/lib/modules
        moddir = os.path.join(root, "usr/lib/modules", kver)
    index = {}
    for d, _, files in os.walk(os.path.join(moddir, "kernel")):
        for f in files:
            if f.endswith(".ko"):
                index[f[:-3].replace("-", "_")] = os.path.join(d, f)
    todo = [m.replace("-", "_") for m in kmods]
    done = set()
    while todo:
        m = todo.pop()
        if m in done:
            continue
        if m not in index:
            raise RuntimeError("kernel %s has no module %s" % (kver, m))
        done.add(m)
        todo.extend(d.replace("-", "_") for d in _modinfo_depends(index[m]))
    # busybox depmod works on a directory tree: stage the chosen modules
    stage = os.path.join(OUT, "modstage")
    shutil.rmtree(stage, ignore_errors=True)
    for m in sorted(done):
        rel = os.path.join("lib/modules", kver, os.path.relpath(index[m], moddir))
        os.makedirs(os.path.join(stage, os.path.dirname(rel)), exist_ok=True)
        shutil.copy(index[m], os.path.join(stage, rel))
    for f in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
        src = os.path.join(moddir, f)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(stage, "lib/modules", kver, f))
    run([busybox, "depmod", "-b", stage, kver])
    for d, _, files in os.walk(stage):
        for f in files:
            p = os.path.join(d, f)
            tree.add_file("/" + os.path.relpath(p, stage), p, mode=0o644)
    shutil.rmtree(stage, ignore_errors=True)


# tlshd's configuration in the trixie guest: the kernel's NVMe/TCP host and
# target keep their PSKs in the .nvme keyring (tlshd.conf(5): keyrings is a
# ';'-separated list of names or serials, linked into tlshd's session keyring).
TLSHD_CONF = """[debug]
loglevel=1
tls=0
nl=0

[authenticate]
keyrings=.nvme

[authenticate.client]

[authenticate.server]
"""


def build_base(root, kernel_pkg, path, kind=None):
    kind = kind_of(kind)
    tree = Tree()
    busybox = os.path.join(root, "bin/busybox")
    if not os.path.exists(busybox):
        busybox = os.path.join(root, "usr/bin/busybox")
    tree.add_file("/usr/bin/busybox", busybox, mode=0o755)
    for b in kind.bins:
        if kind.apt_root:
            add_with_loader(tree, os.path.join(root, b), "/" + b, root)
        else:
            add_with_libs(tree, os.path.join(root, b), "/" + b, root=root, lib_path=_lib_dirs(root))
    for name, target in kind.links.items():
        tree.add_link(name, target)
    applets = out([busybox, "--list"]).split()
    for a in applets:
        if a in ("busybox",):
            continue
        tree.add_link("/usr/bin/" + a, "busybox")
    kver = kernel_pkg[len("linux-image-"):]
    add_modules(tree, root, kver, busybox, kind.kmods)
    if kind.name == "trixie":
        tree.add_data("/etc/tlshd.conf", TLSHD_CONF)
        # gnutls reads its system-wide priority file if present; none is fine
    tree.add_data("/etc/nvme/hostnqn", GUEST_HOSTNQN + "\n")
    tree.add_data("/etc/nvme/hostid", GUEST_HOSTNQN_UUID + "\n")
    tree.add_data("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
    tree.add_data("/etc/group", "root:x:0:\n")
    tree.add_data("/etc/hosts", "127.0.0.1 localhost\n")
    tree.write(path)


# --------------------------------------------------------------- overlay

def ns_entry(nsid, path):
    return {"nsid": nsid, "enable": 1, "device": {"path": path}}


def guest_config(namespaces=(1, 2)):
    nss = {1: ns_entry(1, "/data/ns1.img"), 2: ns_entry(2, "mem:" + NS2_SIZE),
           3: ns_entry(3, "mem:" + NS3_SIZE)}
    return {
        "hosts": [{"nqn": GUEST_HOSTNQN}],
        "ports": [
            {"portid": 1, "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1",
                                   "trsvcid": "4420"},
             "param": {"inline_data_size": "16384"}, "subsystems": [SUBNQN]},
            {"portid": 2, "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1",
                                   "trsvcid": "8009"}, "subsystems": []},
        ],
        "subsystems": [{
            "nqn": SUBNQN,
            "attr": {"allow_any_host": "0", "serial": SERIAL, "model": MODEL},
            "allowed_hosts": [GUEST_HOSTNQN],
            "namespaces": [nss[n] for n in namespaces],
        }],
        # debug logs one line per connection/queue (ICReq digests, SQ flow control)
        "nvmegate": {"reactors": 2, "log_level": "debug"},
    }


def secure_config_template():
    """The base config with the host's secrets and port 4420's TLS settings
    as @NAME@ placeholders: the trixie guest generates its keys with nvme-cli
    and fills them in (guest/trixie.sh secure_conf); "" means unset."""
    c = guest_config()
    c["hosts"] = [{"nqn": GUEST_HOSTNQN, "psk": "@PSK@",
                   "dhchap": {"key": "@KEY@", "ctrl_key": "@CKEY@", "hash": "@HASH@",
                              "dhgroup": "@GROUP@"}}]
    c["ports"][0]["addr"].update({"tsas": "@TSAS@", "treq": "@TREQ@"})
    return c


def build_overlay(daemon, path, mode, scenarios=(), env=None, base_root=None, script=None,
                  kind=None):
    kind = kind_of(kind)
    tree = Tree()
    if script:
        tree.add_file("/vm/script.sh", script, mode=0o755)
    if kind.apt_root:
        # built on this (older) host: its own loader and libraries, kept
        # apart from the guest's in /opt/nvmegate; exec keeps the PID
        cmd = add_host_closure(tree, daemon, "/opt/nvmegate")
        tree.add_data("/usr/sbin/nvmegated", '#!/bin/sh\nexec %s "$@"\n' % cmd, mode=0o755)
    else:
        add_with_libs(tree, daemon, "/usr/sbin/nvmegated",
                      root=base_root, lib_path=_lib_dirs(base_root) if base_root else None)
        cli = default_cli()
        if cli:     # the control CLI, as an operator would drive the daemon
            add_with_libs(tree, cli, "/usr/sbin/nvmegate", root=base_root,
                          lib_path=_lib_dirs(base_root) if base_root else None)
    for d in os.listdir(GUEST_DIR):
        p = os.path.join(GUEST_DIR, d)
        if os.path.isfile(p):
            tree.add_file("/init" if d == "init" else "/vm/" + d, p, mode=0o755)
    resv = guest_config((1,))   # two hosts of this machine, one namespace (guest/scenarios.sh)
    resv["subsystems"][0]["allowed_hosts"].append(OTHER_HOSTNQN)
    confs = {"base": guest_config(), "ns3": guest_config((1, 2, 3)), "resv": resv,
             "secure-template": secure_config_template()}
    for name, c in confs.items():
        tree.add_data("/vm/conf/%s.json" % name, json.dumps(c, indent=1) + "\n")
    settings = {"MODE": mode, "SCENARIOS": " ".join(scenarios), "SUBNQN": SUBNQN,
                "SERIAL": SERIAL, "MODEL": MODEL, "HOSTNQN": GUEST_HOSTNQN,
                "OTHER_HOSTNQN": OTHER_HOSTNQN, "OTHER_HOSTID": OTHER_HOSTNQN_UUID,
                "NS1_SIZE": NS1_SIZE, "NS2_SIZE": NS2_SIZE, "NS3_SIZE": NS3_SIZE}
    settings.update(env or {})
    tree.add_data("/vm/settings", "".join("%s='%s'\n" % kv for kv in sorted(settings.items())))
    tree.write(path)


def build(daemon, mode="test", scenarios=(), env=None, script=None, kind=None):
    """Build (cached) the guest of kind ("6.1", the default, or "trixie").
    Returns (kernel path, initrd path)."""
    kind = kind_of(kind)
    t0 = time.monotonic()
    os.makedirs(OUT, exist_ok=True)
    with cache_lock():
        manifest = fetch_packages(kind)
        key = manifest_key(manifest)
        bkey = manifest_key(manifest, recipe=True)
        root = unpack(manifest, key, kind)
        base = os.path.join(kind.cache, "base-%s.cpio" % bkey)
        kernel = os.path.join(kind.cache, "vmlinuz-%s" % key)
        if not os.path.exists(base):
            log("building the base initramfs (%s)" % kind.name)
            build_base(root, manifest["kernel"], base, kind)
        if not os.path.exists(kernel):
            kver = manifest["kernel"][len("linux-image-"):]
            shutil.copy(os.path.join(root, "boot", "vmlinuz-" + kver), kernel + ".tmp")
            os.replace(kernel + ".tmp", kernel)
        prune((key, bkey), manifest, kind)
        overlay = os.path.join(OUT, "overlay-%s.cpio" % mode)
        build_overlay(daemon, overlay, mode, scenarios, env, base_root=root, script=script,
                      kind=kind)
        initrd = os.path.join(OUT, "initrd-%s.cpio" % mode)
        with open(initrd + ".tmp", "wb") as o:
            for p in (base, overlay):
                with open(p, "rb") as i:
                    shutil.copyfileobj(i, o, 1 << 20)
        os.replace(initrd + ".tmp", initrd)
    log("guest built in %.1fs (%s)" % (time.monotonic() - t0, initrd))
    return kernel, initrd


# ------------------------------------------------------------------- boot

def qemu_cmd(kernel, initrd, results, console, smp=4, mem=3072, append=""):
    return ["qemu-system-x86_64", "-accel", "tcg,thread=multi", "-cpu", "max",
            "-smp", str(smp), "-m", str(mem), "-machine", "q35", "-nodefaults",
            "-no-user-config", "-display", "none", "-monitor", "none", "-no-reboot",
            "-kernel", kernel, "-initrd", initrd,
            "-append", "console=ttyS0 quiet panic=-1 oops=panic " + append,
            "-serial", "file:" + console, "-serial", "file:" + results]


def boot(kernel, initrd, workdir, timeout, smp=4, mem=3072, append=""):
    """Boot the guest; returns (qemu exit status, wall seconds, console path,
    results path). Never waits longer than timeout + 5 s."""
    os.makedirs(workdir, exist_ok=True)
    results = os.path.join(workdir, "results.txt")
    console = os.path.join(workdir, "console.log")
    for p in (results, console):
        if os.path.exists(p):
            os.unlink(p)
    cmd = ["timeout", "-k", "5", str(int(timeout))] + qemu_cmd(
        kernel, initrd, results, console, smp=smp, mem=mem,
        append="nvmegate.timeout=%d %s" % (int(timeout) - 10, append))
    t0 = time.monotonic()
    with open(os.path.join(workdir, "qemu.stderr"), "wb") as err:
        rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=err).returncode
    return rc, time.monotonic() - t0, console, results


def parse_results(path):
    """({name: {"status": PASS|FAIL, "secs": float, "log": str}}, end) where
    end is "done" (the guest script finished), "timeout" (the guest's own
    watchdog stopped it) or None (it stopped without a word)."""
    res = {}
    logs = {}
    done = None
    cur = None
    buf = []
    try:
        text = open(path, "rb").read().decode("utf-8", "replace")
    except FileNotFoundError:
        return res, None
    for line in text.splitlines():
        line = line.rstrip("\r")
        if cur is not None:
            if line == "@@LOG-END " + cur:
                logs[cur] = "\n".join(buf)
                cur, buf = None, []
            else:
                buf.append(line)
            continue
        m = re.match(r"^@@RESULT (\S+) (PASS|FAIL) (\S+)", line)
        if m:
            res[m.group(1)] = {"status": m.group(2), "secs": float(m.group(3)), "log": ""}
            continue
        m = re.match(r"^@@LOG-BEGIN (\S+)", line)
        if m:
            cur = m.group(1)
            continue
        if line.startswith("@@DONE") and done is None:
            done = "done"
        if line.startswith("@@GUEST-TIMEOUT"):
            done = "timeout"
    if cur is not None:
        logs[cur] = "\n".join(buf) + "\n[log cut: guest stopped]"
    for name, text in logs.items():
        res.setdefault(name, {"status": "FAIL", "secs": 0.0, "log": ""})["log"] = text
    return res, done


def tail(path, n=80):
    try:
        lines = open(path, "rb").read().decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return "(no %s)" % path
    return "\n".join(lines[-n:])


# ------------------------------------------------------- scenario suites
# test_vm_linux_host.py and test_vm_trixie.py: one guest boot per module runs
# the selected scenarios (guest/lib.sh run_scenarios); each is one test.

class ScenarioRun:
    """One guest boot that ran scenarios, and what came back."""

    def __init__(self, scenarios, workdir, limit, limit_var, label):
        self.scenarios = scenarios
        self.workdir = workdir
        self.limit, self.limit_var, self.label = limit, limit_var, label
        self.results = {}
        self.done = None
        self.rc = None
        self.build_secs = self.boot_secs = 0.0
        self.error = None
        self.console = os.path.join(workdir, "console.log")

    def console_tail(self, n=60):
        text = tail(self.console, n)
        err = os.path.join(self.workdir, "qemu.stderr")
        if os.path.exists(err) and os.path.getsize(err):
            text += "\n---- qemu stderr ----\n" + tail(err, 20)
        return text

    def stopped_why(self):
        if self.rc == 124 or self.done == "timeout":
            return "the guest hit its %ds limit (%s)" % (self.limit, self.limit_var)
        if self.done == "done":
            return "the guest finished without running it"
        return "the guest stopped without finishing (crash or panic)"

    def check(self, scenario, known_fail=None):
        """Fail (or xfail, for a known_fail {name: why}) the calling test
        unless scenario passed in the guest."""
        import pytest
        if self.error:
            pytest.fail(self.error, pytrace=False)
        res = self.results.get(scenario)
        if res is None:
            pytest.fail("%s before this scenario ran (qemu exit status %s).\n"
                        "---- guest console (tail) ----\n%s"
                        % (self.stopped_why(), self.rc, self.console_tail()), pytrace=False)
        if res["status"] != "PASS" and scenario in (known_fail or {}):
            pytest.xfail(known_fail[scenario])
        if res["status"] != "PASS":
            pytest.fail("scenario %s failed in the %s after %.0fs:\n%s"
                        % (scenario, self.label, res["secs"], res["log"]), pytrace=False)

    def check_finished(self):
        """Fail the calling test unless the guest ran its script to the end
        and powered off by itself."""
        import pytest
        if self.error:
            pytest.fail(self.error, pytrace=False)
        if not (self.done == "done" and self.rc == 0):
            pytest.fail("%s (qemu exit status %s)\n---- guest console (tail) ----\n%s"
                        % (self.stopped_why(), self.rc, self.console_tail()), pytrace=False)


def run_scenarios(request, module_file, scenarios, run_dir, mode, limit, limit_var,
                  label="guest", smp=4, mem=3072, kind=None, builder=None, append=""):
    """A module-scoped fixture's body: boot one guest of kind in mode that
    runs those of scenarios the session selected from module_file (all if
    none), in their order; returns its ScenarioRun. builder(chosen
    scenarios), if given, builds the guest instead of build() and returns
    (kernel, initrd); append is added to the kernel command line."""
    import pytest
    if os.environ.get("NVMEGATE_VM") == "skip":
        pytest.skip("NVMEGATE_VM=skip")
    if shutil.which("qemu-system-x86_64") is None:
        pytest.fail("qemu-system-x86_64 not found: apt-get install qemu-system-x86 "
                    "(or set NVMEGATE_VM=skip)")
    daemon = default_daemon()
    if not os.access(daemon, os.X_OK):
        pytest.fail("no daemon binary %s (make build/nvmegated)" % daemon)
    names = set()
    for item in request.session.items:
        path = getattr(item, "path", None) or getattr(item, "fspath", None)
        cs = getattr(item, "callspec", None)
        if path is not None and str(path) == module_file and cs and "scenario" in cs.params:
            names.add(cs.params["scenario"])
    chosen = [s for s in scenarios if s in names] or list(scenarios)
    run = ScenarioRun(chosen, os.path.join(OUT, run_dir), limit, limit_var, label)
    os.makedirs(run.workdir, exist_ok=True)
    t0 = time.monotonic()
    try:
        if builder:
            kernel, initrd = builder(chosen)
        else:
            kernel, initrd = build(daemon, mode=mode, scenarios=chosen, kind=kind)
    except Exception as e:  # a build failure fails every scenario with its reason
        run.error = "%s build failed: %s" % (label, e)
        return run
    run.build_secs = time.monotonic() - t0
    run.rc, run.boot_secs, run.console, results = boot(kernel, initrd, run.workdir, limit,
                                                       smp=smp, mem=mem, append=append)
    run.results, run.done = parse_results(results)
    return run


def bench_verdict(errors, ok, rc, text, console):
    """A benchmark's exit status; prints its errors and, when it is
    incomplete, the guest's bench log (else the console's tail)."""
    for e in errors:
        print("error:", e)
    if errors or not ok or rc != 0:
        print("\nbenchmark incomplete (qemu exit %s); guest log:" % rc)
        log = re.search(r"@@LOG-BEGIN bench\n(.*?)@@LOG-END bench", text, re.S)
        print(log.group(1) if log else tail(console))
        return 1
    return 0


def default_cli():
    """NVMEGATE_CLI (make test sets it), else the release build's, if built."""
    p = os.environ.get("NVMEGATE_CLI") or os.path.join(REPO, "build", "nvmegate")
    return p if os.access(p, os.X_OK) else None


def default_daemon():
    """NVMEGATED_VM, else NVMEGATED (make test: the ASan build), else the
    release build."""
    return (os.environ.get("NVMEGATED_VM") or os.environ.get("NVMEGATED")
            or os.path.join(REPO, "build", "nvmegated"))


def main():
    import argparse
    ap = argparse.ArgumentParser(description="Build the test guest; with --script, also boot "
                                 "it and run a guest shell script (lib.sh helpers available).")
    ap.add_argument("daemon", nargs="?", default=default_daemon())
    ap.add_argument("--script", help="run this busybox sh script in the guest, print its output")
    ap.add_argument("--kind", choices=sorted(KINDS), default=DEFAULT_KIND,
                    help="guest kind: 6.1 (Debian 12) or trixie (Debian 13, kernel 6.12)")
    ap.add_argument("--smp", type=int, default=4)
    ap.add_argument("--timeout", type=int, default=300)
    args = ap.parse_args()
    if not args.script:
        print(*build(args.daemon, kind=args.kind))
        return 0
    kernel, initrd = build(args.daemon, mode="script", script=args.script, kind=args.kind)
    rc, secs, console, results = boot(kernel, initrd, os.path.join(OUT, "script-run"),
                                      args.timeout, smp=args.smp)
    with open(results, "rb") as f:
        sys.stdout.write(f.read().decode("utf-8", "replace"))
    log("qemu exit %s after %.0fs (console: %s)" % (rc, secs, console))
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
