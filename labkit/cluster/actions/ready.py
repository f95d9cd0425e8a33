"""Wait for the cluster: every node Ready, CoreDNS Running, weave-net 2/2; then kube-dns's address and the nodes' IPs."""
from __future__ import annotations

from labkit.cluster import health, kubeadm, status
from labkit.errors import LabkitError
from labkit.kube.errors import Unreachable
from labkit.kube.objects import cluster_ip
from labkit.steps import Step


class WaitReady(Step):
    title = "Waiting for node Ready, CoreDNS Running, weave-net 2/2"

    def describe(self, ctx) -> list[str]:
        return [f"laptop: within the same {ctx.timeout:g}s, every node Ready, CoreDNS Running, weave-net 2/2 "
                "(Kubernetes API)",
                f"laptop: check that kube-dns has ClusterIP {kubeadm.dns_ip(ctx.settings)} and each node reports its "
                "host-only IP"]

    def run(self, ctx, st) -> None:
        api, s = ctx.api, ctx.settings

        def probe():
            try:
                return health.Health(api.nodes(), api.pods("kube-system"))
            except Unreachable as exc:
                return exc.message

        ok, state = health.wait(probe, ctx.left(), st.log)
        if not ok:
            if isinstance(state, str):
                raise LabkitError(f"the cluster was not ready after {ctx.timeout:g}s: {state}", "see invoke doctor")
            for ns in ("kube-system", "default"):
                for line in health.warning_events(api.events(ns)):
                    st.log(f"event: {line}")
            raise LabkitError(f"the cluster was not ready after {ctx.timeout:g}s: {state.line()}", health.hint(state))
        got, want = cluster_ip(api.get("Service", "kube-system", "kube-dns")), kubeadm.dns_ip(s)
        if got != want:
            raise LabkitError(f"kube-dns has ClusterIP {got}, settings expect {want}",
                              "the cluster was made with other network settings: invoke cluster.reset, then invoke "
                              "cluster.init")
        wrong = status.address_problems(state.nodes, s)
        if wrong:
            raise LabkitError("; ".join(wrong), "run invoke vm.provision --step kubernetes, then invoke cluster.reset "
                                                "and cluster.init")
        st.log(f"kube-dns {got}; {state.line()}")
