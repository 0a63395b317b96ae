"""Config loader tests: drive `nvmegated --check-config -c FILE`.

Contract: a valid file exits 0 and prints "config OK" on stdout; each
warning is one stderr line naming the key path; an invalid file exits 2
with the loader's error line ("<key path>: <problem>") on stderr.
"""
import copy
import json
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NVMEGATED = os.environ.get("NVMEGATED") or os.path.join(REPO, "build", "nvmegated")
CONFIGS = os.path.join(REPO, "tests", "configs")


class Result:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr
        self.lines = [l for l in proc.stderr.splitlines() if l.strip()]

    def warnings(self):
        return [l for l in self.lines if "not implemented" in l]

    def has_line(self, msg):
        # The daemon may prefix the loader's line (program name, "error:").
        return any(l.rstrip().endswith(msg) for l in self.lines)

    def __repr__(self):
        return "rc=%d\nstdout:\n%s\nstderr:\n%s" % (self.rc, self.out, self.err)


@pytest.fixture(scope="module")
def binary():
    if not os.access(NVMEGATED, os.X_OK):
        pytest.fail("%s is missing: run `make` (or set NVMEGATED)" % NVMEGATED)
    return NVMEGATED


@pytest.fixture
def check(binary, tmp_path):
    """check(cfg) writes cfg (a dict, or raw text) and runs --check-config."""
    counter = [0]

    def run(cfg):
        counter[0] += 1
        path = tmp_path / ("cfg%d.json" % counter[0])
        path.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg, indent=2))
        proc = subprocess.run([binary, "--check-config", "-c", str(path)],
                              capture_output=True, text=True, timeout=30)
        return Result(proc)

    return run


@pytest.fixture
def img(tmp_path):
    p = tmp_path / "ns1.img"
    with open(p, "wb") as f:
        f.truncate(1 << 20)
    return str(p)


def load_fixture(name, img):
    with open(os.path.join(CONFIGS, name)) as f:
        return json.loads(f.read().replace("@IMG@", img))


def nvmetcli_cfg(img):
    """The real `nvmetcli save` example, made loadable on this machine."""
    cfg = load_fixture("nvmetcli-tcp.json", img)
    cfg["ports"][0]["addr"]["traddr"] = "127.0.0.1"
    cfg["subsystems"][0]["namespaces"][0]["device"]["path"] = img
    return cfg


def minimal(img):
    return {
        "hosts": [],
        "ports": [{
            "portid": 1,
            "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1",
                     "trsvcid": "4420"},
            "subsystems": ["nqn.2026-11.io.nvmegate:t1"],
        }],
        "subsystems": [{
            "nqn": "nqn.2026-11.io.nvmegate:t1",
            "attr": {"allow_any_host": "1"},
            "namespaces": [{"nsid": 1, "device": {"path": img}}],
        }],
    }


def assert_ok(r, warnings=()):
    assert r.rc == 0, r
    assert "config OK" in r.out, r
    assert len(r.warnings()) == len(warnings), r
    for w in warnings:
        assert any(w in l for l in r.warnings()), (w, r)


def assert_error(r, msg):
    assert r.rc == 2, r
    assert "config OK" not in r.out, r
    assert r.has_line(msg), "expected %r in stderr\n%r" % (msg, r)


# ---- valid files ----

def test_nvmetcli_save_loads_without_warnings(check, img):
    assert_ok(check(nvmetcli_cfg(img)))


def test_nvmetcli_full_save_warns_only_about_unimplemented(check, img):
    # A save from a newer kernel: defaults everywhere except the firmware
    # revision, which we do not take from the config.
    r = check(load_fixture("nvmetcli-full.json", img))
    assert_ok(r, ["subsystems[0].attr.firmware: not implemented, ignored"])


def test_example_config(check, img):
    with open(os.path.join(REPO, "conf", "example.json")) as f:
        text = f.read()
    assert "@IMG@" in text
    r = check(text.replace("@IMG@", img))
    assert_ok(r)


def test_minimal_and_empty(check, img):
    assert_ok(check(minimal(img)))
    assert_ok(check({}))
    assert_ok(check({"hosts": [], "ports": [], "subsystems": []}))


