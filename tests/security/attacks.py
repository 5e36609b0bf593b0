"""What a hostile notebook or step tries from inside its sandbox, as a program: it prints one JSON
object of what each attempt gave, for the tests to assert that every one failed and nothing leaked.

    python attacks.py '{"data_dir": ..., "storage": ..., "foreign": ..., "host_pids": [...], "marker": ...}'
"""
import ctypes
import json
import os
import subprocess
import sys

PTRACE_ATTACH = 16


def sh(command: str) -> dict:
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30)
    return {"code": done.returncode, "out": done.stdout, "err": done.stderr}


def ptrace(pid: int) -> int:
    """0 when attached (and detached again), else the errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(PTRACE_ATTACH, pid, 0, 0) == 0:
        libc.ptrace(17, pid, 0, 0)  # PTRACE_DETACH
        return 0
    return ctypes.get_errno()


def signal0(pid: int) -> str:
    try:
        os.kill(pid, 0)
        return "delivered"
    except OSError as error:
        return error.__class__.__name__


def processes() -> dict:
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            found[pid] = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            pass
    return found


def main(given: dict) -> dict:
    data, marker = given["data_dir"], given["marker"]
    tries = {
        "umount_data": sh(f"umount -l {data}"), "umount_tmp": sh("umount -l /tmp"),
        "umount_storage": sh(f"umount -l {given['storage']}"),
        "remount": sh("mount -o remount,rw /"), "remount_data": sh(f"mount -o remount,rw {data}"),
        "write_host": sh(f"echo escaped > {marker}"),
        "unshare": sh("unshare -U true"), "unshare_root": sh("unshare -Ur true"),
        "unshare_mount": sh(f"unshare -Urm sh -c 'umount -l {data} && cat {data}/secret.key'"),
        "secret": sh(f"cat {data}/secret.key {data}/admin.token {data}/hub/crypt-key"),
        "foreign": sh(f"cat {given['foreign']}"),
    }
    status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
    seen = {
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
        "caps": {k: status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")},
        "no_new_privs": status.get("NoNewPrivs", "").strip(),
        "data_dir": sorted(os.listdir(data)), "storage": sorted(os.listdir(given["storage"])),
        "processes": processes(), "environment": dict(os.environ),
        "ptrace": {pid: ptrace(pid) for pid in [1, *given["host_pids"]]},
        # the sandbox's own bubblewraps (its init, and the inner one outside its user namespace)
        "ptrace_bwrap": {pid: ptrace(int(pid)) for pid, cmd in processes().items() if "bwrap" in cmd.split(" ")[0]},
        "kill": {pid: signal0(pid) for pid in given["host_pids"]},
    }
    return {"tries": tries, "seen": seen}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
