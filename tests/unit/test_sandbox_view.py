"""ground/sandbox.py's pure builder: the order of the mounts and who runs inside (the attacks on a
real sandbox are tests/security/test_sandbox.py's)."""
import pytest

from ground.sandbox import View, command, mounts


def pairs(args: list[str], *kinds: str) -> list[tuple[str, str]]:
    return [(args[i], args[i + 1]) for i in range(len(args) - 1) if args[i] in kinds]


def test_root_drops_to_the_sandbox_user_before_the_inner_bwrap_takes_its_namespace():
    argv = command("/usr/bin/bwrap", View(cwd="/w"), ["python", "x.py"], (65534, 65534))
    outer_end = argv.index("--")
    drop = argv[outer_end + 1:argv.index("/usr/bin/bwrap", 1)]
    assert drop == ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                    "--bounding-set=-all", "--no-new-privs", "--"]
    inner = argv[argv.index("/usr/bin/bwrap", 1):]
    assert inner[:8] == ["/usr/bin/bwrap", "--unshare-user", "--disable-userns", "--new-session",
                         "--die-with-parent", "--cap-drop", "ALL", "--dev-bind"]
    assert inner[-5:] == ["--chdir", "/w", "--", "python", "x.py"]
    assert "--unshare-pid" in argv[:outer_end] and "--unshare-net" not in argv  # loopback stays reachable
    assert "setpriv" not in command("/usr/bin/bwrap", View(), ["true"], None)   # not root: no drop


def test_mounts_go_closed_host_hidden_then_binds_parents_first():
    view = View(read_only=("/data/storage/p1",), read_write=("/data/storage/p1/runs/r1", "/data/notebooks/ada"),
                hidden=("/data",), host=("/root/py",), closed=("/root", "/tmp/pytest-of-root"))
    args = mounts(view)
    empties = [p for k, p in pairs(args, "--tmpfs")]
    assert empties == ["/tmp", "/root", "/data"]       # closed under /tmp: /tmp is empty already
    order = [p for _, p in pairs(args, "--tmpfs", "--ro-bind", "--bind") if p != "/"]
    assert order == ["/tmp", "/root", "/root/py", "/data", "/data/storage/p1", "/data/notebooks/ada",
                     "/data/storage/p1/runs/r1"]
    made = [p for _, p in pairs(args, "--dir")]
    # parents made 0755 inside the empty /data (bwrap would make them 0700); none inside the p1 bind
    assert made == ["/data/storage", "/data/notebooks"] and args[args.index("--dir") - 2:][:2] == ["--perms", "0755"]


def test_a_step_sees_its_tmp_dir_as_tmp():
    assert ("--bind", "/runs/s/tmp") in pairs(mounts(View(tmp="/runs/s/tmp")), "--bind")
    assert args_after(mounts(View(tmp="/runs/s/tmp")), "/runs/s/tmp") == "/tmp"


def args_after(args: list[str], value: str) -> str:
    return args[args.index(value) + 1]


def test_a_relative_path_is_refused_naming_the_field():
    with pytest.raises(ValueError, match="View.read_only: 'storage/p1' is not allowed; give absolute paths"):
        View(read_only=("storage/p1",))


def test_the_sandbox_user_is_a_setting_and_never_root():
    from ground.settings import SettingsError, load
    assert load({}).sandbox_user == (65534, 65534)
    assert load({"LABCOMMONS_SANDBOX_UID": "1500", "LABCOMMONS_SANDBOX_GID": "1501"}).sandbox_user == (1500, 1501)
    with pytest.raises(SettingsError, match="LABCOMMONS_SANDBOX_UID: 0 is not allowed; give an unprivileged id"):
        load({"LABCOMMONS_SANDBOX_UID": "0"})


def test_without_user_namespaces_for_the_unprivileged_setpriv_execs_the_program_itself(monkeypatch):
    argv = command("/usr/bin/bwrap", View(cwd="/w"), ["python"], (65534, 65534), nested=False)
    assert argv.count("/usr/bin/bwrap") == 1 and argv[-3:] == ["--no-new-privs", "--", "python"]
    assert argv[argv.index("--chdir") + 1] == "/w"
    from ground import bwrap
    monkeypatch.setattr(bwrap, "_probe", lambda path, user, nested: "no user namespaces" if nested else "")
    found, _ = bwrap.find((65534, 65534))
    assert found is not None and not found.nested
    assert bwrap.find(None) == (None, "no user namespaces")   # not root: nothing to fall back on
