"""T0: settings are merged (file < local file < environment) and checked before anything starts."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from labkit import settings
from tests.support.env import REPO


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's settings and provision/ names, to add local files to."""
    shutil.copy(REPO / "settings.yaml", tmp_path / "settings.yaml")
    (tmp_path / "provision").mkdir()
    for script in (REPO / "provision").glob("*.sh"):
        (tmp_path / "provision" / script.name).touch()
    return tmp_path


def load(project: Path, env=None, local=None) -> settings.Settings:
    if local is not None:
        (project / "settings.local.yaml").write_text(yaml.safe_dump(local))
    return settings.load(project, env or {})


def error(project: Path, env=None, local=None) -> str:
    with pytest.raises(settings.SettingsError) as info:
        load(project, env, local)
    line = info.value.line()
    assert "\n" not in line and line.startswith("labkit: ") and ". Fix: " in line
    return line


def test_defaults_are_the_lab(project):
    s = load(project)
    assert (s.provider, s.box, s.cpus, s.memory) == ("virtualbox", "ubuntu/xenial64", 2, 2048)
    assert s.master == settings.Node("ubuntu", "192.168.56.10", "master")
    assert s.versions["kubernetes"] == "v1.15.12"
    assert s.bundle_dir == (project / "bundle").resolve()
    assert s.lock_file == (project / "bundle.lock.yaml").resolve()
    assert s.bundle_guest_dir == "/opt/labkit/bundle"


def test_local_file_overrides_and_environment_beats_it(project):
    s = load(project, env={"LABKIT_VM__MEMORY": "4096"}, local={"vm": {"memory": 3072, "cpus": 4}})
    assert s.memory == 4096  # environment wins
    assert s.cpus == 4  # local file
    assert s.data["vm"]["libvirt_driver"] == "kvm"  # untouched keys survive a partial override


def test_environment_reaches_list_items_and_nested_keys(project):
    s = load(project, env={"LABKIT_NODES__0__IP": "192.168.56.20", "LABKIT_BOXES__LIBVIRT": "my/box",
                           "LABKIT_PROVIDER": "libvirt", "LABKIT_PROVISION": "[base, docker]"})
    assert s.master.ip == "192.168.56.20"
    assert s.box == "my/box"
    assert s.data["provision"] == ["base", "docker"]


def test_text_settings_stay_text(project):
    # YAML would read 3.2 as a number; a text setting keeps the characters the user typed.
    assert load(project, env={"LABKIT_VERSIONS__PAUSE": "3.2"}).versions["pause"] == "3.2"


def test_a_local_file_may_replace_the_node_list(project):
    nodes = [{"name": "master", "ip": "192.168.56.10", "role": "master"},
             {"name": "worker-1", "ip": "192.168.56.11", "role": "worker"}]
    s = load(project, local={"nodes": nodes})
    assert [n.name for n in s.nodes] == ["master", "worker-1"]
    assert s.node("worker-1").role == "worker"
    assert s.node(None).name == "master"


@pytest.mark.parametrize("env, expected", [
    ({"LABKIT_VM__CPUS": "1"}, "labkit: vm.cpus = 1 is too few: kubeadm needs at least 2 CPUs (from LABKIT_VM__CPUS). "
                               "Fix: set LABKIT_VM__CPUS=2, or vm.cpus: 2 in settings.local.yaml"),
    ({"LABKIT_VM__MEMORY": "1024"}, "labkit: vm.memory = 1024 MB is too little: kubeadm needs at least 1700 MB "
                                    "(from LABKIT_VM__MEMORY). Fix: set LABKIT_VM__MEMORY=2048, or vm.memory: 2048 in settings.local.yaml"),
    ({"LABKIT_PROVIDER": "vmware"}, "labkit: provider 'vmware' is not supported (from LABKIT_PROVIDER). "
                                    "Fix: use one of: virtualbox, libvirt"),
    ({"LABKIT_NODES__0__IP": "10.0.0.5"}, "labkit: nodes.0.ip 10.0.0.5 is outside VirtualBox's host-only range "
                                          "192.168.56.0/21 (from LABKIT_NODES__0__IP). "
                                          "Fix: pick an address in 192.168.56.2-192.168.63.254, like 192.168.56.10"),
])
def test_invalid_settings_are_rejected_in_one_line_naming_the_source(project, env, expected):
    assert error(project, env=env) == expected


