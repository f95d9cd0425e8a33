"""The lock: the loader refuses bad entries with one clear line, and the committed lock covers the lab."""
from __future__ import annotations

import re
import textwrap
from pathlib import Path, PurePosixPath

import pytest

from labkit import settings as settings_mod
from labkit.bundle import checksums, lock
from labkit.bundle.lock import LockError

HEX64 = "a" * 64


def load_text(tmp_path, text):
    """A lock from YAML text; `count:` (the number of `- name:` entries) is added unless the text has one."""
    text = textwrap.dedent(text)
    if not re.search(r"^count:", text, re.M):
        text += f"count: {len(re.findall(r'^  - ', text, re.M))}\n"
    p = tmp_path / "lock.yaml"
    p.write_text(text)
    return lock.load(p)


def entry(**fields):
    base = {"name": "a", "kind": "file", "urls": "[https://example.org/a]", "sha256": HEX64, "path": "a.bin"}
    base.update(fields)
    return "  - " + "\n    ".join(f"{k}: {v}" for k, v in base.items() if v is not None) + "\n"


@pytest.mark.parametrize("fields, words", [
    ({"path": "../etc/passwd"}, "escapes the bundle directory"),
    ({"path": "/etc/passwd"}, "escapes the bundle directory"),
    ({"path": "'C:/x'"}, "escapes the bundle directory"),
    ({"path": "'a\\\\b'"}, "escapes the bundle directory"),
    ({"path": "'.'"}, "escapes the bundle directory"),
    ({"path": "k8s/a.tgz.part"}, "is reserved"),
    ({"path": "CHECKSUMS"}, "is reserved"),
    ({"sha256": "ABC"}, "sha256 is not 64 lower-case hex digits"),
    ({"kind": "tarball"}, "kind 'tarball' is not one of file, image"),
    ({"urls": "[ftp://x]"}, "urls must be a list of http(s) URLs"),
    ({"urls": None}, "a file needs at least one URL"),
    ({"size": "-1"}, "size must be a whole number"),
    ({"size": "true"}, "size must be a whole number"),
    ({"box": "ubuntu/xenial64"}, "needs both box"),
    ({"box": "x/y", "provider": "hyperv"}, "needs both box"),
    ({"published": "file:///etc/x"}, "published must be an http(s) URL"),
    ({"name": "Bad Name"}, "has no valid name"),
])
def test_bad_entries_are_refused_with_the_artifact_named(tmp_path, fields, words):
    with pytest.raises(LockError) as exc:
        load_text(tmp_path, "artifacts:\n" + entry(**fields))
    assert words in exc.value.message
    assert exc.value.fix


@pytest.mark.parametrize("fields, words", [
    ({"ref": "'not a ref!'"}, "an image needs ref"),
    ({"ref": "nginx@sha256:" + HEX64}, "needs tag"),
    ({"ref": "nginx:1.17.1", "tag": "nginx"}, "is not an image name with a tag"),
    ({"ref": "nginx:1.17.1", "digest": "sha256:xyz"}, "digest must look like sha256:<64 hex>"),
])
def test_bad_images_are_refused(tmp_path, fields, words):
    with pytest.raises(LockError) as exc:
        load_text(tmp_path, "artifacts:\n" + entry(kind="image", urls=None, sha256=None, path="images/x.tar",
                                                   **fields))
    assert words in exc.value.message


def test_duplicates_and_nesting_are_refused(tmp_path):
    with pytest.raises(LockError, match="lists name 'a' twice"):
        load_text(tmp_path, "artifacts:\n" + entry() + entry(path="b.bin"))
    with pytest.raises(LockError, match="lists path 'a.bin' twice"):
        load_text(tmp_path, "artifacts:\n" + entry() + entry(name="b"))
    with pytest.raises(LockError, match=r"'b' \(k8s/x\) lies inside the file k8s"):
        load_text(tmp_path, "artifacts:\n" + entry(path="k8s") + entry(name="b", path="k8s/x"))


