"""Accounts and tokens on a real SQLite file with the real argon2 (a cheap profile, except where noted)."""

from __future__ import annotations

import sqlite3
import stat
import threading
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from app.accounts import (
    ACCOUNT_MIGRATIONS,
    AccountDisabled,
    AccountError,
    AccountLocked,
    AccountStore,
    AuthenticationFailed,
    InvalidAccountField,
    InvalidToken,
    IssuedToken,
    UnknownUser,
    UserExists,
)
from app.migrations import Migrations

PASSWORD = "correct horse battery staple"
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class Clock:
    """A hand-driven clock for lockout and expiry."""

    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "home" / "accounts.sqlite3"


@pytest.fixture
def store(db_path: Path, clock: Clock):
    s = AccountStore(db_path, clock=clock, hasher=CHEAP, max_failures=3, lockout_s=600, session_ttl_hours=8)
    yield s
    s.close()


def _db_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-journal")) if p.exists())


def test_add_get_list(store: AccountStore) -> None:
    bob = store.add_user("bob", PASSWORD, "s", groups=["ops", "Cyber", "ops"])
    store.add_user("alice", PASSWORD, "TS", role="admin")
    assert bob.clearance == "S" and bob.groups == ("Cyber", "ops") and bob.role == "analyst" and not bob.disabled
    assert store.get("bob") == bob
    assert store.get("nobody") is None and store.get("Bob") is None
    assert [u.name for u in store.list_users()] == ["alice", "bob"]
    d = bob.to_dict()
    assert d["groups"] == ["Cyber", "ops"] and d["clearance"] == "S"
    assert not any("password" in key or "hash" in key for key in d)


def test_duplicate_user(store: AccountStore) -> None:
    store.add_user("bob", PASSWORD, "NP")
    with pytest.raises(UserExists, match="'bob'"):
        store.add_user("bob", PASSWORD + "x", "NP")


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"name": "Bob"}, "user name"),
    ({"name": "-bob"}, "user name"),
    ({"name": "bob\n"}, "user name"),
    ({"name": "b" * 65}, "user name"),
    ({"role": "root"}, "role"),
    ({"clearance": "SECRET"}, "clearance"),
    ({"groups": ["ok", "bad group"]}, "groups"),
    ({"groups": "ops"}, "groups"),
    ({"password": "short"}, "password"),
])
def test_invalid_fields(store: AccountStore, kwargs: dict, field: str) -> None:
    args = {"name": "bob", "password": PASSWORD, "clearance": "DR", **kwargs}
    with pytest.raises(InvalidAccountField) as info:
        store.add_user(**args)
    assert info.value.field == field
    assert str(info.value).startswith(f"invalid {field}")
    assert PASSWORD not in str(info.value) and "short" not in str(info.value)
    assert store.list_users() == []


def test_authenticate_and_generic_failure(store: AccountStore) -> None:
    store.add_user("bob", PASSWORD, "DR")
    assert store.authenticate("bob", PASSWORD).name == "bob"
    with pytest.raises(AuthenticationFailed) as wrong:
        store.authenticate("bob", "not the password at all")
    with pytest.raises(AuthenticationFailed) as unknown:
        store.authenticate("mallory", PASSWORD)
    assert type(wrong.value) is type(unknown.value) is AuthenticationFailed
    assert str(wrong.value) == str(unknown.value) == "wrong user name or password"
    assert isinstance(wrong.value, AccountError) and isinstance(wrong.value, ValueError)


def test_lockout_with_injected_clock(store: AccountStore, clock: Clock) -> None:
    store.add_user("bob", PASSWORD, "DR")
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            store.authenticate("bob", "wrong password!!")
    with pytest.raises(AccountLocked) as locked:
        store.authenticate("bob", PASSWORD)  # right password, but locked
    assert locked.value.public_message == "wrong user name or password"
    clock.advance(599)
    with pytest.raises(AccountLocked):
        store.authenticate("bob", PASSWORD)
    clock.advance(2)
    assert store.authenticate("bob", PASSWORD).name == "bob"
    # The success reset the counter: two more failures do not lock, a third does.
    for _ in range(2):
        with pytest.raises(AuthenticationFailed) as failed:
            store.authenticate("bob", "wrong password!!")
        assert type(failed.value) is AuthenticationFailed
    assert store.authenticate("bob", PASSWORD).name == "bob"
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            store.authenticate("bob", "wrong password!!")
    with pytest.raises(AccountLocked):
        store.authenticate("bob", PASSWORD)
    store.enable("bob")  # enable clears the lockout
    assert store.authenticate("bob", PASSWORD).name == "bob"


