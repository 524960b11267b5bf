"""The aarch64 user space of an emulated board, built once into the user's cache.

What a 64-bit Raspberry Pi OS (bookworm) board has after the README's set-up: Debian bookworm arm64 (glibc 2.36,
Python 3.11) and, in the Python's path, the aarch64 wheels of numpy, onnxruntime, ai-edge-litert and ncnn. Route
(measured in shared/arm-emulation.md): `debootstrap --foreign` downloads and verifies the packages, every .deb is then
unpacked host-natively with `dpkg-deb -x` (no emulated dpkg, no chroot, no binfmt_misc), and the host's pip fetches
the wheels for the board's platform. The pip platform list is derived from the unpacked glibc: with fewer tags pip
silently picks old wheels (ai-edge-litert 1.4 instead of 2.x).

Everything is built in a hidden temp folder next to the cache entry and renamed into place when complete, under a
lock; an interrupted or failed build leaves nothing (the next build also removes any temp folder a killed one left).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from ..cache import cache_dir
from ..errors import DeviceError

__all__ = [
    "SUITE",
    "WHEELS",
    "SITE",
    "MARKER",
    "cache_dir",
    "require_tools",
    "debian_mirror",
    "ensure_rootfs",
    "rootfs_info",
    "rootfs_path",
    "locked",
    "rmtree",
]

RECIPE = 1  # bump when the build steps change: a new cache entry is built
SUITE = "bookworm"  # 64-bit Raspberry Pi OS bookworm = Debian bookworm arm64 + Raspberry Pi packages
WHEELS = ("numpy", "onnxruntime", "ai-edge-litert", "ncnn")  # docs/devices.md step 1, what a real board installs
SITE = "opt/sqnxt-edge/site-packages"  # inside the rootfs: the board's venv site-packages
MARKER = "opt/sqnxt-edge/rootfs.json"  # written last: a rootfs without it is not complete
TOOLS = {"qemu-aarch64-static": "qemu-user-static", "debootstrap": "debootstrap", "dpkg-deb": "dpkg"}
HOST_TOOLS = {"qemu-x86_64-static": "qemu-user-static"}  # an x86 class needs no rootfs, only its QEMU
MIRROR_VAR = "SQNXT_EDGE_DEBIAN_MIRROR"
APT = Path("/etc/apt")
Say = Callable[[str], None]


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/local/sbin:/usr/sbin:/sbin")


def require_tools(tools: tuple[str, ...] = tuple(TOOLS)) -> dict[str, str]:
    """Paths of the host tools, or one line saying which Debian packages to install."""
    found = {t: _which(t) for t in tools}
    missing = sorted({{**TOOLS, **HOST_TOOLS}[t] for t, p in found.items() if not p})
    if missing:
        what = "an ARM board" if any(t in TOOLS for t in tools) else "an x86 CPU"
        raise DeviceError(
            f"emulating {what} needs {', '.join(missing)} on this machine; install (as root): "
            f"apt-get install -y {' '.join(missing)}"
        )
    return {t: p for t, p in found.items() if p}  # every one is found by now


def _root_prefix() -> list[str]:
    """debootstrap refuses to run unless uid is 0; fakeroot is enough for the download-and-unpack stage."""
    if os.geteuid() == 0:
        return []
    fake = _which("fakeroot")
    if not fake:
        raise DeviceError(
            "building an emulated board runs debootstrap, which needs root: run this once as root, "
            "or install fakeroot (apt-get install -y fakeroot)"
        )
    return [fake]


def _apt_sources() -> list[tuple[str, list[str], str]]:
    """(uri, suites, signed-by) of every `deb` entry in the host's apt sources (deb822 and one-line formats)."""
    entries = []
    folder = APT / "sources.list.d"
    for path in sorted(folder.glob("*.sources")) if folder.is_dir() else []:
        for stanza in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.strip() and not line.lstrip().startswith("#") and ":" in line:
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes").lower() != "no":
                for uri in fields.get("uris", "").split():
                    entries.append((uri, fields.get("suites", "").split(), fields.get("signed-by", "")))
    lists = [APT / "sources.list", *(sorted(folder.glob("*.list")) if folder.is_dir() else [])]
    for path in lists:
        if path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                m = re.match(r"\s*deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)", line)
                if m:
                    entries.append((m.group(2), [m.group(3)], m.group(1) or ""))
    return entries