def test_string_and_number_forms(check, img):
    as_numbers = minimal(img)
    port = as_numbers["ports"][0]
    port["addr"]["trsvcid"] = 4420
    port["param"] = {"inline_data_size": 8192, "pi_enable": 0}
    sub = as_numbers["subsystems"][0]
    sub["attr"] = {"allow_any_host": True, "cntlid_min": 1, "cntlid_max": 100,
                   "version": 1.4, "pi_enable": False}
    sub["namespaces"][0].update({"nsid": 1, "enable": True, "readonly": True,
                                 "lba_size": 4096, "ana_grpid": 1})
    as_numbers["nvmegate"] = {"reactors": 2, "handshake_timeout_ms": 5000,
                              "max_pending_sockets": 64, "max_queues_per_host": 8}
    assert_ok(check(as_numbers))

    as_strings = copy.deepcopy(as_numbers)
    port = as_strings["ports"][0]
    port["portid"] = "1"
    port["addr"]["trsvcid"] = "4420"
    port["param"] = {"inline_data_size": "8192", "pi_enable": "0"}
    sub = as_strings["subsystems"][0]
    sub["attr"] = {"allow_any_host": "1", "cntlid_min": "1", "cntlid_max": "100",
                   "version": "1.4", "pi_enable": "0"}
    sub["namespaces"][0].update({"nsid": "1", "enable": "1", "readonly": "true",
                                 "lba_size": "4096", "ana_grpid": "1"})
    as_strings["nvmegate"] = {"reactors": "2", "handshake_timeout_ms": "5000",
                              "max_pending_sockets": "64", "max_queues_per_host": "8"}
    assert_ok(check(as_strings))


def test_ids_and_case_insensitive_names(check, img):
    cfg = minimal(img)
    cfg["ports"][0]["addr"].update({"trtype": "TCP", "adrfam": "IPv4"})
    cfg["subsystems"][0]["namespaces"] = [
        {"nsid": 1, "device": {"path": img,
                               "uuid": "D592CDF3-5D1C-44E0-8412-3FCF7D99DF27",
                               "nguid": "00000000-0000-0000-0000-000000000000",
                               "eui64": "0011223344556677"}},
        {"nsid": 2, "device": {"path": "mem:1M",
                               "nguid": "11111111-2222-3333-4444-555555555555",
                               "eui64": "00-11-22-33-44-55-66-78"}},
        # all-zero NGUID means "unset", so a second one is no duplicate
        {"nsid": 3, "device": {"path": "mem:1M",
                               "nguid": "00000000-0000-0000-0000-000000000000"}},
    ]
    cfg["nvmegate"] = {"log_level": "DEBUG"}
    assert_ok(check(cfg))


def test_ipv6_and_wildcards(check, img):
    cfg = minimal(img)
    cfg["ports"][0]["addr"].update({"adrfam": "ipv6", "traddr": "::"})
    cfg["ports"].append({"portid": 2, "addr": {"trtype": "tcp", "adrfam": "ipv4",
                                               "traddr": "0.0.0.0", "trsvcid": 4420},
                         "subsystems": []})
    assert_ok(check(cfg))


def test_disabled_namespace_needs_no_path(check, img):
    cfg = minimal(img)
    cfg["subsystems"][0]["namespaces"].append({"nsid": 2, "enable": 0})
    cfg["subsystems"][0]["namespaces"].append(
        {"nsid": 3, "enable": "0", "device": {"path": "(null)"}})
    assert_ok(check(cfg))


@pytest.mark.parametrize("size", ["mem:256M", "mem:4k", "mem:512", "mem:1G", "mem:2T"])
def test_mem_sizes_ok(check, img, size):
    cfg = minimal(img)
    cfg["subsystems"][0]["namespaces"][0]["device"]["path"] = size
    assert_ok(check(cfg))


@pytest.mark.parametrize("path", ["pcie:0000:01:00.0/1", "pcie:abcd:ff:1f.7/4294967294"])
def test_pcie_paths_ok(check, img, path):
    cfg = minimal(img)
    cfg["subsystems"][0]["namespaces"][0]["device"]["path"] = path
    assert_ok(check(cfg))


@pytest.mark.parametrize("path", ["pcie:0000:01:00.0", "pcie:01:00.0/1", "pcie:0000:01:00.0/0",
                                  "pcie:0000:01:00.8/1", "pcie:0000:01:20.0/1", "pcie:0000:01:00.0/1x",
                                  "pcie:0000:01:00.0/4294967295", "pcie:0000-01:00.0/1"])
