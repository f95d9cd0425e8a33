"""labkit's Invoke tasks. Only the namespace lives here; the work is in labkit/tasks/*.

    invoke --list            every task
    invoke lab               vm.up → cluster.init → app.deploy → verify
    invoke <task> --help     what a task does and its options
"""
from pathlib import Path

from invoke import Collection

from labkit.tasks import acceptance, app, bundle, cluster, doctor, lab, room, section, verify, vm

ns = Collection(vm, bundle, cluster, app, section, doctor.doctor, verify.verify, lab.lab, acceptance.acceptance)
ns.add_collection(Collection.from_module(room, name="class"))
ns.configure({"labkit": {"root": str(Path(__file__).resolve().parent)}})
