"""tools/check_layers.py, which `make test` runs: the layering it enforces
(docs/architecture.md) holds in this tree, and an include that runs the
wrong way, or a file in no layer, fails it with the file named."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tools", "check_layers.py")


def run(root=None):
    args = [sys.executable, SCRIPT] + ([root] if root else [])
    return subprocess.run(args, capture_output=True, text=True)


@pytest.fixture
def tree(tmp_path):
    """A copy of the sources the check reads."""
    for top in ("lib", "conf", "nvme", "net", "fuse", "daemon", "tools"):
        shutil.copytree(os.path.join(ROOT, top), tmp_path / top,
                        ignore=shutil.ignore_patterns("*.py", "*.md", "*.json"))
    return tmp_path


def test_this_tree_follows_the_layering():
    r = run()
    assert r.returncode == 0, r.stderr
    assert "0 against the layering" in r.stdout


@pytest.mark.parametrize("path,include,layers", [
    ("lib/parse.c", "nvme/core.h", "lib/parse.c (lib) must not include nvme/core.h (core)"),
    ("conf/config.c", "nvme/bdev/path.h", "(conf) must not include nvme/bdev/path.h (bdev)"),
    ("nvme/io_cmd.c", "net/tcp.h", "(core) must not include net/tcp.h (net)"),
    ("nvme/bdev/mem.c", "nvme/core.h", "(bdev) must not include nvme/core.h (core)"),
    ("net/tcp_frame.c", "nvme/core.h", "(pdu) must not include nvme/core.h (core)"),
    ("fuse/ops.c", "daemon/daemon.h", "(fuse) must not include daemon/daemon.h (daemon)"),
    ("tools/bdev-perf/job.c", "conf/config.h", "(bdev-perf) must not include conf/config.h"),
])
def test_an_include_against_the_layering_fails(tree, path, include, layers):
    with open(tree / path, "a") as f:
        f.write('\n#include "%s"\n' % include)
    r = run(str(tree))
    assert r.returncode == 1
    assert layers in r.stderr
    assert "1 against the layering" in r.stdout


def test_a_file_in_no_layer_fails(tree):
    (tree / "tools" / "new").mkdir()
    (tree / "tools" / "new" / "x.c").write_text('#include "lib/log.h"\n')
    r = run(str(tree))
    assert r.returncode == 1
    assert "tools/new/x.c: in no layer" in r.stderr
