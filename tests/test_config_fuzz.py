"""Seeded mutations of valid configs through `nvmegated --check-config`.

A sysadmin's broken file must get a clear answer: exit 0 ("config OK") or
exit 2 with one error line that names a key path (or says the JSON is not
valid), never a crash, a sanitizer report or a hang. The mutations change
types, drop and duplicate keys, and push numbers and strings to extremes,
starting from the shared nvmetcli example, the demo config and the test
configs.
"""

import copy
import glob
import json
import os
import random
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NVMEGATED = os.environ.get("NVMEGATED") or os.path.join(REPO, "build", "nvmegated")
CASES = int(os.environ.get("NVMEGATE_FUZZ_CASES", "120"))
TEST_DEADLINE = 240

ODD_VALUES = [None, True, False, 0, -1, 1, 2 ** 31, 2 ** 32 + 1, 2 ** 63, -2 ** 63, 1.5, 1e308,
              "", "0", "-1", "1", "yes", "x" * 5000, "nqn.\u00e9\u4e2d", "127.0.0.1", "::1",
              "4420", "65536", "mem:", "mem:0", "mem:1Z", "mem:18446744073709551615",
              "/dev/null", "/nonexistent/x", "pcie:", "pcie:0000:zz:00.0/1", [], [1, "a"], {},
              {"a": {"b": {"c": []}}}]


def seeds():
    files = [os.path.join(REPO, "conf", "example.json")]
    files += glob.glob(os.path.join(REPO, "..", "shared", "data", "*.json"))
    files += sorted(glob.glob(os.path.join(REPO, "tests", "configs", "*.json")))
    out = []
    for f in files:
        try:
            with open(f) as fh:
                text = fh.read().replace("@IMG@", "mem:64M")
            out.append(json.loads(text))
        except (OSError, ValueError):
            continue
    assert out, "no seed configs found"
    return out


def paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, prefix + (i,))


def get(node, path):
    for p in path:
        node = node[p]
    return node


def mutate(rnd, cfg):
    cfg = copy.deepcopy(cfg)
    for _ in range(rnd.choice([1, 1, 2, 3])):
        all_paths = [p for p in paths(cfg) if p]
        if not all_paths:
            break
        path = rnd.choice(all_paths)
        parent, key = get(cfg, path[:-1]), path[-1]
        r = rnd.random()
        if r < 0.5:
            parent[key] = rnd.choice(ODD_VALUES)
        elif r < 0.65:
            if isinstance(parent, dict):
                del parent[key]
            else:
                parent.pop(key)
        elif r < 0.8 and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))   # duplicate entry
        elif r < 0.9 and isinstance(parent, dict):
            parent[key + "_unknown" if isinstance(key, str) else key] = 1
        else:
            parent[key] = copy.deepcopy(get(cfg, rnd.choice(all_paths)))  # move a subtree
    return cfg


def check(path):
    proc = subprocess.run([NVMEGATED, "--check-config", "-c", path], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode in (0, 2), "rc %d\n%s" % (proc.returncode, proc.stderr)
    assert "Sanitizer" not in proc.stderr and "runtime error" not in proc.stderr, proc.stderr
    if proc.returncode == 0:
        assert "config OK" in proc.stdout, proc.stdout
    else:
        errs = [l for l in proc.stderr.splitlines() if l.strip()]
        assert errs, "exit 2 with no message"
    return proc


def test_config_mutations(tmp_path):
    rnd = random.Random(11)
    base = seeds()
    rcs = {0: 0, 2: 0}
    for i in range(CASES):
        cfg = mutate(rnd, rnd.choice(base))
        f = tmp_path / ("c%d.json" % i)
        f.write_text(json.dumps(cfg))
        rcs[check(str(f)).returncode] += 1
    # Both outcomes occur, or the mutations are not reaching the loader.
    assert rcs[0] and rcs[2], rcs


def test_config_broken_json(tmp_path):
    """Truncated and byte-flipped files: a JSON error, never a crash."""
    rnd = random.Random(12)
    text = json.dumps(seeds()[0], indent=1)
    for i in range(CASES // 3):
        t = bytearray(text.encode())
        if rnd.random() < 0.5:
            t = t[:rnd.randrange(len(t))]
        else:
            for _ in range(rnd.choice([1, 3, 10])):
                t[rnd.randrange(len(t))] = rnd.getrandbits(8)
        f = tmp_path / ("b%d.json" % i)
        f.write_bytes(bytes(t))
        check(str(f))
