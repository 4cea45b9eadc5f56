"""`vigie users`, `vigie docs` and `vigie audit`: administration from the server's own shell, every act audited.

These commands act as the local administrator (the account that owns VIGIE_HOME). Passwords are read from
standard input only, never from the command line (which other local users can see in the process list).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from app.accounts import AccountError, AccountStore
from app.audit import AuditEvent, Checkpoint, export_records, load_or_create_key, make_checkpoint
from app.engine.state import open_accounts, open_audit
from index.settings import VigieSettings

err = Console(stderr=True)
out = Console()
users_app = typer.Typer(no_args_is_help=True, help="Accounts: clearance, groups, role, passwords, tokens.")
docs_app = typer.Typer(no_args_is_help=True, help="Ingested documents: list, relabel, remove.")
audit_app = typer.Typer(no_args_is_help=True, help="The audit trail: verify, checkpoint, export.")
SHELL = "local-shell"
ADMIN = "local-admin"


def _shell_event(action: str, outcome: str = "ok", **detail: object) -> AuditEvent:
    return AuditEvent(action=action, outcome=outcome, user=ADMIN, role="admin", client=SHELL, detail=detail)


def _read_password(password_stdin: bool) -> str:
    if not password_stdin:
        err.print("[red]error:[/red] the password is read from standard input: pass --password-stdin")
        raise typer.Exit(2)
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        err.print("[red]error:[/red] no password on standard input")
        raise typer.Exit(2)
    return password


def _with_accounts(action: str, name: str, change, **detail: object):
    """Run one account change, audit it (ok or error), and turn account errors into exit code 2."""
    settings = VigieSettings()
    accounts: AccountStore = open_accounts(settings)
    trail = open_audit(settings)
    try:
        result = change(accounts)
    except AccountError as exc:
        trail.append(_shell_event("user_admin", "error", change=action, target=name, reason=str(exc), **detail))
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    finally:
        accounts.close()
    trail.append(_shell_event("token_issued" if action == "token" else "user_admin", change=action, target=name,
                              **detail))
    return result


def _groups(value: str) -> tuple[str, ...]:
    return tuple(g.strip() for g in value.split(",") if g.strip())


@users_app.command("add")
def users_add(name: str, clearance: Annotated[str, typer.Option(help="NP, DR, S or TS.")],
              groups: Annotated[str, typer.Option(help="Comma-separated need-to-know groups.")] = "",
              role: Annotated[str, typer.Option(help="analyst, admin or auditor.")] = "analyst",
              password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False) -> None:
    """Create a user; the password is the first line of standard input."""
    password = _read_password(password_stdin)
    user = _with_accounts("add", name, lambda a: a.add_user(name, password, clearance, _groups(groups), role),
                          clearance=clearance, groups=list(_groups(groups)), role=role)
    out.print(f"user {user.name} added ({user.role}, {user.clearance}, groups: {', '.join(user.groups) or '-'})")


@users_app.command("init-admin")
def users_init_admin(name: Annotated[str, typer.Argument(help="Account name.")] = "admin") -> None:
    """Create the first admin account when none exists; its password comes from VIGIE_ADMIN_PASSWORD or is
    generated and printed once (alone on the last line). Does nothing when an admin exists."""
    settings = VigieSettings()
    accounts = open_accounts(settings)
    try:
        admins = [u.name for u in accounts.list_users() if u.role == "admin" and not u.disabled]
    finally:
        accounts.close()
    if admins:
        err.print(f"an admin account exists already ({', '.join(admins)}): nothing to do")
        return
    given = os.environ.get("VIGIE_ADMIN_PASSWORD", "")
    password = given or secrets.token_urlsafe(12)
    _with_accounts("add", name, lambda a: a.add_user(name, password, "TS", (), "admin"), role="admin",
                   clearance="TS", password_from="env" if given else "generated")
    if given:
        err.print(f"admin account {name!r} created with the password from VIGIE_ADMIN_PASSWORD")
    else:
        err.print(f"admin account {name!r} created; its password, shown only now (change it with "
                  f"`vigie users passwd {name} --password-stdin`):")
        print(password)


@users_app.command("list")
def users_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every account with its role, clearance, groups and state (no secrets)."""
    accounts = open_accounts(VigieSettings())
    try:
        users = accounts.list_users()
    finally:
        accounts.close()
    if as_json:
        print(json.dumps([u.to_dict() for u in users], ensure_ascii=False))
        return
    for u in users:
        state = "disabled" if u.disabled else "enabled"
        out.print(f"{u.name}\t{u.role}\t{u.clearance}\t{','.join(u.groups) or '-'}\t{state}", highlight=False)