def test_no_secret_in_database_file(db_path: Path, clock: Clock) -> None:
    store = AccountStore(db_path, clock=clock)  # argon2's default (RFC 9106 low-memory) parameters
    store.add_user("bob", PASSWORD, "DR")
    assert store.authenticate("bob", PASSWORD).name == "bob"
    issued = store.issue_token("bob")
    assert issued.token.startswith("vgt_") and issued.token not in repr(issued) and issued.token not in str(issued)
    stored_hash = store._db.execute("SELECT password_hash FROM users").fetchone()[0]
    assert stored_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    raw = _db_bytes(db_path)  # the main file and the WAL, while open
    assert PASSWORD.encode() not in raw and issued.token[4:].encode() not in raw
    store.close()
    raw = _db_bytes(db_path)
    assert b"$argon2id$" in raw
    assert PASSWORD.encode() not in raw and issued.token.encode() not in raw


def test_rehash_on_login_with_stronger_parameters(db_path: Path, clock: Clock) -> None:
    with AccountStore(db_path, clock=clock, hasher=CHEAP) as cheap:
        cheap.add_user("bob", PASSWORD, "DR")
    with AccountStore(db_path, clock=clock) as default:
        default.authenticate("bob", PASSWORD)
        stored = default._db.execute("SELECT password_hash FROM users").fetchone()[0]
        assert "m=65536,t=3,p=4" in stored
        assert default.authenticate("bob", PASSWORD).name == "bob"


def test_token_issue_resolve_expire(store: AccountStore, clock: Clock) -> None:
    store.add_user("bob", PASSWORD, "S", groups=["ops"])
    issued = store.issue_token("bob")
    assert isinstance(issued, IssuedToken) and issued.user == "bob" and issued.kind == "session"
    assert store.resolve_token(issued.token).name == "bob"
    api = store.issue_token("bob", ttl_hours=24, kind="api")
    assert api.token != issued.token and api.token_id != issued.token_id
    clock.advance(8 * 3600)
    with pytest.raises(InvalidToken, match="expired"):
        store.resolve_token(issued.token)
    assert store.resolve_token(api.token).name == "bob"
    for bogus in ("vgt_nope", "", "Bearer x", issued.token + "x", "vgt_" + "a" * 500):
        with pytest.raises(InvalidToken):
            store.resolve_token(bogus)
    with pytest.raises(UnknownUser):
        store.issue_token("nobody")
    with pytest.raises(InvalidAccountField, match="token kind"):
        store.issue_token("bob", kind="forever")
    with pytest.raises(InvalidAccountField, match="ttl"):
        store.issue_token("bob", ttl_hours=0)
    assert store.purge_expired() == 1
    assert store.resolve_token(api.token).name == "bob"


def test_revoke_token(store: AccountStore) -> None:
    store.add_user("bob", PASSWORD, "DR")
    one, two = store.issue_token("bob"), store.issue_token("bob")
    assert store.revoke_token(one.token) is True
    assert store.revoke_token(one.token) is False
    assert store.revoke_token("vgt_unknown") is False
    with pytest.raises(InvalidToken, match="revoked"):
        store.resolve_token(one.token)
    assert store.resolve_token(two.token).name == "bob"
    assert store.revoke_user_tokens("bob") == 1
    with pytest.raises(InvalidToken):
        store.resolve_token(two.token)
    with pytest.raises(UnknownUser):
        store.revoke_user_tokens("nobody")


