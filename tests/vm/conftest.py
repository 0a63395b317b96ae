"""The VM suite's one-line summary at the end of a pytest run."""


def pytest_terminal_summary(terminalreporter, config):
    run = getattr(config, "_nvmegate_vm", None)
    if run is None:
        return
    passed = sum(1 for s in run.scenarios if run.results.get(s, {}).get("status") == "PASS")
    terminalreporter.write_line(
        "nvmegate VM suite: %d/%d guest scenarios passed; guest build %.1fs, guest run %.1fs "
        "(qemu exit %s); logs in %s" % (passed, len(run.scenarios), run.build_secs,
                                         run.boot_secs, run.rc, run.workdir))
