"""`vigie` command line: a thin layer over `ingest.pipeline` and `index.document_index`.

Exit codes: 0 success, 1 some files failed (the others are indexed), 2 usage error, 3 environment error
(index in use by another process, model missing, server unreachable).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer

from app.cli_admin import audit_app, docs_app, err, out, users_app
from app.engine.state import open_accounts, open_audit
from app.engine_client import EngineClient, error_detail
from app.events import event_to_dict
from app.principal import Principal
from app.progress import RichIngestProgress
from index.models import AccessLabel
from index.settings import VigieSettings
from ingest.files import is_inside

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Vigie: sovereign document assistant.")
app.add_typer(users_app, name="users")
app.add_typer(docs_app, name="docs")
app.add_typer(audit_app, name="audit")
SHELL = "local-shell"
UserOption = Annotated[str | None, typer.Option("--user", help="Act with exactly this user's rights (audited).")]


def _settings() -> VigieSettings:
    return VigieSettings()


def _principal(settings: VigieSettings, user: str | None) -> Principal:
    """The local administrator of this shell, or the named user's rights when --user is given."""
    if not user:
        return Principal.local_admin()
    accounts = open_accounts(settings)
    try:
        found = accounts.get(user.strip().lower())
    finally:
        accounts.close()
    if found is None or found.disabled:
        err.print(f"[red]error:[/red] --user {user}: no such enabled user")
        raise typer.Exit(2)
    return Principal.of(found, via=SHELL, acting_as_admin=True)


def _engine_error(exc: httpx.HTTPStatusError) -> typer.Exit:
    err.print(f"[red]error:[/red] the engine refused the request ({exc.response.status_code}): {error_detail(exc)}")
    return typer.Exit(2 if exc.response.status_code in {401, 403, 404, 422} else 3)


def _open_index(settings: VigieSettings):
    from index.document_index import DocumentIndex, LegacyIndexLayout
    from index.embedding import EmbeddingModelMissing
    from index.level_scale import LevelsChanged
    from index.store import IndexLocked

    try:
        return DocumentIndex(settings)
    except (IndexLocked, EmbeddingModelMissing, LegacyIndexLayout, LevelsChanged) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(3) from exc


@app.callback()
def main_options(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False):
    """Vigie: ingest documents, search them, answer with citations, all on this machine."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    collection: Annotated[str, typer.Option(help="Logical collection (access label).")] = "default",
    classification: Annotated[str, typer.Option(help="Protection level: NP, DR, S, TS.")] = "NP",
    groups: Annotated[str, typer.Option(help="Comma-separated groups allowed to see these documents.")] = "",
    sync: Annotated[bool, typer.Option("--sync", help="Remove documents whose file disappeared from a folder.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    user: UserOption = None,
) -> None:
    """Parse, chunk, embed and index documents; unchanged files are skipped.

    PDF, DOCX, PPTX, XLSX, HTML, Markdown, TXT, EML; scanned PDF pages and PNG, JPEG, TIFF images by OCR.

    Labels: these flags, refined by a `.vigie.toml` in a folder (files below it) or a sidecar `FILE.vigie.toml`.
    """
    from ingest.pipeline import run_ingest

    try:
        access = AccessLabel(collection=collection, classification=classification,
                             groups=tuple(groups.split(",")) if groups else ())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise typer.BadParameter(f"no such file or folder: {', '.join(missing)}")
    settings = _settings()
    principal = _principal(settings, user)
    progress = RichIngestProgress(err) if (err.is_terminal and not as_json) else None
    engine = EngineClient.if_running(settings, act_as=user)
    if engine is not None:  # the engine owns the index: send it the job and follow its progress
        try:
            report = _ingest_via_engine(engine, paths, access, sync, progress)
        except httpx.HTTPStatusError as exc:
            raise _engine_error(exc) from exc
    else:
        _check_local_ingest(settings, principal, paths)
        index = _open_index(settings)
        try:
            roots = None if principal.unrestricted else settings.resolved_ingest_roots
            report = run_ingest(paths, index, access=access, sync=sync, progress=progress,
                                allowed_roots=roots).to_json()
        finally:
            if progress:
                progress.stop()
            index.close()
        open_audit(settings).append(principal.event("ingest", "ok", SHELL, detail={
            "paths": [str(p.resolve()) for p in paths], "classification": access.classification,
            "groups": list(access.groups), "collection": access.collection, "indexed": report["indexed"],
            "failed": len(report["failed"])}))
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        _print_report(report)
    raise typer.Exit(1 if report["failed"] else 0)


def _check_local_ingest(settings: VigieSettings, principal: Principal, paths: list[Path]) -> None:
    """With --user, the shell has exactly that user's rights: admins only, below the ingest roots."""
    if principal.unrestricted:
        return
    if not principal.is_admin:
        open_audit(settings).append(principal.event("ingest", "denied", SHELL, detail={"reason": "not an admin"}))
        err.print(f"[red]error:[/red] user {principal.name} ({principal.role}) may not ingest: admins only")
        raise typer.Exit(2)
    roots = settings.resolved_ingest_roots
    for p in paths:
        if not is_inside(p, roots):
            err.print(f"[red]error:[/red] {p} is outside the folders user {principal.name} may ingest from "
                      "(VIGIE_INGEST_ROOTS)")
            raise typer.Exit(2)