def test_pinned_select_and_image_tag(tmp_path):
    lk = load_text(tmp_path, "artifacts:\n" + entry() + entry(name="u", sha256=None, path="u.bin")
                   + entry(name="i", kind="image", urls=None, sha256=HEX64, ref="docker.io/library/nginx:1.17.1",
                           digest="sha256:" + HEX64, path="images/n.tar")
                   + entry(name="k", kind="image", urls=None, sha256=HEX64, ref="registry.k8s.io/pause:3.1",
                           tag="k8s.gcr.io/pause:3.1", path="images/p.tar"))
    assert [a.name for a in lk.artifacts if a.pinned] == ["a", "i"]  # k has no digest: unpinned
    assert lk.get("i").image_tag == "nginx:1.17.1"
    assert lk.get("k").image_tag == "k8s.gcr.io/pause:3.1"
    assert [a.name for a in lk.select("k, a")] == ["a", "k"]  # lock order
    assert lk.select(None) == lk.artifacts
    with pytest.raises(LockError, match="no artifact named 'zz'"):
        lk.select("a,zz")
    assert checksums.render(lk) == f"a sha256 {HEX64} a.bin\ni sha256 {HEX64} images/n.tar\n"


def test_needed_leaves_out_other_providers_boxes(tmp_path):
    lk = load_text(tmp_path, "artifacts:\n" + entry() + entry(name="vb", path="vb.box", box="u/x", provider="virtualbox")
                   + entry(name="lv", path="lv.box", box="g/u", provider="libvirt"))
    assert [a.name for a in lk.needed("virtualbox")] == ["a", "vb"]
    assert [a.name for a in lk.needed("libvirt")] == ["a", "lv"]
    assert lk.needed(None) == lk.artifacts


def test_needed_takes_the_guest_architectures_artifacts_and_the_shared_ones(tmp_path):
    lk = load_text(tmp_path, "artifacts:\n" + entry() + entry(name="x86", path="x.bin", arch="amd64")
                   + entry(name="arm", path="arm64/x.bin", arch="arm64")
                   + entry(name="arm-box", path="arm64/b.box", box="c/u", provider="virtualbox", arch="arm64"))
    assert [a.name for a in lk.needed("virtualbox", "amd64")] == ["a", "x86"]
    assert [a.name for a in lk.needed("virtualbox", ("arm64",))] == ["a", "arm", "arm-box"]
    assert [a.name for a in lk.needed("libvirt", "arm64")] == ["a", "arm"]
    assert [a.name for a in lk.needed("virtualbox", None)] == ["a", "x86", "arm", "arm-box"]
    assert lk.get("arm").platform_arch == "arm64" and lk.get("a").platform_arch == "amd64"
    with pytest.raises(LockError, match="arch 'x86_64' is not one of amd64, arm64"):
        load_text(tmp_path, "artifacts:\n" + entry(arch="x86_64"))
    image = dict(kind="image", urls=None, sha256=None, ref="docker.io/library/nginx:1.17.1", digest="sha256:" + HEX64,
                 path="arm64/images/nginx.tar", child="sha256:" + "b" * 64)
    assert load_text(tmp_path, "artifacts:\n" + entry(**image, arch="arm64")).get("a").child == "sha256:" + "b" * 64
    with pytest.raises(LockError, match="child must be a sha256:<64 hex> manifest digest, beside digest: and arch:"):
        load_text(tmp_path, "artifacts:\n" + entry(**image))  # no arch: which child would it be?


# --- the committed lock ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def committed(repo):
    s = settings_mod.load(repo, {})
    return s, lock.load(s.lock_file)


ARCHS = ("amd64", "arm64")


def by_tag(lk, arch="amd64"):
    """The images a guest of this architecture loads, by the name they load under."""
    return {a.image_tag: a for a in lk.needed(None, arch) if a.kind == "image"}


def arch_dir(arch: str) -> str:
    """Where the lock keeps an architecture's artifacts: amd64's at the top, arm64's under arm64/."""
    return "" if arch == "amd64" else f"{arch}/"


def suffix(arch: str) -> str:
    return "" if arch == "amd64" else f"-{arch}"