@users_app.command("disable")
def users_disable(name: str) -> None:
    """Disable a user and revoke every token and session at once."""
    _with_accounts("disable", name, lambda a: a.disable(name))
    out.print(f"user {name} disabled; tokens revoked")


@users_app.command("enable")
def users_enable(name: str) -> None:
    _with_accounts("enable", name, lambda a: a.enable(name))
    out.print(f"user {name} enabled")


@users_app.command("set-clearance")
def users_set_clearance(name: str, level: str) -> None:
    _with_accounts("set-clearance", name, lambda a: a.set_clearance(name, level), clearance=level)
    out.print(f"user {name}: clearance {level.upper()}")


@users_app.command("set-groups")
def users_set_groups(name: str, groups: Annotated[str, typer.Argument(help="Comma-separated; '' for none.")]) -> None:
    _with_accounts("set-groups", name, lambda a: a.set_groups(name, _groups(groups)), groups=list(_groups(groups)))
    out.print(f"user {name}: groups {', '.join(_groups(groups)) or '-'}")


@users_app.command("set-role")
def users_set_role(name: str, role: str) -> None:
    _with_accounts("set-role", name, lambda a: a.set_role(name, role), role=role)
    out.print(f"user {name}: role {role}")


@users_app.command("passwd")
def users_passwd(name: str, password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False) -> None:
    """Set a new password (first line of standard input); the user's tokens are revoked."""
    password = _read_password(password_stdin)
    _with_accounts("passwd", name, lambda a: a.set_password(name, password))
    out.print(f"user {name}: password changed; tokens revoked")


@users_app.command("token")
def users_token(name: str, ttl: Annotated[float | None, typer.Option("--ttl", help="Lifetime in hours.")] = None,
                ) -> None:
    """Print a new bearer token for the user, once (alone on the last line of standard output)."""
    issued = _with_accounts("token", name, lambda a: a.issue_token(name, ttl_hours=ttl, kind="api"),
                            ttl_hours=ttl)
    err.print(f"token {issued.token_id} for {name}, expires {issued.expires_at}")
    print(issued.token)


# ---- documents -----------------------------------------------------------------------------------------------
def _open_index(settings: VigieSettings):
    from index.document_index import DocumentIndex, LegacyIndexLayout
    from index.level_scale import LevelsChanged
    from index.store import IndexLocked

    try:
        return DocumentIndex(settings)
    except (IndexLocked, LegacyIndexLayout, LevelsChanged) as exc:
        err.print(f"[red]error:[/red] {exc} (stop the engine, or use its /documents routes)")
        raise typer.Exit(3) from exc


def _find(index, ref: str):
    resolved = str(Path(ref).expanduser().resolve())
    for record in index.catalog.all():
        if ref == record.doc_id or record.path == resolved:
            return record
    err.print(f"[red]error:[/red] no document {ref!r} (give its id or its ingested path)")
    raise typer.Exit(2)


