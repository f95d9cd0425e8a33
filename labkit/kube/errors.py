"""The error types of the Kubernetes API door: every caller (cluster, app, verify) sees these, nothing else.

All are LabkitErrors, so one a task does not handle is one line with its fix, never a traceback.

    NoKubeconfig / BadKubeconfig   the exported kubeconfig is missing / unusable
    Unreachable                    nothing answered (VM stopped, API server starting): waits retry on it
    Unauthorized                   401/403: credentials of an earlier cluster
    Untrusted                      TLS verification failed; `cause` says why:
                                   "other-ca" (the cluster was initialised again), "expired", "not-yet-valid"
    ApiError                       any other answer, with its status, reason and message

Python's ssl module reports the verify failures in OpenSSL's words (X509_verify_cert_error_string,
OpenSSL 1.1/3.x crypto/x509/x509_txt.c): "certificate has expired", "certificate is not yet valid",
"self-signed certificate in certificate chain"/"unable to get local issuer certificate" for another CA.
"""
from __future__ import annotations

from labkit.errors import LabkitError

REINIT = "run invoke cluster.init again to re-export it"
START = ("start the VM and the cluster (invoke vm.up, then invoke cluster.init); if they run, check that no VPN "
         "or firewall blocks the host-only network 192.168.56.0/21")


class KubeError(LabkitError):
    """Something between this laptop and the lab's API server."""


class NoKubeconfig(KubeError):
    def __init__(self, path):
        super().__init__(f"no kubeconfig at {path}", "run invoke cluster.init (it exports one for this laptop)")
        self.path = path


class BadKubeconfig(KubeError):
    def __init__(self, path, error: str):
        super().__init__(f"cannot use {path}: {error}", REINIT)
        self.path, self.error = path, error


class Unreachable(KubeError):
    def __init__(self, server: str, error: str):
        super().__init__(f"cannot reach the API server at {server} ({error})", START)
        self.server, self.error = server, error


class Unauthorized(KubeError):
    def __init__(self, server: str, status: int):
        # typically a kubeconfig from before a kubeadm reset/init
        super().__init__(f"the API server at {server} refused labkit's kubeconfig ({status})", REINIT)
        self.server, self.status = server, status


UNTRUSTED = {
    "other-ca": ("has a certificate labkit's kubeconfig does not trust (the cluster was initialized again since "
                 "it was exported)", REINIT),
    "expired": ("has a certificate that has expired (kubeadm's certificates last one year: a cluster or snapshot "
                "that old; or this laptop's clock is ahead)",
                "check this laptop's date and time; if they are right, run invoke cluster.reset, then invoke "
                "cluster.init (new certificates)"),
    "not-yet-valid": ("has a certificate that is not valid yet (this laptop's clock is behind the VM's, or the VM's "
                      "clock was ahead when the cluster was made)",
                      "set this laptop's date and time right (automatic time), then run invoke cluster.init again; "
                      "if it persists, invoke cluster.reset, then invoke cluster.init"),
}


class Untrusted(KubeError):
    """TLS verification failed: not "unreachable", since waiting cannot help."""

    def __init__(self, server: str, cause: str):
        what, fix = UNTRUSTED[cause]
        super().__init__(f"the API server at {server} {what}", fix)
        self.server, self.cause = server, cause


class ApiError(KubeError):
    """An answer other than success (404 included: readers turn it into None)."""

    def __init__(self, server: str, status: int, reason: str, detail: str = ""):
        said = f": {detail.strip()[:200]}" if detail and detail.strip() != reason else ""
        super().__init__(f"the API server at {server} answered {status} {reason}{said}",
                         "run invoke cluster.status; if it persists, invoke cluster.reset then cluster.init")
        self.server, self.status, self.reason, self.detail = server, status, reason, detail


def certificate_cause(text: str):
    """"expired", "not-yet-valid", "other-ca" for a TLS verify failure's text, else None."""
    if "CERTIFICATE_VERIFY_FAILED" not in text and "certificate verify failed" not in text:
        return None
    if "has expired" in text:
        return "expired"
    if "not yet valid" in text:
        return "not-yet-valid"
    return "other-ca"


def short(exc: BaseException) -> str:
    """The readable end of a urllib3 error: MaxRetryError wraps the cause ("[Errno 111] Connection refused")."""
    text = str(getattr(exc, "reason", None) or exc)
    return text.rsplit(": ", 1)[-1].strip()[:160] or type(exc).__name__


def classify(exc: BaseException, server: str) -> KubeError:
    """The door's error for what the kubernetes client raised; re-raises what is not about the API."""
    import json

    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        if exc.status in (401, 403):
            return Unauthorized(server, exc.status)
        body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else (exc.body or "")
        try:
            status = json.loads(body) if body else {}
        except ValueError:
            status = {"message": body.strip()[:300]}
        status = status if isinstance(status, dict) else {}
        return ApiError(server, exc.status or 0, status.get("reason") or exc.reason or "", status.get("message") or "")
    cause = certificate_cause(str(exc))
    if cause:
        return Untrusted(server, cause)
    if type(exc).__module__.startswith(("urllib3", "ssl", "socket")) or isinstance(exc, (OSError, TimeoutError)):
        return Unreachable(server, short(exc))
    raise exc
