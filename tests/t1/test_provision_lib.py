"""provision/lib.sh run for real by bash on this machine: bundle checks, files, packages, filters.

Everything runs against temporary directories; dpkg and apt are only *queried* and *simulated*
(nothing is installed on this machine). The same functions run inside the VM in tests/t2.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.support.env import need, need_binary

pytestmark = pytest.mark.t1

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "provision" / "lib.sh"


def bash(script: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, **(env or {})}
    return subprocess.run(["bash", "-c", f"set -euo pipefail\nsource {LIB}\nlabkit_step=test\n{script}"],
                          env=full, cwd=cwd, capture_output=True, text=True, timeout=60)


def pin(bundle: Path, name: str, rel: str, data: bytes, algo: str = "sha256") -> str:
    f = bundle / rel
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(data)
    line = f"{name} {algo} {hashlib.new(algo, data).hexdigest()} {rel}\n"
    with open(bundle / "CHECKSUMS", "a") as fh:
        fh.write(line)
    return line


@pytest.fixture
def bundle(tmp_path):
    b = tmp_path / "bundle"
    b.mkdir()
    (b / "CHECKSUMS").write_text("")
    pin(b, "docker-ce", "debs/docker/docker-ce.deb", b"engine")
    pin(b, "containerd", "debs/docker/containerd.deb", b"runtime", algo="sha512")
    pin(b, "socat", "debs/base/socat.deb", b"socat")
    return b


def verify(bundle: Path, what: str, pattern: str):
    return bash(f'bundle_verify "{what}" \'{pattern}\'; printf "%s\\n" "${{BUNDLE_FILES[@]}}"; '
                f'for f in "${{BUNDLE_FILES[@]}}"; do echo "name=${{BUNDLE_NAME[$f]}}"; done',
                env={"LABKIT_BUNDLE": str(bundle)})


# --- bundle_verify -----------------------------------------------------------------------------

def test_pinned_artifacts_under_a_prefix_are_verified_and_selected(bundle):
    out = verify(bundle, "Docker packages", "debs/docker/*.deb")
    assert out.returncode == 0, out.stderr
    assert "labkit[test]: verified 2 Docker packages against CHECKSUMS" in out.stdout
    assert f"{bundle}/debs/docker/docker-ce.deb" in out.stdout and f"{bundle}/debs/docker/containerd.deb" in out.stdout
    assert "socat" not in out.stdout  # another prefix
    assert "name=docker-ce" in out.stdout and "name=containerd" in out.stdout


def one_line(out) -> str:
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_a_missing_artifact_is_named_with_the_fix(bundle):
    (bundle / "debs/docker/containerd.deb").unlink()
    assert one_line(verify(bundle, "Docker packages", "debs/docker/*.deb")) == (
        "labkit: bundle artifact containerd (debs/docker/containerd.deb) is missing. "
        "Fix: on the laptop run invoke bundle.fetch --only containerd, then invoke vm.provision")


@pytest.mark.parametrize("victim, algo", [("docker-ce.deb", "sha256"), ("containerd.deb", "sha512")])
def test_a_corrupt_artifact_is_named_with_the_fix(bundle, victim, algo):
    (bundle / "debs/docker" / victim).write_bytes(b"tampered")
    line = one_line(verify(bundle, "Docker packages", "debs/docker/*.deb"))
    assert f"is corrupt ({algo} mismatch)" in line and f"debs/docker/{victim}" in line
    assert "invoke bundle.fetch --only" in line


def test_an_unpinned_file_is_refused(bundle):
    (bundle / "debs/docker/extra.deb").write_bytes(b"who put this here")
    line = one_line(verify(bundle, "Docker packages", "debs/docker/*.deb"))
    assert "debs/docker/extra.deb has no line in CHECKSUMS (unpinned files are refused)" in line


def test_a_prefix_with_no_artifacts_fails_clearly(bundle):
    line = one_line(verify(bundle, "Kubernetes node binaries", "k8s/kubernetes-node-linux-*.tar.gz"))
    assert line == ("labkit: the bundle has no Kubernetes node binaries (nothing matches k8s/kubernetes-node-linux-*.tar.gz). "
                    "Fix: on the laptop run invoke bundle.fetch, then invoke vm.provision")


def test_no_checksums_file_at_all(bundle):
    (bundle / "CHECKSUMS").unlink()
    assert "has no CHECKSUMS file" in one_line(verify(bundle, "Docker packages", "debs/docker/*.deb"))


def test_an_unknown_algorithm_is_not_trusted(bundle):
    with open(bundle / "CHECKSUMS", "a") as fh:
        fh.write(f"old md5 {'0' * 32} debs/base/old.deb\n")
    (bundle / "debs/base/old.deb").write_bytes(b"x")
    assert "pins old with 'md5'" in one_line(verify(bundle, "base packages", "debs/base/*.deb"))


def test_exactly_one_is_enforced_where_a_step_needs_one(bundle):
    out = bash("bundle_verify_one 'Docker packages' 'debs/docker/*.deb'", env={"LABKIT_BUNDLE": str(bundle)})
    assert "has 2 files matching debs/docker/*.deb, expected one" in one_line(out)


def test_each_architecture_takes_only_its_own_files_from_a_bundle_holding_both(bundle):
    """An instructor's bundle holds both architectures: arm64's under arm64/ (provision/lib.sh ARCH_DIR)."""
    pin(bundle, "socat-arm64", "arm64/debs/base/socat_arm64.deb", b"socat for arm64")
    amd64 = verify(bundle, "base packages", "debs/base/*.deb")
    arm64 = verify(bundle, "base packages", "arm64/debs/base/*.deb")
    assert amd64.returncode == arm64.returncode == 0, amd64.stderr + arm64.stderr
    assert "name=socat" in amd64.stdout.split() and "socat-arm64" not in amd64.stdout
    assert [line for line in arm64.stdout.split() if line.startswith("name=")] == ["name=socat-arm64"]


# --- labkit_init, put_file ---------------------------------------------------------------------

STEP_ENV = {"LABKIT_BUNDLE": "/nonexistent", "LABKIT_NODE_NAME": "n", "LABKIT_NODE_IP": "192.168.56.10",
            "LABKIT_NODE_ROLE": "master", "LABKIT_MASTER_IP": "192.168.56.10", "LABKIT_K8S_VERSION": "v1.15.12",
            "LABKIT_DOCKER_VERSION": "18.09.9"}


def test_a_step_refuses_a_guest_of_another_architecture_than_the_settings_say():
    need(os.geteuid() == 0, "labkit_init wants root")
    need_binary("dpkg")
    here = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    other = "arm64" if here == "amd64" else "amd64"
    out = bash("labkit_init base; echo \"dir=[$ARCH_DIR]\"", env={**STEP_ENV, "LABKIT_ARCH": other})
    assert out.returncode == 1
    assert out.stderr.strip() == (f"labkit: this VM is {here} but settings arch is {other}. "
                                  f"Fix: set LABKIT_ARCH={here} (or arch: auto), then invoke vm.provision")
    same = bash("labkit_init base; echo \"dir=[$ARCH_DIR]\"", env={**STEP_ENV, "LABKIT_ARCH": here})
    assert same.returncode == 0, same.stderr
    assert f"dir=[{'' if here == 'amd64' else here + '/'}]" in same.stdout


def fake_tools(tmp_path: Path, cgroup_fs: str) -> dict:
    """stat answering `cgroup_fs` for /sys/fs/cgroup, and an update-grub that records its call."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    real = subprocess.run(["bash", "-c", "type -P stat"], capture_output=True, text=True).stdout.strip()
    (bin_dir / "stat").write_text(f'#!/bin/sh\nif [ "$*" = "-fc %T /sys/fs/cgroup" ]; then echo {cgroup_fs}; '
                                  f'else exec {real} "$@"; fi\n')
    (bin_dir / "update-grub").write_text(f"#!/bin/sh\necho called >>{tmp_path}/update-grub.calls\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_cgroup_v2_gets_the_kernel_argument_for_v1_then_a_reboot_is_asked_for(tmp_path):
    grub = tmp_path / "grub.d/90-labkit-cgroup-v1.cfg"
    run = f'CGROUP_GRUB={grub}; need_cgroup_v1 "Docker 18.09.9"'
    v1 = bash(run, env=fake_tools(tmp_path, "tmpfs"))
    assert v1.returncode == 0 and "skip: cgroup v1 for Docker 18.09.9 (/sys/fs/cgroup is tmpfs)" in v1.stdout
    assert not grub.exists()

    first = bash(run, env=fake_tools(tmp_path, "cgroup2fs"))
    assert first.returncode == 1
    assert first.stderr.strip() == (f"labkit: this guest booted with cgroup v2, which Docker 18.09.9 cannot use; {grub} "
                                    "now asks for v1. Fix: restart the VM to boot with it (invoke vm.halt, then "
                                    "invoke vm.up), which provisions again")
    assert grub.read_text() == 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX systemd.unified_cgroup_hierarchy=0"\n'
    assert (tmp_path / "update-grub.calls").read_text() == "called\n"
    # rebooted, and still v2: the argument did not take; no second update-grub, a different line
    again = bash(run, env=fake_tools(tmp_path, "cgroup2fs"))
    assert again.returncode == 1 and "still boots cgroup v2 although" in again.stderr
    assert (tmp_path / "update-grub.calls").read_text() == "called\n"


def test_a_step_outside_the_vagrantfile_says_what_is_missing():
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")}
    out = subprocess.run(["bash", "-c", f"source {LIB}; labkit_init base"], env=env, capture_output=True, text=True)
    assert out.stderr.strip() == ("labkit: LABKIT_BUNDLE is not set in the provisioner's environment. "
                                  "Fix: run provisioning through the Vagrantfile (invoke vm.provision), which sets it")


def test_put_file_writes_only_when_content_or_mode_differ(tmp_path):
    target = tmp_path / "etc/sysctl.d/90-test.conf"
    script = f'''
      put_file {target} 644 <<<"net.ipv4.ip_forward=1" && echo wrote1 || echo same1
      put_file {target} 644 <<<"net.ipv4.ip_forward=1" && echo wrote2 || echo same2
      chmod 600 {target}
      put_file {target} 644 <<<"net.ipv4.ip_forward=1" && echo wrote3 || echo same3
      put_file {target} 644 <<<"net.ipv4.ip_forward=0" && echo wrote4 || echo same4
    '''
    out = bash(script)
    assert out.stdout.split() == ["wrote1", "same2", "wrote3", "wrote4"], out.stderr
    assert target.read_text() == "net.ipv4.ip_forward=0\n"
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert list(target.parent.iterdir()) == [target]  # no temporary files left behind


# --- hosts and resolv.conf filters -------------------------------------------------------------

VAGRANT_HOSTS = ("127.0.0.1\tlocalhost\n127.0.1.1 ubuntu ubuntu\n\n# The following lines are desirable for IPv6\n"
                 "::1     localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\n")


def hosts(text: str, name="ubuntu", ip="192.168.56.10") -> str:
    out = subprocess.run(["bash", "-c", f"source {LIB}; hosts_filter {name} {ip}"], input=text,
                         capture_output=True, text=True, check=True)
    return out.stdout


def test_hosts_maps_the_node_name_to_the_host_only_address_only():
    fixed = hosts(VAGRANT_HOSTS)
    assert fixed == ("127.0.0.1 localhost\n\n# The following lines are desirable for IPv6\n"
                     "::1 localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\n192.168.56.10 ubuntu\n")
    assert hosts(fixed) == fixed  # idempotent: a second run changes nothing


def test_hosts_keeps_other_names_on_a_shared_loopback_line_and_replaces_an_old_address():
    fixed = hosts("127.0.0.1 localhost ubuntu # added by cloud-init\n192.168.56.10 old-name\n10.0.0.5 ubuntu\n")
    assert fixed == "127.0.0.1 localhost # added by cloud-init\n192.168.56.10 ubuntu\n"


def resolv(tmp_path, *contents):
    files = []
    for i, text in enumerate(contents):
        f = tmp_path / f"resolv{i}.conf"
        f.write_text(text)
        files.append(str(f))
    return subprocess.run(["bash", "-c", f'source {LIB}; resolv_filter "$@"', "_", *files, str(tmp_path / "absent")],
                          capture_output=True, text=True)


def test_resolv_keeps_real_nameservers_and_drops_loopback(tmp_path):
    out = resolv(tmp_path, "nameserver 127.0.1.1\nnameserver 10.0.2.3\nsearch lab.example\noptions edns0\n")
    assert out.returncode == 0
    assert out.stdout.splitlines()[1:] == ["nameserver 10.0.2.3", "search lab.example", "options edns0"]


def test_resolv_falls_back_to_systemd_resolveds_upstream_list(tmp_path):
    out = resolv(tmp_path, "nameserver 127.0.0.53\noptions edns0\n", "nameserver 192.168.121.1\nnameserver ::1\n")
    assert out.returncode == 0
    assert "resolv1.conf" in out.stdout.splitlines()[0]
    assert out.stdout.splitlines()[1:] == ["nameserver 192.168.121.1"]


def test_resolv_with_only_loopback_servers_fails(tmp_path):
    assert resolv(tmp_path, "nameserver 127.0.0.53\n", "nameserver ::1\n").returncode == 1


# --- images --------------------------------------------------------------------------------------

def test_image_tags_reads_a_docker_save_archive(dockerd, tmp_path):
    busybox = need_binary("busybox")
    rootfs = io.BytesIO()
    with tarfile.open(fileobj=rootfs, mode="w") as tar:
        tar.add(busybox, arcname="bin/busybox")
    rootfs.seek(0)
    for tag in ("labkit/tiny:1", "labkit/tiny:latest"):
        subprocess.run(["docker", "--host", dockerd.url, "import", "-", tag], input=rootfs.getvalue(),
                       check=True, capture_output=True)
    archive = tmp_path / "tiny.tar"
    subprocess.run(["docker", "--host", dockerd.url, "save", "-o", str(archive), "labkit/tiny:1", "labkit/tiny:latest"],
                   check=True, capture_output=True)
    out = bash(f"image_tags {archive}")
    assert sorted(out.stdout.split()) == ["labkit/tiny:1", "labkit/tiny:latest"]
    # An archive without tags (saved by image ID) yields none: docker.sh refuses it.
    manifest = [{"Config": "x.json", "RepoTags": None, "Layers": []}]
    untagged = tmp_path / "untagged.tar"
    with tarfile.open(untagged, "w") as tar:
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert bash(f"image_tags {untagged}").stdout == ""


# --- packages (dpkg queried, apt simulated: nothing installed here) ------------------------------

def make_deb(tmp_path: Path, package: str, version: str, depends: str = "") -> Path:
    need_binary("dpkg-deb")
    root = tmp_path / f"{package}-{version}"
    (root / "DEBIAN").mkdir(parents=True)
    control = f"Package: {package}\nVersion: {version}\nArchitecture: all\nMaintainer: labkit <t@example.org>\nDescription: test\n"
    if depends:
        control += f"Depends: {depends}\n"
    (root / "DEBIAN/control").write_text(control)
    deb = tmp_path / f"{package}_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--build", str(root), str(deb)], check=True, capture_output=True)
    return deb


