"""T0: what a student types per section (student/commands.py): the one definition behind section.show,
section.start and docs/student.md's tables; the kit's preparation of the VM (student/workdir.py), its
shell run for real in a temporary home; and the VM-state messages of the section tasks."""
from __future__ import annotations

import io
import re
import subprocess
import tarfile

import pytest
from invoke import Context, Exit

from labkit import settings as settings_mod
from labkit.backends import Local
from labkit.errors import LabkitError
from labkit.student import commands, workdir
from labkit.student.sections import want_for
from labkit.tasks import section


@pytest.fixture(scope="module")
def want(repo):
    return want_for(settings_mod.load(repo, {}))


def test_docs_student_md_has_each_sections_table_as_the_kit_prints_it(repo, want):
    text = (repo / "docs" / "student.md").read_text(encoding="utf-8")
    for n in range(1, 9):
        heading = f"### Section {n}:"
        assert heading in text, heading
        body = text.split(heading, 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
        assert commands.markdown_table(n, want) in body, n


def test_every_substitution_the_issue_lists_is_there(want):
    typed = {n: [s.typed for s in commands.steps(n, want)] for n in range(1, 9)}
    assert 'echo "deb [trusted=yes] file:/opt/labkit/apt kubernetes-xenial main" | sudo tee -a ' \
           "/etc/apt/sources.list.d/kubernetes.list" in typed[1]
    assert "sudo kubeadm init --apiserver-advertise-address=192.168.56.10" in typed[3]
    assert "sudo kubeadm init" not in typed[3]
    assert "sudo chown vagrant $HOME/.kube/config" in typed[4]
    assert f"kubectl apply -f {want.weave_manifest}" in typed[5]
    assert not any("cloud.weave.works" in t for t in typed[5])
    # section 6 as printed: the VM's registry mirror serves the bundle's one tag of nginx and busybox
    # as :latest (tests/t1/test_student_mirror.py); the note names the tag for a VM without it
    web = next(s for s in commands.steps(6, want) if s.lab.startswith("kubectl run web"))
    assert web.typed == "kubectl run web --image nginx --generator=run-pod/v1" and "--image nginx:1.17.1" in web.why
    assert "kubectl run client --image busybox --generator=run-pod/v1 -it" in typed[6]
    assert "docker build -t trash-can/inv:0.1 ." in typed[7]
    # every kubectl run the student types names a bundled image (a tag, or the repository of exactly one
    # bundled tag, which the mirror serves as :latest) and the generator of a bare pod
    for n in range(1, 9):
        for t in typed[n]:
            if t.startswith("kubectl run"):
                image = re.search(r"--image (\S+)", t).group(1)
                bundled = [i for i in want.images.values() if i == image or i.rpartition(":")[0] == image]
                assert len(bundled) == 1 and "--generator=run-pod/v1" in t, t


def test_section_show_prints_the_commands_to_type_and_changes_nothing(capsys, monkeypatch):
    monkeypatch.setattr(section, "_context", lambda s: pytest.fail("section.show must not touch the VM"))
    section.show(Context(), n="3")
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "Section 3: Install and start the Kubernetes master components. Type in the VM (invoke vm.ssh):"
    assert "  sudo kubeadm init --apiserver-advertise-address=192.168.56.10" in printed
    assert "      instead of the lab's: sudo kubeadm init" in printed
    assert printed[-1] == "When you are done: invoke section.check 3"
    with pytest.raises(Exit) as bad:
        section.show(Context(), n="0")
    assert "'0' is not a section of the lab" in str(bad.value)


def test_the_inventory_sources_land_in_trash_can_inv_once(repo, tmp_path):
    """The put command run for real by sh in a temporary home: the build context arrives; a second
    run keeps what is there (the student's edits)."""
    s = settings_mod.load(repo, {})
    node = Local(["env", f"HOME={tmp_path}"], name="vm")
    first = workdir.put_inv_sources(node, s)
    assert first.ok and first.stdout.strip() == "written", first.stderr
    inv = tmp_path / "trash-can" / "inv"
    from labkit.app.build import context_files

    assert sorted(p.name for p in inv.iterdir()) == context_files(repo / "inv")  # what app.build sends Docker
    assert (inv / "Dockerfile").read_bytes() == (repo / "inv" / "Dockerfile").read_bytes()
    assert (inv / "app.py").read_bytes() == (repo / "inv" / "app.py").read_bytes()
    (inv / "app.py").write_text("# the student's edit\n")
    again = workdir.put_inv_sources(node, s)
    assert again.ok and again.stdout.strip() == "kept"
    assert (inv / "app.py").read_text() == "# the student's edit\n"
    with tarfile.open(fileobj=io.BytesIO(workdir.archive(s))) as tar:
        assert {m.uid for m in tar.getmembers()} == {0} and all(m.isfile() for m in tar.getmembers())


def test_the_kubelet_flags_command_writes_the_kits_line_once(tmp_path, want):
    """The root command, with its two paths moved into tmp_path, run by sh for real."""
    cmd = workdir.kubelet_flags_command(want).replace("/etc/default/kubelet", str(tmp_path / "kubelet")) \
        .replace("[ ! -f /etc/labkit/resolv.conf ]", f"[ ! -f {tmp_path / 'resolv.conf'} ]")
    missing = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True)
    assert missing.returncode == 1 and "resolv.conf is missing" in missing.stderr
    (tmp_path / "resolv.conf").write_text("nameserver 10.0.2.3\n")
    assert subprocess.run(["sh", "-c", cmd], capture_output=True, text=True).stdout == "written\n"
    assert (tmp_path / "kubelet").read_text() == f"{want.kubelet_args}\n"
    (tmp_path / "kubelet").write_text("KUBELET_EXTRA_ARGS=--v=4\n")
    assert subprocess.run(["sh", "-c", cmd], capture_output=True, text=True).stdout == "kept\n"
    assert (tmp_path / "kubelet").read_text() == "KUBELET_EXTRA_ARGS=--v=4\n"


class Vagrant:
    def __init__(self, state):
        self.state = state

    def status(self, name):
        return self.state


@pytest.mark.parametrize("state, fix", [
    ("poweroff", "start it where it was: invoke vm.up"),
    ("saved", "start it where it was: invoke vm.up"),
    ("not_created", "create it for the lab by hand: invoke section.start 1"),
])
def test_a_vm_that_is_not_running_gets_the_advice_that_keeps_the_students_work(repo, state, fix):
    from labkit import steps
    from labkit.student import live

    ctx = steps.Context(settings_mod.load(repo, {}), vm_state=Vagrant(state).status)
    with pytest.raises(LabkitError) as err:
        live.ensure_running(ctx)
    assert err.value.fix == fix
    assert ("section.start" in fix) == (state == "not_created")


def test_a_preparation_that_fails_on_the_vm_is_one_line_with_its_own_fix(repo, want):
    from labkit.backends import CommandResult

    class NoResolv:
        def run(self, argv, timeout=30, stdin=None):
            return CommandResult(1, "", "/etc/labkit/resolv.conf is missing (provision/base.sh writes it)\n", 0.1)

    from labkit import steps
    from labkit.student.actions.start import preparations

    s = settings_mod.load(repo, {})  # the steps read the same settings (and so the same `want`)
    with pytest.raises(LabkitError) as err:
        steps.run(preparations(s), steps.Context(s, reach=lambda name: NoResolv()))
    assert "Writing the kubelet's per-node flags (/etc/default/kubelet) failed on the VM: /etc/labkit/resolv.conf " \
           "is missing" in err.value.message
    assert err.value.fix.startswith("invoke vm.provision --step base")
