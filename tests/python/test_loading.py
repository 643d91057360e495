"""Loading the library: the search order, the ImportError, the ABI check, the prototypes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from conftest import PACKAGE_DIR, SOURCE_ROOT, run_python

import agentburn
from agentburn import _native

HEADER = os.path.join(SOURCE_ROOT, "include", "agentburn", "agentburn.h")


def header_functions():
    with open(HEADER) as f:
        text = f.read()
    return set(re.findall(r"AB_API\s[^;{]*?\b(ab_\w+)\s*\(", text))


def test_every_function_of_the_header_has_a_prototype_and_no_other():
    declared = header_functions()
    assert len(declared) > 40
    assert declared == set(_native.PROTOTYPES)


def test_every_prototype_is_set_on_the_loaded_library():
    for name, (restype, argtypes) in _native.PROTOTYPES.items():
        fn = getattr(_native.lib, name)
        assert fn.restype is restype, name
        assert list(fn.argtypes) == list(argtypes), name


def test_abi_and_versions():
    assert agentburn.ABI_VERSION == 1
    assert _native.lib.ab_abi_version() == agentburn.ABI_VERSION
    assert re.fullmatch(r"\d+\.\d+\.\d+", agentburn.library_version())
    assert os.path.exists(agentburn.library_path) or "/" not in agentburn.library_path


def test_library_path_comes_from_agentburn_library():
    env_path = os.environ.get("AGENTBURN_LIBRARY")
    if not env_path:
        pytest.skip("AGENTBURN_LIBRARY is not set")
    assert agentburn.library_path == env_path


def test_missing_agentburn_library_file_is_one_import_error(tmp_path):
    missing = str(tmp_path / "nothing-here" / "libagentburn.so")
    r = run_python("import agentburn", env={"AGENTBURN_LIBRARY": missing})
    assert r.returncode != 0
    assert "ImportError" in r.stderr
    assert "AGENTBURN_LIBRARY=" + missing in r.stderr
    assert "no such file" in r.stderr


def test_a_file_that_is_not_a_library_is_an_import_error(tmp_path):
    bogus = tmp_path / "libagentburn.so"
    bogus.write_text("not an ELF file")
    r = run_python("import agentburn", env={"AGENTBURN_LIBRARY": str(bogus)})
    assert r.returncode != 0
    assert "ImportError" in r.stderr and str(bogus) in r.stderr


def copy_package(tmp_path):
    """A copy of the package alone, with no library next to it."""
    dest = tmp_path / "site"
    shutil.copytree(os.path.join(PACKAGE_DIR, "agentburn"), str(dest / "agentburn"),
                    ignore=shutil.ignore_patterns("__pycache__", "libagentburn.so*"))
    return dest


def test_without_any_library_the_import_error_lists_every_place_tried(tmp_path):
    site = copy_package(tmp_path)
    code = "import sys; sys.path.insert(0, %r); import agentburn; print(agentburn.library_path)" % (
        str(site),)
    r = run_python(code, env={"AGENTBURN_LIBRARY": None, "LD_LIBRARY_PATH": None})
    if r.returncode == 0:
        pytest.skip("a libagentburn is installed on this system: " + r.stdout.strip())
    assert "ImportError" in r.stderr
    for place in ("AGENTBURN_LIBRARY: not set",
                  "next to the package: " + str(site / "agentburn" / "libagentburn.so.1"),
                  'ctypes.util.find_library("agentburn")',
                  "libagentburn.so.1"):
        assert place in r.stderr, place


def test_a_library_next_to_the_package_is_found(tmp_path):
    real = os.environ.get("AGENTBURN_LIBRARY") or agentburn.library_path
    if not os.path.exists(real):
        pytest.skip("the library's file is not known")
    site = copy_package(tmp_path)
    os.symlink(os.path.realpath(real), str(site / "agentburn" / "libagentburn.so.1"))
    code = ("import sys; sys.path.insert(0, %r); import agentburn; "
            "print(agentburn.library_path)" % (str(site),))
    r = run_python(code, env={"AGENTBURN_LIBRARY": None})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(site / "agentburn" / "libagentburn.so.1")


def test_an_abi_mismatch_is_refused(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("needs a C compiler to build a library of another ABI")
    src = tmp_path / "abi2.c"
    src.write_text("int ab_abi_version(void) { return 2; }\n")
    lib = tmp_path / "libagentburn.so.2"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    r = run_python("import agentburn", env={"AGENTBURN_LIBRARY": str(lib)})
    assert r.returncode != 0
    assert "ImportError" in r.stderr
    assert "ABI version 2" in r.stderr and "written for ABI 1" in r.stderr