def test_pcie_path_malformed(check, img, path):
    cfg = minimal(img)
    cfg["subsystems"][0]["namespaces"][0]["device"]["path"] = path
    assert_error(check(cfg), 'subsystems[0].namespaces[0].device.path: "%s" is not a PCIe namespace '
                 '(pcie:DDDD:BB:DD.F/NSID, e.g. pcie:0000:01:00.0/1)' % path)


# ---- warnings for nvmetcli features we do not implement ----

def test_unimplemented_features_warn_once_each(check, img):
    cfg = minimal(img)
    port = cfg["ports"][0]
    port["param"] = {"pi_enable": "1", "inline_data_size": "16384"}
    sub = cfg["subsystems"][0]
    sub["attr"]["qid_max"] = "4"
    sub["namespaces"][0].update({"buffered_io": "1"})
    r = check(cfg)
    assert_ok(r, [
        "ports[0].param.pi_enable: not implemented",
        "subsystems[0].attr.qid_max: not implemented",
        "subsystems[0].namespaces[0].buffered_io: not implemented",
    ])


# ---- referrals (nvmetcli's ports[].referrals) ----

def referral_cfg(img, **addr):
    cfg = minimal(img)
    a = {"trtype": "tcp", "adrfam": "ipv4", "traddr": "10.0.0.9", "trsvcid": "8009",
         "treq": "not specified", "portid": "2"}
    a.update(addr)
    cfg["ports"][0]["referrals"] = [{"name": "node-b", "enable": 1, "addr": a}]
    return cfg


def test_referrals_load_without_warnings(check, img):
    assert_ok(check(referral_cfg(img)))
    assert_ok(check(referral_cfg(img, adrfam="ipv6", traddr="fd00::9", treq="required")))


@pytest.mark.parametrize("addr, msg", [
    ({"trtype": "rdma"},
     'ports[0].referrals[0].addr.trtype: transport "rdma" is not supported in a referral '
     '(only "tcp")'),
    ({"traddr": "node-b"}, 'ports[0].referrals[0].addr.traddr: "node-b" is not an IPv4 address'),
    ({"adrfam": "ipv6"}, 'ports[0].referrals[0].addr.traddr: "10.0.0.9" is not an IPv6 address'),
    ({"trsvcid": "70000"}, "ports[0].referrals[0].addr.trsvcid: 70000 is out of range (1..65535)"),
    ({"portid": "-1"}, "ports[0].referrals[0].addr.portid: -1 is out of range (0..65535)"),
    ({"treq": "maybe"}, 'ports[0].referrals[0].addr.treq: "maybe" is not supported (only '
     '"required", "not required" or "not specified")'),
])
def test_referral_errors_name_the_key(check, img, addr, msg):
    assert_error(check(referral_cfg(img, **addr)), msg)


def test_referral_needs_name_and_address(check, img):
    cfg = referral_cfg(img)
    del cfg["ports"][0]["referrals"][0]["name"]
    assert_error(check(cfg), "ports[0].referrals[0].name: missing required key")
    cfg = referral_cfg(img)
    cfg["ports"][0]["referrals"].append(copy.deepcopy(cfg["ports"][0]["referrals"][0]))
    assert_error(check(cfg), 'ports[0].referrals[1].name: duplicate referral "node-b" (also referrals[0])')
    cfg = referral_cfg(img)
    del cfg["ports"][0]["referrals"][0]["addr"]["traddr"]
    assert_error(check(cfg), "ports[0].referrals[0].addr.traddr: missing required key")


# ---- ANA groups (nvmetcli's ports[].ana_groups and namespaces' ana_grpid) ----

def test_ana_groups_load(check, img):
    cfg = minimal(img)
    cfg["ports"][0]["ana_groups"] = [
        {"grpid": 1, "ana": {"state": "optimized"}},
        {"grpid": "2", "ana": {"state": "inaccessible"}},
        {"grpid": 3, "ana": {"state": "non-optimized"}},
        {"grpid": 4, "ana": {"state": "persistent-loss"}},
        {"grpid": 128, "ana": {"state": "change"}}]
    ns = cfg["subsystems"][0]["namespaces"][0]
    ns.update({"ana_grpid": 2, "ana": {"grpid": "2"}})
    assert_ok(check(cfg))


