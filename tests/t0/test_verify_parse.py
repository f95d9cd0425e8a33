"""Reading the lab's real tool output: ip route, resolv.conf, curl, busybox wget and nslookup, kubectl."""
from labkit.backends import TIMEOUT_EXIT
from labkit.verify import parse
from tests.support.transcript import LAB_RESOLV, LAB_ROUTES, NSLOOKUP_COREDNS, NSLOOKUP_DOWN, NSLOOKUP_NEW
from tests.support.transcript import NSLOOKUP_NXDOMAIN, WGET_S


# busybox 1.28 nslookup (libc resolver): the format most Kubernetes DNS tutorials show.
NSLOOKUP_OLD = """Server:    10.96.0.10
Address 1: 10.96.0.10 kube-dns.kube-system.svc.cluster.local

Name:      inv.default.svc.cluster.local
Address 1: 10.103.51.48 inv.default.svc.cluster.local
"""


def test_routes_find_the_weave_line_of_the_lab():
    routes = {r.dest: r for r in parse.routes(LAB_ROUTES)}
    weave = routes["10.32.0.0/12"]
    assert (weave.dev, weave.src, weave.via) == ("weave", "10.32.0.1", None)
    assert weave.line == "10.32.0.0/12 dev weave proto kernel scope link src 10.32.0.1"
    assert routes["default"].via == "192.168.83.2" and routes["default"].dev == "ens33"
    assert routes["172.17.0.0/16"].dev == "docker0"


def test_routes_with_a_type_word_and_blank_lines():
    routes = parse.routes("\nblackhole 10.32.0.0/12 proto bird\n")
    assert [(r.dest, r.dev) for r in routes] == [("10.32.0.0/12", None)]


def test_resolv_conf_of_the_lab_client():
    conf = parse.resolv_conf(LAB_RESOLV)
    assert conf.nameservers == ["10.96.0.10"]
    assert conf.search == ["default.svc.cluster.local", "svc.cluster.local", "cluster.local", "localdomain"]
    assert conf.options == ["ndots:5"]


def test_resolv_conf_comments_and_last_search_line_win():
    conf = parse.resolv_conf("# written by hand\nnameserver 10.0.2.3 ; the NAT DNS\nsearch a\ndomain localdomain\n")
    assert conf.nameservers == ["10.0.2.3"]
    assert conf.search == ["localdomain"]


def test_nslookup_both_busybox_formats_give_the_cluster_ip():
    for text in (NSLOOKUP_NEW, NSLOOKUP_OLD):
        found = parse.nslookup(text)
        assert found.server == "10.96.0.10"
        assert found.addresses == ["10.103.51.48"]  # the server's own address is not an answer
        assert found.errors == []


def test_nslookup_coredns_answer_with_an_empty_aaaa():
    found = parse.nslookup(NSLOOKUP_COREDNS)
    assert (found.server, found.addresses) == ("10.96.0.10", ["10.103.51.48"])
    assert found.errors == ["Can't find inv.default.svc.cluster.local: No answer"]


def test_nslookup_failures_are_told_apart():
    down = parse.nslookup(NSLOOKUP_DOWN)
    assert down.addresses == [] and parse.nslookup_failure(down, 1) == parse.TIMEOUT
    nx = parse.nslookup(NSLOOKUP_NXDOMAIN)
    assert nx.server == "10.0.2.3" and parse.nslookup_failure(nx, 1) == parse.RESOLVE
    old = parse.nslookup("Server:    10.96.0.10\nAddress 1: 10.96.0.10\n\nnslookup: can't resolve 'inv.default'\n")
    assert parse.nslookup_failure(old, 1) == parse.RESOLVE
    assert parse.nslookup_failure(parse.nslookup(""), TIMEOUT_EXIT) == parse.TIMEOUT


def test_busybox_wget_messages():
    cases = {
        "wget: bad address 'inv'": parse.RESOLVE,
        "wget: can't connect to remote host (10.32.0.6): Connection refused": parse.REFUSED,
        "wget: can't connect to remote host (10.32.0.9): No route to host": parse.UNREACHABLE,
        "wget: can't connect to remote host (10.32.0.9): Network is unreachable": parse.UNREACHABLE,
        "wget: download timed out": parse.TIMEOUT,
        "wget: server returned error: HTTP/1.1 404 Not Found": parse.HTTP,
        'OCI runtime exec failed: exec: "wget": executable file not found in $PATH': parse.MISSING,
    }
    for message, kind in cases.items():
        assert parse.wget_failure(1, message + "\ncommand terminated with exit code 1\n") == kind, message
    assert parse.wget_failure(TIMEOUT_EXIT, "timed out after 10s") == parse.TIMEOUT


def test_curl_exit_codes_and_messages_of_ubuntu_16_04():
    cases = [
        (7, "curl: (7) Failed to connect to 10.32.0.4 port 80: Connection refused", parse.REFUSED),
        (7, "curl: (7) Failed to connect to 10.32.0.4 port 80: No route to host", parse.UNREACHABLE),
        (7, "curl: (7) Failed to connect to 10.32.0.4 port 80 after 0 ms: Couldn't connect to server", parse.UNREACHABLE),
        (28, "curl: (28) Connection timed out after 4001 milliseconds", parse.TIMEOUT),
        (6, "curl: (6) Could not resolve host: inv", parse.RESOLVE),
        (22, "curl: (22) The requested URL returned error: 404 Not Found", parse.HTTP),
        (127, "bash: curl: command not found", parse.MISSING),
        (56, "curl: (56) Recv failure: Connection reset by peer", parse.REFUSED),
        (TIMEOUT_EXIT, "timed out after 10s", parse.TIMEOUT),
        (35, "curl: (35) SSL connect error", parse.OTHER),
    ]
    for code, message, kind in cases:
        assert parse.curl_failure(code, message) == kind, message


def test_served_by_and_wget_errors_from_wget_s_output():
    assert parse.served_by(WGET_S) == ["can-inventory-756c87dc9f-lmxcp", "can-inventory-756c87dc9f-b45ns"]
    assert parse.wget_errors(WGET_S) == ["wget: can't connect to remote host (10.103.51.48): Connection refused"]
    assert parse.served_by("  Server: nginx/1.17.1\n") == []


def test_kubectl_errors_are_not_probe_results():
    assert parse.kubectl_error('Error from server (NotFound): pods "client" not found\n') \
        == 'Error from server (NotFound): pods "client" not found'
    assert parse.kubectl_error("The connection to the server localhost:8080 was refused - did you specify the right "
                               "host or port?\n").startswith("The connection to the server localhost:8080")
    assert parse.kubectl_error('error: unable to upgrade connection: container not found ("client")')
    # The probe's own failure relayed by kubectl is not kubectl's problem.
    assert parse.kubectl_error("wget: bad address 'inv'\ncommand terminated with exit code 1\n") is None
    assert parse.kubectl_error('OCI runtime exec failed: exec failed: container_linux.go:345: starting container '
                               'process caused "exec: \\"wget\\": executable file not found in $PATH": unknown\n'
                               "error: Internal error occurred: ...") is None
