"""What a student types in each section of the lab on this VM: the lab's commands, in the lab's order,
with the substitutions this VM needs (offline, VirtualBox's two interfaces, user vagrant).

The one definition of the substitutions: `section.show N` and `section.start N` print them, the
checks' next commands use the same values (checks.Want), and docs/student.md's table per section is
this list rendered with the default settings (tests/t0/test_student_commands.py compares them).
Commands that only show something are listed too, so the student can follow the section here alone.
"""
from __future__ import annotations

from dataclasses import dataclass

from labkit.student.checks import Want
from labkit.student.labnext import INV_DIR

SKIP = "(skip it)"


@dataclass(frozen=True)
class Step:
    lab: str  # the command as the lab prints it
    here: str = ""  # what to type on this VM instead ("" = exactly as printed; SKIP = leave it out)
    why: str = ""  # the reason, one short line

    @property
    def changed(self) -> bool:
        return bool(self.here)

    @property
    def typed(self) -> str:
        return self.here or self.lab


WEAVE_URL = "\"https://cloud.weave.works/k8s/net?k8s-version=$(kubectl version | base64 | tr -d '\\n')\""
LAB_SOURCE = 'echo "deb http://apt.kubernetes.io/ kubernetes-xenial main" | sudo tee -a /etc/apt/sources.list.d/kubernetes.list'


def steps(n: int, want: Want) -> list[Step]:
    """Section n's commands (1-8) for this VM."""
    ip, user, weave = want.node_ip, want.user, want.weave_manifest
    web, client, inv = want.images["web"], want.images["client"], want.images["inv"]
    mirrored = ("untagged means :latest, pulled on every start: offline, the VM's registry mirror (labkit-mirror) "
                "serves the bundle's {} under that name; if section.check 6 says the pull failed, use --image {}")
    return {
        1: [
            Step("sudo apt-get update && sudo apt-get install -y apt-transport-https", SKIP,
                 "the local source is a file: URL, no HTTPS transport needed (offline, the box's mirrors only warn)"),
            Step("curl -s https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo apt-key add -", SKIP,
                 "no key to fetch: the local repository is built on the VM from hash-checked bundle files"),
            Step(LAB_SOURCE, f'echo "{want.source_line}" | sudo tee -a /etc/apt/sources.list.d/kubernetes.list',
                 "apt.kubernetes.io is gone; [trusted=yes]: the local repository is not signed"),
            Step("sudo apt-get update", "",
                 f"look for {want.repo_uri} {want.suite} Release where the lab shows packages.cloud.google.com"),
        ],
        2: [
            Step("sudo apt-get install -y kubelet kubeadm kubectl kubernetes-cni", "",
                 f"installs {want.versions['kubeadm']} from the local repository"),
        ],
        3: [
            Step("kubeadm help"),
            Step("kubeadm version"),
            Step("sudo kubeadm init", want.kubeadm_init,
                 "without it kubeadm advertises the NAT address 10.0.2.15, which the laptop cannot use"),
            Step("ls -l /etc/kubernetes/pki/"),
        ],
        4: [
            Step("ps -fwwp $(pidof kubelet) | sed -e 's/--/\\n--/g'"),
            Step("systemctl --all --full status kubelet"),
            Step("sudo cat /lib/systemd/system/kubelet.service"),
            Step("sudo cat /etc/systemd/system/kubelet.service.d/10-kubeadm.conf"),
            Step("sudo cat /var/lib/kubelet/config.yaml"),
            Step("sudo grep image /etc/kubernetes/manifests/*.yaml"),
            Step("kubectl config view"),
            Step("mkdir -p $HOME/.kube"),
            Step("sudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config"),
            Step("sudo chown ubuntu $HOME/.kube/config", f"sudo chown {user} $HOME/.kube/config",
                 f"this VM's user is {user}"),
            Step("kubectl get nodes"),
            Step("kubectl describe $(kubectl get node -o name) | grep -i taints"),
            Step("kubectl taint nodes --all node-role.kubernetes.io/master-"),
        ],
        5: [
            Step("kubectl get pods --all-namespaces"),
            Step("sudo apt-get install jq -y", SKIP, "jq is not in the bundle (the next line does without it)"),
            Step("curl -s --unix-sock /var/run/docker.sock http:/containers/json | jq '.[].Image | match(\".*dns.*\")'",
                 "curl -s --unix-socket /var/run/docker.sock http:/containers/json | python3 -c "
                 "'import json,sys; [print(c[\"Image\"]) for c in json.load(sys.stdin) if \"dns\" in c[\"Image\"]]'",
                 "the same Docker API call, read with the box's python3 instead of jq"),
            Step("kubectl get events --namespace=kube-system"),
            Step(f"curl -L {WEAVE_URL}", f"cat {weave}", "the Weave URL needs the internet; the bundle has the manifest"),
            Step(f"kubectl apply -f {WEAVE_URL} --dry-run=true", f"kubectl apply -f {weave} --dry-run=true",
                 "the bundle's Weave manifest"),
            Step(f"kubectl apply -f {WEAVE_URL}", f"kubectl apply -f {weave}", "the bundle's Weave manifest"),
            Step("kubectl get pods --all-namespaces"),
            Step("kubectl get events --namespace=kube-system --sort-by='{.lastTimestamp}' | grep dns"),
            Step("DNSPOD=$(kubectl get pods -o name --namespace=kube-system |grep dns |head -1) && echo $DNSPOD"),
            Step("kubectl logs --namespace=kube-system $DNSPOD"),
        ],
        6: [
            Step("kubectl run web --image nginx --generator=run-pod/v1", "", mirrored.format(web, web)),
            Step("kubectl get pod"),
            Step("kubectl get pod -o wide"),
            Step("curl <web's IP>", "", "the IP kubectl get pod -o wide shows"),
            Step("ip route"),
            Step("kubectl run client --image busybox --generator=run-pod/v1 -it", "", mirrored.format(client, client)),
            Step("wget -O - <web's IP>", "", "in the client pod's shell, then exit"),
            Step("kubectl get po"),
        ],
        7: [
            Step("cd trash-can/", "cd ~/trash-can/", f"the kit put the inventory sources in {INV_DIR}"),
            Step("cd inv/"),
            Step("(the image, built in an earlier lab)", f"docker build -t {inv} .",
                 "the Deployment runs this image with imagePullPolicy: Never: build it first (offline: its base is bundled)"),
            Step("vim deploy.yaml", "", "type the Deployment as the lab prints it"),
            Step("kubectl apply -f deploy.yaml"),
            Step("kubectl get deploy"),
            Step("kubectl get rs"),
            Step("kubectl get pod -o wide"),
            Step("curl <an inv pod's IP>:8080"),
            Step("kubectl attach client -it", "", "then wget -qO - <an inv pod's IP>:8080, and exit"),
        ],
        8: [
            Step("vim service.yaml", "", f"in {INV_DIR}: type the Service as the lab prints it"),
            Step("kubectl apply -f service.yaml"),
            Step("kubectl get service"),
            Step("kubectl describe  service inv"),
            Step("curl inv", "", "hangs, as in the lab: the node does not use the cluster's DNS (Ctrl-C)"),
            Step("kubectl attach client -it", "", "then wget -qO - inv and cat /etc/resolv.conf, and exit"),
            Step("kubectl get service -n kube-system"),
        ],
    }[n]


