"""The VM suite's one-line summary at the end of a pytest run."""


def pytest_terminal_summary(terminalreporter, config):
    for attr, name in (("_nvmegate_vm", "nvmegate VM suite"),
                       ("_nvmegate_vm_trixie", "nvmegate VM suite (Linux 6.12)"),
                       ("_nvmegate_vm_hostile", "nvmegate VM suite (hostile networks)"),
                       ("_nvmegate_vm_systemd", "nvmegate VM suite (systemd as PID 1)")):
        run = getattr(config, attr, None)
        if run is None:
            continue
        passed = sum(1 for s in run.scenarios if run.results.get(s, {}).get("status") == "PASS")
        terminalreporter.write_line(
            "%s: %d/%d guest scenarios passed; guest build %.1fs, guest run %.1fs "
            "(qemu exit %s); logs in %s" % (name, passed, len(run.scenarios), run.build_secs,
                                             run.boot_secs, run.rc, run.workdir))
