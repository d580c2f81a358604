"""PlatformIO without its registry: give it the core package tool-scons from PyPI's scons.

PlatformIO needs `tool-scons` (a version range in platformio.dependencies) and installs it
from its registry on first use. Offline that fails (after a 60 s timeout), so this step
builds the package folder itself: `$PLATFORMIO_CORE_DIR/packages/tool-scons/` holding the
SCons package, a `scons.py` entry, a `package.json`, and a `.piopm` whose spec names owner
`platformio` (without that owner PlatformIO does not recognise the package as its own).
Idempotent; on a machine that reaches the registry it does nothing.

    python -m tinysmile.device.pio --ensure-scons
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from tinysmile.errors import TinysmileError
from tinysmile.resources import boards_dir


class Project(Protocol):
    """What building needs of a generated project (tinysmile.device.project.Project, which
    imports this module: the dependency runs one way, project -> pio)."""

    dir: Path
    board: Any
    budget: Any
    stack_bytes: int

    @property
    def elf(self) -> Path: ...


REGISTRY_HOST = "api.registry.platformio.org"
ENV_NAME = "tinysmile"  # the one [env:...] of every generated project
PACKAGE = "tool-scons"

_SCONS_PY = """#!/usr/bin/env python
# Written by tinysmile: PlatformIO's tool-scons entry point, from PyPI's scons.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from SCons.Script.Main import main  # noqa: E402

if __name__ == "__main__":
    main()
"""


def core_dir() -> Path:
    d = os.environ.get("PLATFORMIO_CORE_DIR")
    return Path(d) if d else Path.home() / ".platformio"


def package_dir() -> Path:
    return core_dir() / "packages" / PACKAGE


def required_range() -> str:
    from platformio.dependencies import get_core_dependencies

    return get_core_dependencies()[PACKAGE]


def pio_version_of(scons_version: str) -> str:
    """PlatformIO's tool-scons numbering: SCons 4.11.1 is 4.41101.0 (major.MmmPP.0)."""
    major, minor, patch = (int(v) for v in (scons_version.split(".") + ["0", "0"])[:3])
    return f"{major}.{major}{minor:02d}{patch:02d}.0"


def scons_version_for(requirement: str) -> str:
    """The SCons release a tool-scons range such as "~4.41101.0" asks for."""
    base = requirement.lstrip("~^=<>! ")
    major, packed = base.split(".")[:2]
    packed = packed[len(major) :]
    return f"{int(major)}.{int(packed[:2])}.{int(packed[2:4])}"


def satisfies(version: str, requirement: str) -> bool:
    import semantic_version

    return semantic_version.Version(version) in semantic_version.SimpleSpec(requirement)


def installed_version() -> str | None:
    """The tool-scons version PlatformIO will accept as installed, else None."""
    pdir = package_dir()
    try:
        meta = json.loads((pdir / ".piopm").read_text())
        manifest = json.loads((pdir / "package.json").read_text())
    except (OSError, ValueError):
        return None
    spec = meta.get("spec") or {}
    if spec.get("owner") != "platformio" or spec.get("name") != PACKAGE:
        return None
    if not (pdir / "scons.py").is_file() or not (pdir / "SCons").is_dir():
        return None
    version = manifest.get("version") or ""
    return version if satisfies(version, required_range()) else None


def registry_reachable(timeout: float = 3.0) -> bool:
    """Whether PlatformIO's registry answers; bounded even when DNS itself hangs (name
    resolution has no timeout of its own, so it runs in a daemon thread)."""
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((REGISTRY_HOST, 443), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 1.0)
    return bool(result and result[0])


# What PlatformIO prints when it cannot reach its registry or a download server.
_OFFLINE_SIGNS = (
    "api.registry.platformio.org",
    "HTTPClientError",
    "Could not resolve host",
    "NameResolutionError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "InternetConnectionError",
    "You are not connected to the Internet",
)


def looks_offline(log_text: str) -> bool:
    return any(sign in log_text for sign in _OFFLINE_SIGNS)


def platform_installed(platform: str) -> bool:
    """Whether PlatformIO already holds the platform (then a build needs no registry for
    it; its toolchain and framework packages are installed with it by `pio run`)."""
    return (core_dir() / "platforms" / platform / "platform.json").is_file()


