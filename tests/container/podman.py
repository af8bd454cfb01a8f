"""Podman as it works on these CI machines (/work/shared/design/containers-here.md): the runc
runtime, a ``containers.conf`` with ``default_ulimits = []``, host networking, and a base
image built from Debian packages (no registry is reachable), kept between runs."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

__all__ = [
    "BASE_PACKAGES",
    "Podman",
    "PodmanMissing",
    "base_image_name",
    "find_podman",
    "find_tool",
]

# The base image: Debian bookworm minbase with what the Containerfile needs (python3 -m venv,
# useradd) and the CA certificates pip needs; documentation and locales left out.
BASE_SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "passwd")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_MMDEBSTRAP_OPTIONS = (
    "--variant=minbase",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--include=" + ",".join(BASE_PACKAGES),
    # this machine's trust store, so pip in the build reaches PyPI through its egress proxy
    f"--customize-hook=copy-in {HOST_CA_BUNDLE} /etc/ssl/certs",
)


class PodmanMissing(Exception):
    """What this machine lacks to run the container tests (.ci/run installs it)."""


def find_tool(name: str) -> str:
    """The path of the Debian package ``name``'s command, or ``PodmanMissing`` saying so."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    path = shutil.which(name, path=search)
    if path is None:
        raise PodmanMissing(f"{name} is not installed: apt-get install {name} (.ci/run does)")
    return path


def find_podman() -> tuple[str, str, str]:
    """The paths of podman, runc and mmdebstrap, or ``PodmanMissing`` naming one missing."""
    return find_tool("podman"), find_tool("runc"), find_tool("mmdebstrap")


def base_image_name() -> str:
    """The base image's name, tagged with a digest of its recipe (a changed recipe, a new
    image; an unchanged one is reused from earlier runs)."""
    recipe = "\n".join([BASE_SUITE, *_MMDEBSTRAP_OPTIONS, "ENV PIP_CERT"])
    return f"localhost/marketmeter-ci-base:{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


class Podman:
    """``podman`` with this machine's settings; ``run`` fails with podman's own words."""

    def __init__(self, work: Path) -> None:
        self.podman, self.runc, self.mmdebstrap = find_podman()
        self.work = work
        conf = work / "containers.conf"
        conf.write_text("[containers]\ndefault_ulimits = []\n")
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def run(self, *args: str, check: bool = True, timeout: float = 300) -> str:
        result = subprocess.run(
            [self.podman, "--runtime", self.runc, *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"podman {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result.stdout

    def exists(self, image: str) -> bool:
        result = subprocess.run(
            [self.podman, "image", "exists", image], env=self.env, check=False, timeout=60
        )
        return result.returncode == 0

    def base_image(self) -> str:
        """The Debian base image, built (about 30 s) unless an earlier run left it."""
        name = base_image_name()
        if self.exists(name):
            return name
        tarball = self.work / "base.tar"
        built = subprocess.run(
            [self.mmdebstrap, "--quiet", *_MMDEBSTRAP_OPTIONS, BASE_SUITE, str(tarball)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if built.returncode != 0:
            raise AssertionError(f"mmdebstrap exited {built.returncode}:\n{built.stderr}")
        self.run("import", "--change", f"ENV=PIP_CERT={HOST_CA_BUNDLE}", str(tarball), name)
        tarball.unlink()
        return name
