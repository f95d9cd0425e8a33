"""A student node's answers (dpkg, apt-cache policy, grep) as the section checks read them."""
from __future__ import annotations

from labkit.backends import CommandResult
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


# --- section 2 -----------------------------------------------------------------------------------
DPKG_ALL = ("cri-tools 1.13.0-00 ii \nkubeadm 1.15.12-00 ii \nkubectl 1.15.12-00 ii \n"
            "kubelet 1.15.12-00 ii \nkubernetes-cni 0.7.5-00 ii \n")


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