@pytest.mark.parametrize("groups,ns,msg", [
    ([], {"ana_grpid": 2},
     "subsystems[0].namespaces[0].ana_grpid: ANA group 2 is defined on no port "
     "(ports[].ana_groups)"),
    ([{"grpid": 0}], {}, "ports[0].ana_groups[0].grpid: 0 is out of range (1..128)"),
    ([{"grpid": 129}], {}, "ports[0].ana_groups[0].grpid: 129 is out of range (1..128)"),
    ([{"grpid": 2, "ana": {"state": "standby"}}], {},
     'ports[0].ana_groups[0].ana.state: ANA state "standby" is not one of "optimized", '
     '"non-optimized", "inaccessible", "persistent-loss" or "change"'),
    ([{"grpid": 2}, {"grpid": 2}], {},
     "ports[0].ana_groups[1].grpid: duplicate ANA group 2 (also ana_groups[0])"),
    ([{"ana": {"state": "optimized"}}], {}, "ports[0].ana_groups[0].grpid: missing required key"),
    ([], {"ana_grpid": 129},
     "subsystems[0].namespaces[0].ana_grpid: 129 is out of range (0..128)"),
    ([{"grpid": 2}], {"ana_grpid": 2, "ana": {"grpid": 1}},
     "subsystems[0].namespaces[0].ana.grpid: 1 differs from ana_grpid 2"),
])
def test_bad_ana_config(check, img, groups, ns, msg):
    cfg = minimal(img)
    cfg["ports"][0]["ana_groups"] = groups
    cfg["subsystems"][0]["namespaces"][0].update(ns)
    assert_error(check(cfg), msg)


@pytest.mark.parametrize("where,value,msg", [
    ("treq", "required", 'ports[0].addr.treq: "required" needs "tsas": "tls1.3"'),
    ("tsas", "tls1.2", 'ports[0].addr.tsas: "tls1.2" is not supported (only "tls1.3" or "none")'),
])
def test_security_settings_are_refused_not_ignored(check, img, where, value, msg):
    # Serving a port in the clear, or a host without authentication, when the
    # file asks for protection would be a silent security hole.
    cfg = minimal(img)
    cfg["ports"][0]["addr"][where] = value
    assert_error(check(cfg), msg)


# DH-HMAC-CHAP keys as `nvme gen-dhchap-key` prints them: bytes 0..31 with
# their CRC-32 (made with Python's base64 and zlib.crc32).
DHCHAP_K32 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR"
AUTH_HOST = "nqn.2014-08.org.nvmexpress:uuid:0f0e0d0c-0b0a-0908-0706-050403020100"


def with_dhchap(img, **dhchap):
    cfg = minimal(img)
    entry = {"key": "", "ctrl_key": "", "hash": "hmac(sha256)", "dhgroup": "null"}
    entry.update(dhchap)
    cfg["hosts"] = [{"nqn": AUTH_HOST, "dhchap": entry}]
    return cfg


def test_dhchap_keys_load(check, img):
    # A host key and a controller key (bidirectional), as nvmetcli saves them.
    assert_ok(check(with_dhchap(img, key="DHHC-1:01:%s:" % DHCHAP_K32,
                                ctrl_key="DHHC-1:00:%s:" % DHCHAP_K32,
                                hash="hmac(sha384)", dhgroup="ffdhe3072")))


@pytest.mark.parametrize("dhchap,msg", [
    ({"key": "DHHC-1:00:%s:" % (DHCHAP_K32[:-1] + "S")},
     "hosts[0].dhchap.key: the key's CRC does not match (a typing error?)"),
    ({"key": "DHHC-1:03:%s:" % DHCHAP_K32},
     "hosts[0].dhchap.key: the key is 32 bytes long; a DHHC-1:03 key must be 64"),
    ({"ctrl_key": "DHHC-1:00:%s:" % DHCHAP_K32},
     'hosts[0].dhchap.ctrl_key: a controller key needs a host key ("key")'),
    ({"key": "DHHC-1:00:%s:" % DHCHAP_K32, "dhgroup": "ffdhe1024"},
     'hosts[0].dhchap.dhgroup: DH group "ffdhe1024" is not null, ffdhe2048, ffdhe3072, '
     "ffdhe4096, ffdhe6144 or ffdhe8192"),
])
def test_bad_dhchap_key_refused(check, img, dhchap, msg):
    # A key that does not parse is refused, never taken for "no key".
    assert_error(check(with_dhchap(img, **dhchap)), msg)


