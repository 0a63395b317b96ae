#!/usr/bin/env python3
"""Fails when a project include runs against the layering.

Each layer may include only the layers listed for it (docs/architecture.md):
the runtime (lib/) uses nothing of the project; conf/ only the runtime; the
backends (nvme/bdev/) the runtime and the spec structures; the core (nvme/)
no front end; the front ends no daemon; the tools only what they link.
Reads the #include "..." lines of every .c and .h outside tests/, in the
tree the script is in, or in the one named as its only argument.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SPEC = ["nvme/spec.h"]
# (layer, path prefix): most specific prefix first.
LAYERS = [
    ("lib", "lib/"),
    ("conf", "conf/"),
    ("bdev", "nvme/bdev/"),
    ("spec", "nvme/spec.h"),
    ("core", "nvme/"),
    ("pdu", "net/tcp_pdu"),
    ("pdu", "net/crc32c.h"),
    ("pdu", "net/tcp_frame"),
    ("pdu", "net/tcp_psk"),
    ("pdu", "net/tls_chan"),
    ("pdu", "net/tls_rec"),
    ("net", "net/"),
    ("fuse", "fuse/"),
    ("daemon", "daemon/"),
    ("perf", "tools/perf/"),
    ("bdev-perf", "tools/bdev-perf/"),
    ("cli", "tools/cli/"),
]
ALLOWED = {
    "lib": {"lib"},
    "spec": set(),
    "conf": {"lib", "conf"},
    "bdev": {"lib", "spec", "bdev"},
    "core": {"lib", "spec", "bdev", "core"},
    "pdu": {"lib", "spec", "pdu"},
    "net": {"lib", "spec", "core", "pdu", "net"},
    "fuse": {"lib", "spec", "core", "conf", "fuse"},
    "daemon": {"lib", "spec", "conf", "bdev", "core", "pdu", "net", "fuse", "daemon"},
    "perf": {"lib", "spec", "pdu", "perf"},
    "bdev-perf": {"lib", "spec", "bdev", "bdev-perf", "perf-hist"},
    "cli": {"lib", "cli"},
}
# Single files allowed one step beyond their layer, each with its reason.
EXCEPTIONS = {
    # The model builder turns the validated config into the target.
    ("nvme/subsys.h", "conf/config.h"),
    # bdev-perf reports latencies with the load generator's histogram.
    ("tools/bdev-perf/bdev_perf.h", "tools/perf/hist.h"),
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(path):
    for name, prefix in LAYERS:
        if path.startswith(prefix):
            return name
    return None


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else ROOT
    errors = []
    checked = 0
    for top in ("lib", "conf", "nvme", "net", "fuse", "daemon", "tools"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if not f.endswith((".c", ".h")):
                    continue
                path = os.path.relpath(os.path.join(dirpath, f), root)
                src = layer_of(path)
                if src is None:
                    errors.append("%s: in no layer (add it to tools/check_layers.py)" % path)
                    continue
                with open(os.path.join(root, path)) as fh:
                    text = fh.read()
                for inc in INCLUDE.findall(text):
                    checked += 1
                    dst = layer_of(inc)
                    if dst is None:
                        errors.append("%s: includes %s, which is in no layer" % (path, inc))
                    elif dst != src and dst not in ALLOWED[src] and (path, inc) not in EXCEPTIONS:
                        errors.append("%s (%s) must not include %s (%s)" % (path, src, inc, dst))
    for e in errors:
        print("check_layers: " + e, file=sys.stderr)
    print("check_layers: %d includes checked, %d against the layering" % (checked, len(errors)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
