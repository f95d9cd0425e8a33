"""T2: provision/ for real in the offline Debian test VM, from the test bundle, twice.

`lab_vm` (tests/t2/conftest.py) made the VM with `invoke vm.up`, which ran the base and docker
steps from a bundle of Debian's own .debs and a docker-archive image (tests/support/provision.py).
The guest has no route to the internet, so any download attempt by a step would have failed it.
Here we prove the cut, check what the steps did, run them again through `invoke vm.provision`
(nothing may change), and check that a broken or incomplete bundle stops a step with one line
before it changes anything.
"""
from __future__ import annotations

import json
import re
import subprocess
import tarfile

import pytest
from tests.support.vm import CHANGED, run_step, sh
from tests.support.vm import SNAPSHOT

pytestmark = pytest.mark.t2


@pytest.fixture(scope="module")
def guest(lab_vm):
    """The node over SSH (labkit's own backend, as the tasks use it)."""
    from labkit.backends import get_backend

    node = lab_vm.settings.master
    ssh = get_backend(f"node:{node.name}", lab_vm.settings, lab_vm.env)
    yield ssh
    ssh.close()


def snapshot(guest) -> str:
    result = sh(guest, SNAPSHOT)
    assert result.ok, result.stderr
    return result.stdout


def bundle_image_tags(settings) -> list[str]:
    tags = []
    for archive in sorted((settings.bundle_dir / "images").glob("*.tar")):
        with tarfile.open(archive) as tar:
            for entry in json.load(tar.extractfile("manifest.json")):
                tags += entry.get("RepoTags") or []
    return tags


def public_address() -> str:
    """Where this machine reaches Debian's mirror (apt works here), else a well-known public address."""
    import socket

    try:
        return socket.gethostbyname("deb.debian.org")
    except OSError:
        return "151.101.2.132"


def test_the_guest_has_only_the_dummy_default_route_and_cannot_reach_the_internet(guest):
    # management network "none": no route out, so provision/base.sh gave the node its last-resort
    # default route (Service IPs need one), through a dummy interface that drops everything.
    routes = sh(guest, "ip -4 route show default; ip -6 route show default; ip -d link show labkit0", sudo=False)
    assert routes.ok, routes.stderr
    lines = routes.stdout.splitlines()
    assert lines[0].split() == ["default", "dev", "labkit0", "scope", "link", "metric", "4242"], routes.stdout
    assert not lines[1].startswith("default") and "dummy" in routes.stdout
    dns = sh(guest, "getent hosts deb.debian.org", sudo=False)
    assert dns.exit_code != 0, f"the guest resolves deb.debian.org: {dns.stdout}"
    # A TCP connection out fails, while the same probe to the host's side of the management
    # network (libvirt's dnsmasq, TCP 53) works: the probe itself is sound.
    probe = "timeout 10 bash -c 'echo >/dev/tcp/{}/{}' && echo open || echo closed"
    outside = sh(guest, probe.format(public_address(), 80), sudo=False)
    assert outside.stdout.strip().endswith("closed"), outside.stdout + outside.stderr
    gateway = sh(guest, "ip -4 -o addr show eth0 | awk '{split($4, a, \"/\"); split(a[1], o, \".\"); "
                        "print o[1]\".\"o[2]\".\"o[3]\".1\"}'", sudo=False).stdout.strip()
    inside = sh(guest, probe.format(gateway, 53), sudo=False)
    assert inside.stdout.strip().endswith("open"), f"control probe to {gateway}:53 failed: {inside.stdout}{inside.stderr}"


def test_first_run_verified_the_bundle_then_installed_from_it(lab_vm):
    out = lab_vm.up_output
    assert "labkit[base]: verified" in out and "base packages against CHECKSUMS" in out
    assert re.search(r"labkit\[base\]: installed \d+ base packages", out)
    assert "labkit[base]: added a last-resort default route via the dummy interface labkit0" in out
    assert "labkit[docker]: verified" in out and "container images against CHECKSUMS" in out
    assert re.search(r"labkit\[docker\]: installed \d+ Docker packages", out)
    for tag in bundle_image_tags(lab_vm.settings):
        assert re.search(rf"labkit\[docker\]: loaded {re.escape(tag)}( |$)", out, re.MULTILINE), tag
    assert out.index("labkit[docker]: verified") < out.index("labkit[docker]: wrote /etc/docker/daemon.json")


