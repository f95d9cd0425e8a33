"""The bare Service name on the node is decided by what it resolves to: only the Service's own address means
the node uses kube-dns. A network whose resolver answers every name (search domain + wildcard DNS, as
hotel and campus networks have) is the expected case, not a broken lab. Output: curl's -w %{remote_ip}."""
from labkit.backends import CommandResult as Result
from labkit.checks import FAIL, PASS
from labkit.verify.checks import s8
from tests.t0.test_verify_probes import lab  # noqa: F401 (fixture)

SERVICE_IP = "10.103.51.48"


def test_a_wildcard_resolver_on_the_laptops_network_is_not_a_failure(lab):
    # curl reached the captive portal's web server: exit 0, its address on stdout
    portal = s8.decide_node_name(Result(0, "172.31.255.1", "", 0.2), lab, 4, SERVICE_IP)
    assert portal.status == PASS and "resolves to 172.31.255.1" in portal.detail
    # resolved by the hotel's DNS, then nothing answered within curl's -m
    hangs = s8.decide_node_name(Result(28, "203.0.113.7", "curl: (28) Connection timed out after 4001 milliseconds",
                                           4.0), lab, 4, SERVICE_IP)
    assert hangs.status == PASS


def test_the_service_address_on_the_node_still_fails(lab):
    out = s8.decide_node_name(Result(0, SERVICE_IP, "", 0.1), lab, 4, SERVICE_IP)
    assert out.status == FAIL and out.key == "node-resolves-cluster"
    refused = s8.decide_node_name(Result(7, SERVICE_IP, "curl: (7) Failed to connect to inv port 80: Connection refused",
                                             0.1), lab, 4, SERVICE_IP)
    assert refused.status == FAIL