def installed_version(package: str) -> str:
    return subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=True).stdout


def test_deb_needed_compares_with_the_real_dpkg_database(tmp_path):
    have = installed_version("bash")
    lower = make_deb(tmp_path / "l", "bash", "1.0")
    same = make_deb(tmp_path / "s", "bash", have)
    higher = make_deb(tmp_path / "h", "bash", have + "+labkit1")
    absent = make_deb(tmp_path / "a", "labkit-not-installed", "1.0")
    out = bash(f"for d in {lower} {same} {higher} {absent}; do deb_needed $d && echo needed || echo kept; done")
    assert out.stdout.split() == ["kept", "kept", "needed", "needed"], out.stderr


def test_missing_dependencies_stop_before_dpkg_touches_anything(tmp_path):
    need_binary("apt-get")
    app = make_deb(tmp_path, "labkit-test-app", "1.0", depends="labkit-test-lib (>= 2)")
    lib1 = make_deb(tmp_path / "old", "labkit-test-lib", "1.0")
    lib2 = make_deb(tmp_path / "new", "labkit-test-lib", "2.0")
    alone = bash(f"deb_simulate {app}")
    assert "labkit-test-app : Depends: labkit-test-lib (>= 2)" in alone.stderr
    assert alone.stderr.strip().splitlines()[-1].startswith(
        "labkit: the bundle's packages cannot be installed on this box: a dependency is missing")
    assert bash(f"deb_simulate {app} {lib1}").returncode == 1  # too old a dependency is no dependency
    ok = bash(f"deb_simulate {app} {lib2}")
    assert ok.returncode == 0, ok.stderr
    assert subprocess.run(["dpkg-query", "-W", "labkit-test-app"], capture_output=True).returncode != 0


