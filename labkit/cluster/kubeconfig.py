"""The admin kubeconfig, rewritten for the laptop: same credentials, the host-only API address.

It holds the cluster-admin client key: written 0600 (labkit.fsutil.write_private), never printed,
never logged. Errors about it never quote its content.
"""
from __future__ import annotations

from labkit.errors import LabkitError

FIX = "run invoke cluster.reset, then invoke cluster.init"


def for_laptop(admin_conf: str, server: str) -> str:
    """admin.conf from the master with every cluster's server set to `server` (https://<ip>:6443)."""
    import yaml

    try:
        tree = yaml.safe_load(admin_conf)
    except yaml.YAMLError:
        tree = None
    clusters = tree.get("clusters") if isinstance(tree, dict) else None
    users = tree.get("users") if isinstance(tree, dict) else None
    if not clusters or not users or not all(isinstance(c, dict) and isinstance(c.get("cluster"), dict) for c in clusters):
        raise LabkitError("the master's /etc/kubernetes/admin.conf is not a kubeconfig with clusters and users", FIX)
    for entry in clusters:
        entry["cluster"]["server"] = server
    return yaml.safe_dump(tree, sort_keys=False, default_flow_style=False)


def server_of(kubeconfig: str) -> str:
    """The first cluster's server URL ('' if unreadable): is an exported kubeconfig current?"""
    import yaml

    try:
        tree = yaml.safe_load(kubeconfig)
        return tree["clusters"][0]["cluster"]["server"]
    except Exception:  # any malformed file just counts as "not current"
        return ""