@pytest.mark.parametrize("ip", ["192.168.56.1", "192.168.56.0", "192.168.56.255"])
def test_reserved_addresses_are_rejected(project, ip):
    assert "is reserved" in error(project, env={"LABKIT_NODES__0__IP": ip})


@pytest.mark.parametrize("ip", ["192.168.56.2", "192.168.63.254", "192.168.60.10"])
def test_the_whole_virtualbox_range_is_accepted(project, ip):
    assert load(project, env={"LABKIT_NODES__0__IP": ip}).master.ip == ip


@pytest.mark.parametrize("ip", ["192.168.64.10", "192.168.55.10", "fe80::1", "192.168.56", "not-an-ip"])
def test_addresses_outside_the_range_or_malformed_are_rejected(project, ip):
    line = error(project, env={"LABKIT_NODES__0__IP": ip})
    assert "outside VirtualBox's host-only range" in line or "is not an IPv4 address" in line


def test_a_bad_value_in_the_local_file_names_the_local_file(project):
    line = error(project, local={"vm": {"cpus": 1}})
    assert "(from settings.local.yaml)" in line


@pytest.mark.parametrize("env, fragment", [
    ({"LABKIT_VM__CPUS": "two"}, "LABKIT_VM__CPUS=\"two\": 'vm.cpus' must be a whole number"),
    ({"LABKIT_VM__CPUZ": "4"}, "LABKIT_VM__CPUZ is not a labkit setting"),
    ({"LABKIT_NODES__3__IP": "192.168.56.20"}, "there is no item 3 in 'nodes'"),
    ({"LABKIT_LIMITS__MIN_CPUS": "1"}, "may not change 'limits'"),
    ({"LABKIT_PROVISION": "[base, nothing]"}, "names 'nothing', which has no script provision/nothing.sh"),
    ({"LABKIT_BUNDLE__GUEST_DIR": "opt/bundle"}, "is not an absolute path in the VM"),
    ({"LABKIT_NODES__0__NAME": "Ubuntu_1"}, "is not a valid host name"),
    ({"LABKIT_NODES__0__ROLE": "boss"}, "'boss' is not a role"),
    ({"LABKIT_VM__LIBVIRT_DRIVER": "xen"}, "'xen' is not supported"),
    ({"LABKIT_VM": "{cpus: 4}"}, "LABKIT_VM cannot set all of 'vm' at once. Fix: set one setting at a time, "
                                 "like LABKIT_VM__CPUS=2"),
    ({"LABKIT_BUNDLE": "{dir: x}"}, "LABKIT_BUNDLE cannot set all of 'bundle' at once"),
])
def test_environment_mistakes(project, env, fragment):
    assert fragment in error(project, env=env)


@pytest.mark.parametrize("local, fragment", [
    ({"vm": {"memroy": 4096}}, "unknown setting 'vm.memroy' in settings.local.yaml"),
    ({"vm": {"cpus": "four"}}, "'vm.cpus' in settings.local.yaml must be a whole number"),
    ({"limits": {"min_cpus": 1}}, "may not change 'limits'"),
    ({"nodes": []}, "nodes is empty"),
    ({"nodes": [{"name": "a", "ip": "192.168.56.10", "role": "worker"}]}, "has no node with role master"),
    ({"nodes": [{"name": "a", "ip": "192.168.56.10"}]}, "must have exactly name, ip and role"),
    ({"nodes": [{"name": "a", "ip": "192.168.56.10", "role": "master"},
                {"name": "a", "ip": "192.168.56.11", "role": "worker"}]}, "repeats the name or IP"),
])
def test_local_file_mistakes(project, local, fragment):
    assert fragment in error(project, local=local)


def test_broken_yaml_is_one_line(project):
    (project / "settings.local.yaml").write_text("vm:\n  cpus: [2\n")
    assert "settings.local.yaml line" in error(project)


def test_a_utf16_local_file_is_one_line(project):
    # Notepad's "Unicode" encoding: UTF-16 with a byte-order mark
    (project / "settings.local.yaml").write_bytes(b"\xff\xfe" + "vm:\n  cpus: 4\n".encode("utf-16-le"))
    assert error(project) == "labkit: settings.local.yaml is not UTF-8 text. Fix: save it as UTF-8"