@docs_app.command("list")
def docs_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every ingested document with its labels."""
    settings = VigieSettings()
    index = _open_index(settings)
    try:
        records = [r for r in index.catalog.all() if r.sha256]
    finally:
        index.close()
    rows = [{"doc_id": r.doc_id, "path": r.path, "title": r.title, "collection": r.collection,
             "classification": r.classification, "groups": list(r.groups), "chunks": r.chunk_count} for r in records]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    for r in rows:
        out.print(f"{r['doc_id']}\t{r['classification']}\t{','.join(r['groups']) or '-'}\t{r['collection']}\t"
                  f"{r['path']}", highlight=False)


@docs_app.command("relabel")
def docs_relabel(ref: Annotated[str, typer.Argument(help="Document id or ingested path.")],
                 classification: Annotated[str, typer.Option(help="NP, DR, S, TS.")],
                 groups: Annotated[str, typer.Option(help="Comma-separated groups ('' for none).")] = "") -> None:
    """Change who may see a document, without re-embedding it."""
    from index.models import AccessLabel

    settings = VigieSettings()
    index = _open_index(settings)
    try:
        record = _find(index, ref)
        try:
            access = AccessLabel(record.collection, classification, _groups(groups))
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        index.relabel_document(record.doc_id, access)
    finally:
        index.close()
    open_audit(settings).append(_shell_event("relabel", doc_id=record.doc_id, path=record.path,
                                             classification=access.classification, groups=list(access.groups)))
    out.print(f"{record.path}: {access.classification}, groups {', '.join(access.groups) or '-'}")


@docs_app.command("remove")
def docs_remove(ref: Annotated[str, typer.Argument(help="Document id or ingested path.")]) -> None:
    """Remove a document and its passages from the index."""
    settings = VigieSettings()
    index = _open_index(settings)
    try:
        record = _find(index, ref)
        removed = index.remove_document(record)
    finally:
        index.close()
    open_audit(settings).append(_shell_event("remove", doc_id=record.doc_id, path=record.path, chunks=removed))
    out.print(f"{record.path}: removed ({removed} passages)")


# ---- audit ---------------------------------------------------------------------------------------------------
@audit_app.command("verify")
def audit_verify(checkpoint: Annotated[Path | None, typer.Option(help="A checkpoint printed earlier.")] = None,
                 ) -> None:
    """Exit 1 on any changed, removed, inserted, reordered or truncated record (each named)."""
    settings = VigieSettings()
    trail = open_audit(settings)
    cp = None
    if checkpoint is not None:
        try:
            cp = Checkpoint.from_json(checkpoint.read_text())
        except (OSError, ValueError) as exc:
            err.print(f"[red]error:[/red] checkpoint {checkpoint}: {exc}")
            raise typer.Exit(2) from exc
    report = trail.verify(checkpoint=cp)
    for problem in report.problems:
        out.print(f"[red]problem[/red] {problem}", highlight=False)
    for warning in report.warnings:
        out.print(f"[yellow]warning[/yellow] {warning}", highlight=False)
    verdict = "valid" if report.ok else "INVALID"
    out.print(f"audit trail {verdict}: {report.count} records, head {report.head}", highlight=False)
    if report.ok:
        trail.append(_shell_event("audit_read", verify=True, checkpoint=str(checkpoint) if checkpoint else None))
    raise typer.Exit(0 if report.ok else 1)


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Print the trail's head (count, hash) signed with the Ed25519 key under VIGIE_HOME: store it elsewhere."""
    settings = VigieSettings()
    trail = open_audit(settings)
    try:
        cp = make_checkpoint(trail, load_or_create_key(settings.keys_dir / "audit-ed25519.pem"))
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    print(cp.to_json())


@audit_app.command("export")
def audit_export(since: Annotated[str | None, typer.Option("--from", help="ISO date or time (UTC).")] = None,
                 until: Annotated[str | None, typer.Option("--to", help="ISO date or time (UTC).")] = None,
                 user: Annotated[str | None, typer.Option(help="Only this user's records.")] = None,
                 fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
                 output: Annotated[Path | None, typer.Option("-o", help="File (default: standard output).")] = None,
                 ) -> None:
    """Records for inspectors; the export is itself recorded."""
    settings = VigieSettings()
    try:
        start = datetime.fromisoformat(since) if since else None
        end = datetime.fromisoformat(until) if until else None
    except ValueError as exc:
        raise typer.BadParameter(f"--from/--to: {exc}") from exc
    if fmt not in {"jsonl", "csv"}:
        raise typer.BadParameter(f"--format {fmt!r}: expected jsonl or csv")
    trail = open_audit(settings)
    trail.append(_shell_event("audit_read", since=since, until=until, user=user, format=fmt))
    records = trail.records(since=start, until=end, user=user)
    if output is None:
        count = export_records(records, fmt, sys.stdout)
    else:
        with output.open("w", encoding="utf-8", newline="") as handle:
            count = export_records(records, fmt, handle)
    err.print(f"{count} records exported")