@pytest.mark.parametrize("treq", ["required", "not required", "not specified"])
def test_tls_port_loads(check, img, treq):
    # nvmetcli's TLS keys are served now, with the host's PSK beside its NQN.
    cfg = minimal(img)
    cfg["ports"][0]["addr"].update({"tsas": "tls1.3", "treq": treq})
    cfg["hosts"] = [{"nqn": "nqn.2014-08.org.nvmexpress:uuid:0f0e0d0c-0b0a-0908-0706-050403020100",
                     "psk": "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:"}]
    assert_ok(check(cfg))


def test_bad_psk_is_refused_with_its_key(check, img):
    cfg = minimal(img)
    cfg["hosts"] = [{"nqn": "nqn.2014-08.org.nvmexpress:uuid:0f0e0d0c-0b0a-0908-0706-050403020100",
                     "psk": "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrY:"}]
    r = check(cfg)
    assert r.rc == 2 and any("hosts[0].psk: " in l for l in r.lines), r
    assert "VRLbtn" not in str(r)  # the key is never echoed


def test_harmless_defaults_do_not_warn(check, img):
    cfg = minimal(img)
    port = cfg["ports"][0]
    port["addr"].update({"treq": "not specified", "tsas": "none"})
    port["param"] = {"pi_enable": "0", "inline_data_size": "-1", "max_queue_size": "-1"}
    port["referrals"] = []
    port["ana_groups"] = [{"grpid": 1, "ana": {"state": "optimized"}}]
    sub = cfg["subsystems"][0]
    sub["attr"].update({"pi_enable": "0", "qid_max": "128", "ieee_oui": "0x000000"})
    sub["namespaces"][0].update({"ana_grpid": 1, "ana": {"grpid": "1"},
                                 "resv": {"enable": "0"}})
    sub["passthru"] = [{"device": {"path": ""}, "enable": 0, "clear_ids": 1}]
    assert_ok(check(cfg))


# ---- errors ----

def test_duplicate_nsid_exact_message(check, img):
    cfg = minimal(img)
    cfg["subsystems"][0]["namespaces"].append({"nsid": 1, "device": {"path": "mem:1M"}})
    assert_error(check(cfg), "subsystems[0].namespaces[1].nsid: duplicate nsid 1")


@pytest.mark.parametrize("trtype", ["rdma", "fc", "loop", "pci"])
def test_non_tcp_transport_refused(check, img, trtype):
    cfg = minimal(img)
    cfg["ports"][0]["addr"]["trtype"] = trtype
    assert_error(check(cfg),
                 'ports[0].addr.trtype: transport "%s" is not supported (only tcp)' % trtype)


def test_rdma_on_second_port(check, img):
    cfg = nvmetcli_cfg(img)
    port = copy.deepcopy(cfg["ports"][0])
    port["portid"] = 2
    port["addr"]["trtype"] = "rdma"
    cfg["ports"].append(port)
    assert_error(check(cfg), 'ports[1].addr.trtype: transport "rdma" is not supported (only tcp)')


@pytest.mark.parametrize("adrfam,traddr,msg", [
    ("ipv4", "1.2.3", '"1.2.3" is not an IPv4 address'),
    ("ipv4", "::1", '"::1" is not an IPv4 address'),
    ("ipv4", "localhost", '"localhost" is not an IPv4 address'),
    ("ipv6", "127.0.0.1", '"127.0.0.1" is not an IPv6 address'),
    ("ipv6", "fe80::1::2", '"fe80::1::2" is not an IPv6 address'),
])
def test_bad_traddr(check, img, adrfam, traddr, msg):
    cfg = minimal(img)
    cfg["ports"][0]["addr"].update({"adrfam": adrfam, "traddr": traddr})
    assert_error(check(cfg), "ports[0].addr.traddr: " + msg)