def project_option(ini: Path, env: str, option: str) -> list[str]:
    """An option of a generated platformio.ini, read by PlatformIO's own parser."""
    from platformio.project.config import ProjectConfig

    cfg = ProjectConfig(str(ini), parse_extra=False)
    value = cfg.get(f"env:{env}", option, [])
    return [value] if isinstance(value, str) else list(value or [])


def offline_message(board_id: str, pio: dict[str, str], lib_deps: list[str]) -> str:
    libs = f" and the libraries {', '.join(lib_deps)}" if lib_deps else ""
    return (
        f"PlatformIO cannot reach its registry ({REGISTRY_HOST}) to install the "
        f"{pio['platform']} platform, its toolchain and the {pio.get('framework') or 'bare'} "
        f"framework{libs} that {board_id} needs. Either run `pio run` in this project once on "
        f"a networked machine (PlatformIO keeps everything in {core_dir()}, which can then be "
        f"copied here), or pre-install the platform with `pio pkg install -g -p "
        f"{pio['platform']}` (and the libraries with `pio pkg install -g -l ...`) where the "
        "registry is reachable."
    )


def _scons_source(want: str) -> Path:
    """A folder holding the SCons package of release `want`: the one installed in this
    Python if it matches, else one fetched with pip (PyPI stays reachable offline)."""
    try:
        import SCons

        if SCons.__version__ == want:
            return Path(SCons.__file__).resolve().parent
    except ImportError:
        pass
    target = Path(tempfile.mkdtemp(prefix="tinysmile-scons-"))
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--target",
        str(target),
        f"scons=={want}",
    ]
    if subprocess.run(cmd, timeout=300, check=False).returncode != 0:
        raise TinysmileError(f"could not fetch scons=={want} from PyPI for PlatformIO")
    return target / "SCons"


