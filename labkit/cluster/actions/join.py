"""A worker joins the cluster: kubeadm join with a token and CA pin from the master (labkit.cluster.join decides)."""
from __future__ import annotations

import shlex

from labkit import ui
from labkit.cluster import join as joinmod
from labkit.steps import Step


class Discovery:
    """The master's CA pin and a join token, asked of the master once per run and only if some worker needs them.

    The pin is shown: it is a hash of the CA's public key (kubeadm init prints it in its join command), it
    lets whoever reads it check which cluster a worker joins, and it grants nothing. The token is never shown.
    """

    def __init__(self, master: str):
        self.master, self.found, self.ca_hash = master, None, None

    def pin(self, ctx) -> str:
        if self.ca_hash is None:
            self.ca_hash = joinmod.master_ca_hash(ctx.node(self.master))
        return self.ca_hash

    def __call__(self, ctx):
        if self.found is None:
            self.found, how = joinmod.discovery_from(ctx.node(self.master), self.pin(ctx))
            ui.say(f"  join token: {how} (hidden), CA pin {self.found.ca_hash}")
        return self.found


def token_line(settings) -> str:
    return (f"{settings.master.name}: reuse labkit's bootstrap token while it has {joinmod.TOKEN_MIN_LEFT // 60} "
            f"minutes left, else {shlex.join(joinmod.create_token_argv())}; the CA pin from {joinmod.CA_CERT}")


class JoinWorker(Step):
    def __init__(self, settings, worker, discovery: Discovery, first: bool = False):
        self.worker, self.discovery, self.first = worker, discovery, first
        self.title = f"Joining {worker.name} ({worker.ip}) to the cluster"

    def describe(self, ctx) -> list[str]:
        s, w = ctx.settings, self.worker
        return ([token_line(s)] if self.first else []) + [
            f"kubeadm join configuration for {w.name} (token masked; root-only {joinmod.GUEST_JOIN_CONFIG}, "
            "removed after the join):",
            joinmod.render(s, w).rstrip(),
            f"{w.name}: skipped if joined (kubelet.conf, a Node {w.name}, the master's CA); reset first if it holds "
            f"another cluster or what a failed join left; TCP {joinmod.WEAVE_TCP} and {joinmod.kubeadm.API_PORT} to "
            f"{s.master.name} and back checked; "
            f"then {shlex.join(joinmod.join_argv())}"]

    def run(self, ctx, st) -> None:
        note = joinmod.ensure_joined(ctx.settings, ctx.node(ctx.settings.master.name), self.worker,
                                     ctx.node(self.worker.name), lambda: self.discovery.pin(ctx),
                                     lambda: self.discovery(ctx), st.log)
        if note == "already joined":
            st.skip(note)
        else:
            st.note = note


def join_steps(settings, workers) -> list[JoinWorker]:
    discovery = Discovery(settings.master.name)
    return [JoinWorker(settings, w, discovery, first=(i == 0)) for i, w in enumerate(workers)]
