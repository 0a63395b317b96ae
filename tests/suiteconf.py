"""The suite's own conftest.py as a module, loaded by path: `make test` also
loads tests/vm/conftest.py, so the bare module name "conftest" may be that
one. Test files take their helpers from here:

    from suiteconf import conftest
"""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
    "nvmegate_tests_conftest", os.path.join(os.path.dirname(os.path.abspath(__file__)), "conftest.py"))
conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(conftest)