def _ingest_via_engine(engine: EngineClient, paths: list[Path], access: AccessLabel, sync: bool,
                       progress: RichIngestProgress | None) -> dict:
    job = engine.submit_ingest([str(p.resolve()) for p in paths], access.collection, access.classification,
                               list(access.groups), sync)
    seen, pages, chunks, started = 0, 0, 0, False
    try:
        while job["status"] in {"queued", "running"}:
            time.sleep(0.3)
            job = engine.ingest_status(job["id"])
            if progress and job["total_files"]:
                if not started:
                    progress.start(job["total_files"])
                    started = True
                while seen < job["done_files"]:  # replay the engine's counters on the local bar
                    seen += 1
                    status, _, name = job["current"].partition(": ")
                    progress.file_done(Path(name), status, job["pages"] - pages, job["chunks"] - chunks)
                    pages, chunks = job["pages"], job["chunks"]
    finally:
        if progress:
            progress.stop()
        engine.close()
    if job["status"] == "failed":
        err.print(f"[red]error:[/red] ingestion failed in the engine: {job['error']}")
        raise typer.Exit(3)
    return job["report"]


def _print_report(r: dict) -> None:
    out.print(f"{r['files']} files: {r['indexed']} indexed, {r['unchanged']} unchanged, {r['removed']} removed, "
              f"{len(r['failed'])} failed; {r['chunks_added']} chunks added, {r['chunks_deleted']} deleted "
              f"in {r['seconds']:.1f} s")
    if r.get("ocr_pages"):
        out.print(f"{r['ocr_pages']} scanned page(s) read by OCR")
    if r["recovered"]:
        out.print(f"[yellow]{r['recovered']} interrupted update(s) from a previous run were repaired[/yellow]")
    for warning in r.get("warnings") or []:
        out.print(f"[yellow]warning[/yellow] {warning['path']}: {warning['warning']}", highlight=False)
    for failure in r["failed"]:
        out.print(f"[red]failed[/red] {failure['path']}: {failure['reason']}")


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for (French or English).")],
    k: Annotated[int, typer.Option("--k", help="Number of passages.")] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, dense or sparse.")] = "hybrid",
    collection: Annotated[list[str] | None, typer.Option(help="Restrict to these collections.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print hits as JSON.")] = False,
    user: UserOption = None,
) -> None:
    """Hybrid search (dense + BM25, fused by RRF) over the documents the caller may see."""
    if mode not in {"hybrid", "dense", "sparse"}:
        raise typer.BadParameter("mode must be hybrid, dense or sparse")
    if k < 1 or k > 100:
        raise typer.BadParameter("--k must be between 1 and 100")
    settings = _settings()
    principal = _principal(settings, user)
    engine = EngineClient.if_running(settings, act_as=user)
    if engine is not None:
        try:
            hits = engine.search(query, k, mode, list(collection or ()))["hits"]
        except httpx.HTTPStatusError as exc:
            raise _engine_error(exc) from exc
        finally:
            engine.close()
    else:
        index = _open_index(settings)
        try:
            flt = principal.reader.search_filter(collections=collection or ())
            found = index.search(query, k=k, flt=flt, mode=mode)  # type: ignore[arg-type]
            hits = [h.to_dict() for h in found]
        finally:
            index.close()
        open_audit(settings).append(principal.event(
            "search", "ok", SHELL, question=query, retrieved=tuple(h.chunk.chunk_id for h in found),
            retrieved_documents=tuple(dict.fromkeys(h.chunk.doc_id for h in found)), detail={"mode": mode, "k": k}))
    if as_json:
        print(json.dumps({"query": query, "hits": hits}, ensure_ascii=False))
        return
    if not hits:
        out.print("No passage found (is the index empty? run `vigie ingest`).")
        return
    for h in hits:
        where = [h["document"]]
        if h["page_start"] is not None:
            pages = h["page_start"], h["page_end"]
            where.append(f"p. {pages[0]}" if pages[0] == pages[1] else f"p. {pages[0]}-{pages[1]}")
        if h["section"]:
            where.append(h["section"])
        text = h["text"] if len(h["text"]) <= 400 else h["text"][:400] + "…"
        out.print(f"[bold][{h['rank']}][/bold] {' · '.join(where)}  [dim](score {h['score']:.4f})[/dim]")
        out.print(f"    {text}\n", highlight=False)

