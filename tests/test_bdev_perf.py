"""nvmegate-bdev-perf (one backend driven directly, no front end) on the
file and RAM backends. The PCIe backend is exercised in the guest benchmark
(bench/pcie_bench.py), which needs QEMU's NVMe device behind an IOMMU.

The binary comes from NVMEGATE_BDEV_PERF, defaulting to
build/nvmegate-bdev-perf under the repo root.
"""

import json
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_TIMEOUT = 60


def tool():
    return os.environ.get("NVMEGATE_BDEV_PERF") or os.path.join(REPO, "build", "nvmegate-bdev-perf")


def run(*args, prefix=()):
    return subprocess.run([*prefix, tool(), *args], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT)


def run_json(*args, prefix=()):
    p = run("--json", "-t", "1", *args, prefix=prefix)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.fixture
def img(tmp_path):
    path = tmp_path / "disk.img"
    with open(path, "wb") as f:
        f.truncate(64 << 20)
    return str(path)


@pytest.mark.parametrize("workload,bs", [("randread", "4k"), ("read", "128k"),
                                         ("randwrite", "4k"), ("write", "128k")])
def test_file_backend(img, workload, bs):
    r = run_json("-w", workload, "-b", bs, "-d", "8", img)
    assert r["backend"] == "file"
    assert r["workload"] == workload
    assert r["bs"] == int(bs[:-1]) * 1024
    assert r["ios"] > 0 and r["iops"] > 0 and r["mibps"] > 0
    assert r["errors"] == 0
    assert 0 < r["p50_lat_us"] <= r["p99_lat_us"] <= r["max_lat_us"]


@pytest.mark.parametrize("workload", ["randread", "randwrite", "verify"])
def test_mem_backend(workload):
    r = run_json("-w", workload, "-d", "32", "mem:64M")
    assert r["backend"] == "mem"
    assert r["size"] == 64 << 20
    assert r["ios"] > 0 and r["iops"] > 0


def test_verify_file_two_reactors(img):
    # Each write is read back and checked; a mismatch exits 1.
    r = run_json("-w", "verify", "-r", "2", "-d", "4", "-b", "8k", img)
    assert r["reactors"] == 2
    assert r["ios"] > 0 and r["errors"] == 0


def test_human_output(img):
    p = run("-t", "1", "-w", "randread", img)
    assert p.returncode == 0, p.stderr
    assert "IOPS" in p.stdout and "p99_us" in p.stdout
    assert img in p.stdout


def test_read_opens_read_only(img):
    # Read workloads must not need write permission on the target. Root
    # ignores file modes through CAP_DAC_OVERRIDE: setpriv drops it.
    os.chmod(img, 0o444)
    prefix = ()
    if os.geteuid() == 0:
        prefix = ("setpriv", "--bounding-set", "-dac_override", "--inh-caps", "-dac_override", "--")
    assert run_json("-w", "read", img, prefix=prefix)["ios"] > 0
    p = run("-t", "1", "-w", "write", img, prefix=prefix)
    assert p.returncode == 1
    assert img in p.stderr and "Permission denied" in p.stderr


@pytest.mark.parametrize("path,words", [
    ("/nonexistent/disk.img", ["/nonexistent/disk.img", "No such file"]),
    ("mem:12Q", ["mem:12Q", "is not a valid size"]),
    ("pcie:not-a-bdf", ["pcie:not-a-bdf", "is not a PCIe namespace"]),
    ("pcie:0000:7f:1f.7/1", ["0000:7f:1f.7"]),
])
def test_bad_path(path, words):
    p = run("-t", "1", path)
    assert p.returncode == 1
    for w in words:
        assert w in p.stderr
    assert p.stdout == ""


def test_too_small():
    p = run("-t", "1", "-b", "8k", "mem:4k")
    assert p.returncode == 1
    assert "too small" in p.stderr


@pytest.mark.parametrize("args,words", [
    (["-w", "sideways", "mem:1M"], ["sideways", "workload"]),
    (["-b", "1000", "mem:1M"], ["1000", "block size"]),
    (["-b", "2M", "mem:4M"], ["2M", "block size"]),
    (["-b", "18014398509481988k", "mem:4M"], ["18014398509481988k", "block size"]),  # 4096 mod 2^64
    (["-d", "0", "mem:1M"], ["queue depth"]),
    (["-t", "-1", "mem:1M"], ["run time"]),
    (["-r", "65", "mem:1M"], ["reactor count"]),
    (["--frobnicate", "mem:1M"], ["--frobnicate"]),
    (["mem:1M", "mem:2M"], ["more than one PATH"]),
    ([], ["no backend PATH"]),
    (["-w"], ["-w", "needs a value"]),
])
def test_bad_options(args, words):
    p = run(*args)
    assert p.returncode == 2
    for w in words:
        assert w in p.stderr
    assert "usage:" in p.stderr


def test_help():
    p = run("--help")
    assert p.returncode == 0
    assert "pcie:DDDD:BB:DD.F/NSID" in p.stdout