def test_bad_traddr_on_second_port(check, img):
    cfg = minimal(img)
    cfg["ports"].append({"portid": 2, "addr": {"trtype": "tcp", "adrfam": "ipv4",
                                               "traddr": "1.2.3", "trsvcid": "4421"}})
    assert_error(check(cfg), 'ports[1].addr.traddr: "1.2.3" is not an IPv4 address')


def test_bad_adrfam_and_trsvcid(check, img):
    cfg = minimal(img)
    cfg["ports"][0]["addr"]["adrfam"] = "ib"
    assert_error(check(cfg), 'ports[0].addr.adrfam: address family "ib" is not supported '
                             '(only ipv4 or ipv6)')
    for bad in ("0", 65536, "http"):
        cfg = minimal(img)
        cfg["ports"][0]["addr"]["trsvcid"] = bad
        r = check(cfg)
        assert r.rc == 2 and "ports[0].addr.trsvcid: " in r.err, r


@pytest.mark.parametrize("where,key", [
    (lambda c: c["subsystems"][0]["attr"], "subsystems[0].attr.alow_any_host"),
    (lambda c: c, "alow_any_host"),
    (lambda c: c["ports"][0]["addr"], "ports[0].addr.alow_any_host"),
    (lambda c: c["subsystems"][0]["namespaces"][0], "subsystems[0].namespaces[0].alow_any_host"),
    (lambda c: c["subsystems"][0]["namespaces"][0]["device"],
     "subsystems[0].namespaces[0].device.alow_any_host"),
])
def test_unknown_key(check, img, where, key):
    cfg = minimal(img)
    where(cfg)["alow_any_host"] = "1"
    assert_error(check(cfg), key + ": unknown key")


def test_unknown_nvmegate_key(check, img):
    cfg = minimal(img)
    cfg["nvmegate"] = {"reactor": 4}
    assert_error(check(cfg), "nvmegate.reactor: unknown key")


def test_missing_required_keys(check, img):
    cfg = minimal(img)
    del cfg["subsystems"][0]["nqn"]
    assert_error(check(cfg), "subsystems[0].nqn: missing required key")

    cfg = minimal(img)
    del cfg["ports"][0]["addr"]["traddr"]
    assert_error(check(cfg), "ports[0].addr.traddr: missing required key")

    cfg = minimal(img)
    del cfg["subsystems"][0]["namespaces"][0]["nsid"]
    assert_error(check(cfg), "subsystems[0].namespaces[0].nsid: missing required key")

    cfg = minimal(img)
    del cfg["subsystems"][0]["namespaces"][0]["device"]
    r = check(cfg)
    assert r.rc == 2 and "subsystems[0].namespaces[0].device.path: missing required key" \
        in r.err, r


@pytest.mark.parametrize("uuid", [
    "d592cdf3-5d1c-44e0-8412-3fcf7d99df2",      # short
    "d592cdf35d1c44e084123fcf7d99df27",        # no dashes
    "d592cdf3-5d1c-44e0-8412-3fcf7d99df2g",     # not hex
    "{d592cdf3-5d1c-44e0-8412-3fcf7d99df27}",
])
def test_bad_uuid(check, img, uuid):
    cfg = minimal(img)
    cfg["subsystems"][0]["namespaces"][0]["device"]["uuid"] = uuid
    assert_error(check(cfg), 'subsystems[0].namespaces[0].device.uuid: "%s" is not a UUID '
                             '(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)' % uuid)


def test_bad_nguid_and_eui64(check, img):
    cfg = minimal(img)
    cfg["subsystems"][0]["namespaces"][0]["device"]["nguid"] = "0011"
    r = check(cfg)
    assert r.rc == 2 and 'device.nguid: "0011" is not an NGUID' in r.err, r
    cfg = minimal(img)
    cfg["subsystems"][0]["namespaces"][0]["device"]["eui64"] = "00112233445566778"
    r = check(cfg)
    assert r.rc == 2 and "device.eui64: " in r.err and "is not an EUI-64" in r.err, r


def test_duplicate_uuid_refused(check, img):
    cfg = minimal(img)
    u = "d592cdf3-5d1c-44e0-8412-3fcf7d99df27"
    ns = cfg["subsystems"][0]["namespaces"]
    ns[0]["device"]["uuid"] = u
    ns.append({"nsid": 2, "device": {"path": "mem:1M", "uuid": u}})
    assert_error(check(cfg), "subsystems[0].namespaces[1].device.uuid: duplicate uuid "
                             "(also nsid 1)")