def test_unknown_node_name(project):
    with pytest.raises(settings.SettingsError) as info:
        load(project).node("worker-9")
    assert "there is no node named 'worker-9'" in info.value.line() and "ubuntu" in info.value.line()


def test_unrelated_environment_is_ignored(project):
    assert load(project, env={"PATH": "/bin", "LABKITX": "1", "VAGRANT_HOME": "/x"}).provider == "virtualbox"


# --- workers -------------------------------------------------------------------------------------

def test_workers_follow_the_highest_listed_address(project):
    s = load(project, env={"LABKIT_WORKERS": "2"})
    assert s.nodes == [settings.Node("ubuntu", "192.168.56.10", "master"),
                       settings.Node("worker-1", "192.168.56.11", "worker"),
                       settings.Node("worker-2", "192.168.56.12", "worker")]
    assert [n.name for n in s.workers] == ["worker-1", "worker-2"]


def test_generated_workers_take_the_first_free_names_and_follow_listed_workers(project):
    nodes = [{"name": "m", "ip": "192.168.56.10", "role": "master"},
             {"name": "worker-1", "ip": "192.168.56.30", "role": "worker"}]
    s = load(project, env={"LABKIT_WORKERS": "1"}, local={"nodes": nodes})
    assert s.nodes[-1] == settings.Node("worker-2", "192.168.56.31", "worker")


def test_the_master_keeps_its_taint_only_when_workers_exist(project):
    assert load(project).untaint_master is True  # a single node must run the pods itself
    assert load(project, env={"LABKIT_WORKERS": "1"}).untaint_master is False
    assert load(project, env={"LABKIT_WORKERS": "1", "LABKIT_MASTER_RUNS_PODS": "true"}).untaint_master is True


@pytest.mark.parametrize("env, expected", [
    ({"LABKIT_WORKERS": "-1"}, "labkit: workers = -1 is not a number of workers (from LABKIT_WORKERS). "
                               "Fix: use 0 or more, like LABKIT_WORKERS=2"),
    ({"LABKIT_WORKERS": "3", "LABKIT_NODES__0__IP": "192.168.63.253"},
     "labkit: workers = 3 does not fit: the addresses after 192.168.63.253 leave VirtualBox's host-only range "
     "192.168.56.0/21 (from LABKIT_WORKERS). Fix: use fewer workers, or list the nodes in settings.local.yaml"),
    ({"LABKIT_WORKERS": "250"}, "labkit: workers = 250 would give a worker the reserved address 192.168.56.255 "
                                "(from LABKIT_WORKERS). Fix: use fewer workers, or list the nodes in settings.local.yaml"),
    ({"LABKIT_WORKERS": "many"}, "'workers' must be a whole number"),
])
def test_bad_worker_counts_are_one_line(project, env, expected):
    assert expected in error(project, env=env)


def test_a_worker_count_from_the_local_file_names_it(project):
    assert "(from settings.local.yaml)" in error(project, local={"workers": -2})


def test_a_date_or_a_repeated_key_in_a_settings_file_is_one_line_naming_it(tmp_path, repo):
    import shutil

    shutil.copy(repo / "settings.yaml", tmp_path)
    shutil.copytree(repo / "provision", tmp_path / "provision")
    local = tmp_path / "settings.local.yaml"
    local.write_text("vm:\n  memory: 2024-01-01\n")
    with pytest.raises(settings.SettingsError) as err:
        settings.load(tmp_path, {})
    assert err.value.line() == ("labkit: 'vm.memory' in settings.local.yaml reads as a date (2024-01-01). "
                                'Fix: write a number, or quote it to make it text: "2024-01-01"')
    local.write_text("vm:\n  cpus: 4\n  memory: 4096\n  cpus: 3\n")
    with pytest.raises(settings.SettingsError) as err:
        settings.load(tmp_path, {})
    assert err.value.message == "settings.local.yaml line 4 repeats 'cpus' from line 2"
    local.write_text("")
    with pytest.raises(settings.SettingsError) as err:
        settings.load(tmp_path, {"LABKIT_VM__MEMORY": "2024-01-01"})
    assert err.value.message == "LABKIT_VM__MEMORY=\"2024-01-01\": 'vm.memory' must be a whole number"
    assert settings.load(tmp_path, {"LABKIT_VERSIONS__PAUSE": "2024-01-01"}).versions["pause"] == "2024-01-01"
