"""T0: sections 1-2's checks read real output: grep -H, apt-cache, dpkg-query, /proc/swaps and sysctl
as captured on Debian (apt 2.6, dpkg 1.21) from the packages provision/aptrepo.sh builds. Half-done
states included. Sections 3-8: tests/t0/test_student_lab_by_hand.py.
"""
from __future__ import annotations

import pytest

from labkit.backends import CommandResult
from labkit.student import checks, progress, sections
from labkit.student.checks import Want


LINE = "deb [trusted=yes] file:/opt/labkit/apt kubernetes-xenial main"
WANT = Want(source_line=LINE, node="ip-10-0-0-195",
            versions={"kubelet": "1.15.12-00", "kubeadm": "1.15.12-00", "kubectl": "1.15.12-00",
                      "kubernetes-cni": "0.7.5-00", "cri-tools": "1.13.0-00"})


def out(stdout: str, code: int = 0, stderr: str = "") -> CommandResult:
    return CommandResult(code, stdout, stderr, 0.1)


# --- section 1 -----------------------------------------------------------------------------------
POLICY_READ = """kubeadm:
  Installed: (none)
  Candidate: 1.15.12-00
  Version table:
     1.15.12-00 500
        500 file:/opt/labkit/apt kubernetes-xenial/main amd64 Packages
"""
POLICY_INSTALLED = """kubeadm:
  Installed: 1.15.12-00
  Candidate: 1.15.12-00
  Version table:
 *** 1.15.12-00 500
        500 file:/opt/labkit/apt kubernetes-xenial/main amd64 Packages
        100 /var/lib/dpkg/status
"""


LIST = "/etc/apt/sources.list.d/kubernetes.list"


def grep_h(*lines: tuple) -> CommandResult:
    """`grep -Hs '^[[:space:]]*deb' FILES`: FILE:LINE for each match."""
    return out("".join(f"{path}:{line}\n" for path, line in lines))


def test_section_1_source_line_present_absent_and_the_gone_original():
    assert checks.sources(grep_h((LIST, LINE)), WANT) is None
    assert checks.sources(grep_h((LIST, "deb [trusted=yes]   file:/opt/labkit/apt  kubernetes-xenial main")), WANT) is None
    missing = checks.sources(grep_h(("/etc/apt/sources.list", "deb http://archive.ubuntu.com/ubuntu xenial main")), WANT)
    assert missing.fix == f'echo "{LINE}" | sudo tee -a /etc/apt/sources.list.d/kubernetes.list'
    assert missing.key == "no-source" and missing.status == "fail"
    # the lab's own line, typed as printed: the cause names the dead host and its file, not "missing"
    gone = checks.sources(grep_h((LIST, "deb http://apt.kubernetes.io/ kubernetes-xenial main"), (LIST, LINE)), WANT)
    assert f"a package source in {LIST} points at http://apt.kubernetes.io/" in gone.cause
    assert gone.fix == f"sudo sed -i '/apt.kubernetes.io/d;/packages.cloud.google.com/d' {LIST}"
    # the right URI but another suite is not the source
    assert checks.sources(grep_h((LIST, "deb [trusted=yes] file:/opt/labkit/apt kubernetes-focal main")), WANT).key == "no-source"


def test_section_1_without_trusted_yes_is_caught_before_section_2_fails_on_it():
    """xenial's apt 1.2 reads an unsigned file: source with a warning; section 2's apt-get install -y then
    stops on unauthenticated packages. Check 1 says so, with the line that fixes it in its own file."""
    bare = checks.sources(grep_h((LIST, "deb file:/opt/labkit/apt kubernetes-xenial main")), WANT)
    assert bare.key == "untrusted-source" and "lacks [trusted=yes]" in bare.cause
    assert bare.fix == (f"sudo sed -i '\\|file:/opt/labkit/apt|d' {LIST} && "
                        f'echo "{LINE}" | sudo tee -a /etc/apt/sources.list.d/kubernetes.list && sudo apt-get update')
    other = checks.sources(grep_h(("/etc/apt/sources.list", "deb [arch=amd64] file:/opt/labkit/apt kubernetes-xenial main")),
                           WANT)
    assert other.key == "untrusted-source" and "in /etc/apt/sources.list lacks" in other.cause


def test_section_1_apt_has_read_the_source_only_after_update():
    assert checks.candidate(out(POLICY_READ), WANT) is None
    assert checks.candidate(out(POLICY_INSTALLED), WANT) is None
    before_update = checks.candidate(out(""), WANT)  # apt-cache policy of an unknown package prints nothing
    assert before_update.fix == "sudo apt-get update"
    assert checks.candidate(out(POLICY_READ.replace("1.15.12-00", "1.15.11-00")), WANT).cause.startswith(
        "apt offers kubeadm 1.15.11-00, not 1.15.12-00")


def test_section_1_without_the_kits_repository_points_at_the_kit():
    assert checks.repository(out("", 0), WANT) is None
    assert checks.repository(out("", 1), WANT).fix == "(on the laptop) invoke vm.provision --step aptrepo"


# --- section 2 -----------------------------------------------------------------------------------
DPKG_ALL = ("cri-tools 1.13.0-00 ii \nkubeadm 1.15.12-00 ii \nkubectl 1.15.12-00 ii \n"
            "kubelet 1.15.12-00 ii \nkubernetes-cni 0.7.5-00 ii \n")