@pytest.mark.parametrize("size", ["mem:0", "mem:", "mem:10X", "mem:-1", "mem:1.5G",
                                  "mem: 1M", "mem:99999999999999999999T"])
def test_mem_size_invalid(check, img, size):
    cfg = minimal(img)
    cfg["subsystems"][0]["namespaces"][0]["device"]["path"] = size
    assert_error(check(cfg), 'subsystems[0].namespaces[0].device.path: "%s" is not a valid '
                             'size (mem:SIZE with SIZE > 0 and an optional K, M, G or T '
                             'suffix)' % size)


def test_mem_size_must_fit_lba_size(check, img):
    cfg = minimal(img)
    cfg["subsystems"][0]["namespaces"][0]["device"]["path"] = "mem:1000"
    assert_error(check(cfg), "subsystems[0].namespaces[0].device.path: size 1000 is not a "
                             "multiple of lba_size 512")
    cfg["subsystems"][0]["namespaces"][0]["device"]["path"] = "mem:2k"
    cfg["subsystems"][0]["namespaces"][0]["lba_size"] = 4096
    assert_error(check(cfg), "subsystems[0].namespaces[0].device.path: size 2048 is not a "
                             "multiple of lba_size 4096")
    cfg["subsystems"][0]["namespaces"][0]["lba_size"] = 1024
    assert_error(check(cfg), "subsystems[0].namespaces[0].lba_size: 1024 is not 512 or 4096")


def test_wrong_json_types(check, img):
    cfg = minimal(img)
    cfg["subsystems"][0]["namespaces"] = {"nsid": 1}
    assert_error(check(cfg), "subsystems[0].namespaces: expected an array")
    cfg = minimal(img)
    cfg["ports"][0]["addr"] = "127.0.0.1:4420"
    assert_error(check(cfg), "ports[0].addr: expected an object")
    cfg = minimal(img)
    cfg["subsystems"][0]["nqn"] = 42
    assert_error(check(cfg), "subsystems[0].nqn: expected a string")
    cfg = minimal(img)
    cfg["subsystems"][0]["namespaces"][0]["nsid"] = 1.5
    assert_error(check(cfg), "subsystems[0].namespaces[0].nsid: expected an integer")
    cfg = minimal(img)
    cfg["subsystems"][0]["attr"]["allow_any_host"] = "maybe"
    assert_error(check(cfg), 'subsystems[0].attr.allow_any_host: "maybe" is not a boolean '
                             '(use true/false or 1/0)')
    assert_error(check("[]"), "the top level must be a JSON object")


@pytest.mark.parametrize("text,line", [
    ('{\n  "hosts": [\n  ]\n  "ports": []\n}\n', 4),      # missing comma
    ('{\n  "hosts": [],\n}\n', 3),                        # trailing comma
    ('{\n  "ports": [\n', 3),                             # truncated
    ('', 1),
    ('{"hosts": []} extra', 1),
    ('// comment\n{}', 1),
])
def test_invalid_json(check, text, line):
    r = check(text)
    assert r.rc == 2, r
    assert "invalid JSON at line %d, column " % line in r.err, r


def test_nqn_rules(check, img):
    cfg = minimal(img)
    disc = "nqn.2014-08.org.nvmexpress.discovery"
    cfg["subsystems"][0]["nqn"] = disc
    cfg["ports"][0]["subsystems"] = [disc]
    assert_error(check(cfg), 'subsystems[0].nqn: "%s" is the discovery subsystem NQN' % disc)

    cfg = minimal(img)
    cfg["subsystems"][0]["nqn"] = "nqn.2026-11.io.nvmegate:" + "x" * 200
    r = check(cfg)
    assert r.rc == 2 and "subsystems[0].nqn: NQN is 224 bytes long (at most 223)" in r.err, r

    cfg = minimal(img)
    cfg["subsystems"].append(copy.deepcopy(cfg["subsystems"][0]))
    r = check(cfg)
    assert r.rc == 2 and "subsystems[1].nqn: duplicate NQN" in r.err, r


def test_port_subsystem_must_exist(check, img):
    cfg = minimal(img)
    cfg["ports"][0]["subsystems"] = ["nqn.2026-11.io.nvmegate:typo"]
    assert_error(check(cfg), 'ports[0].subsystems[0]: unknown subsystem '
                             '"nqn.2026-11.io.nvmegate:typo" (not in subsystems)')


