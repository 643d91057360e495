"""The package's own PEP 517 build backend: it needs nothing but the standard library.

agentburn is pure Python (plus, optionally, a libagentburn.so* copied next to the package),
so a wheel is a zip of the package and its metadata. With no build requirement, pip
installs it offline in any virtual environment, whatever setuptools or wheel it has or
lacks: ``pip install --no-index ./bindings/python`` (with or without
``--no-build-isolation``).

The metadata comes from pyproject.toml's [project] table.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile
from typing import Any, Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "agentburn"
TAG = "py3-none-any"


# --- pyproject.toml ----------------------------------------------------------------------

def _project() -> Dict[str, Any]:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        data = f.read().decode("utf-8")
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        return _parse_project(data)
    return tomllib.loads(data)["project"]


def _parse_project(text: str) -> Dict[str, Any]:
    """The [project] table's `key = "text"` and `key = ["text", ...]` entries: all that
    this package's pyproject.toml uses, for Pythons without tomllib."""
    body = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    if not body:
        raise ValueError("pyproject.toml has no [project] table")
    out: Dict[str, Any] = {}
    for key, value in re.findall(r'^([A-Za-z0-9_-]+)\s*=\s*("[^"\n]*"|\[[^\]]*\])', body.group(1),
                                 re.M):
        if value.startswith("["):
            out[key] = re.findall(r'"([^"\n]*)"', value)
        else:
            out[key] = value[1:-1]
    return out


def _names() -> Tuple[str, str]:
    project = _project()
    return project["name"], project["version"]


def _metadata() -> str:
    project = _project()
    lines = ["Metadata-Version: 2.1", "Name: %s" % project["name"],
             "Version: %s" % project["version"]]
    if project.get("description"):
        lines.append("Summary: %s" % project["description"])
    if project.get("requires-python"):
        lines.append("Requires-Python: %s" % project["requires-python"])
    for classifier in project.get("classifiers", []):
        lines.append("Classifier: %s" % classifier)
    readme = project.get("readme")
    text = ""
    if isinstance(readme, str):
        lines.append("Description-Content-Type: text/markdown")
        with open(os.path.join(ROOT, readme), encoding="utf-8") as f:
            text = f.read()
    return "\n".join(lines) + "\n\n" + text


# --- the files ---------------------------------------------------------------------------

def _package_files() -> List[Tuple[str, str]]:
    """(path in the wheel, path on disk) of every file the package installs: its modules,
    py.typed, and any libagentburn.so* copied next to them (symlinks followed)."""
    here = os.path.join(ROOT, PACKAGE)
    out = []
    for name in sorted(os.listdir(here)):
        path = os.path.join(here, name)
        if not os.path.isfile(path):
            continue
        if name.endswith(".py") or name == "py.typed" or name.startswith("libagentburn.so"):
            out.append(("%s/%s" % (PACKAGE, name), path))
    return out


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _record_line(arcname: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (arcname, digest, len(data))


def _write_wheel(wheel_directory: str, files: List[Tuple[str, bytes]]) -> str:
    name, version = _names()
    dist = name.replace("-", "_")
    info = "%s-%s.dist-info" % (dist, version)
    filename = "%s-%s-%s.whl" % (dist, version, TAG)
    entries = list(files) + [
        ("%s/METADATA" % info, _metadata().encode("utf-8")),
        ("%s/WHEEL" % info, ("Wheel-Version: 1.0\nGenerator: agentburn_build\n"
                             "Root-Is-Purelib: true\nTag: %s\n" % TAG).encode()),
        ("%s/top_level.txt" % info, (PACKAGE + "\n").encode()),
    ]
    record = [_record_line(arcname, data) for arcname, data in entries]
    record.append("%s/RECORD,," % info)
    entries.append(("%s/RECORD" % info, ("\n".join(record) + "\n").encode()))
    path = os.path.join(wheel_directory, filename)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as whl:
        for arcname, data in entries:
            entry = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
            mode = 0o755 if "/libagentburn.so" in arcname else 0o644
            entry.external_attr = (0o100000 | mode) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            whl.writestr(entry, data)
    return filename


# --- PEP 517 and PEP 660 -----------------------------------------------------------------

def get_requires_for_build_wheel(config_settings: Optional[Dict[str, Any]] = None) -> List[str]:
    return []


def get_requires_for_build_sdist(config_settings: Optional[Dict[str, Any]] = None) -> List[str]:
    return []


def get_requires_for_build_editable(config_settings: Optional[Dict[str, Any]] = None
                                    ) -> List[str]:
    return []


def build_wheel(wheel_directory: str, config_settings: Optional[Dict[str, Any]] = None,
                metadata_directory: Optional[str] = None) -> str:
    return _write_wheel(wheel_directory, [(arc, _read(path)) for arc, path in _package_files()])


def build_editable(wheel_directory: str, config_settings: Optional[Dict[str, Any]] = None,
                   metadata_directory: Optional[str] = None) -> str:
    """A wheel holding a .pth file that puts this source folder on sys.path."""
    return _write_wheel(wheel_directory, [("__editable__.agentburn.pth",
                                           (ROOT + "\n").encode("utf-8"))])


def build_sdist(sdist_directory: str, config_settings: Optional[Dict[str, Any]] = None) -> str:
    name, version = _names()
    base = "%s-%s" % (name.replace("-", "_"), version)
    filename = base + ".tar.gz"
    files = [(arc, path) for arc, path in _package_files()
             if not arc.split("/")[-1].startswith("libagentburn.so")]
    files += [("pyproject.toml", os.path.join(ROOT, "pyproject.toml")),
              ("README.md", os.path.join(ROOT, "README.md")),
              ("build_backend/agentburn_build.py", os.path.abspath(__file__))]
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as tar:
        def add(arcname: str, data: bytes) -> None:
            entry = tarfile.TarInfo("%s/%s" % (base, arcname))
            entry.size = len(data)
            entry.mtime = int(time.time())
            entry.mode = 0o644
            tar.addfile(entry, io.BytesIO(data))
        for arcname, path in files:
            add(arcname, _read(path))
        add("PKG-INFO", _metadata().encode("utf-8"))
    return filename
