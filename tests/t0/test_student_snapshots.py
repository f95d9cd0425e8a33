"""T0: a section snapshot is restored only with the bundle and settings it was made with."""
from __future__ import annotations

import datetime

from labkit import settings as settings_mod
from labkit.student import snapshots
from tests.support.env import REPO


def load(tmp_path, env=None):
    env = {"LABKIT_BUNDLE__DIR": str(tmp_path / "bundle"), **(env or {})}
    return settings_mod.load(REPO, env)


def test_a_recorded_snapshot_matches_until_the_bundle_or_settings_change(tmp_path, monkeypatch):
    # the checkout's own .labkit stays out of it
    monkeypatch.setattr(type(settings_mod.load(REPO, {})), "state_dir", property(lambda s: tmp_path / "state"))
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "CHECKSUMS").write_text("kubernetes-node sha512 aa k8s/node.tgz\n")
    s = load(tmp_path)
    assert snapshots.refusal(s, 5) == "snapshot section-5 has no record of the bundle and settings it was made with"
    snapshots.record(s, 5, now=datetime.datetime(2026, 12, 1, 9, 0, tzinfo=datetime.timezone.utc))
    assert snapshots.meta_file(s, 5) == tmp_path / "state" / "sections" / "section-5.json"
    assert snapshots.refusal(s, 5) is None
    assert snapshots.refusal(s, 4) is not None  # each section has its own record
    other = load(tmp_path, {"LABKIT_VM__MEMORY": "4096"})
    assert snapshots.refusal(other, 5) == "snapshot section-5 was made on 2026-12-01T09:00:00+00:00 with other settings"
    (tmp_path / "bundle" / "CHECKSUMS").write_text("kubernetes-node sha512 bb k8s/node.tgz\n")
    assert snapshots.refusal(s, 5) == ("snapshot section-5 was made on 2026-12-01T09:00:00+00:00 from another bundle "
                                       "(its CHECKSUMS changed since)")
    snapshots.meta_file(s, 5).write_text("{not json")
    assert "is unreadable" in snapshots.refusal(s, 5)
