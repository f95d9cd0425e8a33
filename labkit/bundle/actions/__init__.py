"""The steps of bundle.fetch (labkit.steps.Step, as cluster/actions/); --dry-run prints the same list."""
from __future__ import annotations

from labkit.bundle.actions.fetch import FetchArtifacts


def fetch_plan(lock, artifacts, dest, opts) -> list:
    return [FetchArtifacts(lock, artifacts, dest, opts)]
