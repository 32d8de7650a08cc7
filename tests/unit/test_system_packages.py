"""ci/system-packages.sh, the step of `make demo` and `make test` that installs Debian
packages: it asks for nothing when all is there, refuses a Java older than 17, goes
through sudo when not root, and names the packages where there is no apt-get.

The script runs for real; only the machine around it is arranged: a PATH with the
ordinary tools, plus stand-ins for `java`, `apt-get` and `sudo` that record how
they were called, so no package is installed by the tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "ci" / "system-packages.sh"
TOOLS = ("sh", "sed", "cat", "id", "mktemp", "rm", "env", "head")


def machine(tmp_path: Path, java_version: str | None, apt: bool, sudo: bool) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found is not None, tool
        (bin_dir / tool).symlink_to(found)
    record = tmp_path / "calls"

    def script(name: str, body: str) -> None:
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)

    if java_version is not None:
        script("java", f"echo 'openjdk version \"{java_version}\" 2024-01-16' >&2\n")
    script("mvn", "exit 0\n")
    if apt:
        script("apt-get", f'echo "apt-get $*" >> {record}\n')
    if sudo:
        script("sudo", f'echo "sudo $*" >> {record}\n"$@"\n')
    return bin_dir


def run(
    bin_dir: Path, *packages: str, as_user: bool = False, script: Path = SCRIPT
) -> subprocess.CompletedProcess[str]:
    command = ["sh", str(script), "make test", *packages]
    if as_user:
        setpriv = shutil.which("setpriv")
        if setpriv is None or os.geteuid() != 0:
            pytest.skip("needs root and setpriv to run the script as another user")
        command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": str(bin_dir), "HOME": "/tmp"},
        check=False,
    )


def calls(tmp_path: Path) -> str:
    path = tmp_path / "calls"
    return path.read_text() if path.exists() else ""


@pytest.mark.parametrize("version", ["17.0.15", "21.0.8", "25"])
def test_nothing_is_asked_when_everything_is_there(tmp_path: Path, version: str) -> None:
    bin_dir = machine(tmp_path, version, apt=True, sudo=True)
    result = run(bin_dir, "default-jre-headless", "maven")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and calls(tmp_path) == ""


@pytest.mark.parametrize("version", ["11.0.2", "1.8.0_392"])
def test_an_old_java_gets_the_distribution_default(tmp_path: Path, version: str) -> None:
    bin_dir = machine(tmp_path, version, apt=True, sudo=False)
    result = run(bin_dir, "default-jre-headless", "maven")
    assert "installing Debian packages default-jre-headless" in result.stdout
    assert "Java 17 or later" in result.stdout
    assert "apt-get install -y -qq --no-install-recommends default-jre-headless" in calls(tmp_path)
    # The stand-in apt-get installed nothing, so the check after it still fails.
    assert result.returncode == 2
    assert "is Java" in result.stdout


def test_without_apt_the_packages_are_named(tmp_path: Path) -> None:
    bin_dir = machine(tmp_path, None, apt=False, sudo=False)
    result = run(bin_dir, "default-jre-headless", "maven", "prometheus")
    assert result.returncode == 2
    assert "default-jre-headless" in result.stdout and "prometheus" in result.stdout
    assert "maven" not in result.stdout.split("(")[0]  # mvn is there
    assert "no apt-get" in result.stdout


def test_not_root_goes_through_sudo() -> None:
    # Another user cannot enter pytest's (root-only) temporary folders: a folder of
    # its own, with a copy of the script, stands in for the checkout.
    where = Path(tempfile.mkdtemp(prefix="system-packages-"))
    try:
        where.chmod(0o777)
        script = where / "system-packages.sh"
        shutil.copy(SCRIPT, script)
        script.chmod(0o755)
        bin_dir = machine(where, "17.0.1", apt=True, sudo=True)
        result = run(bin_dir, "default-jre-headless", "prometheus", as_user=True, script=script)
        assert "through sudo" in result.stdout, result.stdout + result.stderr
        assert "sudo env DEBIAN_FRONTEND=noninteractive apt-get install" in calls(where)
    finally:
        shutil.rmtree(where)