def short(name: str) -> str:
    """Docker's short form of an image name: what `docker load` shows and the archive carries."""
    for prefix in ("docker.io/library/", "docker.io/"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


@pytest.mark.parametrize("arch", ARCHS)
def test_lock_has_every_image_kubeadm_1_15_names_under_the_names_it_expects(committed, arch):
    s, lk = committed
    v = s.versions
    wanted = [f"k8s.gcr.io/{c}:{v['kubernetes']}" for c in
              ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")]
    wanted += [f"k8s.gcr.io/pause:{v['pause']}", f"k8s.gcr.io/etcd:{v['etcd']}", f"k8s.gcr.io/coredns:{v['coredns']}"]
    tags = by_tag(lk, arch)
    server = lk.get("kubernetes-server" + suffix(arch))
    assert server.path.endswith(f"kubernetes-server-linux-{arch}.tar.gz") and f"/{v['kubernetes']}/" in server.urls[0]
    assert server.pinned and server.provenance == "changelog"
    for name in wanted:
        assert name in tags, f"{name} missing from the lock"
        assert tags[name].platform_arch == arch
        component = name.split("/")[1].split(":")[0]
        if component.startswith("kube-"):  # from the release's server tarball, whose sha512 the changelog gives
            assert (tags[name].source, tags[name].member) == (server.name, f"kubernetes/server/bin/{component}.tar")
        else:  # fetched from registry.k8s.io (k8s.gcr.io is frozen and redirects there), same repository path
            assert tags[name].ref == name.replace("k8s.gcr.io/", "registry.k8s.io/")


@pytest.mark.parametrize("arch", ARCHS)
def test_lock_has_weave_and_the_app_images(committed, arch):
    s, lk = committed
    tags = by_tag(lk, arch)
    for component in ("weave-kube", "weave-npc"):
        assert f"weaveworks/{component}:{s.versions['weave']}" in tags
    for key in ("web", "client", "inv_base"):
        assert short(s.data["images"][key]) in tags, f"settings images.{key} is not in the lock"
    manifest = lk.get("weave-manifest")
    assert manifest.path == "manifests/weave-daemonset-k8s-1.11.yaml"
    assert f"/v{s.versions['weave']}/" in manifest.urls[0]


@pytest.mark.parametrize("arch", ARCHS)
def test_lock_has_boxes_binaries_and_debs(committed, arch):
    s, lk = committed
    d, needed = arch_dir(arch), lk.needed(None, arch)
    for provider, box in s.data[settings_mod.boxes_key(arch)].items():
        art = lk.box_for(box, provider)
        assert art is not None and art in needed, f"no box file for {box} ({provider}, {arch})"
        assert art.name == f"box-{provider}{suffix(arch)}" and re.fullmatch(rf"{d}boxes/[^/]+\.box", art.path)
    v = s.versions
    node = lk.get("kubernetes-node" + suffix(arch))
    assert node.path == f"{d}k8s/kubernetes-node-linux-{arch}.tar.gz" and node.pinned
    assert all(f"/{v['kubernetes']}/" in u for u in node.urls)
    assert lk.get("cni-plugins" + suffix(arch)).path == f"{d}cni/cni-plugins-{arch}-v{v['cni']}.tgz"
    assert lk.get("crictl" + suffix(arch)).path == f"{d}k8s/crictl-v{v['crictl']}-linux-{arch}.tar.gz"
    docker_debs = [a.path for a in needed if a.path.startswith(f"{d}debs/docker/")]
    assert any(p.startswith(f"{d}debs/docker/docker-ce_{v['docker']}~") for p in docker_debs)
    assert any(p.startswith(f"{d}debs/docker/docker-ce-cli_{v['docker']}~") for p in docker_debs)
    assert any(p.startswith(f"{d}debs/docker/containerd.io_") for p in docker_debs)
    base = {PurePosixPath(a.path).name.split("_")[0] for a in needed if a.path.startswith(f"{d}debs/base/")}
    assert {"socat", "conntrack", "ebtables", "ethtool"} <= base


def test_settings_versions_and_the_lock_agree_and_a_lone_override_is_named(committed):
    s, lk = committed
    assert lock.version_drift(s.versions, lk) == []
    assert lock.version_drift({**s.versions, "kubernetes": "v1.15.11", "pause": "3.2"}, lk) == [
        "kubernetes v1.15.11 (the lock has v1.15.12)", "pause 3.2 (the lock has 3.1)"]
    # each version is read where the lock spells it: every spot finds the committed value
    assert all(lock.version_drift({**s.versions, name: "0.0.0"}, lk) for name in lock.VERSION_SPOTS)
    # a small lock without the component says nothing of its version
    small = lock.Lock(Path("small.yaml"), (lock.Artifact("a", "file", "files/a"),))
    assert lock.version_drift({**s.versions, "kubernetes": "v9"}, small) == []


ROLES = ("boxes/", "debs/docker/", "debs/base/", "k8s/", "cni/", "manifests/", "images/")


@pytest.mark.parametrize("arch", ARCHS)
def test_every_entry_is_well_formed(committed, arch):
    _, lk = committed
    needed = lk.needed(None, arch)
    tags = [a.image_tag for a in needed if a.kind == "image"]
    assert len(tags) == len(set(tags)), "two images load under the same name"
    sources = {a.source for a in lk.artifacts if a.source}
    roles = tuple(arch_dir(arch) + r if r != "manifests/" else r for r in ROLES)
    for a in [s for s in lk.artifacts if s.name in sources and s.arch == arch] + list(needed):
        if a.name in sources:  # only the instructor's machine needs it; the VM's rsync skips sources/
            assert a.path.startswith("sources/") and a.pinned, a.name
            continue
        assert a.path.startswith(roles), f"{a.name}: {a.path} is in no role directory the {arch} VM looks at"
        assert a.arch == arch or a.path.startswith("manifests/"), f"{a.name}: say arch: {arch}"
        if a.kind == "image":
            assert re.fullmatch(rf"{arch_dir(arch)}images/[a-z0-9._-]+\.tar", a.path), a.path
            assert a.digest is None or re.fullmatch(r"sha256:[0-9a-f]{64}", a.digest)
            assert not a.urls
        else:
            assert a.path.startswith(roles[:-1])
            if a.path.startswith(f"{arch_dir(arch)}debs/"):
                assert a.path.endswith(f"_{arch}.deb")
            for u in a.urls:  # plain http only where apt itself uses it; those files get a published pin
                assert u.startswith("https://") or (
                    u.startswith(("http://archive.ubuntu.com/", "http://ports.ubuntu.com/")) and a.published), u
            if not a.pinned and a.path.startswith(f"{arch_dir(arch)}debs/") and "download.docker.com" not in a.urls[0]:
                assert a.published, f"{a.name}: an unpinned deb needs published: (its Packages index)"
            name = PurePosixPath(a.path).name
            assert all(PurePosixPath(u).name == name for u in a.urls if not u.endswith(".box")), a.name


def test_a_lock_cut_anywhere_is_refused_as_truncated_or_names_the_yaml_line(repo, tmp_path):
    text = (repo / "bundle.lock.yaml").read_text()
    p = tmp_path / "bundle.lock.yaml"
    end = len(text.rstrip("\n"))
    for cut in list(range(0, end, 37)) + [end - 1]:
        p.write_text(text[:cut])
        with pytest.raises(LockError) as exc:
            lock.load(p)
        message = exc.value.message
        assert ("looks truncated" in message or re.search(r"line \d+ is not valid YAML", message)
                or "has no 'artifacts' list" in message), (cut, message)
    p.write_text(text)
    assert len(lock.load(p).artifacts) == text.count("\n  - name: ")  # the whole file loads


def test_count_must_match_and_end_the_file(tmp_path):
    with pytest.raises(LockError, match=r"says count: 3 but lists 2 artifact\(s\)") as exc:
        load_text(tmp_path, "artifacts:\n" + entry() + entry(name="b", path="b.bin") + "count: 3\n")
    assert "set count: 2" in exc.value.fix
    with pytest.raises(LockError, match="must be the last key"):
        load_text(tmp_path, "count: 1\nartifacts:\n" + entry())
    with pytest.raises(LockError, match=r"lock.yaml line 3 is not valid YAML"):
        load_text(tmp_path, "artifacts:\n  - name: a\n    path: x: y\ncount: 1\n")


def test_ubuntu_debs_come_from_the_section_their_index_lists(committed):
    """pool/<section>/ of every URL and the published Packages index name the same archive section
    (socat is in universe on xenial: fetching it from main, or pinning it from main's index, fails)."""
    _, lk = committed
    debs = [a for a in lk.artifacts if a.published and "/dists/" in a.published]
    assert {a.name for a in debs} >= {"socat", "conntrack", "ebtables", "ethtool", "libltdl7", "pigz",
                                      "socat-arm64", "conntrack-arm64", "ebtables-arm64", "ethtool-arm64"}
    for a in debs:
        section = re.search(rf"/dists/[^/]+/([^/]+)/binary-{a.platform_arch}/", a.published).group(1)
        for url in a.urls:
            assert f"/pool/{section}/" in url, (a.name, url, a.published)
    assert "/universe/" in lk.get("socat").published
