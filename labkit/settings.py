"""Load, merge and check settings.yaml; vagrant/settings.rb does the same for the Vagrantfile.

Order: settings.yaml < settings.local.yaml < LABKIT_* environment variables.
The two loaders must agree; tests/t1/test_vagrantfile.py holds them to it.
"""
from __future__ import annotations

import datetime
import ipaddress
import json
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

from labkit.errors import LabkitError

SETTINGS_FILE = "settings.yaml"
LOCAL_FILE = "settings.local.yaml"
ENV_PREFIX = "LABKIT_"
NODE_KEYS = {"name": str, "ip": str, "role": str}
HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class SettingsError(LabkitError):
    pass


@dataclass(frozen=True)
class Node:
    name: str
    ip: str
    role: str


@dataclass(frozen=True)
class Settings:
    """Checked settings. `data` is the merged tree, exactly what the Vagrantfile sees."""

    root: Path
    data: dict

    @property
    def provider(self) -> str:
        return self.data["provider"]

    @property
    def arch(self) -> str:
        """The guest's architecture, amd64 or arm64 (`arch: auto` resolved to the host's)."""
        return self.data["arch"]

    @property
    def box(self) -> str:
        return self.data[boxes_key(self.arch)][self.provider]

    @property
    def cpus(self) -> int:
        return self.data["vm"]["cpus"]

    @property
    def memory(self) -> int:
        return self.data["vm"]["memory"]

    @property
    def nodes(self) -> list[Node]:
        return [Node(**n) for n in self.data["nodes"]]

    @property
    def master(self) -> Node:
        return next(n for n in self.nodes if n.role == "master")

    @property
    def workers(self) -> list[Node]:
        return [n for n in self.nodes if n.role == "worker"]

    @property
    def untaint_master(self) -> bool:
        """Pods may run on the master: always on a single node, with workers only if master_runs_pods."""
        return not self.workers or self.data["master_runs_pods"]

    def node(self, name: str | None) -> Node:
        if name is None:
            return self.master
        for n in self.nodes:
            if n.name == name:
                return n
        known = ", ".join(n.name for n in self.nodes)
        raise SettingsError(f"there is no node named '{name}'", f"use one of: {known}")

    @property
    def bundle_dir(self) -> Path:
        return (self.root / self.data["bundle"]["dir"]).resolve()

    @property
    def bundle_guest_dir(self) -> str:
        return self.data["bundle"]["guest_dir"]

    @property
    def lock_file(self) -> Path:
        return (self.root / self.data["bundle"]["lock"]).resolve()

    @property
    def versions(self) -> dict:
        return self.data["versions"]

    @property
    def network(self) -> dict:
        return self.data["network"]

    @property
    def state_dir(self) -> Path:
        """Laptop-side files labkit writes (kubeconfig, ssh config): git-ignored."""
        return self.root / ".labkit"


def boxes_key(arch: str) -> str:
    """The settings section naming the boxes for this guest architecture (vagrant/settings.rb boxes_key)."""
    return "boxes" if arch == "amd64" else f"{arch}_boxes"


def load(root: Path | str, env: Mapping[str, str] | None = None, host_cpu: str | None = None) -> Settings:
    """`host_cpu`: what `arch: auto` reads (default: this machine's, platform.machine())."""
    root = Path(root)
    env = os.environ if env is None else env
    defaults = _read_yaml(root / SETTINGS_FILE, required=True)
    local = _read_yaml(root / LOCAL_FILE, required=False)
    if "limits" in local:
        raise SettingsError(f"{LOCAL_FILE} may not change 'limits'", "remove the limits section from it")
    data = _merge(defaults, local, path=(), source=LOCAL_FILE)
    for key in sorted(k for k in env if k.startswith(ENV_PREFIX)):
        _apply_env(data, key, env[key])
    _check(data, root, lambda path: _origin(path, env, local), platform.machine() if host_cpu is None else host_cpu)
    return Settings(root=root, data=data)


# --- reading and merging -------------------------------------------------------------------

def _read_yaml(path: Path, required: bool) -> dict:
    import yaml  # lazy: keeps `invoke --list` fast

    if not path.exists():
        if required:
            raise SettingsError(f"{path} is missing", "run labkit from a complete checkout of the project")
        return {}
    try:
        tree = yaml.load(path.read_bytes().decode("utf-8"), Loader=_loader()) or {}
    except UnicodeDecodeError:  # e.g. Notepad's "Unicode" (UTF-16)
        raise SettingsError(f"{path.name} is not UTF-8 text", "save it as UTF-8") from None
    except _Repeated as exc:
        raise SettingsError(f"{path.name} line {exc.line} repeats '{exc.key}' from line {exc.first}",
                            "keep only one of them (YAML would silently use the last)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise SettingsError(f"{path.name}{where} is not valid YAML", "fix the syntax or delete the file") from None
    if not isinstance(tree, dict):
        raise SettingsError(f"{path.name} must be a mapping of settings", f"see {SETTINGS_FILE} for the shape")
    _refuse_dates(tree, (), path.name)
    return tree


class _Date(str):
    """A value YAML reads as a date or time (`memory: 2024-01-01`), kept as its text to name it."""


class _Repeated(Exception):
    def __init__(self, key, first: int, line: int):
        super().__init__(key)
        self.key, self.first, self.line = key, first, line


def _loader():
    """yaml's SafeLoader, refusing repeated keys and keeping dates as _Date (vagrant/settings.rb does the same)."""
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            lines = {}
            for key_node, _ in node.value:
                line = key_node.start_mark.line + 1
                if isinstance(key_node, yaml.ScalarNode) and key_node.value in lines:
                    raise _Repeated(key_node.value, lines[key_node.value], line)
                lines.setdefault(key_node.value, line)
            return super().construct_mapping(node, deep)

    Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: _Date(node.value))
    return Loader


