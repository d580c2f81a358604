"""Boards that PlatformIO builds offline, from local copies of their Arduino core and platform.

A board file's `[local]` table says what its build needs besides the registry's packages:
the Arduino core (a folder the user names with --core or an environment variable), the
PlatformIO platform (a folder beside the core, or named by another variable), and local
packages tinysmile makes itself in its cache (never in the core's folder nor the project):

- the system `arm-none-eabi` toolchain, wrapped as a PlatformIO toolchain package (a
  `package.json` and a `bin/` of links);
- placeholder packages the platform asks for on some targets (`tool-jlink`);
- empty archives the link line names and the core's copy lacks (`-larm_cortexM4lf_math`).

`platformio.ini` then names the platform by `file://` (PlatformIO installs a copy into its
own state folder, so nothing is written beside the platform's sources) and the packages by
`symlink://` (used in place).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tinysmile.boards import Board
from tinysmile.device.tflm_lib import cache_dir
from tinysmile.errors import TinysmileError

# Files every Arduino core of this kind has: a folder without them is not the core.
_CORE_MARKERS = ("cores/arduino", "platform.txt")


@dataclass(frozen=True)
class LocalBuild:
    """What platformio.ini needs to build a [local] board offline."""

    core: Path  # the Arduino core, as the user named it
    core_version: str
    platform: str  # file://... or the registry's name
    packages: list[str] = field(default_factory=list)  # platform_packages lines
    lib_dirs: list[Path] = field(default_factory=list)  # -L for the empty archives

    @property
    def offline(self) -> bool:
        return self.platform.startswith("file://")


def is_local(board: Board) -> bool:
    return bool(board.get("local"))


def core_version(core: Path) -> str:
    """The core's version: its PlatformIO package.json's, else the Arduino IDE's folder name
    (packages/SparkFun/hardware/apollo3/1.2.3). Not platform.txt's `version=`: v1.2.3 still
    says 0.1.0 there."""
    try:
        version = str(json.loads((core / "package.json").read_text()).get("version", ""))
    except (OSError, ValueError):
        version = ""
    if re.match(r"\d+\.\d+\.\d+", version):
        return version
    if re.fullmatch(r"\d+\.\d+\.\d+", core.name):
        return core.name
    m = re.search(r"^version=(\S+)", (core / "platform.txt").read_text(), re.MULTILINE)
    return m.group(1) if m else "0.0.0"


def locate_core(board: Board, core_dir: str | Path | None) -> Path:
    """The Arduino core folder for this board, checked: one clear line when it is missing or
    is not the core the board's builder takes."""
    local = board["local"]
    env = local["core_env"]
    given = core_dir or os.environ.get(env)
    if not given:
        raise TinysmileError(
            f"board {board.id} builds offline against SparkFun's Arduino core "
            f"v{local['core_major']}.x: pass --core DIR or set ${env} (its "
            f"{local['core_package']} folder, or an Arduino IDE install's "
            f"packages/SparkFun/hardware/apollo3/<version>)"
        )
    core = Path(given).expanduser().resolve()
    if not core.is_dir():
        raise TinysmileError(f"--core {given}: no such folder (board {board.id})")
    missing = [m for m in _CORE_MARKERS if not (core / m).exists()]
    variant = core / "variants" / local["variant"]
    if missing or not variant.is_dir():
        what = ", ".join(missing) if missing else f"variants/{local['variant']}"
        raise TinysmileError(
            f"--core {given} is not an Arduino core for board {board.id} (no {what}): name "
            f"the folder holding cores/, variants/ and platform.txt"
        )
    version = core_version(core)
    if not version.split(".")[0] == str(local["core_major"]):
        raise TinysmileError(
            f"--core {given} is version {version}; board {board.id} builds with core "
            f"v{local['core_major']}.x"
        )
    return core


