"""The Kubernetes API from the laptop: the official client, configured by the exported kubeconfig.

cluster.init writes the kubeconfig to .labkit/kubeconfig (0600, server https://<host-only IP>:6443);
app and verify tasks talk to the cluster through `api(settings)`.
"""
from __future__ import annotations

from pathlib import Path

from labkit.errors import LabkitError


def kubeconfig_path(settings) -> Path:
    return settings.state_dir / "kubeconfig"


def api_client(settings):
    """A kubernetes.client.ApiClient for the lab cluster, or a one-line error saying how to get one."""
    from kubernetes import client, config

    path = kubeconfig_path(settings)
    if not path.is_file():
        raise LabkitError(f"no kubeconfig at {path}", "run invoke cluster.init (it exports one for this laptop)")
    configuration = client.Configuration()
    # urllib3 retries 3 times with back-off by default: a stopped VM would take ~16 s to report.
    configuration.retries = 1
    try:
        return config.new_client_from_config(config_file=str(path), client_configuration=configuration,
                                             persist_config=False)
    except Exception as exc:  # a malformed or foreign kubeconfig
        raise LabkitError(f"cannot use {path}: {exc}", "run invoke cluster.init again to re-export it") from None