def debian_mirror(override: str | None = None) -> str:
    """The Debian archive this host's apt already uses (never a hard-coded host), or $SQNXT_EDGE_DEBIAN_MIRROR."""
    if override or os.environ.get(MIRROR_VAR):
        return (override or os.environ[MIRROR_VAR]).rstrip("/")
    candidates = [
        (uri, suites)
        for uri, suites, signed in _apt_sources()
        if "security" not in uri and ("debian-archive-keyring" in signed or uri.rstrip("/").endswith("/debian"))
    ]
    for uri, suites in sorted(candidates, key=lambda c: SUITE not in c[1]):
        if any("-" not in s for s in suites):
            return uri.rstrip("/")
    raise DeviceError(
        f"no Debian archive among this machine's apt sources; name one with --mirror URL (or ${MIRROR_VAR})"
    )


def rootfs_path(cache: Path) -> Path:
    """Where this recipe's rootfs lives in `cache` (another recipe, another folder)."""
    recipe = json.dumps({"recipe": RECIPE, "suite": SUITE, "wheels": WHEELS}, sort_keys=True)
    return cache / f"rootfs-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def rootfs_info(root: Path) -> dict | None:
    """The complete rootfs's record (versions, build time), or None when `root` is missing or half-built."""
    try:
        return json.loads((root / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def rmtree(path: Path) -> None:
    """Delete a folder whatever its modes (an unpacked rootfs has read-only folders when not built as root)."""

    def writable(func, name, _exc):
        try:
            os.chmod(os.path.dirname(name), 0o700)
            os.chmod(name, 0o700)
            func(name)
        except OSError:
            pass

    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, onerror=writable)


@contextmanager
def locked(cache: Path):
    """One change at a time per cache; whoever holds the lock deletes the temp folders a killed build left."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            for stale in [*cache.glob(".rootfs-*"), *cache.glob("boards/.*")]:
                rmtree(stale)
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(argv: list[str], what: str, timeout: float, log: Path | None = None, **kw) -> str:
    try:
        res = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace", timeout=timeout, **kw
        )
    except subprocess.TimeoutExpired:
        raise DeviceError(f"{what} timed out after {timeout:.0f} s") from None
    if res.returncode != 0:
        text = (log.read_text(errors="replace") if log and log.is_file() else "") + res.stderr + res.stdout
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        why = next(
            (ln for ln in reversed(lines) if ln.startswith(("E:", "ERROR", "error"))), lines[-1] if lines else ""
        )
        raise DeviceError(f"{what} failed (exit {res.returncode}): {why[:300]}")
    return res.stdout


def _debootstrap(root: Path, mirror: str, timeout: float) -> None:
    argv = [
        *_root_prefix(),
        require_tools(("debootstrap",))["debootstrap"],
        "--arch=arm64",
        "--foreign",
        "--variant=minbase",
        "--include=python3",
        SUITE,
        str(root),
        mirror,
    ]
    _run(argv, f"debootstrap of Debian {SUITE} arm64 from {mirror}", timeout, root / "debootstrap" / "debootstrap.log")


def _unpack(root: Path) -> dict[str, str]:
    """Unpack every downloaded .deb (host-native; nothing is configured) and return {package: version}."""
    dpkg_deb = require_tools(("dpkg-deb",))["dpkg-deb"]
    versions = {}
    for deb in sorted((root / "var/cache/apt/archives").glob("*.deb")):
        _run([dpkg_deb, "-x", str(deb), str(root)], f"unpacking {deb.name}", 120)
        name, version, _ = [*deb.name.split("_"), "", ""][:3]
        versions[name] = version.replace("%3a", ":")
        deb.unlink()
    # stage-2 leftovers, device nodes (the host's /dev serves), and what no program reads
    for sub in ("debootstrap", "dev", "usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale"):
        rmtree(root / sub)
    return versions


def _platforms(glibc: str) -> list[str]:
    """Every manylinux tag the board's glibc accepts (pip needs them all to see the newest wheels)."""
    m = re.match(r"(\d+)\.(\d+)", glibc)
    if not m or m.group(1) != "2":
        raise DeviceError(f"cannot read the board's glibc version from {glibc!r}")
    tags = ["manylinux2014_aarch64"] + [f"manylinux_2_{v}_aarch64" for v in range(17, int(m.group(2)) + 1)]
    return [arg for tag in tags for arg in ("--platform", tag)]


def _python_version(root: Path) -> str:
    target = os.readlink(root / "usr/bin/python3") if (root / "usr/bin/python3").is_symlink() else ""
    m = re.fullmatch(r"python(\d+\.\d+)", Path(target).name)
    if not m:
        raise DeviceError(f"the Debian {SUITE} arm64 user space has no python3 (usr/bin/python3 -> {target!r})")
    return m.group(1)


def _wheels(root: Path, python: str, glibc: str, timeout: float) -> dict[str, str]:
    site = root / SITE
    site.mkdir(parents=True)
    argv = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        "--target",
        str(site),
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        python,
        *_platforms(glibc),
        *WHEELS,
    ]
    try:
        _run(argv, f"pip install of the aarch64 wheels ({' '.join(WHEELS)})", timeout)
    except DeviceError as exc:
        if "No module named pip" in str(exc):
            raise DeviceError("building an emulated board needs pip in this Python (python -m ensurepip)") from None
        raise
    found = {}
    for meta in site.glob("*.dist-info/METADATA"):
        head = meta.read_text(encoding="utf-8", errors="replace")[:2000]
        name = re.search(r"^Name: (.+)$", head, re.M)
        version = re.search(r"^Version: (.+)$", head, re.M)
        if name and version:
            found[name.group(1).strip().lower()] = version.group(1).strip()
    missing = [w for w in WHEELS if w not in found]
    if missing:
        raise DeviceError(f"pip installed no aarch64 wheel of {', '.join(missing)} for Python {python}")
    return found


