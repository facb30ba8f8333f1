"""Backend specifics: Vault/OpenBao policy and versions, AWS error mapping, lazy imports,
and failing closed when a KMS is unreachable."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError  # type: ignore[import-untyped]

from patterns.errors import ConfigurationError, DecryptionError, KmsError
from patterns.kms import AwsKms, VaultTransitKms, rewrap, seal, unseal
from patterns.kms.aws import aws_error
from patterns.kms.environment import aws_from_environment, vault_from_environment
from patterns.kms.explorer import backend_tour
from patterns.kms.protocol import require_tls
from tests.kms_servers import (
    APP_POLICY,
    BaoServer,
    MotoServer,
    free_port,
    moto_kms_server,
    openbao_dev_server,
)

CONTEXT = {"tenant": "acme", "user": "u-1"}
_names = itertools.count(1)


@pytest.fixture(scope="session")
def openbao() -> Iterator[BaoServer]:
    with openbao_dev_server() as server:
        yield server


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    with moto_kms_server() as server:
        yield server


def vault(server: BaoServer, *, app_policy: str | None = APP_POLICY) -> VaultTransitKms:
    return VaultTransitKms.connect(
        server.url, server.app_token, admin_token=server.admin_token, app_policy=app_policy
    )


def test_vault_min_decryption_version_is_enforced_by_the_server(openbao: BaoServer) -> None:
    kms = vault(openbao)
    key_id = kms.create_key(f"backend-{os.getpid()}-{next(_names)}")
    old = seal("value", kms, key_id, CONTEXT)
    kms.rotate_key(key_id)
    new = rewrap(old, kms, CONTEXT)
    kms.set_min_decryption_version(key_id, 2)
    with pytest.raises(KmsError, match="min_decryption_version"):
        unseal(old, kms, CONTEXT)
    assert unseal(new, kms, CONTEXT) == "value"
    assert kms.key_info(key_id).min_decryption_version == 2


def test_vault_disable_needs_an_app_policy(openbao: BaoServer) -> None:
    kms = vault(openbao, app_policy=None)
    key_id = kms.create_key(f"backend-{os.getpid()}-{next(_names)}")
    with pytest.raises(KmsError, match="app_policy"):
        kms.disable_key(key_id)


def test_vault_root_token_is_not_stopped_by_policy_so_the_app_needs_its_own(
    openbao: BaoServer,
) -> None:
    """Why the app token matters: a root token ignores ACL policies, so 'disable' by
    policy only binds an application that runs with its own, non-root token. An application
    running with a root token gets a KmsError from disable_key, not a silent success."""
    admin = VaultTransitKms.connect(
        openbao.url, openbao.root_token, admin_token=openbao.admin_token, app_policy=APP_POLICY
    )
    key_id = admin.create_key(f"backend-{os.getpid()}-{next(_names)}")
    sealed = seal("value", admin, key_id, CONTEXT)
    with pytest.raises(KmsError, match="root token, which no policy binds") as caught:
        admin.disable_key(key_id)
    assert openbao.root_token not in str(caught.value)
    assert unseal(sealed, admin, CONTEXT) == "value"  # what the error warns about
    with pytest.raises(KmsError, match="disabled"):
        unseal(sealed, vault(openbao), CONTEXT)  # the deny is written: bound tokens stop


def test_vault_unreachable_fails_closed() -> None:
    kms = VaultTransitKms.connect(f"http://127.0.0.1:{free_port()}", "token", timeout=1)
    with pytest.raises(KmsError, match="unreachable"):
        kms.generate_data_key("k", CONTEXT)


def test_aws_unreachable_fails_closed() -> None:
    kms = AwsKms.connect(
        region="us-east-1",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with pytest.raises(KmsError, match="unreachable"):
        kms.generate_data_key("k", CONTEXT)


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "AWS wording"}}, "Decrypt")


@pytest.mark.parametrize(
    ("code", "expected", "words"),
    [
        ("InvalidCiphertextException", DecryptionError, "modified"),
        ("IncorrectKeyException", DecryptionError, "another key"),
        ("DisabledException", KmsError, "disabled or pending deletion"),
        ("KMSInvalidStateException", KmsError, "disabled or pending deletion"),
        ("NotFoundException", KmsError, "has no key"),
        ("AccessDeniedException", KmsError, "key policy"),
        ("ThrottlingException", KmsError, "ThrottlingException"),
    ],
)
def test_aws_errors_map_to_our_classes(code: str, expected: type[Exception], words: str) -> None:
    """Real AWS KMS enforces key states that moto does not; this pins how AwsKms reports them."""
    error = aws_error(client_error(code), "decrypt_data_key", "key-1")
    assert isinstance(error, expected)
    assert words in str(error)
    assert "AWS wording" not in str(error)


def test_aws_connection_errors_are_unreachable() -> None:
    error = aws_error(EndpointConnectionError(endpoint_url="http://x"), "decrypt", None)
    assert isinstance(error, KmsError)
    assert "unreachable" in str(error)


def test_aws_key_info_counts_rotations(moto: MotoServer) -> None:
    kms = AwsKms(moto.client())
    key_id = kms.create_key(f"backend-{os.getpid()}-{next(_names)}")
    assert kms.key_info(key_id).latest_version == 1
    assert kms.rotate_key(key_id) == 2
    with pytest.raises(ConfigurationError):
        kms.create_key("bad name!")


def test_the_package_imports_without_hvac_or_boto3() -> None:
    code = (
        "import sys; sys.modules['hvac'] = None; sys.modules['boto3'] = None\n"
        "from patterns.kms import VaultTransitKms, AwsKms, LocalKms\n"
        "from patterns.errors import ConfigurationError\n"
        "for connect in (lambda: VaultTransitKms.connect('http://127.0.0.1:1', 't'),\n"
        "                lambda: AwsKms.connect(region='us-east-1')):\n"
        "    try:\n"
        "        connect()\n"
        "    except ConfigurationError as error:\n"
        "        print('ok', 'pip install' in str(error))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["ok", "True", "ok", "True"]


def test_environment_selects_nothing_by_default() -> None:
    assert vault_from_environment({}) is None
    assert aws_from_environment({}) is None
    assert vault_from_environment({"VAULT_ADDR": "http://x", "VAULT_TOKEN": "t"}) is None


def test_the_tour_runs_on_openbao_from_environment_variables(openbao: BaoServer) -> None:
    kms = vault_from_environment(
        {
            "PATTERNS_VAULT_ADDR": openbao.url,
            "PATTERNS_VAULT_TOKEN": openbao.app_token,
            "PATTERNS_VAULT_ADMIN_TOKEN": openbao.admin_token,
            "PATTERNS_VAULT_APP_POLICY": APP_POLICY,
        }
    )
    assert kms is not None
    lines = backend_tour(kms, f"tour-{os.getpid()}-{next(_names)}")
    assert lines[1].endswith("match=True")
    assert lines[2:] == [
        "wrong tenant: refused (DecryptionError)",
        "rotated to version 2; rewrapped to 2",
        "after rewrap: readable",
        "key disabled: refused (KmsError)",
        "key enabled again: readable",
    ]


def test_the_tour_runs_on_moto_from_environment_variables(
    moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    kms = aws_from_environment(
        {"PATTERNS_AWS_KMS_REGION": "us-east-1", "PATTERNS_AWS_KMS_ENDPOINT": moto.url}
    )
    assert kms is not None
    lines = backend_tour(kms, f"tour-{os.getpid()}-{next(_names)}")
    assert lines[2] == "wrong tenant: refused (DecryptionError)"
    assert lines[3] == "rotated to version 2; rewrapped to None"
    assert lines[5] == "key disabled: readable"  # moto does not enforce DisableKey; AWS does


def test_vault_refuses_to_rewrite_a_policy_it_cannot_parse(openbao: BaoServer) -> None:
    """Fail closed: overwriting an unreadable policy would drop every other key's grants."""
    import hvac  # type: ignore[import-untyped]

    admin = hvac.Client(url=openbao.url, token=openbao.root_token)
    name = f"hcl-policy-{next(_names)}"
    hcl = 'path "secret/*" { capabilities = ["read"] }'
    admin.sys.create_or_update_policy(name=name, policy=hcl)
    kms = VaultTransitKms.connect(openbao.url, openbao.root_token, app_policy=name)
    key_id = f"backend-{os.getpid()}-{next(_names)}"
    with pytest.raises(KmsError, match="not a JSON policy"):
        kms.create_key(key_id)
    assert admin.sys.read_policy(name=name)["data"]["rules"] == hcl
    assert kms.key_info(key_id).enabled is False  # unknown access reads as not usable