def _refuse_dates(tree: Any, path: tuple, name: str) -> None:
    if isinstance(tree, _Date):
        raise SettingsError(f"'{_dotted(path)}' in {name} reads as a date ({tree})",
                            f"write a number, or quote it to make it text: \"{tree}\"")
    for key, value in tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ():
        _refuse_dates(value, path + (key,), name)


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def _merge(base: Any, over: Any, path: tuple, source: str) -> Any:
    """Deep-merge `over` into a copy of `base`; mappings merge, anything else replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            if key not in base:
                raise SettingsError(f"unknown setting '{_dotted(path + (key,))}' in {source}",
                                    f"check the spelling against {SETTINGS_FILE}")
            out[key] = _merge(base[key], value, path + (key,), source)
        return out
    if path and type(over) is not type(base):
        raise SettingsError(f"'{_dotted(path)}' in {source} must be a {_type_name(base)}, got {_shown(over)}",
                            f"use a value like {_shown(base)}")
    return over


def _shown(value: Any) -> str:
    """A value as both loaders print it (JSON), so their messages are identical."""
    return json.dumps(value)


def _type_name(value: Any) -> str:
    return {dict: "mapping", list: "list", int: "whole number", str: "text", bool: "true/false"}.get(
        type(value), type(value).__name__)


def _apply_env(data: dict, key: str, raw: str) -> None:
    parts = [p.lower() for p in key[len(ENV_PREFIX):].split("__")]
    if parts[0] == "limits":
        raise SettingsError(f"{key} may not change 'limits'", f"unset {key}")
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise SettingsError(f"{key}: there is no item {part} in '{_dotted(parts[:i])}'",
                                    f"use an index below {len(node)}")
            part = int(part)
        elif not isinstance(node, dict) or part not in node:
            raise SettingsError(f"{key} is not a labkit setting", f"unset it, or check the spelling against {SETTINGS_FILE}")
        if last:
            current = node[part]
            if isinstance(current, dict):  # replacing a section would drop the keys it leaves out
                first, example = next(iter(current.items()))
                raise SettingsError(f"{key} cannot set all of '{_dotted(parts)}' at once",
                                    f"set one setting at a time, like {key}__{first.upper()}="
                                    + (example if isinstance(example, str) else _shown(example)))
            value = raw if isinstance(current, str) else _parse_env_value(raw)
            if type(value) is not type(current):
                raise SettingsError(f"{key}={_shown(raw)}: '{_dotted(parts)}' must be a {_type_name(current)}",
                                    f"use a value like {_shown(current)}")
            node[part] = value
        else:
            node = node[part]


def _parse_env_value(raw: str) -> Any:
    import yaml

    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    return raw if isinstance(value, (datetime.date, datetime.datetime)) else value  # a date is its text


def _env_name(path: tuple) -> str:
    return ENV_PREFIX + "__".join(str(p).upper() for p in path)


def _origin(path: tuple, env: Mapping[str, str], local: dict) -> str:
    var = _env_name(path)
    if var in env:
        return var
    node: Any = local
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return SETTINGS_FILE
    return LOCAL_FILE


# --- checking ------------------------------------------------------------------------------

def _check(data: dict, root: Path, origin, host_cpu: str) -> None:
    limits = data["limits"]

    def fail(path: tuple, problem: str, fix: str) -> None:
        raise SettingsError(f"{_dotted(path)} {problem} (from {origin(path)})", fix)

    if data["provider"] not in limits["providers"]:
        fail(("provider",), f"'{data['provider']}' is not supported",
             f"use one of: {', '.join(limits['providers'])}")
    if data["arch"] == "auto":
        cpu = host_cpu.lower()
        if cpu not in limits["host_cpus"]:
            fail(("arch",), f"auto: this computer's CPU '{cpu}' has no guest in the lab",
                 "use an x86-64 or an Apple Silicon (arm64) laptop")
        data["arch"] = limits["host_cpus"][cpu]
    elif data["arch"] not in limits["archs"]:
        fail(("arch",), f"'{data['arch']}' is not supported", f"use auto or one of: {', '.join(limits['archs'])}")
    boxes = boxes_key(data["arch"])
    box = data[boxes].get(data["provider"])
    if not isinstance(box, str) or not box:
        fail((boxes, data["provider"]), "is not set", f"name the Vagrant box for {data['provider']}")
    vm = data["vm"]
    if vm["cpus"] < limits["min_cpus"]:
        fail(("vm", "cpus"), f"= {vm['cpus']} is too few: kubeadm needs at least {limits['min_cpus']} CPUs",
             _set_fix(("vm", "cpus"), limits["min_cpus"]))
    if vm["memory"] < limits["min_memory"]:
        fail(("vm", "memory"), f"= {vm['memory']} MB is too little: kubeadm needs at least {limits['min_memory']} MB",
             _set_fix(("vm", "memory"), 2048))
    for key, allowed in (("libvirt_driver", "libvirt_drivers"), ("libvirt_management_network", "libvirt_management_networks")):
        if vm[key] not in limits[allowed]:
            fail(("vm", key), f"'{vm[key]}' is not supported", f"use one of: {', '.join(limits[allowed])}")
    _check_nodes(data["nodes"], limits, fail)
    _add_workers(data, limits, fail)
    guest = data["bundle"]["guest_dir"]
    if not PurePosixPath(guest).is_absolute():
        fail(("bundle", "guest_dir"), f"'{guest}' is not an absolute path in the VM", "use a path like /opt/labkit/bundle")
    for i, step in enumerate(data["provision"]):
        if not isinstance(step, str) or not (root / "provision" / f"{step}.sh").is_file():
            fail(("provision", i), f"names '{step}', which has no script provision/{step}.sh",
                 "use the names of scripts in provision/")


def _set_fix(path: tuple, value: Any) -> str:
    return f"set {_env_name(path)}={value}, or {_dotted(path)}: {value} in {LOCAL_FILE}"


def _check_nodes(nodes: list, limits: dict, fail) -> None:
    if not nodes:
        fail(("nodes",), "is empty", "list at least one node with role master")
    allowed = ipaddress.ip_network(limits["hostonly_range"])
    seen_names, seen_ips = set(), set()
    for i, node in enumerate(nodes):
        if not isinstance(node, dict) or set(node) != set(NODE_KEYS) or not all(
                isinstance(node[k], t) for k, t in NODE_KEYS.items()):
            fail(("nodes", i), "must have exactly name, ip and role (text)", "see the nodes entry in settings.yaml")
        if not HOSTNAME.match(node["name"]):
            fail(("nodes", i, "name"), f"'{node['name']}' is not a valid host name",
                 "use lower-case letters, digits and '-'")
        if node["role"] not in limits["roles"]:
            fail(("nodes", i, "role"), f"'{node['role']}' is not a role", f"use one of: {', '.join(limits['roles'])}")
        try:
            ip = ipaddress.IPv4Address(node["ip"])
        except ValueError:
            fail(("nodes", i, "ip"), f"'{node['ip']}' is not an IPv4 address", "use an address like 192.168.56.10")
        if ip not in allowed:
            fail(("nodes", i, "ip"), f"{ip} is outside VirtualBox's host-only range {allowed}",
                 "pick an address in 192.168.56.2-192.168.63.254, like 192.168.56.10")
        if ip.packed[-1] in (0, 1, 255):
            fail(("nodes", i, "ip"), f"{ip} is reserved (network, broadcast or the host's own .1 address)",
                 "pick an address ending in 2-254, like 192.168.56.10")
        if node["name"] in seen_names or node["ip"] in seen_ips:
            fail(("nodes", i), f"repeats the name or IP of another node ({node['name']}, {node['ip']})",
                 "give every node its own name and IP")
        seen_names.add(node["name"])
        seen_ips.add(node["ip"])
    if not any(n["role"] == "master" for n in nodes):
        fail(("nodes",), "has no node with role master", "make the first node role: master")


def _add_workers(data: dict, limits: dict, fail) -> None:
    """`workers: N` appends N worker nodes (worker-1, ...: the first free names) on the addresses after the
    highest listed one. Checked before any is added: the range must hold them all, none may be reserved."""
    count, nodes = data["workers"], data["nodes"]
    if count < 0:
        fail(("workers",), f"= {count} is not a number of workers", "use 0 or more, like LABKIT_WORKERS=2")
    allowed = ipaddress.ip_network(limits["hostonly_range"])
    last = max(int(ipaddress.IPv4Address(n["ip"])) for n in nodes)
    if last + count > int(allowed.broadcast_address):
        fail(("workers",), f"= {count} does not fit: the addresses after {ipaddress.IPv4Address(last)} leave "
             f"VirtualBox's host-only range {allowed}", "use fewer workers, or list the nodes in settings.local.yaml")
    names = {n["name"] for n in nodes}
    number = 0
    for ip in (ipaddress.IPv4Address(last + k) for k in range(1, count + 1)):
        if ip.packed[-1] in (0, 1, 255):
            fail(("workers",), f"= {count} would give a worker the reserved address {ip}",
                 "use fewer workers, or list the nodes in settings.local.yaml")
        number += 1
        while f"worker-{number}" in names:
            number += 1
        names.add(f"worker-{number}")
        nodes.append({"name": f"worker-{number}", "ip": str(ip), "role": "worker"})
