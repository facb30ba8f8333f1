"""Vault/OpenBao tokens and policies, on a real OpenBao dev server (review finding).

Routine data-key calls work with the application's scoped token alone; key administration
(rotate, minimum decryption version, disable, enable, destroy, create) with that token is
refused by Vault and reported as a KmsError naming the capability it needs, and changes
nothing; the same calls work with a non-root admin token bound to the admin policy of
docs/kms.md. ``disable_key`` confirms with Vault that the application's token is bound by
the deny, and raises instead of reporting a disable that a root token, or another policy of
the token, would ignore. The root token only sets the server up.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import hvac  # type: ignore[import-untyped]
import pytest

from patterns.errors import KmsError
from patterns.kms import VaultTransitKms, rewrap, seal, unseal
from tests.kms_servers import ADMIN_POLICY, APP_POLICY, BaoServer, openbao_dev_server

CONTEXT = {"tenant": "acme", "user": "u-1"}
_names = itertools.count(1)


@pytest.fixture(scope="module")
def openbao() -> Iterator[BaoServer]:
    with openbao_dev_server() as server:
        yield server


def _root(server: BaoServer) -> hvac.Client:
    """Only for setting up tokens and policies, as an operator would once."""
    return hvac.Client(url=server.url, token=server.root_token, timeout=5)


def _token(server: BaoServer, *policies: str, default_policy: bool = True) -> str:
    created = _root(server).auth.token.create(
        policies=list(policies), no_default_policy=not default_policy, ttl="10m"
    )
    return str(created["auth"]["client_token"])


def _admin(server: BaoServer, app_token: str | None = None) -> VaultTransitKms:
    return VaultTransitKms.connect(
        server.url,
        app_token or server.app_token,
        admin_token=server.admin_token,
        app_policy=APP_POLICY,
    )


def _new_key(server: BaoServer) -> str:
    return _admin(server).create_key(f"policy-{os.getpid()}-{next(_names)}")


def test_the_tokens_the_tests_use_are_not_root(openbao: BaoServer) -> None:
    for token in (openbao.app_token, openbao.admin_token):
        policies = hvac.Client(url=openbao.url, token=token).auth.token.lookup_self()["data"]
        assert "root" not in policies["policies"]
    admin_policies = hvac.Client(url=openbao.url, token=openbao.admin_token).lookup_token()
    assert ADMIN_POLICY in admin_policies["data"]["policies"]


def test_routine_calls_need_only_the_application_token(openbao: BaoServer) -> None:
    key_id = _new_key(openbao)
    routine = VaultTransitKms.connect(openbao.url, openbao.app_token, app_policy=APP_POLICY)
    sealed = seal("value", routine, key_id, CONTEXT)
    assert unseal(sealed, routine, CONTEXT) == "value"
    _admin(openbao).rotate_key(key_id)
    moved = rewrap(sealed, routine, CONTEXT)  # rewrap is routine too: update on rewrap/<key>
    assert unseal(moved, routine, CONTEXT) == "value"


@pytest.mark.parametrize(
    ("operation", "needs"),
    [
        ("rotate_key", "sys/policy/patterns-kms-app"),
        ("set_min_decryption_version", "update on transit/keys/{key}/config"),
        ("disable_key", "read on transit/keys/{key}"),
        ("enable_key", "read on transit/keys/{key}"),
        ("destroy_key", "update on transit/keys/{key}/config"),
        ("create_key", "create and update on transit/keys/{key}-new"),
    ],
)
def test_administration_with_the_application_token_is_refused(
    openbao: BaoServer, operation: str, needs: str
) -> None:
    key_id = _new_key(openbao)
    sealed = seal("value", _admin(openbao), key_id, CONTEXT)
    routine = VaultTransitKms.connect(openbao.url, openbao.app_token, app_policy=APP_POLICY)
    calls: dict[str, Callable[[], object]] = {
        "rotate_key": lambda: routine.rotate_key(key_id),
        "set_min_decryption_version": lambda: routine.set_min_decryption_version(key_id, 1),
        "disable_key": lambda: routine.disable_key(key_id),
        "enable_key": lambda: routine.enable_key(key_id),
        "destroy_key": lambda: routine.destroy_key(key_id),
        "create_key": lambda: routine.create_key(f"{key_id}-new"),
    }
    with pytest.raises(KmsError) as caught:
        calls[operation]()
    message = str(caught.value)
    assert needs.format(key=key_id) in message
    assert "admin token" in message
    assert openbao.app_token not in message
    # Nothing changed on the server: same versions, still enabled, still readable.
    info = _admin(openbao).key_info(key_id)
    assert (info.latest_version, info.min_decryption_version, info.enabled) == (1, 1, True)
    assert unseal(sealed, routine, CONTEXT) == "value"


def test_administration_works_with_a_non_root_admin_token(openbao: BaoServer) -> None:
    admin = _admin(openbao)
    key_id = _new_key(openbao)
    old = seal("value", admin, key_id, CONTEXT)
    assert admin.rotate_key(key_id) == 2
    new = rewrap(old, admin, CONTEXT)
    admin.set_min_decryption_version(key_id, 2)
    with pytest.raises(KmsError, match="min_decryption_version"):
        unseal(old, admin, CONTEXT)
    admin.disable_key(key_id)  # confirmed: the application's token is now denied
    assert admin.key_info(key_id).enabled is False
    with pytest.raises(KmsError, match="disabled"):
        unseal(new, admin, CONTEXT)
    admin.enable_key(key_id)
    assert unseal(new, admin, CONTEXT) == "value"
    admin.destroy_key(key_id)
    with pytest.raises(KmsError):
        unseal(new, admin, CONTEXT)


def _broad_policy(server: BaoServer) -> str:
    name = f"broad-transit-{next(_names)}"
    _root(server).sys.create_or_update_policy(
        name=name, policy={"path": {"transit/*": {"capabilities": ["update"]}}}
    )
    return name


def test_the_deny_wins_over_a_broader_grant_in_another_policy(openbao: BaoServer) -> None:
    """Vault's rule: an explicit deny in any of a token's policies beats every grant."""
    kms = _admin(openbao, _token(openbao, APP_POLICY, _broad_policy(openbao)))
    key_id = _new_key(openbao)
    sealed = seal("value", kms, key_id, CONTEXT)
    kms.disable_key(key_id)
    with pytest.raises(KmsError, match="disabled"):
        unseal(sealed, kms, CONTEXT)


def test_disable_is_not_reported_for_a_token_the_policy_does_not_bind(
    openbao: BaoServer,
) -> None:
    kms = _admin(openbao, _token(openbao, _broad_policy(openbao)))  # not bound by APP_POLICY
    key_id = _new_key(openbao)
    sealed = seal("value", kms, key_id, CONTEXT)
    with pytest.raises(KmsError, match="does not carry policy 'patterns-kms-app'"):
        kms.disable_key(key_id)
    assert unseal(sealed, kms, CONTEXT) == "value"  # exactly what the error warns about
    with pytest.raises(KmsError, match="disabled"):
        unseal(sealed, _admin(openbao), CONTEXT)  # a token bound by the policy stops


def test_disable_fails_closed_when_vault_will_not_say_what_the_app_can_do(
    openbao: BaoServer,
) -> None:
    app_token = _token(openbao, APP_POLICY, default_policy=False)  # no capabilities-self
    kms = _admin(openbao, app_token)
    key_id = _new_key(openbao)
    with pytest.raises(KmsError, match="treat the key as still usable"):
        kms.disable_key(key_id)


def test_the_tour_reports_a_disable_that_a_root_token_ignores(openbao: BaoServer) -> None:
    from patterns.kms.explorer import backend_tour

    kms = VaultTransitKms.connect(
        openbao.url, openbao.root_token, admin_token=openbao.admin_token, app_policy=APP_POLICY
    )
    lines = backend_tour(kms, f"tour-root-{os.getpid()}-{next(_names)}")
    assert any(line.startswith("disable not confirmed:") and "root" in line for line in lines)
    assert "key disabled: readable" in lines
    assert openbao.root_token not in "\n".join(lines)


# -- review finding F3: the check must be about the deployed application token ------------------


def _accessor(server: BaoServer, token: str) -> str:
    looked_up = hvac.Client(url=server.url, token=token).auth.token.lookup_self()
    return str(looked_up["data"]["accessor"])


def _legacy_app_token(server: BaoServer) -> str:
    """A deployed app token with a broad transit grant and no app_policy (the misconfiguration
    disable_key must catch)."""
    return _token(server, _broad_policy(server))


def test_disable_with_the_admin_token_as_client_is_not_confirmed(openbao: BaoServer) -> None:
    """Repro r4: PATTERNS_VAULT_TOKEN set to the admin token. capabilities-self then asks about
    the admin, which has no transit grant, so the old check said 'deny' and reported success
    while the deployed app token kept decrypting."""
    deployed = VaultTransitKms.connect(openbao.url, _legacy_app_token(openbao))
    operator = VaultTransitKms.connect(
        openbao.url, openbao.admin_token, admin_token=openbao.admin_token, app_policy=APP_POLICY
    )
    key_id = operator.create_key(f"same-{os.getpid()}-{next(_names)}")
    data_key = deployed.generate_data_key(key_id, CONTEXT)
    with pytest.raises(KmsError, match="client token is the admin token") as caught:
        operator.disable_key(key_id)
    assert "treat the key as still usable" in str(caught.value)
    assert openbao.admin_token not in str(caught.value)
    # Exactly what the error warns about: the deployed token is not bound.
    assert deployed.decrypt_data_key(data_key.wrapped, CONTEXT) == data_key.plaintext


def test_without_an_admin_token_disable_is_refused(openbao: BaoServer) -> None:
    """admin_client None: the 'application' token administers its own policy, so it could undo
    the deny; the check cannot be about a separate deployed token."""
    key_id = _new_key(openbao)
    alone = VaultTransitKms.connect(openbao.url, openbao.app_token, app_policy=APP_POLICY)
    with pytest.raises(KmsError):
        alone.disable_key(key_id)  # refused by Vault: the app token cannot write its policy
    writer = f"app-writes-own-policy-{next(_names)}"
    _root(openbao).sys.create_or_update_policy(
        name=writer,
        policy={
            "path": {
                f"sys/policy/{APP_POLICY}": {"capabilities": ["read", "update"]},
                "transit/keys/*": {"capabilities": ["read"]},
            }
        },
    )
    both = VaultTransitKms.connect(
        openbao.url, _token(openbao, APP_POLICY, writer), app_policy=APP_POLICY
    )
    with pytest.raises(KmsError, match="client token is the admin token"):
        both.disable_key(key_id)


def test_the_accessor_check_is_made_on_the_deployed_token(openbao: BaoServer) -> None:
    """With app_token_accessor, the admin asks Vault about the deployed token itself."""
    legacy = _legacy_app_token(openbao)
    operator = VaultTransitKms.connect(
        openbao.url,
        openbao.admin_token,
        admin_token=openbao.admin_token,
        app_policy=APP_POLICY,
        app_token_accessor=_accessor(openbao, legacy),
    )
    key_id = operator.create_key(f"accessor-{os.getpid()}-{next(_names)}")
    with pytest.raises(KmsError, match="does not carry policy 'patterns-kms-app'"):
        operator.disable_key(key_id)
    operator.enable_key(key_id)

    proper = VaultTransitKms.connect(
        openbao.url,
        openbao.admin_token,
        admin_token=openbao.admin_token,
        app_policy=APP_POLICY,
        app_token_accessor=_accessor(openbao, openbao.app_token),
    )
    app = VaultTransitKms.connect(openbao.url, openbao.app_token)
    sealed = seal("value", app, key_id, CONTEXT)
    proper.disable_key(key_id)  # confirmed for the deployed token, from the admin side
    with pytest.raises(KmsError, match="disabled"):
        unseal(sealed, app, CONTEXT)


def test_an_app_token_that_can_rewrite_its_policy_is_not_confirmed(openbao: BaoServer) -> None:
    writer = f"app-policy-writer-{next(_names)}"
    _root(openbao).sys.create_or_update_policy(
        name=writer,
        policy={"path": {f"sys/policy/{APP_POLICY}": {"capabilities": ["read", "update"]}}},
    )
    app_token = _token(openbao, APP_POLICY, writer)
    operator = VaultTransitKms.connect(
        openbao.url,
        openbao.admin_token,
        admin_token=openbao.admin_token,
        app_policy=APP_POLICY,
        app_token_accessor=_accessor(openbao, app_token),
    )
    key_id = operator.create_key(f"writer-{os.getpid()}-{next(_names)}")
    with pytest.raises(KmsError, match="can undo the deny"):
        operator.disable_key(key_id)


def test_an_unknown_accessor_fails_closed(openbao: BaoServer) -> None:
    operator = VaultTransitKms.connect(
        openbao.url,
        openbao.admin_token,
        admin_token=openbao.admin_token,
        app_policy=APP_POLICY,
        app_token_accessor="not-an-accessor",
    )
    key_id = operator.create_key(f"no-accessor-{os.getpid()}-{next(_names)}")
    with pytest.raises(KmsError, match="lookup-accessor"):
        operator.disable_key(key_id)
