"""Local user accounts and bearer tokens, stored in one SQLite file (e.g. VIGIE_HOME/accounts.sqlite3).

Passwords are kept only as argon2id hashes and tokens only as the SHA-256 of their plaintext; neither a password
nor a plaintext token is ever stored or logged. A token resolves to the *current* row of its user, so a change of
clearance, groups or role applies to the very next request, and disabling a user revokes all of their tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from app.migrations import Migrations, open_private_db

log = logging.getLogger(__name__)

ROLES = ("analyst", "admin", "auditor")
TOKEN_KINDS = ("session", "api")
TOKEN_PREFIX = "vgt_"
MAX_PASSWORD_LENGTH = 1024  # argon2 copes with more; this only bounds the work one request can ask for

_USER_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_TOKEN_MAX_LENGTH = 128


# --------------------------------------------------------------------------------------------------- errors


class AccountError(ValueError):
    """Base of every error raised by the account store."""


class UnknownUser(AccountError):
    """No user of that name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown user {name!r}")
        self.name = name


class UserExists(AccountError):
    """A user of that name already exists."""

    def __init__(self, name: str) -> None:
        super().__init__(f"user {name!r} already exists")
        self.name = name


class InvalidAccountField(AccountError):
    """A user name, role, clearance, group or password that the store refuses."""

    def __init__(self, field: str, reason: str, user: str | None = None) -> None:
        who = f" for user {user!r}" if user else ""
        super().__init__(f"invalid {field}{who}: {reason}")
        self.field = field
        self.reason = reason
        self.user = user


class AuthenticationFailed(AccountError):
    """Sign-in refused. Unknown user and wrong password carry the same message, so neither can be told apart."""

    GENERIC = "wrong user name or password"

    def __init__(self, message: str = GENERIC) -> None:
        super().__init__(message)

    @property
    def public_message(self) -> str:
        """The text safe to show to the person signing in, whatever the internal reason."""
        return self.GENERIC


class AccountLocked(AuthenticationFailed):
    """Too many consecutive failures: the account refuses every password until `until`."""

    def __init__(self, name: str, until: str) -> None:
        super().__init__(f"account {name!r} is locked after too many failed sign-ins, until {until}")
        self.name = name
        self.until = until


class AccountDisabled(AuthenticationFailed):
    """The account was disabled by an administrator."""

    def __init__(self, name: str) -> None:
        super().__init__(f"account {name!r} is disabled")
        self.name = name


class InvalidToken(AccountError):
    """A bearer token that is unknown, expired, revoked, or whose user is disabled or gone."""