def ensure_scons(force: bool = False, check_network: bool = True) -> str:
    """Make tool-scons available to PlatformIO; returns what was done, in one line."""
    have = installed_version()
    if have and not force:
        return f"{PACKAGE} {have} already installed in {package_dir()}"
    if check_network and not force and registry_reachable():
        return f"PlatformIO registry reachable: PlatformIO installs {PACKAGE} itself"
    requirement = required_range()
    want = scons_version_for(requirement)
    version = pio_version_of(want)
    if not satisfies(version, requirement):
        raise TinysmileError(f"cannot map {PACKAGE} {requirement} to an SCons release")
    src = _scons_source(want)
    pdir = package_dir()
    # Build beside the final folder and rename: a half-written package never looks installed.
    tmp = pdir.with_name(f".{PACKAGE}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copytree(src, tmp / "SCons", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp / "scons.py").write_text(_SCONS_PY)
    manifest = {
        "name": PACKAGE,
        "version": version,
        "description": f"SCons {want} from PyPI, installed by tinysmile for offline builds",
        "system": "*",
    }
    (tmp / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    piopm = {
        "type": "tool",
        "name": PACKAGE,
        "version": version,
        "spec": {
            "owner": "platformio",
            "id": None,
            "name": PACKAGE,
            "requirements": None,
            "uri": None,
        },
    }
    (tmp / ".piopm").write_text(json.dumps(piopm) + "\n")
    shutil.rmtree(pdir, ignore_errors=True)
    tmp.rename(pdir)
    return f"installed {PACKAGE} {version} (SCons {want}) into {pdir}"


def _pio_env() -> dict[str, str]:
    env = dict(os.environ)
    # No update checks or telemetry: offline machines would wait on them.
    env.setdefault("PLATFORMIO_SETTING_ENABLE_TELEMETRY", "No")
    env.setdefault("PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL", "3650")
    env.setdefault("PLATFORMIO_SETTING_CHECK_PRUNE_SYSTEM_THRESHOLD", "0")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_pio(
    project: Project,
    target: str | None = None,
    timeout: float = 900.0,
    log: Path | None = None,
    upload_port: str | None = None,
) -> None:
    """`pio run` (optionally -t target) in the project; the log goes to pio-<target>.log.

    A board whose platform PlatformIO does not hold yet needs the registry: when that is
    out of reach the error says so, and what to do, instead of PlatformIO's timeouts."""
    ensure_scons()
    settings = project.board.get("platformio", {})
    platform = settings.get("platform", "")
    # A platform under boards/, or one named by file:// (a board's [local] folders), needs no
    # registry.
    local = project_option(project.dir / "platformio.ini", ENV_NAME, "platform")
    remote = not (boards_dir() / platform).is_dir() and not (
        local and local[0].startswith(("file://", "symlink://"))
    )
    offline = offline_message(
        project.board.id,
        settings,
        project_option(project.dir / "platformio.ini", ENV_NAME, "lib_deps") if remote else [],
    )
    if remote and not platform_installed(platform) and not registry_reachable():
        raise TinysmileError(offline)
    cmd = [sys.executable, "-m", "platformio", "run", "-d", str(project.dir), "-e", ENV_NAME]
    if target:
        cmd += ["-t", target]
    if upload_port:
        cmd += ["--upload-port", upload_port]
    log = log or project.dir / f"pio-{target or 'build'}.log"
    # A local platform is installed into PlatformIO's shared core folder as a link to this
    # checkout's boards/; another checkout on the same machine relinking it at that moment
    # makes this run see no platform. That is a race, not an error: run again (bounded).
    for attempt in range(3):
        try:
            with open(log, "wb") as fh:
                proc = subprocess.run(
                    cmd,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    env=_pio_env(),
                    timeout=timeout,
                    stdin=subprocess.DEVNULL,
                    check=False,
                )
        except subprocess.TimeoutExpired:
            raise TinysmileError(f"`pio run` took over {timeout:.0f} s; log: {log}") from None
        text = log.read_text(errors="replace") if proc.returncode != 0 else ""
        if remote or "UnknownPlatform" not in text or attempt == 2:
            break
        time.sleep(1.0 + attempt)
    if proc.returncode != 0:
        if remote and looks_offline(text):
            raise TinysmileError(f"{offline} (log: {log})")
        overflow = [ln for ln in text.splitlines() if "overflowed by" in ln]
        if overflow:
            raise TinysmileError(
                f"the firmware does not fit {project.board.id}: "
                f"{overflow[0].split(': ')[-1].strip()}; log: {log}"
            )
        tail = [ln for ln in text.splitlines() if ln.strip()][-6:]
        raise TinysmileError(f"`pio run` failed (log: {log}): " + " | ".join(tail))


def elf_sizes(elf: Path) -> dict[str, int]:
    """Section sizes of the firmware (pyelftools ships with PlatformIO)."""
    from elftools.elf.elffile import ELFFile

    sizes: dict[str, int] = {}
    with open(elf, "rb") as fh:
        for sec in ELFFile(fh).iter_sections():
            if sec["sh_flags"] & 0x2:  # SHF_ALLOC: occupies memory on the device
                sizes[sec.name] = sizes.get(sec.name, 0) + int(sec["sh_size"])
    return sizes


def memory_summary(project: Project) -> dict[str, int]:
    """RAM and flash of the built firmware, split the way the bench reports them."""
    s = elf_sizes(project.elf)
    text = s.get(".text", 0) + s.get(".ARM.exidx", 0)
    rodata = s.get(".rodata", 0)
    data = s.get(".data", 0)
    bss = s.get(".bss", 0)
    stack = s.get(".stack", project.stack_bytes)
    return {
        "flash_text": text,
        "flash_rodata": rodata,
        "flash_data_init": data,
        "flash_total": text + rodata + data,
        "ram_data": data,
        "ram_bss": bss,
        "ram_stack": stack,
        "ram_arena": int(project.budget.ram["arena"]),
        "ram_total": data + bss + stack,
        "weights_bytes": int(project.report["weights_bytes"]),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tinysmile.device.pio", description=__doc__)
    ap.add_argument("--ensure-scons", action="store_true", help="install tool-scons if needed")
    ap.add_argument("--force", action="store_true", help="reinstall even if present/online")
    args = ap.parse_args(argv)
    if not args.ensure_scons:
        ap.print_help()
        return 0
    try:
        print(f"setup: {ensure_scons(force=args.force)}")
    except TinysmileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
