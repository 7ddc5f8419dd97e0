"""The OpenID Connect documents the lab's NGINX serves: Dex under kkp.lab/dex and the own provider sso.kkp.lab.

Documents are fetched as the AUTH checks fetch them (the suite's HTTPS probe, verifying against the
lab CA bundle, dialling the ingress address with the name as SNI and Host).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from kkp_readiness.lab import Lab
from kkp_readiness.lab.ca import LabCA, utcnow
from kkp_readiness.lab.ingress_part import IdentityPlan, ServerBlock, oidc_documents, render_nginx_conf, rsa_jwk
from kkp_readiness.lab.topology import BASE_DOMAIN, INGRESS_ADDRESS, OIDC_PROVIDER_NAME
from kkp_readiness.probes.http import JsonAnswer, fetch_json

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def _get(state: dict[str, Any], url: str) -> JsonAnswer:
    return fetch_json(url, INGRESS_ADDRESS, timeout=3.0, ca_bundle=state["ca_bundle"])


def _dex(state: dict[str, Any]) -> JsonAnswer:
    return _get(state, f"https://{BASE_DOMAIN}:{state['ingress']['https_port']}/dex/.well-known/openid-configuration")


def _provider(state: dict[str, Any]) -> JsonAnswer:
    port = state["ingress"]["https_port"]
    return _get(state, f"https://{OIDC_PROVIDER_NAME}:{port}/realms/kkp/.well-known/openid-configuration")


def _b64_int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")






# --- healthy -------------------------------------------------------------------------------------------


def test_dex_declares_the_url_it_is_served_under(healthy_lab: Lab) -> None:
    state = healthy_lab.state
    assert state is not None
    base = f"https://{BASE_DOMAIN}:{state['ingress']['https_port']}/dex"
    answer = _dex(state)
    assert answer.verified
    assert answer.document is not None
    assert answer.document["issuer"] == base
    assert answer.document["jwks_uri"] == f"{base}/keys"
    keys = _get(state, answer.document["jwks_uri"]).document
    assert keys is not None
    assert [key["use"] for key in keys["keys"]] == ["sig"]


def test_own_provider_serves_discovery_and_real_rsa_public_keys(healthy_lab: Lab) -> None:
    state = healthy_lab.state
    assert state is not None
    realm = f"https://{OIDC_PROVIDER_NAME}:{state['ingress']['https_port']}/realms/kkp"
    document = _provider(state).document
    assert document is not None
    assert document["issuer"] == realm
    assert document["authorization_endpoint"] == f"{realm}/protocol/openid-connect/auth"
    assert document["token_endpoint"] == f"{realm}/protocol/openid-connect/token"
    assert document["jwks_uri"] == f"{realm}/protocol/openid-connect/certs"
    jwks = _get(state, document["jwks_uri"]).document
    assert jwks is not None
    assert [(key["use"], key["alg"]) for key in jwks["keys"]] == [("sig", "RS256"), ("enc", "RSA-OAEP")]
    for key in jwks["keys"]:
        assert not PRIVATE_MEMBERS & set(key)
        public = rsa.RSAPublicNumbers(_b64_int(key["e"]), _b64_int(key["n"])).public_key()
        assert public.key_size == 2048
        assert rsa_jwk(public, key["use"])["kid"] == key["kid"]
    assert len({key["kid"] for key in jwks["keys"]}) == 2


def test_own_provider_has_its_own_certificate(healthy_lab: Lab, served_chain) -> None:
    state = healthy_lab.state
    assert state is not None
    leaf = served_chain(state["ingress"]["https_port"], OIDC_PROVIDER_NAME, cafile=Path(state["root_ca"]))[0]
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [OIDC_PROVIDER_NAME]


def test_own_provider_name_has_an_explicit_record(healthy_lab: Lab, resolve) -> None:
    state = healthy_lab.state
    assert state is not None
    for server in (state["dns"]["primary"], state["dns"]["secondary"]):
        assert resolve(server, OIDC_PROVIDER_NAME) == [INGRESS_ADDRESS]


# --- faults ----------------------------------------------------------------------------------------------


def test_identity_faults_change_only_what_they_name(start_lab) -> None:
    state = start_lab("dex-issuer-mismatch", "oidc-issuer-mismatch", "oidc-no-signing-keys")
    port = state["ingress"]["https_port"]
    dex = _dex(state).document
    assert dex is not None
    assert dex["issuer"] == f"https://{BASE_DOMAIN}:{port}/dex/"
    assert dex["token_endpoint"] == f"https://{BASE_DOMAIN}:{port}/dex/token"
    provider = _provider(state).document
    assert provider is not None
    assert provider["issuer"] == f"http://{OIDC_PROVIDER_NAME}:{port}/realms/kkp"
    assert provider["jwks_uri"].startswith(f"https://{OIDC_PROVIDER_NAME}:{port}/")
    jwks = _get(state, provider["jwks_uri"]).document
    assert jwks is not None
    assert [key["use"] for key in jwks["keys"]] == ["enc"]


def test_ingress_certificate_faults_leave_the_own_provider_alone(start_lab) -> None:
    state = start_lab("cert-expired")
    assert _dex(state).certificate_error == "certificate verify failed: certificate has expired"
    provider = _provider(state)
    assert provider.verified
    assert provider.document is not None


# --- configuration, without NGINX -------------------------------------------------------------------------


def test_documents_go_into_their_server_block_only(tmp_path: Path) -> None:
    ca = LabCA(tmp_path)
    leaf = ca.issue_leaf(["kkp.lab"], utcnow(), utcnow() + dt.timedelta(days=1))
    provider = ca.issue_leaf([OIDC_PROVIDER_NAME], utcnow(), utcnow() + dt.timedelta(days=1), stem="sso")
    blocks = [(ServerBlock(), leaf), (ServerBlock(OIDC_PROVIDER_NAME), provider)]
    files = {"_": {"/dex/.well-known/openid-configuration": tmp_path / "dex.json"},
             OIDC_PROVIDER_NAME: {"/realms/kkp/protocol/openid-connect/certs": tmp_path / "certs.json"}}
    conf = render_nginx_conf(tmp_path, 8443, blocks, allow_weak=False, as_root=False, documents=files)
    default, sso = conf.split(f"server_name {OIDC_PROVIDER_NAME};")
    dex_line = f"location = /dex/.well-known/openid-configuration {{ default_type application/json; " \
               f"alias {tmp_path / 'dex.json'}; }}"
    assert dex_line in default
    assert dex_line not in sso
    assert f"alias {tmp_path / 'certs.json'};" in sso
    assert "certs.json" not in default


def test_issuer_templates_take_the_port_and_endpoints_stay_where_they_are_served() -> None:
    plan = IdentityPlan()
    plan.dex_issuer += "/"
    documents = oidc_documents(plan, 31443, {"keys": []}, {"keys": []})
    dex = documents["_"]["/dex/.well-known/openid-configuration"]
    assert dex["issuer"] == "https://kkp.lab:31443/dex/"
    assert dex["authorization_endpoint"] == "https://kkp.lab:31443/dex/auth"
    realm = documents[OIDC_PROVIDER_NAME]["/realms/kkp/.well-known/openid-configuration"]
    assert realm["issuer"] == "https://sso.kkp.lab:31443/realms/kkp"
    assert json.loads(json.dumps(documents)) == documents


def test_jwk_kid_is_the_rfc7638_thumbprint() -> None:
    # The example key of RFC 7638, section 3.1, and its published thumbprint.
    n = ("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3"
         "oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZ"
         "Hzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kE"
         "gU8awapJzKnqDKgw")
    key = rsa.RSAPublicNumbers(_b64_int("AQAB"), _b64_int(n)).public_key()
    jwk = rsa_jwk(key, "sig")
    assert jwk["kid"] == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    assert (jwk["n"], jwk["e"], jwk["kty"], jwk["use"], jwk["alg"]) == (n, "AQAB", "RSA", "sig", "RS256")