def lines(n: int, want: Want) -> list[str]:
    """What section.show and section.start print: each command to type in full (one line each, to
    copy), a substituted one followed by the lab's original and the reason."""
    from labkit.student.sections import SECTIONS

    out = [f"Section {n}: {SECTIONS[n].title}. Type in the VM (invoke vm.ssh):"]
    for s in steps(n, want):
        if s.here == SKIP:
            out.append(f"  (skip the lab's: {s.lab})")
            out.append(f"      {s.why}")
            continue
        out.append(f"  {s.typed}")
        if s.changed:
            out.append(f"      instead of the lab's: {s.lab}")
        if s.why:
            out.append(f"      {s.why}")
    return out


def changed(n: int, want: Want) -> list[Step]:
    return [s for s in steps(n, want) if s.changed]


def markdown_table(n: int, want: Want) -> str:
    """docs/student.md's substitution table of section n."""
    def cell(text: str) -> str:
        if text == SKIP or text.startswith("("):
            return text.strip("()")
        return "`" + text.replace("|", "\\|") + "`"

    if not changed(n, want):
        return "No substitution: every command as the lab prints it."
    rows = ["| the lab | on this VM | why |", "|---|---|---|"]
    rows += [f"| {cell(s.lab)} | {cell(s.here)} | {s.why} |" for s in changed(n, want)]
    return "\n".join(rows)
