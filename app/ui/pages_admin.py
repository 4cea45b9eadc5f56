"""Administration pages (admins only): upload and ingestion progress, jobs, documents and labels, users."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import streamlit as st

from app.ui import formatting, render, state
from app.ui.engine_api import EngineError
from app.ui.formatting import ROLES
from app.ui.i18n import t

log = logging.getLogger(__name__)

UPLOAD_JOBS = "upload_jobs"
POLL_S = 2


def _admin_page(body: Callable[[], None]) -> None:
    """Run an admin page body, or refuse (the navigation already hides these pages from other roles)."""
    if not state.is_admin():
        st.error(state.tr("admin_only"), icon=":material/block:")
        return
    state.guarded(body)()


def _level_select(label: str, key: str, current: str | None = None) -> str:
    scale = state.levels()
    index, lang = (scale.index(current) if current in scale else 0), state.lang()
    return st.selectbox(label, scale, index=index, key=key,
                        format_func=lambda level: formatting.level_label(level, lang))


# ---------------------------------------------------------------------------------------------- upload


def _upload_body() -> None:
    st.title(state.tr("upload_title"))
    with st.form("upload", clear_on_submit=True):
        files = st.file_uploader(state.tr("upload_files"), accept_multiple_files=True, key="upload_files")
        left, middle, right = st.columns(3)
        collection = left.text_input(state.tr("upload_collection"), value="default", key="upload_collection")
        with middle:
            classification = _level_select(state.tr("upload_classification"), "upload_classification")
        groups = right.text_input(state.tr("upload_groups"), key="upload_groups")
        submitted = st.form_submit_button(state.tr("upload_button"), type="primary", icon=":material/upload:")
    if submitted:
        _send_files(files or [], collection.strip() or "default", classification, formatting.parse_groups(groups))
    jobs = st.session_state.setdefault(UPLOAD_JOBS, [])
    if jobs:
        st.subheader(state.tr("my_uploads"))
        running = any(status not in {"done", "failed"} for _, status in jobs)
        st.fragment(run_every=POLL_S if running else None)(state.guarded(_upload_progress))()


def _send_files(files: list[Any], collection: str, classification: str, groups: list[str]) -> None:
    if not files:
        st.warning(state.tr("upload_none"))
        return
    for file in files:
        name = render.safe_inline(file.name)
        try:
            job = state.api().upload(file.name, file.getvalue(), collection, classification, groups)
        except EngineError as exc:
            if exc.status in (0, 401, 503):
                raise
            st.error(state.tr("upload_failed", name=name, detail=render.safe_inline(exc.detail)))
            continue
        st.session_state[UPLOAD_JOBS].append((str(job.get("id")), str(job.get("status") or "queued")))
        st.success(state.tr("upload_sent", name=name, job=render.safe_inline(str(job.get("id")))))
    state.forget_documents()


def _upload_progress() -> None:
    jobs = st.session_state.get(UPLOAD_JOBS, [])
    updated = []
    st.button(state.tr("refresh"), key="upload_refresh", icon=":material/refresh:")
    for job_id, status in jobs:
        job = state.api().job(job_id) if status not in {"done", "failed"} else None
        if job is None:
            job = st.session_state.get(f"job_{job_id}") or {"id": job_id, "status": status}
        st.session_state[f"job_{job_id}"] = job
        updated.append((job_id, str(job.get("status") or status)))
        _job_progress(job)
    st.session_state[UPLOAD_JOBS] = updated


def _job_progress(job: dict[str, Any]) -> None:
    lang = state.lang()
    label = state.tr("job_line", job=job.get("id"), status=formatting.job_status_label(job.get("status"), lang),
                     done=job.get("done_files") or 0, total=job.get("total_files") or 0)
    st.progress(formatting.job_progress(job), text=render.safe_inline(label))
    if pages := formatting.job_ocr_pages(job):
        st.caption(state.tr("job_ocr", job=render.safe_inline(str(job.get("id"))), pages=pages))
    _job_failures(job)


def _job_failures(job: dict[str, Any]) -> None:
    job_id = render.safe_inline(str(job.get("id")))
    if job.get("error"):
        st.error(state.tr("job_error", job=job_id, error=render.safe_inline(str(job["error"]))))
    for path, reason in formatting.job_failures(job):
        st.error(state.tr("job_failure", job=job_id, path=render.safe_inline(path),
                          reason=render.safe_inline(reason)))
    for path, warning in formatting.job_warnings(job):
        st.warning(state.tr("job_warning", job=job_id, path=render.safe_inline(path),
                            warning=render.safe_inline(warning)))


def render_upload() -> None:
    _admin_page(_upload_body)


# ---------------------------------------------------------------------------------------------- jobs


def job_rows(jobs: list[dict[str, Any]], lang: str = "fr") -> list[dict[str, Any]]:
    """The jobs as table rows (newest first), with localized column names."""
    def col(key: str) -> str:
        return t(key, lang)

    rows = []
    for job in reversed(jobs):
        rows.append({col("col_job"): str(job.get("id")),
                     col("col_status"): formatting.job_status_label(job.get("status"), lang),
                     col("col_collection"): str(job.get("collection") or ""),
                     col("col_classification"): str(job.get("classification") or ""),
                     col("col_files"): f"{job.get('done_files') or 0}/{job.get('total_files') or 0}",
                     col("col_pages"): int(job.get("pages") or 0),
                     col("col_chunks"): int(job.get("chunks") or 0),
                     col("col_error"): str(job.get("error") or "")})
    return rows


def _jobs_body() -> None:
    st.title(state.tr("jobs_title"))
    st.button(state.tr("refresh"), key="jobs_refresh", icon=":material/refresh:")
    jobs = state.api().jobs()
    if not jobs:
        st.info(state.tr("no_jobs"))
        return
    st.dataframe(job_rows(jobs, state.lang()), hide_index=True, width="stretch")
    failing = [j for j in reversed(jobs) if j.get("error") or formatting.job_failures(j) or formatting.job_warnings(j)]
    if failing:
        st.subheader(state.tr("failures_title"))
        for job in failing:
            _job_failures(job)


def render_jobs() -> None:
    _admin_page(_jobs_body)


# ---------------------------------------------------------------------------------------------- documents


def _document_label(doc: dict[str, Any]) -> str:
    return f"{doc.get('title') or doc.get('path') or doc.get('doc_id')} ({doc.get('collection') or ''})"


def _documents_body() -> None:
    lang = state.lang()
    st.title(state.tr("documents_title"))
    docs = state.documents(force=True)
    if not docs:
        st.info(state.tr("no_documents"))
        return
    st.dataframe([{state.tr("col_title"): str(d.get("title") or ""), state.tr("col_collection"): d.get("collection"),
                   state.tr("col_format"): str(d.get("format") or "").upper(),
                   state.tr("col_classification"): d.get("classification"),
                   state.tr("col_groups"): formatting.groups_text(d.get("groups"), lang),
                   state.tr("col_pages"): d.get("pages"), state.tr("col_chunks"): d.get("chunks"),
                   state.tr("col_updated"): str(d.get("updated_at") or ""), state.tr("col_path"): d.get("path")}
                  for d in docs], hide_index=True, width="stretch")
    by_id = {str(d.get("doc_id")): d for d in docs}
    doc_id = st.selectbox(state.tr("choose_document"), list(by_id), key="admin_document",
                          format_func=lambda i: _document_label(by_id[i]))
    doc = by_id[doc_id]
    st.subheader(state.tr("relabel_title"))
    with st.form(f"relabel_{doc_id}"):
        level = _level_select(state.tr("upload_classification"), f"relabel_level_{doc_id}", doc.get("classification"))
        groups = st.text_input(state.tr("upload_groups"), value=", ".join(doc.get("groups") or []),
                               key=f"relabel_groups_{doc_id}")
        if st.form_submit_button(state.tr("relabel_button"), icon=":material/label:"):
            state.api().relabel(doc_id, level, formatting.parse_groups(groups))
            state.forget_documents()
            st.success(state.tr("relabelled"))
    st.subheader(state.tr("remove_title"))
    confirmed = st.checkbox(state.tr("remove_confirm"), key=f"remove_ok_{doc_id}")
    if st.button(state.tr("remove_button"), key=f"remove_{doc_id}", disabled=not confirmed, type="primary",
                 icon=":material/delete_forever:"):
        result = state.api().remove_document(doc_id)
        state.forget_documents()
        st.session_state.pop("admin_document", None)
        st.success(state.tr("removed", chunks=int(result.get("removed_chunks") or 0)))


def render_documents() -> None:
    _admin_page(_documents_body)


# ---------------------------------------------------------------------------------------------- users


def _role_select(label: str, key: str, current: str | None = None) -> str:
    index, lang = (ROLES.index(current) if current in ROLES else 0), state.lang()
    return st.selectbox(label, ROLES, index=index, key=key, format_func=lambda role: formatting.role_label(role, lang))


def _users_body() -> None:
    lang = state.lang()
    st.title(state.tr("users_title"))
    users = state.api().users()
    yes, no = state.tr("yes"), state.tr("no")
    st.dataframe([{state.tr("col_name"): u.get("name"),
                   state.tr("col_role"): formatting.role_label(u.get("role"), lang),
                   state.tr("col_clearance"): u.get("clearance"),
                   state.tr("col_groups"): formatting.groups_text(u.get("groups"), lang),
                   state.tr("col_disabled"): yes if u.get("disabled") else no} for u in users],
                 hide_index=True, width="stretch")
    _add_user()
    if users:
        _edit_user({str(u.get("name")): u for u in users})


def _add_user() -> None:
    st.subheader(state.tr("add_user_title"))
    with st.form("add_user", clear_on_submit=True):
        left, right = st.columns(2)
        name = left.text_input(state.tr("user_name"), max_chars=64, key="new_user_name")
        password = right.text_input(state.tr("user_password"), type="password", key="new_user_password",
                                    autocomplete="new-password")
        a, b, c = st.columns(3)
        with a:
            clearance = _level_select(state.tr("user_clearance"), "new_user_clearance")
        groups = b.text_input(state.tr("user_groups"), key="new_user_groups")
        with c:
            role = _role_select(state.tr("user_role"), "new_user_role")
        submitted = st.form_submit_button(state.tr("add_user_button"), type="primary", icon=":material/person_add:")
    if submitted:
        if not name.strip() or not password:
            st.warning(state.tr("fields_required"))
            return
        created = state.api().add_user(name.strip(), password, clearance, formatting.parse_groups(groups), role)
        st.success(state.tr("user_added", name=render.safe_inline(str(created.get("name") or name))))


def _edit_user(users: dict[str, dict[str, Any]]) -> None:
    st.subheader(state.tr("edit_user_title"))
    name = st.selectbox(state.tr("choose_user"), list(users), key="edit_user")
    current = users[name]
    with st.form(f"edit_user_{name}"):
        a, b, c = st.columns(3)
        with a:
            clearance = _level_select(state.tr("user_clearance"), f"edit_clearance_{name}", current.get("clearance"))
        groups = b.text_input(state.tr("user_groups"), value=", ".join(current.get("groups") or []),
                              key=f"edit_groups_{name}")
        with c:
            role = _role_select(state.tr("user_role"), f"edit_role_{name}", current.get("role"))
        password = st.text_input(state.tr("new_password"), type="password", key=f"edit_password_{name}",
                                 autocomplete="new-password")
        submitted = st.form_submit_button(state.tr("save_user"), icon=":material/save:")
    if submitted:
        changes = user_changes(current, clearance, formatting.parse_groups(groups), role, password)
        if changes:
            state.api().update_user(name, **changes)
            st.success(state.tr("user_saved", name=render.safe_inline(name)))
    if current.get("disabled"):
        st.caption(render.safe_inline(state.tr("user_is_disabled")))
    toggle = state.tr("enable_user") if current.get("disabled") else state.tr("disable_user")
    if st.button(toggle, key=f"toggle_user_{name}", icon=":material/person_off:"):
        state.api().update_user(name, disabled=not current.get("disabled"))
        st.rerun()


def user_changes(current: dict[str, Any], clearance: str, groups: list[str], role: str,
                 password: str = "") -> dict[str, Any]:
    """Only the fields that changed (and a new password when one was typed)."""
    changes: dict[str, Any] = {}
    if clearance != current.get("clearance"):
        changes["clearance"] = clearance
    if groups != list(current.get("groups") or []):
        changes["groups"] = groups
    if role != current.get("role"):
        changes["role"] = role
    if password:
        changes["password"] = password
    return changes


def render_users() -> None:
    _admin_page(_users_body)
