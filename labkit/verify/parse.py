"""Reading the real output of the lab's tools: `ip route`, resolv.conf, curl, busybox wget and nslookup.

Pure functions on text, so each decision can be tested on the exact output the lab shows.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from labkit.backends import TIMEOUT_EXIT

# How a connection attempt failed, whatever the tool: the checks choose a hint by this.
REFUSED, UNREACHABLE, TIMEOUT, RESOLVE, HTTP, MISSING, OTHER = (
    "refused", "unreachable", "timeout", "resolve", "http", "missing", "other")


# --- ip route -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    dest: str
    dev: Optional[str]
    src: Optional[str]
    via: Optional[str]
    line: str


def routes(text: str) -> list[Route]:
    """`ip route` lines: `10.32.0.0/12 dev weave  proto kernel  scope link  src 10.32.0.1`."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        dest = words[0]
        if dest in ("unicast", "local", "broadcast", "blackhole", "unreachable", "prohibit") and len(words) > 1:
            dest = words[1]  # a route type before the destination
        pairs = {words[i]: words[i + 1] for i in range(1, len(words) - 1)}  # dev weave, src 10.32.0.1, ...
        out.append(Route(dest, pairs.get("dev"), pairs.get("src"), pairs.get("via"), " ".join(words)))
    return out


# --- resolv.conf ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ResolvConf:
    nameservers: list = field(default_factory=list)
    search: list = field(default_factory=list)
    options: list = field(default_factory=list)


def resolv_conf(text: str) -> ResolvConf:
    ns, search, options = [], [], []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        key, args = words[0], words[1:]
        if key == "nameserver" and args:
            ns.append(args[0])
        elif key in ("search", "domain"):
            search = list(args)  # the last search/domain line wins, as in the resolver
        elif key == "options":
            options += args
    return ResolvConf(ns, search, options)


# --- HTTP clients ---------------------------------------------------------------------------

def first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")


def curl_failure(exit_code: int, stderr: str) -> str:
    """curl's exit codes (and Ubuntu 16.04's curl 7.47 messages) → kind of failure."""
    text = stderr.lower()
    if exit_code == TIMEOUT_EXIT or exit_code == 28:
        return TIMEOUT
    if exit_code == 127:  # the shell found no curl
        return MISSING
    if exit_code == 6:
        return RESOLVE
    if exit_code == 22:
        return HTTP
    if exit_code == 7:
        if "refused" in text:
            return REFUSED
        return UNREACHABLE  # no route / host unreachable / newer curl's bare "Couldn't connect"
    if exit_code in (52, 56):  # empty reply / connection reset
        return REFUSED
    return OTHER


def wget_failure(exit_code: int, stderr: str) -> str:
    """busybox wget's messages → kind of failure.

        wget: bad address 'inv'
        wget: can't connect to remote host (10.32.0.6): Connection refused
        wget: can't connect to remote host (10.32.0.9): No route to host
        wget: download timed out
        wget: server returned error: HTTP/1.1 404 Not Found
    """
    text = stderr.lower()
    if exit_code == TIMEOUT_EXIT or "timed out" in text:
        return TIMEOUT
    if exit_code == 127 or "executable file not found" in text or "applet not found" in text:
        return MISSING
    if "bad address" in text:
        return RESOLVE
    if "refused" in text or "connection reset" in text:
        return REFUSED
    if "no route to host" in text or "unreachable" in text:
        return UNREACHABLE
    if "server returned error" in text:
        return HTTP
    return OTHER


# --- busybox nslookup -----------------------------------------------------------------------

@dataclass(frozen=True)
class Lookup:
    server: Optional[str]
    addresses: list
    errors: list


def nslookup(text: str) -> Lookup:
    """Both busybox formats: 1.28 (`Address 1: 10.103.51.48 inv...`) and 1.29+ (`Address: 10.103.51.48`).

        Server:     10.96.0.10
        Address:    10.96.0.10:53

        Name:   inv.default.svc.cluster.local
        Address: 10.103.51.48
    """
    server, addresses, errors = None, [], []
    in_answer = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("Server:"):
            server = line.split(":", 1)[1].strip() or None
            in_answer = False
        elif line.startswith("Name:"):
            in_answer = True
        elif re.match(r"^Address( \d+)?:", line):
            value = line.split(":", 1)[1].split()
            if in_answer and value:
                addresses.append(value[0])
        elif line.startswith("**") or line.startswith(";;") or line.startswith("nslookup:"):
            errors.append(line.strip("* ").strip())
        elif not line:
            continue
    if server and ":" in server and server.count(":") == 1:
        server = server.split(":")[0]
    return Lookup(server, addresses, errors)


def nslookup_failure(lookup: Lookup, exit_code: int) -> str:
    text = " ".join(lookup.errors).lower()
    if exit_code == TIMEOUT_EXIT or "timed out" in text or "no servers could be reached" in text \
            or "refused" in text or "unreachable" in text:
        return TIMEOUT
    if "nxdomain" in text or "can't resolve" in text or "can't find" in text:
        return RESOLVE
    return OTHER


# --- response headers (busybox wget -S) -----------------------------------------------------

def served_by(text: str) -> list[str]:
    """Every X-Served-By value in `wget -S` output, in order (one per answered request)."""
    return [m.group(1).strip() for m in re.finditer(r"(?im)^\s*X-Served-By:\s*(\S+)\s*$", text)]


def wget_errors(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip().startswith("wget:")]


# --- kubectl exec ---------------------------------------------------------------------------

KUBECTL_ERRORS = ("Error from server", "error: ", "The connection to the server", "Unable to connect to the server")


def kubectl_error(stderr: str) -> Optional[str]:
    """kubectl's own complaint (the exec never reached the pod), or None.

    `command terminated with exit code N` is not one: it only relays the probe's exit code.
    """
    if "executable file not found" in stderr:
        return None  # the exec worked; the image lacks the tool (the probe reports it)
    for line in stderr.splitlines():
        if line.strip().startswith(KUBECTL_ERRORS):
            return line.strip()
    return None