def test_a_package_that_would_remove_an_installed_one_is_refused(tmp_path):
    need_binary("apt-get")
    # A non-essential package this machine has (scripts/host-setup installs these).
    victims = [p for p in ("busybox-static", "dnsmasq-base", "shellcheck", "nginx-light")
               if subprocess.run(["dpkg-query", "-W", p], capture_output=True).returncode == 0]
    need(bool(victims), "none of busybox-static, dnsmasq-base, shellcheck, nginx-light is installed")
    rival = make_deb(tmp_path, "labkit-test-rival", "1.0")
    control = tmp_path / "labkit-test-rival-1.0/DEBIAN/control"
    control.write_text(control.read_text() + f"Conflicts: {victims[0]}\n")
    subprocess.run(["dpkg-deb", "--build", str(control.parent.parent), str(rival)], check=True, capture_output=True)
    out = bash(f"deb_simulate {rival}")
    assert f"Remv {victims[0]} " in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith(
        "labkit: installing the bundle's packages would remove packages the box has")
    assert subprocess.run(["dpkg-query", "-W", victims[0]], capture_output=True).returncode == 0


def test_deb_install_waits_for_a_package_job_even_with_nothing_to_install(tmp_path):
    """After a reboot apt-daily is live again: deb_install waits for it before reading what is installed,
    also when everything turns out to be installed already."""
    need_binary("pgrep")
    have = installed_version("bash")
    same = make_deb(tmp_path / "s", "bash", have)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text("#!/bin/sh\nexit 1\n")  # no systemd units on this machine to mask or ask
    (bin_dir / "systemctl").chmod(0o755)
    holder = tmp_path / "apt-get"  # a real process whose name is what dpkg_holder looks for
    holder.write_bytes(Path("/bin/sleep").read_bytes())
    holder.chmod(0o755)
    job = subprocess.Popen(["sh", "-c", f"{holder} 3; exit 0"])  # sh forks and reaps it: a zombie apt-get would be listed
    import time

    deadline = time.monotonic() + 10
    while subprocess.run(["pgrep", "-x", "apt-get"], capture_output=True).returncode != 0:
        assert time.monotonic() < deadline, "the apt-get stand-in did not start"
        time.sleep(0.05)
    try:
        out = bash(f"deb_install 'base packages' {same}", env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    finally:
        job.kill()
        job.wait()
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # (this machine is shared: another test's apt-get may be the holder named, and may prolong the wait)
    assert lines[0].startswith("labkit[test]: waiting for the box's own package job to finish: ") and "apt" in lines[0]
    assert re.fullmatch(r"labkit\[test\]: the package system is free after \d+s", lines[-2]), lines
    assert lines[-1] == "labkit[test]: skip: base packages (all 1 packages already installed)"