def _byte_compile(root: Path, python: str) -> bool:
    """Compile the board's .py files with this host's Python when it is the same minor version (.pyc files do not
    depend on the CPU), so no emulated run spends minutes compiling the stdlib and the runtimes."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" != python:
        return False
    dirs = [str(root / f"usr/lib/python{python}"), str(root / SITE)]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", *dirs],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=900,
    )
    return True


def ensure_rootfs(
    cache: Path, mirror: str | None = None, rebuild: bool = False, say: Say | None = None, timeout: float = 900.0
) -> Path:
    """The cached rootfs for this recipe, built first when missing (or when `rebuild`). Returns its folder."""
    say = say or (lambda message: None)
    root = rootfs_path(cache)
    if rootfs_info(root) and not rebuild:
        return root
    require_tools()
    mirror = debian_mirror(mirror)
    with locked(cache):
        if rootfs_info(root) and not rebuild:  # built meanwhile by another process
            return root
        started = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=cache))
        try:
            new = tmp / "root"
            say(f"downloading Debian {SUITE} arm64 (debootstrap, {mirror})")
            _debootstrap(new, mirror, timeout)
            say("unpacking the packages (host-native, no emulation)")
            debs = _unpack(new)
            python = _python_version(new)
            say(f"fetching the aarch64 wheels for Python {python}: {', '.join(WHEELS)}")
            wheels = _wheels(new, python, debs.get("libc6", ""), timeout)
            say("byte-compiling the board's Python files")
            compiled = _byte_compile(new, python)
            info = {
                "recipe": RECIPE,
                "suite": SUITE,
                "arch": "arm64",
                "mirror": mirror,
                "python": python,
                "python_package": debs.get(f"python{python}-minimal"),
                "glibc": debs.get("libc6"),
                "wheels": wheels,
                "byte_compiled": compiled,
                "debian_packages": len(debs),
                "built_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "build_seconds": round(time.monotonic() - started, 1),
            }
            (new / MARKER).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
            if root.exists():  # --rebuild: the old one goes only now that the new one is complete
                os.rename(root, tmp / "old")
            os.rename(new, root)
        finally:
            rmtree(tmp)
    return root
