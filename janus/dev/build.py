"""Building kube-apiserver, kube-controller-manager and etcd from pinned sources.

The project tests against real servers, not fakes, and without Docker. The
servers are Go programs, so the surest way to get exactly the versions
``tools/cluster/go.mod`` pins is to compile them: once, into a cache directory
named after both versions (``<cache>/bin/k8s-v1.37.2-etcd-v3.7.0/``), so a bump
of either pin builds a new set beside the old one. The Go module and build
caches live in the same cache so repeated builds are quick and ``~/go`` stays
untouched.

A first build takes 10-25 minutes. Each binary is written under a temporary
name and renamed into place, so a killed build never leaves a truncated
executable that a later ``up`` would trust; a file lock makes a second
``janus dev build`` wait for the first instead of compiling the same thing.
"""

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from janus.dev.errors import DevClusterError
from janus.dev.locking import exclusive_lock
from janus.dev.processes import log_tail

MODULE_DIR = Path("tools") / "cluster"
"""The Go module that pins the servers, relative to the repository root."""

VERSION_PACKAGES = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
"""Where Kubernetes binaries read the version they report (``/version``, ``--version``)."""


@dataclass(frozen=True)
class Versions:
    """The pinned versions, read from go.mod."""

    kubernetes: str
    etcd: str
    go: str
    """The minimum Go toolchain, from go.mod's ``go`` directive."""

    @property
    def dirname(self) -> str:
        """The cache subdirectory for this pair of versions."""
        return f"k8s-{self.kubernetes}-etcd-{self.etcd}"


@dataclass(frozen=True)
class Binaries:
    """The three server executables of one version set."""

    directory: Path

    @property
    def apiserver(self) -> Path:
        return self.directory / "kube-apiserver"

    @property
    def controller_manager(self) -> Path:
        return self.directory / "kube-controller-manager"

    @property
    def etcd(self) -> Path:
        return self.directory / "etcd"

    def targets(self) -> dict[Path, str]:
        """Each executable and the Go package it is built from (relative to the module)."""
        return {
            self.apiserver: "k8s.io/kubernetes/cmd/kube-apiserver",
            self.controller_manager: "k8s.io/kubernetes/cmd/kube-controller-manager",
            self.etcd: "./etcd",
        }

    def missing(self) -> list[Path]:
        """The executables not built yet."""
        return [path for path in self.targets() if not path.is_file()]


def module_dir(start: Path | None = None) -> Path:
    """Find ``tools/cluster`` by walking up from this package (an editable install)."""
    here = (start or Path(__file__)).resolve()
    for parent in here.parents:
        if (parent / MODULE_DIR / "go.mod").is_file():
            return parent / MODULE_DIR
    raise DevClusterError(
        f"cannot find {MODULE_DIR}/go.mod above {here}; janus dev needs a source checkout "
        "installed with `pip install -e '.[dev]'`"
    )


def read_versions(go_mod: Path) -> Versions:
    """The Kubernetes, etcd and Go versions go.mod requires."""
    text = go_mod.read_text()
    return Versions(
        kubernetes=_required(text, "k8s.io/kubernetes", go_mod),
        etcd=_required(text, "go.etcd.io/etcd/server/v3", go_mod),
        go=_go_directive(text, go_mod),
    )


def binaries(cache: Path, module: Path | None = None) -> Binaries:
    """Where the binaries for the pinned versions are (built or not)."""
    versions = read_versions((module or module_dir()) / "go.mod")
    return Binaries(cache / "bin" / versions.dirname)


def ensure_built(cache: Path, *, echo: Callable[[str], None]) -> Binaries:
    """Build whatever binary is missing; return them all. Safe to run concurrently."""
    module = module_dir()
    versions = read_versions(module / "go.mod")
    bins = Binaries(cache / "bin" / versions.dirname)
    if not bins.missing():
        return bins
    go = _find_go(versions)
    waiting = f"waiting for another build of {versions.dirname} to finish"
    lock = bins.directory.with_name(f"{bins.directory.name}.lock")
    with exclusive_lock(lock, waiting=waiting, echo=echo):
        _remove_leftovers(bins.directory)
        for path in bins.missing():
            _build_one(go, module, path, bins.targets()[path], versions, cache, echo)
    return bins


def ldflags(versions: Versions) -> str:
    """Strip symbols and stamp the version the binaries report."""
    major, minor = versions.kubernetes.removeprefix("v").split(".")[:2]
    stamps = {"gitVersion": versions.kubernetes, "gitMajor": major, "gitMinor": minor}
    sets = [f"-X {pkg}.{key}={value}" for pkg in VERSION_PACKAGES for key, value in stamps.items()]
    return " ".join(["-s", "-w", *sets])


def go_env(cache: Path) -> dict[str, str]:
    """The environment of ``go build``: caches under ``cache``, static binaries."""
    return os.environ | {
        "GOMODCACHE": str(cache / "go" / "mod"),
        "GOCACHE": str(cache / "go" / "build"),
        "GOFLAGS": "-mod=mod",
        "CGO_ENABLED": "0",
    }


def _build_one(
    go: str,
    module: Path,
    target: Path,
    package: str,
    versions: Versions,
    cache: Path,
    echo: Callable[[str], None],
) -> None:
    """Compile ``package`` to a temporary name, then rename it to ``target``."""
    log = cache / "build.log"
    echo(
        f"building {target.name} ({versions.dirname}); up to ~25 min on a cold Go cache; log: {log}"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    argv = [go, "build", "-trimpath", "-ldflags", ldflags(versions), "-o", str(tmp), package]
    started = time.monotonic()
    try:
        _run_logged(argv, module, go_env(cache), log)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    echo(f"built {target} in {time.monotonic() - started:.0f}s")


def _remove_leftovers(directory: Path) -> None:
    """Delete temporary outputs of builds that were killed (we hold the lock: none runs)."""
    for leftover in directory.glob(".*.tmp"):
        leftover.unlink(missing_ok=True)


def _run_logged(argv: list[str], cwd: Path, env: dict[str, str], log: Path) -> None:
    """Run ``argv`` with output appended to ``log``; raise with the log's tail if it fails."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n")
        out.flush()
        result = subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise DevClusterError(
            f"`{' '.join(argv[:2])} ... {argv[-1]}` failed (exit {result.returncode}); "
            f"full log: {log}\n{log_tail(log)}"
        )


def _find_go(versions: Versions) -> str:
    go = shutil.which("go")
    if go is None:
        raise DevClusterError(
            f"`go` is not on PATH; install Go >= {versions.go} (https://go.dev/dl/) "
            "to build the control-plane binaries"
        )
    return go


def _required(text: str, module: str, go_mod: Path) -> str:
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", text, re.MULTILINE)
    if match is None:
        raise DevClusterError(f"{go_mod} does not require {module}; restore it from git")
    return match.group(1)


def _go_directive(text: str, go_mod: Path) -> str:
    match = re.search(r"^go\s+(\d+\.\d+)", text, re.MULTILINE)
    if match is None:
        raise DevClusterError(f"{go_mod} has no `go` directive; restore it from git")
    return match.group(1)