@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Question in French or English.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print answer, citations and metadata as JSON.")] = False,
    user: UserOption = None,
) -> None:
    """Answer from the documents the caller may see, every claim cited [n], or say they do not answer."""
    settings = _settings()
    principal = _principal(settings, user)
    engine = EngineClient.if_running(settings, act_as=user)
    if engine is not None:
        events = engine.ask(question)
    else:
        from app.answer_service import AnswerService
        from app.answer_store import AnswerStore
        from app.llama_build import LlamaBuildError
        from app.llm import LocalModel, ModelIntegrityError

        index = _open_index(settings)
        try:
            model = LocalModel(settings)
        except (ModelIntegrityError, LlamaBuildError) as exc:
            index.close()
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(3) from exc
        service = AnswerService(index, lambda: model, AnswerStore(settings.answers_path), open_audit(settings))
        events = (event_to_dict(e) for e in service.stream(principal, question))
    answer = None
    streamed = []
    try:
        answer, streamed = _follow(events, as_json)
    except httpx.HTTPStatusError as exc:
        raise _engine_error(exc) from exc
    if answer is None:
        raise typer.Exit(3)
    _print_answer(answer, streamed, as_json)


def _follow(events, as_json: bool) -> tuple[dict | None, list[str]]:
    answer, streamed = None, []
    for event in events:
        if event["type"] == "token" and not as_json:
            streamed.append(event["text"])
            out.print(event["text"], end="", highlight=False, soft_wrap=True)
        elif event["type"] == "done":
            answer = event["answer"]
        elif event["type"] == "error":
            err.print(f"[red]error:[/red] {event['error']}")
            raise typer.Exit(3)
    return answer, streamed