def locate_platform(board: Board, core: Path) -> str:
    """file://FOLDER of the platform (its variable, else beside the core), else its name."""
    local = board["local"]
    given = os.environ.get(local["platform_env"])
    candidates = [Path(given)] if given else []
    candidates.append(core.parent / local["platform_folder"])
    for c in candidates:
        if (c / "platform.json").is_file():
            return f"file://{c.resolve()}"
    if given:
        raise TinysmileError(f"${local['platform_env']}={given}: no platform.json there")
    return board.platformio["platform"]


def _write_package(folder: Path, manifest: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(manifest, indent=2) + "\n"
    path = folder / "package.json"
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def _gcc_version(gcc: str) -> str:
    out = subprocess.run([gcc, "-dumpversion"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or "0.0.0"


def _toolchain(root: Path, name: str) -> Path:
    """The system arm-none-eabi toolchain as a PlatformIO package (links, not copies)."""
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        raise TinysmileError(
            "no arm-none-eabi-gcc on PATH: install the system toolchain (Debian: "
            "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib)"
        )
    bindir = Path(gcc).resolve().parent
    folder = root / name
    (folder / "bin").mkdir(parents=True, exist_ok=True)
    for tool in sorted(bindir.glob("arm-none-eabi-*")):
        link = folder / "bin" / tool.name
        if not (link.is_symlink() and link.resolve() == tool.resolve()):
            link.unlink(missing_ok=True)
            link.symlink_to(tool)
    major, minor, patch = (_gcc_version(gcc).split(".") + ["0", "0"])[:3]
    # PlatformIO numbers its gcc packages 1.MMmmpp.0 (gcc 12.2.1: 1.120201.0).
    version = f"1.{int(major):02d}{int(minor):02d}{int(patch):02d}.0"
    _write_package(
        folder,
        {"name": name, "version": version, "system": "*", "description": f"system {gcc}"},
    )
    return folder


def _placeholder(root: Path, name: str) -> Path:
    folder = root / name
    _write_package(
        folder,
        {
            "name": name,
            "version": "0.0.0",
            "system": "*",
            "description": "placeholder written by tinysmile: uploads use the core's scripts",
        },
    )
    return folder


def _empty_archives(root: Path, names: list[str]) -> Path:
    folder = root / "lib"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        archive = folder / f"lib{name}.a"
        if not archive.is_file():
            tmp = archive.with_name(f".{archive.name}.{os.getpid()}")
            # An empty archive is its magic string alone (what `ar rcs` writes for no members).
            tmp.write_bytes(b"!<arch>\n")
            tmp.rename(archive)
    return folder


def _core_package(root: Path, name: str, core: Path, version: str) -> Path:
    """The core itself when it is a PlatformIO package; else (an Arduino IDE install) a
    package folder in the cache whose entries link to the core's."""
    try:
        manifest = json.loads((core / "package.json").read_text())
    except (OSError, ValueError):
        manifest = {}
    if manifest.get("name") == name:
        return core
    import hashlib

    folder = root / f"{name}-{hashlib.sha256(str(core).encode()).hexdigest()[:12]}"
    folder.mkdir(parents=True, exist_ok=True)
    for entry in sorted(core.iterdir()):
        link = folder / entry.name
        if not link.is_symlink():
            link.symlink_to(entry)
    _write_package(folder, {"name": name, "version": version, "system": "*"})
    return folder


def prepare(board: Board, core_dir: str | Path | None) -> LocalBuild:
    """Check the core, find the platform, write the local packages into the cache."""
    local = board["local"]
    core = locate_core(board, core_dir)
    version = core_version(core)
    root = cache_dir() / "pio-local"
    toolchain = _toolchain(root, local["toolchain_package"])
    packages = [
        f"{local['core_package']}@symlink://{_core_package(root, local['core_package'], core, version)}",
        f"{local['toolchain_package']}@symlink://{toolchain}",
    ]
    packages += [f"{n}@symlink://{_placeholder(root, n)}" for n in local["placeholder_packages"]]
    lib_dirs = [_empty_archives(root, list(local["empty_archives"]))]
    return LocalBuild(core, version, locate_platform(board, core), packages, lib_dirs)
