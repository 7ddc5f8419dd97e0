"""The profile loader: composition, validation errors that name file, line and field, secrets."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kkp_readiness import redact
from kkp_readiness.errors import ProfileError
from kkp_readiness.profile import load_profile

MINIMAL = """\
    name: site
    base_domain: kubermatic.example.com
    ingress: {addresses: [192.0.2.10]}
    dns: {servers: [192.0.2.53]}
    seeds: [{name: seed, expose_strategy: NodePort, nodeport_proxy_addresses: [192.0.2.11]}]
"""


@pytest.fixture
def write(tmp_path: Path):
    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return _write


@pytest.fixture(autouse=True)
def _forget_secrets():
    yield
    redact.clear()


def error_of(path: Path) -> str:
    with pytest.raises(ProfileError) as caught:
        load_profile(str(path))
    return str(caught.value)


def test_minimal_profile_loads_with_defaults(write) -> None:
    loaded = load_profile(str(write("site.yaml", MINIMAL)))
    assert loaded.profile.certificates.min_days_left == 30
    assert loaded.profile.ingress_names() == [
        "kubermatic.example.com", "grafana.kubermatic.example.com",
        "prometheus.kubermatic.example.com", "alertmanager.kubermatic.example.com",
    ]
    assert len(loaded.sha256) == 64


def test_unknown_key_names_file_line_and_path(write) -> None:
    path = write("site.yaml", MINIMAL + "    certificates: {min_days_lef: 10}\n")
    message = error_of(path)
    assert "site.yaml:6" in message
    assert "certificates.min_days_lef" in message
    assert "unknown key" in message


def test_wrong_type_is_reported_with_the_value(write) -> None:
    path = write("site.yaml", MINIMAL.replace("[192.0.2.10]", "[not-an-ip]"))
    message = error_of(path)
    assert "ingress.addresses[0]" in message
    assert "not an IP address" in message


def test_missing_field_is_reported(write) -> None:
    path = write("site.yaml", MINIMAL.replace("    base_domain: kubermatic.example.com\n", ""))
    assert "base_domain: required field is missing" in error_of(path)


def test_yaml_syntax_error_names_line_and_column(write) -> None:
    path = write("site.yaml", "name: site\nbase_domain: [unclosed\n")
    message = error_of(path)
    assert "site.yaml:3" in message or "site.yaml:2" in message
    assert "YAML syntax error" in message


def test_extends_merges_and_child_wins(write) -> None:
    write("parent.yaml", MINIMAL + "    certificates: {min_days_left: 60, port: 8443}\n")
    child = write("child.yaml", "extends: parent\nname: child\ncertificates: {min_days_left: 10}\n")
    loaded = load_profile(str(child))
    assert loaded.profile.name == "child"
    assert loaded.profile.certificates.min_days_left == 10
    assert loaded.profile.certificates.port == 8443
    assert [f.path.name for f in loaded.files] == ["parent.yaml", "child.yaml"]


def test_error_in_parent_names_the_parent_file(write) -> None:
    write("parent.yaml", MINIMAL + "    dns_typo: 1\n")
    child = write("child.yaml", "extends: parent\nname: child\n")
    assert "parent.yaml:6: dns_typo" in error_of(child)


def test_circular_extends_is_detected(write) -> None:
    write("a.yaml", "extends: b\nname: a\n")
    b = write("b.yaml", "extends: a\nname: b\n")
    message = error_of(b)
    assert "circular extends" in message
    assert "a.yaml" in message
    assert "b.yaml" in message


def test_unknown_parent_lists_known_profiles(write) -> None:
    path = write("site.yaml", "extends: nosuchprofile\n" + textwrap.dedent(MINIMAL))
    assert "no profile named 'nosuchprofile'" in error_of(path)


def test_inline_secret_is_refused(write) -> None:
    path = write("site.yaml", MINIMAL + "    storage: {s3_secret_key: hunter2-plain}\n")
    message = error_of(path)
    assert "storage.s3_secret_key" in message
    assert "must be references" in message
    assert "hunter2-plain" not in message


def test_unset_env_secret_is_a_clear_error(write, monkeypatch) -> None:
    monkeypatch.delenv("KKP_TEST_UNSET_SECRET", raising=False)
    path = write("site.yaml", MINIMAL + "    storage: {s3_secret_key: '${env:KKP_TEST_UNSET_SECRET}'}\n")
    message = error_of(path)
    assert "site.yaml:6: storage.s3_secret_key" in message
    assert "environment variable KKP_TEST_UNSET_SECRET is not set" in message


def test_secrets_resolve_and_are_registered_for_scrubbing(write, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("KKP_TEST_SECRET", "env-secret-value")
    (tmp_path / "key.txt").write_text("file-secret-value\n")
    path = write("site.yaml", MINIMAL + "    storage: {s3_access_key: '${file:key.txt}', "
                 "s3_secret_key: '${env:KKP_TEST_SECRET}'}\n")
    loaded = load_profile(str(path))
    assert loaded.profile.storage.s3_secret_key.reveal() == "env-secret-value"
    assert loaded.profile.storage.s3_access_key.reveal() == "file-secret-value"
    assert "env-secret-value" not in repr(loaded.profile)
    assert redact.redact("x env-secret-value y file-secret-value") == f"x {redact.MASK} y {redact.MASK}"


def test_lab_reference_without_a_running_lab_says_how_to_start_it(write, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("KKP_READINESS_LAB_DIR", str(tmp_path / "no-lab"))
    path = write("site.yaml", MINIMAL.replace("[192.0.2.53]", "['${lab:dns.primary}']"))
    assert "kkp-readiness lab up" in error_of(path)


def test_seed_without_proxy_address_under_nodeport_is_invalid(write) -> None:
    path = write("site.yaml", MINIMAL.replace(", nodeport_proxy_addresses: [192.0.2.11]", ""))
    assert "nodeport_proxy_addresses must name" in error_of(path)


def test_facets_follow_the_profile(write) -> None:
    loaded = load_profile(str(write("site.yaml", MINIMAL)))
    facets = loaded.profile.facets()
    assert facets["expose_strategy"] == {"NodePort"}
    assert facets["dns_wildcard"] == {True}


@pytest.mark.parametrize("name", ["vsphere", "azure", "openstack", "onprem-metallb"])
def test_shipped_templates_validate(name: str, monkeypatch) -> None:
    for variable in ("VSPHERE_PASSWORD", "AZURE_CLIENT_SECRET", "OS_APPLICATION_CREDENTIAL_SECRET",
                     "MIRROR_PASSWORD", "KKP_EE_PULL_SECRET", "PROXY_CREDENTIALS"):
        monkeypatch.setenv(variable, f"placeholder-{variable}")
    loaded = load_profile(name)
    assert loaded.profile.name == name
    assert loaded.files[0].path.name == "base.yaml"


def test_dns_server_must_be_an_address(write) -> None:
    path = write("site.yaml", MINIMAL.replace("[192.0.2.53]", "[ns1.example.com]"))
    assert "dns.servers[0]" in error_of(path)


def test_relative_ca_bundle_is_relative_to_the_file_that_sets_it(write, tmp_path) -> None:
    (tmp_path / "sub").mkdir()
    write("sub/parent.yaml", MINIMAL + "    certificates: {ca_bundle: ca.pem}\n")
    child = write("child.yaml", "extends: sub/parent.yaml\nname: child\n")
    loaded = load_profile(str(child))
    resolved = loaded.resolve_path(("certificates", "ca_bundle"), loaded.profile.certificates.ca_bundle)
    assert resolved == str(tmp_path / "sub" / "ca.pem")


def test_duplicate_keys_are_refused(write) -> None:
    path = write("site.yaml", MINIMAL + "    certificates: {min_days_left: 60}\n    certificates: {port: 8443}\n")
    message = error_of(path)
    assert "duplicate key 'certificates'" in message
    assert "site.yaml:7" in message


@pytest.mark.parametrize("field", ["password: hunter2-inline", "key_passphrase: 12345678"])
def test_inline_secret_value_is_never_echoed(write, field: str) -> None:
    path = write("site.yaml", MINIMAL + f"    bastion: {{host: 192.0.2.5, user: u, {field}}}\n")
    message = error_of(path)
    value = field.split(": ")[1]
    assert value not in message


def test_credentials_in_urls_are_refused(write) -> None:
    path = write("site.yaml", MINIMAL + "    proxy: {http: 'http://user:pr0xyPass@proxy.example.com:3128'}\n")
    message = error_of(path)
    assert "proxy.http" in message
    assert "pr0xyPass" not in message


def test_reference_in_a_plain_field_is_refused(write) -> None:
    path = write("site.yaml", MINIMAL + "    description: '${env:HOME}/x'\n")
    assert "only allowed in secret fields" in error_of(path)


def test_child_profile_is_named_after_its_file(write) -> None:
    write("parent.yaml", MINIMAL)
    child = write("my-site.yaml", "extends: parent\n")
    assert load_profile(str(child)).profile.name == "my-site"


def test_lab_references_keep_their_types(write, tmp_path, monkeypatch) -> None:
    import json

    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "state.json").write_text(json.dumps({"ingress": {"https_port": 8443}, "v": "2.28"}))
    monkeypatch.setenv("KKP_READINESS_LAB_DIR", str(tmp_path / "lab"))
    path = write("site.yaml", MINIMAL + "    certificates: {port: '${lab:ingress.https_port}'}\n"
                 "    kkp: {version: '${lab:v}'}\n    description: 'port ${lab:ingress.https_port}'\n")
    loaded = load_profile(str(path))
    assert loaded.profile.certificates.port == 8443
    assert loaded.profile.kkp.version == "2.28"
    assert loaded.profile.description == "port 8443"
