"""The Kubernetes API from the laptop: the official client, configured by the exported kubeconfig.

cluster.init writes the kubeconfig to .labkit/kubeconfig (0600, server https://<host-only IP>:6443);
app and verify tasks talk to the cluster through `api(settings)`.
"""
from __future__ import annotations

from pathlib import Path

from labkit.errors import LabkitError


def kubeconfig_path(settings) -> Path:
    return settings.state_dir / "kubeconfig"


def api_problem(server: str, status: int, reason: str, message: str = "") -> tuple[str, str]:
    """(message, fix) for an API answer the user must act on; cluster and app tasks word it alike."""
    if status in (401, 403):  # typically a kubeconfig from before a kubeadm reset/init
        return (f"the API server at {server} refused labkit's kubeconfig ({status})",
                "run invoke cluster.init again to re-export it")
    said = f": {message.strip()[:200]}" if message and message.strip() != reason else ""
    return (f"the API server at {server} answered {status} {reason}{said}",
            "run invoke cluster.status; if it persists, invoke cluster.reset then cluster.init")


def untrusted_server(server: str, exc: Exception):
    """(message, fix) if `exc` is a TLS verify failure, else None: after a kubeadm reset/init the API server
    has a new CA, so the exported kubeconfig no longer trusts it. Not "unreachable": waiting cannot help."""
    if "CERTIFICATE_VERIFY_FAILED" not in str(exc):
        return None
    return (f"the API server at {server} has a certificate labkit's kubeconfig does not trust "
            "(the cluster was initialized again since it was exported)", "run invoke cluster.init again to re-export it")


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