def test_port_uniqueness(check, img):
    cfg = minimal(img)
    second = copy.deepcopy(cfg["ports"][0])
    second["addr"]["trsvcid"] = "4421"
    cfg["ports"].append(second)
    assert_error(check(cfg), "ports[1].portid: duplicate portid 1 (also ports[0])")

    second["portid"] = 2
    second["addr"]["trsvcid"] = 4420
    assert_error(check(cfg), "ports[1].addr: duplicate address 127.0.0.1:4420 (also ports[0])")

    second["addr"]["traddr"] = "0.0.0.0"
    assert_error(check(cfg), "ports[1].addr: 0.0.0.0:4420 overlaps 127.0.0.1:4420 of ports[0]")

    second["addr"]["traddr"] = "127.0.0.2"
    assert_ok(check(cfg))


def test_reservation_owner_names_subsystems_of_the_config(check, img):
    cfg = minimal(img)
    cfg["nvmegate"] = {"reservation_owner": ["nqn.2026-11.io.nvmegate:t1"]}
    assert_ok(check(cfg))
    cfg["nvmegate"]["reservation_owner"].append("nqn.2026-11.io.nvmegate:elsewhere")
    assert_error(check(cfg), 'nvmegate.reservation_owner[1]: "nqn.2026-11.io.nvmegate:'
                             'elsewhere" is not a subsystem of this config')


def test_subsystem_attr_rules(check, img):
    cfg = minimal(img)
    cfg["subsystems"][0]["attr"].update({"cntlid_min": "100", "cntlid_max": "10"})
    assert_error(check(cfg), "subsystems[0].attr.cntlid_max: cntlid_min 100 is greater than "
                             "cntlid_max 10")
    cfg = minimal(img)
    cfg["subsystems"][0]["attr"]["cntlid_max"] = "65520"
    assert_error(check(cfg), "subsystems[0].attr.cntlid_max: 65520 is out of range (1..65519)")
    cfg = minimal(img)
    cfg["subsystems"][0]["attr"]["serial"] = "s" * 21
    r = check(cfg)
    assert r.rc == 2 and "subsystems[0].attr.serial: " in r.err and \
        "longer than 20 characters" in r.err, r
    cfg = minimal(img)
    cfg["subsystems"][0]["attr"]["model"] = "m\u00e9"
    r = check(cfg)
    assert r.rc == 2 and "subsystems[0].attr.model: " in r.err and "printable ASCII" in r.err, r
    cfg = minimal(img)
    cfg["subsystems"][0]["attr"]["version"] = "1.x"
    r = check(cfg)
    assert r.rc == 2 and 'subsystems[0].attr.version: "1.x" is not a supported NVMe version' \
        in r.err, r
    cfg = minimal(img)
    cfg["subsystems"][0]["allowed_hosts"] = ["nqn.2014-08.org.nvmexpress:uuid:h1"]
    assert_error(check(cfg), "subsystems[0].allowed_hosts: must be empty when "
                             "attr.allow_any_host is set")


@pytest.mark.parametrize("key,value,msg", [
    ("reactors", 257, "257 is out of range (0..256)"),
    ("handshake_timeout_ms", "50", "50 is out of range (100..600000)"),
    ("log_level", "verbose", '"verbose" is not a log level (error, warn, info or debug)'),
    ("max_pending_sockets", 0, "0 is out of range (1..65536)"),
])
def test_nvmegate_settings(check, img, key, value, msg):
    cfg = minimal(img)
    cfg["nvmegate"] = {key: value}
    assert_error(check(cfg), "nvmegate.%s: %s" % (key, msg))


def test_nsid_range(check, img):
    for bad, text in ((0, "0"), (0xFFFFFFFF, "4294967295")):
        cfg = minimal(img)
        cfg["subsystems"][0]["namespaces"][0]["nsid"] = bad
        assert_error(check(cfg), "subsystems[0].namespaces[0].nsid: %s is out of range "
                                 "(1..4294967294)" % text)


def test_missing_file(binary, tmp_path):
    proc = subprocess.run([binary, "--check-config", "-c", str(tmp_path / "nope.json")],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "nope.json" in proc.stderr