def _print_answer(answer: dict, streamed: list[str], as_json: bool) -> None:
    if as_json:
        keys = ("id", "created_at", "conversation_id", "filters", "question", "answer", "citations", "sources",
                "refused", "refusal_reason",
                "model", "model_sha256", "prompt_version", "language", "closest_documents", "removed_markers",
                "dropped_citations", "dropped_sentences", "draft", "refusal_probability", "timings")
        print(json.dumps({k: answer[k] for k in keys}, ensure_ascii=False))
        return
    out.print()
    if "".join(streamed).strip() != answer["answer"].strip():
        out.print(f"\n[bold]Verified answer:[/bold] {answer['answer']}", highlight=False)
    for c in answer["citations"]:
        page = f", p. {c['page']}" if c["page"] is not None else ""
        section = f", {c['section']}" if c["section"] else ""
        out.print(f"[bold][{c['n']}][/bold] {c['document']}{page}{section}", highlight=False)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8765).")] = None,
) -> None:
    """Run the engine: one process owning the index, the embedder and the model, with an HTTP API."""
    from app.engine.server import UnsafeBind, check_bind
    from app.engine.server import serve as run_server
    from app.engine.state import EngineState
    from app.llama_build import LlamaBuildError
    from app.llm import ModelIntegrityError

    settings = _settings()
    if host:
        settings.engine_host = host
    if port:
        settings.engine_port = port
    accounts = open_accounts(settings)
    try:
        check_bind(settings, accounts, settings.engine_host)
    except UnsafeBind as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    finally:
        accounts.close()
    from index.document_index import LegacyIndexLayout
    from index.level_scale import LevelsChanged
    from index.store import IndexLocked

    try:
        state = EngineState.build(settings)
    except (ModelIntegrityError, LlamaBuildError, IndexLocked, LegacyIndexLayout, LevelsChanged) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(3) from exc
    err.print(f"Vigie engine on {settings.engine_url} ({state.index.store.backend}, model {state.model.name}, "
              f"llama.cpp {state.model.build.name} build)")
    try:
        run_server(state, settings.engine_host, settings.engine_port)
    finally:
        state.close()


@app.command()
def chat(
    host: Annotated[str, typer.Option(help="Address of the browser app.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the browser app.")] = 8501,
) -> None:
    """The analysts' browser chat: starts the engine if none runs, then the app, and prints its address."""
    import signal

    from app.chat_launcher import LaunchError, check_engine_address, engine_is_up, start_app, start_engine, stop

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a terminated launcher still stops its children
    settings = _settings()
    engine = None
    try:
        check_engine_address(settings)
        if not engine_is_up(settings.engine_url):
            err.print(f"Starting the engine on {settings.engine_url} (loading the models)…")
            engine = start_engine(settings)
        app_proc = start_app(settings, host, port)
    except LaunchError as exc:
        stop(engine)
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(3) from exc
    out.print(f"Vigie chat: http://{host}:{port}  (engine {settings.engine_url}; Ctrl-C stops)", highlight=False)
    try:
        code = app_proc.wait()
    except KeyboardInterrupt:
        code = 0
    finally:
        stop(app_proc)
        stop(engine)
    raise typer.Exit(code)


@app.command("export")
def export_report(
    source: Annotated[Path, typer.Argument(help="An answer (`vigie ask --json`) or a conversation (JSON).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="md, docx, pdf, csv or json.")] = "md",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: a name "
                                                                       "from the title).")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Name printed as the report's author.")] = None,
) -> None:
    """Write an answer or a conversation with its numbered sources as a report file (audited with its SHA-256)."""
    import getpass
    import hashlib

    from app.export import FORMATS, file_name, render
    from app.export.report import load_export_input, report_from_answers

    if fmt not in FORMATS:
        err.print(f"[red]error:[/red] --format {fmt!r}: choose one of {', '.join(FORMATS)}")
        raise typer.Exit(2)
    try:
        answers, title = load_export_input(source)
        report = report_from_answers(answers, user=user or getpass.getuser(), title=title)
        data = render(report, fmt)
    except (OSError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    target = output or Path(file_name(report, fmt))
    tmp = target.with_name(f".{target.name}.part")
    tmp.write_bytes(data)
    tmp.replace(target)
    digest = hashlib.sha256(data).hexdigest()
    settings = _settings()
    open_audit(settings).append(Principal.local_admin().event(
        "export", "ok", SHELL, detail={"format": fmt, "file": str(target), "sha256": digest, "bytes": len(data),
                                       "answers": [a.get("id") for a in answers], "source": str(source),
                                       "classification": report.banner}))
    out.print(f"{target} ({len(data)} bytes, sha256 {digest}) — {report.banner}", highlight=False)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Documents and chunks in the index."""
    index = _open_index(_settings())
    try:
        info = {"backend": index.store.backend, "documents": index.catalog.count(), "chunks": index.store.count(),
                "pending": len(index.catalog.pending())}
    finally:
        index.close()
    if as_json:
        print(json.dumps(info))
    else:
        out.print(", ".join(f"{k}: {v}" for k, v in info.items()))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
