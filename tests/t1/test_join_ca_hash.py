"""T1: labkit's CA pin equals what kubeadm's documentation computes with openssl, on a CA made by openssl."""
from __future__ import annotations

import subprocess

import pytest

from labkit.cluster import join
from tests.support.env import need_binary

pytestmark = pytest.mark.t1


@pytest.mark.parametrize("key", ["rsa:2048", "ec"])
def test_ca_hash_matches_the_openssl_pipeline_kubeadm_documents(tmp_path, key):
    need_binary("openssl")
    crt, pem_key = tmp_path / "ca.crt", tmp_path / "ca.key"
    if key == "ec":  # another key type: the pin covers whatever SubjectPublicKeyInfo the CA has
        subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(pem_key)], check=True)
        new_key = ["-key", str(pem_key)]
    else:
        new_key = ["-newkey", key, "-nodes", "-keyout", str(pem_key)]
    subprocess.run(["openssl", "req", "-x509", *new_key, "-subj", "/CN=kubernetes", "-days", "3650",
                    "-out", str(crt)], check=True, capture_output=True)
    # kubeadm join's reference (`--discovery-token-ca-cert-hash`): the DER public key, hashed with sha256
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout", "-in", str(crt)], check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, check=True,
                         capture_output=True).stdout
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-hex"], input=der, check=True,
                            capture_output=True).stdout.decode().split()[-1]
    assert join.ca_cert_hash(crt.read_text()) == f"sha256:{digest}"
