"""Who is asking: the principal every route, command and audit record acts for."""

from __future__ import annotations

from dataclasses import dataclass

from app.accounts import User
from app.audit import AuditEvent
from index import level_scale
from index.access import Reader

LOCAL_ADMIN = "local-admin"


@dataclass(frozen=True)
class Principal:
    """A user with their rights, and how they were identified (token, trusted header, the server's shell)."""

    name: str
    role: str
    clearance: str
    groups: tuple[str, ...]
    via: str = "token"  # token | trusted-header | local-shell
    unrestricted: bool = False  # the local administrator on the server's own shell
    acting_as_admin: bool = False  # the shell's administrator acting with exactly this user's rights

    @classmethod
    def of(cls, user: User, via: str = "token", acting_as_admin: bool = False) -> Principal:
        return cls(user.name, user.role, user.clearance, tuple(user.groups), via=via,
                   acting_as_admin=acting_as_admin)

    @classmethod
    def local_admin(cls) -> Principal:
        """The account that owns VIGIE_HOME, on the server's shell: every document, administration included."""
        return cls(LOCAL_ADMIN, "admin", level_scale.current().top, (), via="local-shell", unrestricted=True)

    @property
    def reader(self) -> Reader:
        return Reader(self.clearance, self.groups, self.unrestricted)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin" or self.unrestricted

    @property
    def audit_name(self) -> tuple[str, str | None]:
        """(user, acting_as) as the audit records them: the shell's administrator acting as NAME is both."""
        return (LOCAL_ADMIN, self.name) if self.acting_as_admin else (self.name, None)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "role": self.role, "clearance": self.clearance, "groups": list(self.groups),
                "via": self.via}

    def event(self, action: str, outcome: str, client: str, **fields: object) -> AuditEvent:
        """An audit event done by this principal (the shell's administrator acting as a user is recorded so)."""
        user, acting_as = self.audit_name
        role = "admin" if self.acting_as_admin else self.role
        return AuditEvent(action=action, outcome=outcome, user=user, role=role, client=client, acting_as=acting_as,
                          **fields)  # type: ignore[arg-type]