# ---------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class User:
    """One account as the rest of the application sees it (no secrets)."""

    name: str
    role: str
    clearance: str
    groups: tuple[str, ...]
    disabled: bool
    created_at: str
    updated_at: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the account."""
        return {"name": self.name, "role": self.role, "clearance": self.clearance, "groups": list(self.groups),
                "disabled": self.disabled, "created_at": self.created_at, "updated_at": self.updated_at}


@dataclass(frozen=True)
class IssuedToken:
    """A freshly issued bearer token. `token` is the only copy of the plaintext: show it once, never log it."""

    token: str = field(repr=False)
    token_id: str
    user: str
    kind: str
    expires_at: str


# -------------------------------------------------------------------------------------------------- schema

ACCOUNT_MIGRATIONS = Migrations("accounts")


@ACCOUNT_MIGRATIONS
def m001_users_and_tokens(db: sqlite3.Connection) -> None:
    """Users (argon2id hash, role, clearance, groups, lockout state) and tokens (SHA-256 of the plaintext)."""
    db.execute("""
        CREATE TABLE users (
            name TEXT PRIMARY KEY,
            password_hash TEXT NOT NULL,
            role TEXT NOT NULL,
            clearance TEXT NOT NULL,
            groups_json TEXT NOT NULL DEFAULT '[]',
            disabled INTEGER NOT NULL DEFAULT 0,
            failures INTEGER NOT NULL DEFAULT 0,
            locked_until TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""")
    db.execute("""
        CREATE TABLE tokens (
            token_id TEXT PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            revoked_at TEXT
        )""")
    db.execute("CREATE INDEX tokens_by_user ON tokens(user_name)")
    db.execute("CREATE INDEX tokens_by_expiry ON tokens(expires_at)")


# --------------------------------------------------------------------------------------------------- store


def _iso(ts: float) -> str:
    """Fixed-width ISO-8601 UTC, so that string order is time order."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class AccountStore:
    """Users and bearer tokens in one SQLite file; safe to share between threads."""

    def __init__(self, path: Path, levels: Sequence[str] = ("NP", "DR", "S", "TS"), max_failures: int = 5,
                 lockout_s: float = 900, session_ttl_hours: float = 8, min_password_length: int = 12,
                 clock: Callable[[], float] = time.time, hasher: PasswordHasher | None = None) -> None:
        self.levels = tuple(str(level).upper() for level in levels)
        if not self.levels or len(set(self.levels)) != len(self.levels):
            raise ValueError(f"clearance levels must be distinct and non-empty, got {tuple(levels)!r}")
        if max_failures < 1 or lockout_s < 0 or not session_ttl_hours > 0 or min_password_length < 1:
            raise ValueError("max_failures >= 1, lockout_s >= 0, session_ttl_hours > 0 and "
                             "min_password_length >= 1 are required")
        self.path = Path(path)
        self.max_failures = max_failures
        self.lockout_s = float(lockout_s)
        self.session_ttl_hours = float(session_ttl_hours)
        self.min_password_length = min_password_length
        self._clock = clock
        self._hasher = hasher or PasswordHasher()
        if self._hasher.type is not Type.ID:
            raise ValueError("the password hasher must use argon2id")
        # Verified against when the user is unknown, disabled or locked, so that every attempt costs the same.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        self._lock = threading.Lock()
        self._db = self._open(self.path)

    # ------------------------------------------------------------------------------------------ plumbing

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        return open_private_db(path, ACCOUNT_MIGRATIONS)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the thread lock and inside one write transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        with self._lock:
            return self._db.execute(sql, params).fetchone()

    def _now(self) -> float:
        return float(self._clock())

    @staticmethod
    def _user(row: Sequence[Any]) -> User:
        name, role, clearance, groups_json, disabled, created_at, updated_at = row
        return User(name=name, role=role, clearance=clearance, groups=tuple(json.loads(groups_json)),
                    disabled=bool(disabled), created_at=created_at, updated_at=updated_at)

    _USER_COLUMNS = "name, role, clearance, groups_json, disabled, created_at, updated_at"

    # -------------------------------------------------------------------------------------- validation

    @staticmethod
    def _check_name(name: object) -> str:
        if not isinstance(name, str) or not _USER_NAME.fullmatch(name):
            shown = repr(name)[:70]
            raise InvalidAccountField("user name", f"{shown} must be 1-64 characters of a-z 0-9 . _ -, "
                                                   "starting with a letter or digit (lower-case only)")
        return name

    def _check_password(self, password: object, user: str) -> str:
        if not isinstance(password, str):
            raise InvalidAccountField("password", "must be a string", user)
        if len(password) < self.min_password_length:
            raise InvalidAccountField("password", f"must be at least {self.min_password_length} characters", user)
        if len(password) > MAX_PASSWORD_LENGTH:
            raise InvalidAccountField("password", f"must be at most {MAX_PASSWORD_LENGTH} characters", user)
        return password

    def _check_clearance(self, level: object, user: str) -> str:
        upper = level.upper() if isinstance(level, str) else None
        if upper not in self.levels:
            raise InvalidAccountField("clearance", f"{level!r} is not one of {', '.join(self.levels)}", user)
        return upper

    @staticmethod
    def _check_role(role: object, user: str) -> str:
        if role not in ROLES:
            raise InvalidAccountField("role", f"{role!r} is not one of {', '.join(ROLES)}", user)
        return str(role)

    @staticmethod
    def _check_groups(groups: Iterable[str], user: str) -> tuple[str, ...]:
        if isinstance(groups, str):
            raise InvalidAccountField("groups", "must be a list of group names, not one string", user)
        checked = set()
        for group in groups:
            if not isinstance(group, str) or not _GROUP_NAME.fullmatch(group):
                raise InvalidAccountField("groups", f"group name {repr(group)[:70]} must be 1-64 characters of "
                                                    "A-Z a-z 0-9 . _ -, starting with a letter or digit", user)
            checked.add(group)
        return tuple(sorted(checked))

    # ------------------------------------------------------------------------------------------- users

    def add_user(self, name: str, password: str, clearance: str, groups: Iterable[str] = (),
                 role: str = "analyst") -> User:
        """Create an account; raise `UserExists` or `InvalidAccountField`."""
        name = self._check_name(name)
        role = self._check_role(role, name)
        clearance = self._check_clearance(clearance, name)
        group_names = self._check_groups(groups, name)
        password_hash = self._hasher.hash(self._check_password(password, name))
        now = _iso(self._now())
        try:
            with self._tx() as db:
                db.execute("INSERT INTO users (name, password_hash, role, clearance, groups_json, created_at, "
                           "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (name, password_hash, role, clearance, json.dumps(group_names), now, now))
        except sqlite3.IntegrityError:
            raise UserExists(name) from None
        log.info("account created: %s (role %s, clearance %s)", name, role, clearance)
        return User(name, role, clearance, group_names, False, now, now)

    def get(self, name: str) -> User | None:
        """The account called `name`, or None."""
        if not isinstance(name, str) or not _USER_NAME.fullmatch(name):
            return None
        row = self._fetchone(f"SELECT {self._USER_COLUMNS} FROM users WHERE name = ?", (name,))
        return self._user(row) if row else None

    def list_users(self) -> list[User]:
        """Every account, ordered by name."""
        with self._lock:
            rows = self._db.execute(f"SELECT {self._USER_COLUMNS} FROM users ORDER BY name").fetchall()
        return [self._user(row) for row in rows]

    def _update(self, name: str, assignments: str, params: Sequence[Any], revoke: bool = False) -> int:
        """Apply `SET assignments` to one user (and optionally revoke their tokens); return tokens revoked."""
        now = self._now()
        with self._tx() as db:
            cursor = db.execute(f"UPDATE users SET {assignments}, updated_at = ? WHERE name = ?",
                                (*params, _iso(now), name))
            if cursor.rowcount == 0:
                raise UnknownUser(name)
            return self._revoke_all(db, name, now) if revoke else 0

    @staticmethod
    def _revoke_all(db: sqlite3.Connection, name: str, now: float) -> int:
        cursor = db.execute("UPDATE tokens SET revoked_at = ? WHERE user_name = ? AND revoked_at IS NULL",
                            (_iso(now), name))
        return cursor.rowcount

    def set_password(self, name: str, password: str) -> None:
        """Replace the password, clear any lockout and revoke every token of the user."""
        name = self._check_name(name)
        password_hash = self._hasher.hash(self._check_password(password, name))
        revoked = self._update(name, "password_hash = ?, failures = 0, locked_until = NULL", (password_hash,),
                               revoke=True)
        log.info("password changed for %s; %d token(s) revoked", name, revoked)

    def set_clearance(self, name: str, level: str) -> None:
        """Change the clearance; existing tokens see it on their next request."""
        name = self._check_name(name)
        level = self._check_clearance(level, name)
        self._update(name, "clearance = ?", (level,))
        log.info("clearance of %s set to %s", name, level)

    def set_groups(self, name: str, groups: Iterable[str]) -> None:
        """Replace the groups; existing tokens see them on their next request."""
        name = self._check_name(name)
        group_names = self._check_groups(groups, name)
        self._update(name, "groups_json = ?", (json.dumps(group_names),))
        log.info("groups of %s set to %s", name, ", ".join(group_names) or "(none)")

    def set_role(self, name: str, role: str) -> None:
        """Change the role; existing tokens see it on their next request."""
        name = self._check_name(name)
        role = self._check_role(role, name)
        self._update(name, "role = ?", (role,))
        log.info("role of %s set to %s", name, role)

    def disable(self, name: str) -> None:
        """Disable the account and revoke all of its tokens at once."""
        name = self._check_name(name)
        revoked = self._update(name, "disabled = 1", (), revoke=True)
        log.info("account disabled: %s; %d token(s) revoked", name, revoked)

    def enable(self, name: str) -> None:
        """Re-enable the account and clear its lockout (revoked tokens stay revoked)."""
        name = self._check_name(name)
        self._update(name, "disabled = 0, failures = 0, locked_until = NULL", ())
        log.info("account enabled: %s", name)

    # ------------------------------------------------------------------------------------------ sign-in

    def _spend_one_verification(self, password: object) -> None:
        """Cost one real verification, so that refusing early takes as long as a wrong password."""
        attempt = password if isinstance(password, str) and len(password) <= MAX_PASSWORD_LENGTH else "-"
        with suppress(VerificationError):
            self._hasher.verify(self._dummy_hash, attempt)

    def authenticate(self, name: str, password: str) -> User:
        """Check a password; raise `AuthenticationFailed` (or its `AccountLocked` / `AccountDisabled`)."""
        row = None
        if isinstance(name, str) and _USER_NAME.fullmatch(name) and isinstance(password, str) \
                and len(password) <= MAX_PASSWORD_LENGTH:
            row = self._fetchone("SELECT password_hash, disabled, locked_until FROM users WHERE name = ?", (name,))
        if row is None:
            self._spend_one_verification(password)
            log.info("sign-in failed: unknown user name")  # the attempted name may be a mistyped password
            raise AuthenticationFailed()
        password_hash, disabled, locked_until = row
        now = self._now()
        if disabled:
            self._spend_one_verification(password)
            log.info("sign-in refused for %s: account disabled", name)
            raise AccountDisabled(name)
        if locked_until is not None and _iso(now) < locked_until:
            self._spend_one_verification(password)
            log.info("sign-in refused for %s: account locked until %s", name, locked_until)
            raise AccountLocked(name, locked_until)
        try:
            self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            self._record_failure(name, now)
            raise AuthenticationFailed() from None
        new_hash = self._hasher.hash(password) if self._hasher.check_needs_rehash(password_hash) else None
        with self._tx() as db:
            if new_hash is not None:
                db.execute("UPDATE users SET password_hash = ? WHERE name = ? AND password_hash = ?",
                           (new_hash, name, password_hash))
            db.execute("UPDATE users SET failures = 0, locked_until = NULL WHERE name = ?", (name,))
            current = db.execute(f"SELECT {self._USER_COLUMNS} FROM users WHERE name = ?", (name,)).fetchone()
        if current is None:
            raise AuthenticationFailed()
        user = self._user(current)
        if user.disabled:  # disabled while the password was being checked
            raise AccountDisabled(name)
        if new_hash is not None:
            log.info("password hash of %s upgraded to the current argon2 parameters", name)
        log.info("sign-in: %s", name)
        return user

    def _record_failure(self, name: str, now: float) -> None:
        with self._tx() as db:
            row = db.execute("SELECT failures, locked_until FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                return
            failures, locked_until = row
            if locked_until is not None and locked_until <= _iso(now):  # the last lock ran out: count afresh
                failures, locked_until = 0, None
            elif locked_until is not None:  # locked meanwhile by a concurrent attempt
                return
            failures += 1
            if failures >= self.max_failures:
                locked_until = _iso(now + self.lockout_s)
            db.execute("UPDATE users SET failures = ?, locked_until = ? WHERE name = ?",
                       (failures, locked_until, name))
        if locked_until is not None:
            log.warning("account %s locked until %s after %d consecutive failed sign-ins", name, locked_until,
                        failures)
        else:
            log.info("sign-in failed for %s: wrong password (%d/%d)", name, failures, self.max_failures)

    # ------------------------------------------------------------------------------------------- tokens

    def issue_token(self, name: str, ttl_hours: float | None = None, kind: str = "session") -> IssuedToken:
        """Create a bearer token for an enabled user; only the SHA-256 of its plaintext is stored."""
        if kind not in TOKEN_KINDS:
            raise InvalidAccountField("token kind", f"{kind!r} is not one of {', '.join(TOKEN_KINDS)}", name)
        ttl = self.session_ttl_hours if ttl_hours is None else float(ttl_hours)
        if not (ttl > 0 and math.isfinite(ttl)):
            raise InvalidAccountField("token ttl_hours", f"{ttl_hours!r} must be a positive number", name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = "tok_" + secrets.token_hex(8)
        now = self._now()
        expires_at = _iso(now + ttl * 3600)
        with self._tx() as db:
            row = db.execute("SELECT disabled FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise UnknownUser(name)
            if row[0]:
                raise AccountDisabled(name)
            db.execute("INSERT INTO tokens (token_id, token_hash, user_name, kind, created_at, expires_at) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (token_id, _token_hash(token), name, kind, _iso(now), expires_at))
        log.info("%s token %s issued to %s, expires %s", kind, token_id, name, expires_at)
        return IssuedToken(token=token, token_id=token_id, user=name, kind=kind, expires_at=expires_at)

    def resolve_token(self, token: str) -> User:
        """The current user behind a bearer token; raise `InvalidToken` when it cannot be used."""
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > _TOKEN_MAX_LENGTH:
            raise InvalidToken("not a Vigie token")
        digest = _token_hash(token)
        # The lookup key is a SHA-256 of 256 random bits: timing of the index search tells nothing usable.
        row = self._fetchone(
            "SELECT t.token_hash, t.token_id, t.expires_at, t.revoked_at, "
            "u.name, u.role, u.clearance, u.groups_json, u.disabled, u.created_at, u.updated_at "
            "FROM tokens t LEFT JOIN users u ON u.name = t.user_name WHERE t.token_hash = ?", (digest,))
        if row is None or not hmac.compare_digest(row[0], digest):
            raise InvalidToken("unknown token")
        token_id, expires_at, revoked_at = row[1:4]
        if revoked_at is not None:
            raise InvalidToken(f"token {token_id} was revoked at {revoked_at}")
        if _iso(self._now()) >= expires_at:
            raise InvalidToken(f"token {token_id} expired at {expires_at}")
        if row[4] is None:
            raise InvalidToken(f"token {token_id}: its user no longer exists")
        user = self._user(row[4:])
        if user.disabled:
            raise InvalidToken(f"token {token_id}: user {user.name!r} is disabled")
        return user

    def revoke_token(self, token: str) -> bool:
        """Revoke one token by its plaintext; False when it was unknown or already revoked."""
        if not isinstance(token, str) or len(token) > _TOKEN_MAX_LENGTH:
            return False
        with self._tx() as db:
            cursor = db.execute("UPDATE tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
                                (_iso(self._now()), _token_hash(token)))
            revoked = cursor.rowcount > 0
        if revoked:
            log.info("token revoked")
        return revoked

    def revoke_user_tokens(self, name: str) -> int:
        """Revoke every live token of a user; return how many."""
        name = self._check_name(name)
        with self._tx() as db:
            if db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone() is None:
                raise UnknownUser(name)
            revoked = self._revoke_all(db, name, self._now())
        log.info("%d token(s) of %s revoked", revoked, name)
        return revoked

    def purge_expired(self) -> int:
        """Delete the tokens that can never be valid again (expired or revoked); return how many."""
        with self._tx() as db:
            cursor = db.execute("DELETE FROM tokens WHERE expires_at <= ? OR revoked_at IS NOT NULL",
                                (_iso(self._now()),))
            purged = cursor.rowcount
        if purged:
            log.info("%d expired or revoked token(s) purged", purged)
        return purged

    def close(self) -> None:
        """Close the database (idempotent)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None  # type: ignore[assignment]

    def __enter__(self) -> AccountStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