def test_section_2_packages_all_some_removed_purged_and_wrong_version():
    assert checks.packages(out(DPKG_ALL), WANT) is None
    # after `apt-get remove kubeadm` and `apt-get purge cri-tools` (real dpkg-query lines)
    half = ("cri-tools  un \nkubeadm 1.15.12-00 rc \nkubectl 1.15.12-00 ii \nkubelet 1.15.12-00 ii \n"
            "kubernetes-cni 0.7.5-00 ii \n")
    f = checks.packages(out(half), WANT)
    assert f.cause == "kubeadm, cri-tools are not installed"
    assert f.fix == "sudo apt-get install -y kubelet kubeadm kubectl kubernetes-cni"
    # nothing installed: dpkg-query exits 1 and names the unknown packages on stderr
    none = checks.packages(out("", 1, "dpkg-query: no packages found matching kubelet\n"), WANT)
    assert none.cause.startswith("kubelet, kubeadm, kubectl, kubernetes-cni, cri-tools are not installed")
    wrong = checks.packages(out(DPKG_ALL.replace("kubelet 1.15.12-00", "kubelet 1.15.11-00")), WANT)
    assert wrong.cause == "kubelet 1.15.11-00 is installed, the lab needs 1.15.12-00"
    assert wrong.fix == ("sudo apt-get install -y --allow-downgrades kubelet=1.15.12-00 kubeadm=1.15.12-00 "
                          "kubectl=1.15.12-00")
    unpacked = checks.packages(out(DPKG_ALL.replace("kubeadm 1.15.12-00 ii", "kubeadm 1.15.12-00 iU")), WANT)
    assert unpacked.fix == "sudo dpkg --configure -a"


def test_section_2_kubelet_swap_and_kernel_settings():
    assert checks.kubelet_enabled(out("enabled\n"), WANT) is None
    assert checks.kubelet_enabled(out("disabled\n", 1), WANT).fix == "sudo systemctl enable kubelet"
    assert "does not exist" in checks.kubelet_enabled(
        out("", 1, "Failed to get unit file state for kubelet.service: No such file or directory\n"), WANT).cause
    header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
    assert checks.swap_off(out(header), WANT) is None
    on = checks.swap_off(out(header + "/tmp/sw                                 file\t\t8188\t\t0\t\t-2\n"), WANT)
    assert on.cause.startswith("swap is on (/tmp/sw)") and on.fix == "sudo swapoff -a"
    assert checks.kernel_settings(out("1\n1\n"), WANT) is None
    assert checks.kernel_settings(out("1\n0\n"), WANT).fix == "sudo sysctl -w net.ipv4.ip_forward=1"
    no_module = out("1\n", 1, "sysctl: cannot stat /proc/sys/net/bridge/bridge-nf-call-iptables: No such file or directory\n")
    assert checks.kernel_settings(no_module, WANT).fix == "sudo modprobe br_netfilter"


def test_a_node_that_does_not_answer_is_not_misread_as_a_missing_step():
    f = checks.packages(CommandResult(255, "", "ssh to ubuntu failed: [Errno 111] Connection refused", 0.1), WANT)
    assert f.cause.startswith("the VM did not answer") and f.fix == "(on the laptop) invoke vm.up"


# --- sections in order: no cascade -------------------------------------------------------------------
class Node:
    """Answers each section command with recorded real output (a mock of the VM only)."""

    def __init__(self, answers: dict):
        self.answers, self.asked = answers, []

    def run(self, argv, timeout=30, stdin=None):
        command = argv[-1]
        self.asked.append(command)
        for key, res in self.answers.items():
            if command.startswith(key):
                return res
        raise AssertionError(f"unexpected command {command}")


SECTION_1_DONE = {"test -f": out(""), "grep -Hs": grep_h((LIST, LINE)), "apt-cache policy": out(POLICY_READ)}


def test_progress_stops_at_the_first_section_not_done_and_checks_nothing_after_it():
    node = Node({**SECTION_1_DONE, "dpkg-query": out("", 1, "dpkg-query: no packages found matching kubelet\n")})
    states = progress.evaluate(8, node, WANT, verify_results=lambda: pytest.fail("verify must not run"))
    assert [s.status for s in states] == ["done", "not started"] + ["not started"] * 6
    assert states[1].failure.result.fix == "sudo apt-get install -y kubelet kubeadm kubectl kubernetes-cni"
    assert all(s.blocked_by == 2 and not s.outcomes for s in states[2:])
    assert not any(c.startswith(("systemctl", "ls ", "docker")) for c in node.asked)
    data = progress.as_json(states, "ubuntu")
    assert data["current"] == 2 and data["sections"][1]["first_failure"]["check"] == "packages"


def test_a_section_half_done_is_in_progress():
    node = Node({**SECTION_1_DONE, "dpkg-query": out(DPKG_ALL), "systemctl is-enabled": out("disabled\n", 1)})
    states = progress.evaluate(2, node, WANT, verify_results=list)
    assert states[1].status == "in progress" and states[1].failure.check.id == "kubelet"
    # section 1 with only the kit's repository in place has not been started by the student
    fresh = progress.evaluate(1, Node({"test -f": out(""), "grep -Hs": out("")}), WANT, verify_results=list)
    assert fresh[0].status == "not started"


def test_every_section_has_a_way_in_and_a_solve():
    assert sorted(sections.SECTIONS) == list(range(1, 9))
    for n, sec in sections.SECTIONS.items():
        kinds = [k for k in (sec.solve.node, sec.solve.provision, sec.solve.kit) if k]
        assert len(kinds) == 1, n
        assert sec.uses_verify == (n >= 5)
    # section 1's solve writes exactly the source line the check looks for
    script = sections.SECTIONS[1].solve.node(WANT)
    assert f"'{LINE}'" in script and "/etc/apt/sources.list.d/kubernetes.list" in script