def test_the_node_is_ready_for_kubeadm(lab_vm, guest):
    s = lab_vm.settings
    node = s.master
    checks = sh(guest, f"""
        echo "swaps=$(tail -n +2 /proc/swaps | wc -l)"
        echo "fstab_swap=$(awk '!/^[[:space:]]*#/ && $3 == "swap"' /etc/fstab | wc -l)"
        echo "br_netfilter=$(test -d /sys/module/br_netfilter && echo loaded)"
        echo "at_boot=$(cat /etc/modules-load.d/labkit-kubernetes.conf)"
        for k in net.bridge.bridge-nf-call-iptables net.ipv4.ip_forward; do echo "$k=$(sysctl -n $k)"; done
        echo "resolves=$(getent hosts {node.name} | awk '{{print $1; exit}}')"
        echo "loopback_dns=$(grep -cE '^nameserver (127\\.|::1)' /etc/labkit/resolv.conf)"
        echo "nameservers=$(grep -c '^nameserver' /etc/labkit/resolv.conf)"
        echo "docker=$(systemctl is-active docker)"
        echo "cgroup=$(docker info --format '{{{{.CgroupDriver}}}}')"
        echo "version=$(docker version --format '{{{{.Server.Version}}}}')"
    """)
    facts = dict(line.split("=", 1) for line in checks.stdout.splitlines() if "=" in line)
    assert facts["swaps"] == "0" and facts["fstab_swap"] == "0"
    assert facts["br_netfilter"] == "loaded" and facts["at_boot"] == "br_netfilter"
    assert facts["net.bridge.bridge-nf-call-iptables"] == "1" and facts["net.ipv4.ip_forward"] == "1"
    assert facts["resolves"] == node.ip
    assert facts["loopback_dns"] == "0" and int(facts["nameservers"]) >= 1
    assert facts["docker"] == "active"
    daemon = json.loads((s.root / "provision/files/docker-daemon.json").read_text())
    assert f"native.cgroupdriver={facts['cgroup']}" in daemon["exec-opts"]
    assert facts["version"].startswith(s.versions["docker"])
    # The vagrant user reaches the Docker socket without sudo, in a new login (as app.build does).
    images = sh(guest, "docker images --format '{{.Repository}}:{{.Tag}}'", sudo=False)
    assert images.ok, images.stderr
    assert set(bundle_image_tags(s)) <= set(images.stdout.split())
    # Every bundled .deb is installed at its bundled version.
    debs = sorted((s.bundle_dir / "debs").glob("*/*.deb"))
    assert debs
    for deb in debs:
        package, version = (subprocess.run(["dpkg-deb", "-f", str(deb), field], capture_output=True, text=True,
                                           check=True).stdout.strip() for field in ("Package", "Version"))
        got = sh(guest, f"dpkg-query -W -f='${{Version}} ${{Status}}' {package}", sudo=False).stdout
        assert got == f"{version} install ok installed", f"{package}: {got}"


def test_a_second_run_changes_nothing_and_says_why(lab_vm, guest):
    before = snapshot(guest)
    again = lab_vm.invoke("vm.provision", timeout=1200)
    assert again.returncode == 0
    out = again.stdout
    changed = [line for line in out.splitlines() if CHANGED.search(line)]
    assert changed == [], "the second run changed something:\n" + "\n".join(changed)
    skips = re.findall(r"labkit\[(\w+)\]: skip: (.+) \((.+)\)", out)
    assert {step for step, _, _ in skips} == {"base", "docker"}
    assert len(skips) >= 12 and all(reason for _, _, reason in skips)
    assert "already installed" in out and "already present" in out and "already up to date" in out
    assert out.count("done in") == 2
    assert snapshot(guest) == before


def test_a_step_whose_artifacts_are_not_in_the_bundle_fails_clearly(lab_vm, guest):
    before = snapshot(guest)
    # aptrepo: the step that reads the Kubernetes artifacts (kubernetes.sh installs from what it builds)
    result = run_step(guest, lab_vm.settings, "aptrepo", lab_vm.settings.bundle_guest_dir)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "labkit: the bundle has no Kubernetes node binaries (nothing matches k8s/kubernetes-node-linux-*.tar.gz). "
        "Fix: on the laptop run invoke bundle.fetch, then invoke vm.provision"]
    assert snapshot(guest) == before


