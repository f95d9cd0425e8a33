"""The chosen artifacts downloaded into the bundle: parallel, resumable, each verified before use."""
from __future__ import annotations

import sys

from labkit.errors import LabkitError
from labkit.steps import Step


class FetchArtifacts(Step):
    def __init__(self, lock, artifacts, dest, opts):
        self.lock, self.artifacts, self.dest, self.opts = lock, artifacts, dest, opts
        source = f" from {opts.from_url}" if opts.from_url else ""
        self.title = f"Fetching {len(artifacts)} artifacts into {dest}{source}"

    def describe(self, ctx) -> list[str]:
        where = f"the classroom mirror {self.opts.from_url}" if self.opts.from_url else "the lock's URLs"
        return [f"laptop: from {where}, {self.opts.workers} at a time; each skipped if present and intact, "
                "else downloaded (resumed from *.part) and checked against the lock's hash before it is kept:",
                *(f"  {a.name}: {a.path}" for a in self.artifacts)]

    def run(self, ctx, st) -> None:
        from labkit.bundle import fetch as fetchmod

        outcomes = fetchmod.fetch(self.lock, self.artifacts, self.dest, self.opts, st)
        failed = [o for o in outcomes if o.error]
        fetched = [o for o in outcomes if not o.error and not o.skipped]
        if len(failed) == 1:
            raise failed[0].error
        if failed:
            for o in failed:
                print(o.error.line(), file=sys.stderr, flush=True)
            raise LabkitError(f"{len(failed)} of {len(outcomes)} artifacts could not be fetched: "
                              f"{', '.join(o.name for o in failed)} (one line each above)",
                              "fix those causes and run the same command again (finished files are kept)")
        if not fetched:
            st.skip(f"all {len(outcomes)} artifacts already present and intact")
        else:
            st.note = f"{len(fetched)} fetched, {len(outcomes) - len(fetched)} already there"
