"""Running the nvmegate CLI against a test daemon (tests/test_cli.py,
tests/test_live_config.py)."""

import json
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def daemon_binary():
    return os.environ.get("NVMEGATED") or os.path.join(REPO, "build", "asan", "nvmegated")


def cli_binary():
    return os.environ.get("NVMEGATE_CLI") or os.path.join(REPO, "build", "nvmegate")


class Cli:
    def __init__(self, sock):
        self.sock = str(sock)

    def run(self, *args, check=None, timeout=30):
        """Run `nvmegate -s SOCK ARGS`; check = expected exit status."""
        r = subprocess.run([cli_binary(), "-s", self.sock] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=timeout)
        if check is not None:
            assert r.returncode == check, "nvmegate %s: exit %d, expected %d\n%s%s" % (
                " ".join(map(str, args)), r.returncode, check, r.stdout, r.stderr)
        return r

    def ok(self, *args):
        return self.run(*args, check=0).stdout

    def json(self, *args):
        return json.loads(self.run("--json", *args, check=0).stdout)


def add_control(sock):
    def extra(t):
        t.config["nvmegate"]["control"] = {"socket": str(sock)}
    return extra


def port_like(cfg, portid, port, subsystems):
    """A copy of cfg's first port with another id, TCP port and exports."""
    import copy
    p = copy.deepcopy(cfg["ports"][0])
    p["portid"] = portid
    p["addr"]["trsvcid"] = str(port)
    p["subsystems"] = list(subsystems)
    return p


def subsys_with(nqn, namespaces):
    """An open subsystem with namespaces [(nsid, path)]."""
    return {"nqn": nqn, "attr": {"allow_any_host": "1"}, "allowed_hosts": [],
            "namespaces": [{"nsid": i, "enable": 1, "device": {"path": p}} for i, p in namespaces]}