def test_disable_revokes_and_enable_does_not_resurrect(store: AccountStore) -> None:
    store.add_user("bob", PASSWORD, "DR")
    issued = store.issue_token("bob")
    store.disable("bob")
    assert store.get("bob").disabled
    with pytest.raises(InvalidToken):
        store.resolve_token(issued.token)
    with pytest.raises(AccountDisabled) as disabled:
        store.authenticate("bob", PASSWORD)
    assert isinstance(disabled.value, AuthenticationFailed)
    assert disabled.value.public_message == "wrong user name or password"
    with pytest.raises(AccountDisabled):
        store.issue_token("bob")
    store.enable("bob")
    with pytest.raises(InvalidToken, match="revoked"):
        store.resolve_token(issued.token)
    assert store.resolve_token(store.issue_token("bob").token).name == "bob"


def test_set_password_revokes_tokens(store: AccountStore) -> None:
    store.add_user("bob", PASSWORD, "DR")
    issued = store.issue_token("bob")
    with pytest.raises(InvalidAccountField, match="password"):
        store.set_password("bob", "tiny")
    store.set_password("bob", "a brand new passphrase")
    with pytest.raises(InvalidToken):
        store.resolve_token(issued.token)
    with pytest.raises(AuthenticationFailed):
        store.authenticate("bob", PASSWORD)
    assert store.authenticate("bob", "a brand new passphrase").name == "bob"
    with pytest.raises(UnknownUser):
        store.set_password("nobody", "a brand new passphrase")


def test_changes_visible_through_existing_token(store: AccountStore) -> None:
    store.add_user("bob", PASSWORD, "DR", groups=["ops"])
    token = store.issue_token("bob").token
    store.set_clearance("bob", "ts")
    store.set_groups("bob", ["intel", "ops"])
    store.set_role("bob", "auditor")
    user = store.resolve_token(token)
    assert (user.clearance, user.groups, user.role) == ("TS", ("intel", "ops"), "auditor")
    with pytest.raises(InvalidAccountField, match="clearance"):
        store.set_clearance("bob", "TOP")
    with pytest.raises(InvalidAccountField, match="role"):
        store.set_role("bob", "god")
    with pytest.raises(UnknownUser):
        store.set_groups("nobody", [])


def test_file_modes(store: AccountStore, db_path: Path) -> None:
    store.add_user("bob", PASSWORD, "DR")
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700
    wal = Path(f"{db_path}-wal")
    assert wal.exists() and stat.S_IMODE(wal.stat().st_mode) == 0o600
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_migrations_applied_once(db_path: Path, clock: Clock) -> None:
    with AccountStore(db_path, clock=clock, hasher=CHEAP) as store:
        store.add_user("bob", PASSWORD, "DR")
    with AccountStore(db_path, clock=clock, hasher=CHEAP) as store:
        assert store.get("bob") is not None  # the reopening did not recreate the tables
    db = sqlite3.connect(db_path)
    try:
        rows = db.execute("SELECT name, applied_at FROM _migrations").fetchall()
        assert [name for name, _ in rows] == ["m001_users_and_tokens"] == ACCOUNT_MIGRATIONS.names
        assert ACCOUNT_MIGRATIONS.apply(db) == []
    finally:
        db.close()


def test_migration_runner_order_and_rollback(tmp_path: Path) -> None:
    steps = Migrations("demo")

    @steps
    def m001_create(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE t (x INTEGER)")

    @steps
    def m002_broken(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("boom")

    with pytest.raises(ValueError, match="must come after"):
        steps(m001_create)
    db = sqlite3.connect(tmp_path / "demo.sqlite3", isolation_level=None)
    with pytest.raises(RuntimeError, match="boom"):
        steps.apply(db)
    assert Migrations.applied(db) == ["m001_create"]
    assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 0  # m002 rolled back whole
    assert steps.pending(db) == ["m002_broken"]
    db.close()


def test_threads_share_the_store(store: AccountStore) -> None:
    store.add_user("bob", PASSWORD, "DR")
    token = store.issue_token("bob").token
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                assert store.resolve_token(token).name == "bob"
                store.issue_token("bob")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.revoke_user_tokens("bob") == 81
