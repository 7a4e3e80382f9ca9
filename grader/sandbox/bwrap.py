"""bubblewrap: is it usable here, and the arguments of one sandboxed command (what the child
sees, its namespaces, its identity, a seccomp filter)."""

from __future__ import annotations

import errno
import os
import platform
import shutil
import struct
import subprocess
from collections.abc import Iterable
from pathlib import Path

# Where the scratch copy appears inside the sandbox.
INSIDE = Path("/tmp/submission")
TMP_BYTES = 512 * 1024**2  # the private /tmp (tmpfs: memory)
SHM_BYTES = 256 * 1024**2  # the private /dev/shm
# What the sandbox shows of the host besides the paths it is given: the system, read-only.
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC = (
    "passwd",
    "group",
    "nsswitch.conf",
    "hosts",
    "host.conf",
    "resolv.conf",
    "localtime",
    "timezone",
    "ssl",
    "ca-certificates",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "mime.types",
    "os-release",
    "debian_version",
    "protocols",
    "services",
    "locale.alias",
    "gai.conf",
)


def bwrap_available() -> str | None:
    """bubblewrap's path if it can start a sandbox here (Linux, user namespaces allowed)."""
    path, _ = _probe()
    return path


def bwrap_problem() -> str:
    """Why bubblewrap cannot sandbox here, in one line with the fix ("" if it can)."""
    return _probe()[1]


def _probe() -> tuple[str | None, str]:
    if platform.system() != "Linux":
        return None, f"bubblewrap needs Linux (this is {platform.system()})"
    if os.environ.get("GRADER_NO_BWRAP"):
        return None, "GRADER_NO_BWRAP is set"
    path = shutil.which("bwrap", path=f"{os.environ.get('PATH', '')}:/usr/bin:/bin")
    if path is None:
        return (
            None,
            "bubblewrap is not installed: `sudo apt-get install bubblewrap` (Debian, Ubuntu)",
        )
    probe = subprocess.run(
        [path, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "true"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.returncode == 0:
        return path, ""
    why = (probe.stderr.strip().splitlines() or ["no error message"])[-1]
    hint = (
        "this machine does not let it create user namespaces (a container without privileges, "
        "or `sysctl kernel.apparmor_restrict_unprivileged_userns=0` / "
        "`kernel.unprivileged_userns_clone=1` missing)"
    )
    return None, f"bubblewrap cannot start a sandbox here ({why}): {hint}"


def no_fallocate() -> bytes | None:
    """A seccomp filter (classic BPF) answering fallocate() with EOPNOTSUPP, for bubblewrap's
    `--seccomp`: with FALLOC_FL_KEEP_SIZE one call reserves disk past RLIMIT_FSIZE (2 GiB
    measured here), before any watchdog can look. glibc's posix_fallocate then writes zeros
    instead, within the limit. None on machines it does not know (no filter)."""
    known: dict[str, dict[int, tuple[int, ...]]] = {  # audit arch -> fallocate's numbers
        "x86_64": {0xC000003E: (285, 0x40000000 | 285), 0x40000003: (324,)},
        "aarch64": {0xC00000B7: (47,), 0x40000028: (352,)},
    }  # x86_64 also answers the x32 and i386 calls, aarch64 the 32-bit arm one
    arches = known.get(platform.machine())
    if arches is None:
        return None
    load, jeq, ret = 0x20, 0x15, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_RET|K
    code: list[tuple[int, int, int, int]] = []
    denials: list[int] = []  # instructions whose "true" jump goes to the denial
    for arch, numbers in arches.items():
        code.append((load, 0, 0, 4))  # seccomp_data.arch
        code.append((jeq, 0, 1 + len(numbers), arch))  # not this arch: next block
        code.append((load, 0, 0, 0))  # seccomp_data.nr
        for number in numbers:
            denials.append(len(code))
            code.append((jeq, 0, 0, number))
    code.append((ret, 0, 0, 0x7FFF0000))  # SECCOMP_RET_ALLOW
    deny = len(code)
    code.append((ret, 0, 0, 0x00050000 | errno.EOPNOTSUPP))  # SECCOMP_RET_ERRNO
    for i in denials:
        op, _, jf, k = code[i]
        code[i] = (op, deny - i - 1, jf, k)
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in code)


def visible(paths: Iterable[Path]) -> list[str]:
    """Read-only binds of the system folders, a few files of /etc, and `paths`: the sandbox's
    root is an empty tmpfs, so the host's `/`, `$HOME`, other students, the course repository
    and the grader's outputs are simply not there. The folders on the way to a bound path are
    created empty (0755)."""
    args: list[str] = []
    bound: list[Path] = []
    for top in SYSTEM:
        path = Path(top)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), top]
        elif path.is_dir():
            args += ["--ro-bind", top, top]
            bound.append(path)
    args += ["--perms", "0755", "--dir", "/etc"]
    for name in ETC:
        etc = Path("/etc") / name
        if etc.exists():
            args += ["--ro-bind", str(etc), str(etc)]
    args += ["--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp"]
    args += ["--perms", "1777", "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm"]
    made: set[Path] = {Path("/"), Path("/tmp"), Path("/etc")}
    for path in sorted({p.resolve() for p in paths if p.exists()}):
        if any(path.is_relative_to(b) for b in bound):
            continue
        for parent in reversed(path.parents):
            if parent not in made:
                made.add(parent)
                args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", str(path), str(path)]
        bound.append(path)
    return args


def arguments(bwrap: str, scratch: Path, paths: Iterable[Path], uid: int | None) -> list[str]:
    """bubblewrap's command line up to the sandboxed command: `scratch` bound writable at
    INSIDE (the working directory), `paths` read-only, own network, pid, IPC and UTS
    namespaces, killed with its parent; as `uid` (dropping every capability) when given."""
    args = [bwrap, "--dev", "/dev", "--proc", "/proc", *visible(paths)]
    args += ["--bind", str(scratch), str(INSIDE), "--chdir", str(INSIDE)]
    args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    args += ["--die-with-parent", "--new-session"]
    if uid is None:
        return [*args, "--"]
    # From the system folders only: the sandbox shows those, not the caller's PATH.
    setpriv = shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin")
    if setpriv is None:
        return [*args, "--cap-drop", "ALL", "--"]
    return [
        *args,
        "--",
        setpriv,
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
    ]
