"""The system tools the lab runs, and the checks that root and those tools are there."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

from hongbao.lab.errors import LabError

DEBIAN_PACKAGE_OF_TOOL = {
    "ip": "iproute2",
    "sysctl": "procps",
    "sshd": "openssh-server",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root: run as root or with sudo")


def require_tools() -> None:
    missing = [tool for tool in DEBIAN_PACKAGE_OF_TOOL if _find(tool) is None]
    if missing:
        packages = sorted({DEBIAN_PACKAGE_OF_TOOL[tool] for tool in missing})
        raise LabError(
            f"the lab needs {', '.join(missing)}: apt-get install {' '.join(packages)}"
        )


def tool_path(tool: str) -> str:
    path = _find(tool)
    if path is None:
        raise LabError(f"{tool} is missing: apt-get install {DEBIAN_PACKAGE_OF_TOOL[tool]}")
    return path


def run_tool(tool: str, *args: str, stdin: str | None = None, check: bool = True) -> str:
    """Run ``tool`` and return its stdout; a failure raises LabError with its stderr."""
    argv = [tool_path(tool), *args]
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


@functools.cache
def _find(tool: str) -> str | None:
    return shutil.which(tool, path=os.environ.get("PATH", "") + os.pathsep + _SYSTEM_PATH)
