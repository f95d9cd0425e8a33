"""The box added from the bundle (hash-checked) when Vagrant does not have it: nothing is ever downloaded."""
from __future__ import annotations

from labkit import vagrant
from labkit.errors import LabkitError
from labkit.steps import Step


class AddBox(Step):
    def __init__(self, s, nodes, found):
        self.nodes, self.found = nodes, found
        self.title = f"Adding box {s.box} from the bundle"

    def describe(self, ctx) -> list[str]:
        s = ctx.settings
        return [f"laptop: skipped if every VM runs or Vagrant has {s.box} ({s.provider}); else check the box file "
                f"{s.lock_file.name} names for it against its hash, then vagrant box add --name {s.box} "
                f"--provider {s.provider} --force FILE"]

    def run(self, ctx, st) -> None:
        ensure_box(ctx.settings, ctx.vagrant, st, all(self.found.state(ctx, n.name) == "running" for n in self.nodes))


def ensure_box(s, vg, st, all_running: bool = False) -> None:
    """Add the box from the bundle (hash-checked) if Vagrant doesn't have it: no download, ever."""
    from labkit.bundle import hashing, lock

    if all_running:
        st.skip("every VM runs")
        return
    if vagrant.box_installed(s.box, s.provider):
        st.skip("Vagrant has it")
        return
    art = lock.load(s.lock_file).box_for(s.box, s.provider)
    if art is None:
        raise LabkitError(f"the box {s.box} ({s.provider}) is not installed and {s.lock_file.name} has no file for it",
                          "add it with vagrant box add, or pick a box the lock carries")
    bad = hashing.problem(art, s.bundle_dir)
    if bad:
        raise LabkitError(f"bundle artifact {art.name} ({art.path}) is {bad}", f"run invoke bundle.fetch --only {art.name}")
    vg.stream(st, "box", "add", "--name", s.box, "--provider", s.provider, "--force", str(art.file(s.bundle_dir)))
