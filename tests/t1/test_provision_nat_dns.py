"""T1: the kubelet's resolver list when VirtualBox 7.2's NAT (Linux hosts) hands out only 127.0.0.53:
provision/lib.sh kubelet_resolv, run by the real bash. The node's addresses are `ip -4 -o addr show`'s
fourth column, as provision/base.sh passes them."""
from __future__ import annotations

import subprocess

import pytest

from tests.support.env import REPO

pytestmark = pytest.mark.t1

LIB = REPO / "provision" / "lib.sh"
VIRTUALBOX_NAT = "127.0.0.1/8\n10.0.2.15/24\n192.168.56.10/24"
LIBVIRT_ISOLATED = "127.0.0.1/8\n192.168.124.23/24\n192.168.56.10/24"
RESOLVED_STUB = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n"  # systemd-resolved's stub file


def kubelet_resolv(tmp_path, addresses: str, *contents: str) -> subprocess.CompletedProcess:
    files = []
    for i, text in enumerate(contents):
        f = tmp_path / f"resolv{i}.conf"
        f.write_text(text)
        files.append(str(f))
    return subprocess.run(["bash", "-c", f'source {LIB}; kubelet_resolv "$@"', "_", addresses, *files],
                          capture_output=True, text=True)


def test_only_loopback_on_virtualbox_nat_falls_back_to_its_resolver(tmp_path):
    out = kubelet_resolv(tmp_path, VIRTUALBOX_NAT, RESOLVED_STUB, "nameserver 127.0.0.53\n")
    assert out.returncode == 0, out.stderr
    assert [ln for ln in out.stdout.splitlines() if not ln.startswith("#")] == ["nameserver 10.0.2.3"]


def test_only_loopback_elsewhere_still_fails(tmp_path):
    assert kubelet_resolv(tmp_path, LIBVIRT_ISOLATED, RESOLVED_STUB).returncode == 1
    assert kubelet_resolv(tmp_path, "10.0.20.15/24", RESOLVED_STUB).returncode == 1  # not VirtualBox's 10.0.2.0/24


def test_a_real_nameserver_is_kept_as_it_is(tmp_path):
    out = kubelet_resolv(tmp_path, VIRTUALBOX_NAT, RESOLVED_STUB, "nameserver 192.168.1.1\n")
    assert out.returncode == 0
    assert out.stdout.splitlines()[1:] == ["nameserver 192.168.1.1"]