def test_vault_creates_a_missing_app_policy(openbao: BaoServer) -> None:
    name = f"fresh-policy-{next(_names)}"
    kms = VaultTransitKms.connect(
        openbao.url, openbao.app_token, admin_token=openbao.root_token, app_policy=name
    )
    key_id = kms.create_key(f"backend-{os.getpid()}-{next(_names)}")
    assert kms.key_info(key_id).enabled is True
    # The app token does not carry the fresh policy: the deny is written, never "confirmed".
    with pytest.raises(KmsError, match=f"does not carry policy '{name}'"):
        kms.disable_key(key_id)
    assert kms.key_info(key_id).enabled is False


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://vault.example.com:8200", True),
        ("http://127.0.0.1:8200", True),
        ("http://localhost:8200", True),
        ("http://[::1]:8200", True),
        ("http://vault.internal:8200", False),
        ("http://10.0.0.5:8200", False),
        ("ftp://vault.example.com", False),
        ("vault.example.com", False),
    ],
)
def test_plain_http_is_refused_off_this_machine(url: str, allowed: bool) -> None:
    if allowed:
        require_tls(url, service="Vault")
        return
    with pytest.raises(ConfigurationError):
        require_tls(url, service="Vault")


def test_connect_refuses_plain_http_to_a_remote_kms() -> None:
    with pytest.raises(ConfigurationError, match="https"):
        VaultTransitKms.connect("http://vault.internal:8200", "token")
    with pytest.raises(ConfigurationError, match="https"):
        AwsKms.connect(region="us-east-1", endpoint_url="http://kms.internal")
    kms = VaultTransitKms.connect("http://vault.internal:8200", "token", allow_insecure=True)
    assert isinstance(kms, VaultTransitKms)


def test_vault_wrong_mount_is_a_kms_error(openbao: BaoServer) -> None:
    kms = VaultTransitKms.connect(openbao.url, openbao.root_token, mount="secret")
    with pytest.raises(KmsError):
        kms.generate_data_key("anything", CONTEXT)
    with pytest.raises(KmsError):
        kms.key_info("anything")