def test_a_corrupt_artifact_stops_the_step_before_it_changes_anything(lab_vm, guest):
    bundle = lab_vm.settings.bundle_guest_dir
    victim = sorted((lab_vm.settings.bundle_dir / "debs" / "docker").glob("*.deb"))[0].name
    # A copy of the bundle with one byte appended to one .deb, and a node that lacks its Docker
    # configuration: the step must stop at the check, without writing the configuration back.
    prepared = sh(guest, f"rm -rf /tmp/bad && cp -a {bundle} /tmp/bad && printf x >>'/tmp/bad/debs/docker/{victim}' "
                         "&& mv /etc/docker/daemon.json /etc/docker/daemon.json.saved")
    assert prepared.ok, prepared.stderr
    try:
        result = run_step(guest, lab_vm.settings, "docker", "/tmp/bad")
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("labkit: bundle artifact deb-")
        assert f"(debs/docker/{victim}) is corrupt (sha256 mismatch). Fix: on the laptop run invoke bundle.fetch --only deb-" in lines[0]
        assert sh(guest, "test -e /etc/docker/daemon.json").exit_code == 1
    finally:
        sh(guest, "mv /etc/docker/daemon.json.saved /etc/docker/daemon.json; rm -rf /tmp/bad")


def test_provision_repairs_a_corrupt_artifact_in_the_vms_copy_of_the_bundle(lab_vm, guest):
    # libvirt copies the bundle (rsync); `vagrant provision` alone would verify the broken copy again.
    bundle = lab_vm.settings.bundle_guest_dir
    victim = sorted((lab_vm.settings.bundle_dir / "debs" / "base").glob("*.deb"))[0]
    broken = sh(guest, f"printf x >>'{bundle}/debs/base/{victim.name}' && sha256sum '{bundle}/debs/base/{victim.name}'")
    assert broken.ok and broken.stdout.split()[0] != bundle_sha256(victim)
    repaired = lab_vm.invoke("vm.provision", "--step", "base", timeout=1200)
    assert repaired.returncode == 0, repaired.stdout[-2000:] + repaired.stderr
    now = sh(guest, f"sha256sum '{bundle}/debs/base/{victim.name}'").stdout.split()[0]
    assert now == bundle_sha256(victim)


def bundle_sha256(path) -> str:
    from tests.support import testbundle

    return testbundle.sha256(path)


SLOW_PACKAGE = "labkit-t2-slow"


def slow_deb(tmp_path, seconds: int) -> bytes:
    """A real package whose preinst waits until a provisioning script runs (Vagrant's /tmp/vagrant-shell),
    then `seconds` more: while `dpkg -i` runs it, dpkg holds its lock, as unattended-upgrades does on
    ubuntu/xenial64's first boot. (A fixed sleep ran out while vm.provision was still syncing.)"""
    root = tmp_path / SLOW_PACKAGE
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(f"Package: {SLOW_PACKAGE}\nVersion: 1.0\nArchitecture: all\n"
                                             "Maintainer: labkit tests <t2@labkit.invalid>\nDescription: holds the dpkg lock\n")
    (root / "DEBIAN" / "preinst").write_text("#!/bin/sh\ni=0\nwhile ! pgrep -f vagrant-shell >/dev/null && [ $i -lt 900 ]; "
                                             f"do sleep 1; i=$((i + 1)); done\nsleep {seconds}\n")
    (root / "DEBIAN" / "preinst").chmod(0o755)
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(tmp_path / "slow.deb")],
                   check=True, capture_output=True)
    return (tmp_path / "slow.deb").read_bytes()


def test_provision_waits_for_a_package_job_that_holds_the_dpkg_lock(lab_vm, guest, tmp_path):
    put = guest.run("cat >/tmp/labkit-slow.deb", stdin=slow_deb(tmp_path, 60), timeout=60)
    assert put.ok, put.stderr
    # a base package to install again, then a real dpkg run holding the lock until provisioning runs, + 60 s
    prepared = sh(guest, "dpkg -r socat >/dev/null && systemd-run --quiet --unit labkit-t2-dpkg-holder "
                         "dpkg -i /tmp/labkit-slow.deb && sleep 3 && pgrep -x dpkg")
    assert prepared.ok, prepared.stdout + prepared.stderr
    try:
        out = lab_vm.invoke("vm.provision", "--step", "base", timeout=1200)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr
        assert "waiting for the box's own package job to finish: " in out.stdout
        assert re.search(r"the package system is free after \d+s", out.stdout)
        assert "installed 1 base packages" in out.stdout
        after = sh(guest, f"dpkg-query -W -f='${{Status}}' socat {SLOW_PACKAGE}; echo; systemctl is-enabled apt-daily.timer || true")
        assert after.stdout.splitlines()[0] == "install ok installedinstall ok installed"
        assert after.stdout.splitlines()[1] != "masked-runtime"  # masked only for the provisioning run
    finally:
        sh(guest, f"while pgrep -x dpkg >/dev/null; do sleep 1; done; dpkg -r {SLOW_PACKAGE} >/dev/null; "
                  "rm -f /tmp/labkit-slow.deb", timeout=1200)
