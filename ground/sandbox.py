"""The sandbox of notebook servers and workflow steps: one pure builder of the command that runs a
program with exactly the view of the host it is given, as an unprivileged user without capabilities.

Two bubblewraps, because neither alone holds when the caller is root:
- the outer one runs as the caller and composes the view: the host read-only, /tmp and the hidden
  directories (the data dir) empty, then what the program may read or write bound back at its own
  path. Run by root, it reads every source whatever its parents' modes (a python under /root).
- inside it, setpriv drops to the sandbox uid and gid (no groups, no capabilities, an empty bounding
  set, no_new_privs), and the inner bwrap, unprivileged, takes a user namespace of its own with
  further user namespaces disabled and every capability dropped. Its mounts were made in a more
  privileged namespace, so the kernel locks them: no unmount shows what a tmpfs hides, no remount
  makes the host writable. The program runs under a real unprivileged host uid, so a root-owned
  0600 file (secret.key) stays unreadable even if it were seen; a user namespace mapped to root
  would pass the owner's check.
The outer bwrap's pid namespace holds only the sandbox's processes: none of the host is seen.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

SETPRIV = "setpriv"
# what the outer bwrap shares with the host: the network (the service and the hub are on loopback)
OUTER = ("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent")
INNER = ("--unshare-user", "--disable-userns", "--new-session", "--die-with-parent", "--cap-drop", "ALL")


@dataclass(frozen=True)
class View:
    """What a sandboxed program sees of the host, every path absolute and at its own place, mounted
    in this order: closed (directories the sandbox user cannot pass, such as a 0700 /root: empty
    instead), host (kept visible: the python environment, the checkout), hidden (empty instead: the
    data dir), then read_only and read_write, parents before children. tmp: the host directory
    seen as /tmp (None: an empty one); cwd: where the program starts."""

    read_only: tuple[str, ...] = ()
    read_write: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    host: tuple[str, ...] = ()
    closed: tuple[str, ...] = ()
    tmp: str | None = None
    cwd: str | None = None

    def __post_init__(self):
        for name in ("read_only", "read_write", "hidden", "host", "closed"):
            for path in getattr(self, name):
                if not str(path).startswith("/"):
                    raise ValueError(f"View.{name}: {path!r} is not allowed; give absolute paths")


def command(bwrap: str, view: View, argv: list[str], user: tuple[int, int] | None = None,
            setpriv: str = SETPRIV, nested: bool = True) -> list[str]:
    """The argv that runs argv in the view; as user (uid, gid) when given (the caller is root).
    nested=False leaves out the inner bwrap, for a host that gives no user namespace to an
    unprivileged user (so neither can the program make one): then setpriv execs argv itself."""
    drop = [] if user is None else [setpriv, f"--reuid={user[0]}", f"--regid={user[1]}", "--clear-groups",
                                    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    chdir = ["--chdir", view.cwd] if view.cwd else []
    inner = [bwrap, *INNER, "--dev-bind", "/", "/", *chdir, "--"] if nested else []
    return [bwrap, *OUTER, *mounts(view), *chdir, "--", *drop, *inner, *argv]


def mounts(view: View) -> list[str]:
    """The outer bwrap's mounts, in View's order."""
    args = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    args += ["--bind", view.tmp, "/tmp"] if view.tmp else ["--tmpfs", "/tmp"]
    layout = _Layout(["/tmp"])
    args += layout.empty(p for p in view.closed if not _under(str(p), "/tmp"))  # /tmp is empty already
    args += layout.bind([("--ro-bind", p) for p in view.host])
    args += layout.empty(view.hidden)
    return args + layout.bind([("--ro-bind", p) for p in view.read_only] + [("--bind", p) for p in view.read_write])


class _Layout:
    """Tracks the empty directories (tmpfs) so far, to make a bind's missing parents 0755 inside
    them (bwrap makes them 0700, which the sandbox user could not pass)."""

    def __init__(self, empty: list[str]):
        self.empties, self.made = list(empty), set()

    def empty(self, paths) -> list[str]:
        args = []
        for path in _shallow_first(paths):
            args += self._parents(path, ()) + ["--tmpfs", path]
            self.empties.append(path)
            self.made = {m for m in self.made if not _under(m, path)}
        return args

    def bind(self, binds: list[tuple[str, str]]) -> list[str]:
        binds = sorted(dict.fromkeys((kind, str(path)) for kind, path in binds), key=lambda b: _depth(b[1]))
        targets = [path for _, path in binds]
        args = []
        for kind, path in binds:
            args += self._parents(path, [t for t in targets if t != path]) + [kind, path, path]
        return args

    def _parents(self, path: str, targets) -> list[str]:
        """--dir 0755 for the parents to be made inside an empty directory; none inside another
        bind, where they exist already."""
        args = []
        for parent in map(str, reversed(PurePosixPath(path).parents)):
            inside_empty = any(_under(parent, root) for root in self.empties)
            inside_bind = any(parent == t or _under(parent, t) for t in targets)
            if inside_empty and not inside_bind and parent not in self.made:
                self.made.add(parent)
                args += ["--perms", "0755", "--dir", parent]
        return args


def _under(path: str, root: str) -> bool:
    return path != root and PurePosixPath(path).is_relative_to(root)


def _depth(path: str) -> int:
    return len(PurePosixPath(path).parts)


def _shallow_first(paths) -> list[str]:
    return sorted(dict.fromkeys(str(p) for p in paths), key=_depth)
