"""The "nvmegate": {"fuse": ...} settings: parsing and validation only
(--check-config never mounts anything)."""

import copy
import json
import os
import subprocess

import pytest

from test_config import assert_error, assert_ok, binary, check, img, minimal  # noqa: F401 (fixtures)

NQN = "nqn.2026-11.io.nvmegate:t1"


def with_fuse(img, fuse, extra_subsys=()):
    cfg = minimal(img)
    for nqn in extra_subsys:
        s = copy.deepcopy(cfg["subsystems"][0])
        s["nqn"] = nqn
        cfg["subsystems"].append(s)
    cfg["nvmegate"] = {"fuse": fuse}
    return cfg


def test_fuse_mountpoint_and_aliases_ok(check, img):
    assert_ok(check(with_fuse(img, {"mountpoint": "/mnt/nvmegate"})))
    assert_ok(check(with_fuse(img, {"mountpoint": "/mnt/nvmegate", "aliases": {NQN: "demo"}})))
    # a relative mountpoint is fine (taken next to the config file)
    assert_ok(check(with_fuse(img, {"mountpoint": "fuse"})))
    # an alias may be any folder name, even another subsystem's would-be
    # name as long as that one has an alias too
    other = "nqn.2026-11.io.nvmegate:t2"
    assert_ok(check(with_fuse(img, {"mountpoint": "/m", "aliases": {NQN: other, other: NQN}},
                              extra_subsys=[other])))


@pytest.mark.parametrize("fuse,msg", [
    ({}, "nvmegate.fuse.mountpoint: missing required key"),
    ({"mountpoint": ""}, "nvmegate.fuse.mountpoint: must not be empty"),
    ({"mountpoint": 7}, "nvmegate.fuse.mountpoint: expected a string"),
    ({"mountpoint": "/m", "typo": 1}, "nvmegate.fuse.typo: unknown key"),
    ({"mountpoint": "/m", "aliases": []}, "nvmegate.fuse.aliases: expected an object"),
    ({"mountpoint": "/m", "aliases": {"nqn.2026-11.io.nvmegate:nope": "x"}},
     "nvmegate.fuse.aliases.nqn.2026-11.io.nvmegate:nope: no subsystem has this NQN"),
    ({"mountpoint": "/m", "aliases": {NQN: ""}},
     "nvmegate.fuse.aliases.%s: must not be empty" % NQN),
    ({"mountpoint": "/m", "aliases": {NQN: "a/b"}},
     "nvmegate.fuse.aliases.%s: is not a folder name (no \"/\", \".\" or \"..\")" % NQN),
    ({"mountpoint": "/m", "aliases": {NQN: ".."}},
     "nvmegate.fuse.aliases.%s: is not a folder name (no \"/\", \".\" or \"..\")" % NQN),
    ({"mountpoint": "/m", "aliases": {NQN: "x" * 256}},
     "nvmegate.fuse.aliases.%s: is 256 bytes long (a folder name has at most 255)" % NQN),
    ({"mountpoint": "/m", "aliases": {NQN: 5}}, "nvmegate.fuse.aliases.%s: expected a string" % NQN),
    ({"mountpoint": "/m", "aliases": {NQN: "a\tb"}},
     "nvmegate.fuse.aliases.%s: contains a control character" % NQN),
])
def test_fuse_settings_refused(check, img, fuse, msg):
    assert_error(check(with_fuse(img, fuse)), msg)


def test_fuse_folder_clashes_refused(check, img):
    other = "nqn.2026-11.io.nvmegate:t2"
    # two aliases alike
    r = check(with_fuse(img, {"mountpoint": "/m", "aliases": {NQN: "d", other: "d"}},
                        extra_subsys=[other]))
    assert_error(r, 'nvmegate.fuse.aliases.%s: "d" is also the alias of %s' % (other, NQN))
    # an alias equal to another subsystem's NQN folder
    r = check(with_fuse(img, {"mountpoint": "/m", "aliases": {NQN: other}}, extra_subsys=[other]))
    assert_error(r, 'nvmegate.fuse: subsystems %s and %s would share the folder "%s"'
                 % (NQN, other, other))
    # an NQN that is no folder name needs an alias
    slash = "nqn.2026-11.io.nvmegate:a/b"
    r = check(with_fuse(img, {"mountpoint": "/m"}, extra_subsys=[slash]))
    assert_error(r, 'nvmegate.fuse: subsystem "%s" has a "/" in its NQN: give it a folder name '
                 'in aliases' % slash)
    assert_ok(check(with_fuse(img, {"mountpoint": "/m", "aliases": {slash: "ab"}},
                              extra_subsys=[slash])))


def test_relative_mountpoint_is_next_to_the_config(binary, tmp_path, img):
    """Start-up resolves it: a missing folder is reported by its absolute
    path, under the config file's folder, wherever the daemon started."""
    confdir = tmp_path / "etc"
    confdir.mkdir()
    cfg = with_fuse(img, {"mountpoint": "mnt-here"})
    cfg["ports"] = []
    (confdir / "c.json").write_text(json.dumps(cfg))
    p = subprocess.run([binary, "-c", "etc/c.json"], cwd=str(tmp_path), capture_output=True,
                       text=True, timeout=30)
    assert p.returncode != 0
    assert "FUSE mountpoint %s does not exist" % os.path.join(str(confdir), "mnt-here") in p.stderr, \
        p.stderr
