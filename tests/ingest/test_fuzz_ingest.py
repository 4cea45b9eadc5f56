"""Fuzzing the ingestion front: damaged real documents and random files never crash a batch.

Every example writes one batch into its own folder: files mutated at the byte level (and, for the Office
formats, inside the zip package) plus an intact control document, then ingests the batch in one
`run_ingest` call into an index shared by the module. Whatever the bytes, the batch must finish, the control
file must be indexed, every other file must be indexed or reported with a short, human reason, and the index
must hold exactly the chunks the catalog committed (nothing half-written).

Parsing runs in a subprocess, so examples are few and the search is derandomized (reproducible in CI);
shrinking is off because each shrink step is a full batch: a failure prints the whole falsifying example.
"""

from __future__ import annotations

import io
import itertools
import shutil
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from index.document_index import DocumentIndex
from index.settings import VigieSettings
from ingest.files import FORMATS
from ingest.pipeline import IngestReport, run_ingest
from tests.model_paths import EMBEDDING_MODEL

pytestmark = pytest.mark.slow

SOURCES = ("guide.docx", "briefing.pptx", "budget.xlsx", "note.html", "doctrine.md", "memo-utf8.txt",
           "memo-cp1252.txt", "message.eml", "rapport.pdf")
ZIP_EXTENSIONS = {".docx", ".pptx", ".xlsx"}
TEXT_EXTENSIONS = (".txt", ".md", ".html", ".eml")
CONTROL_SOURCE = "doctrine.md"
CONTROL_NAME = "zz-control.md"  # sorted last: parsed after every damaged file, by a possibly respawned worker
EXTENSIONS = tuple(sorted(FORMATS))


def _fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


# ---- byte-level and zip-level mutations (offsets are taken modulo the current length) ------------------------
_OFFSET = st.integers(min_value=0, max_value=2**31)
_BYTE_OP = st.one_of(
    st.tuples(st.just("flip"), st.lists(st.tuples(_OFFSET, st.integers(1, 255)), min_size=1, max_size=32)),
    st.tuples(st.just("truncate"), _OFFSET),
    st.tuples(st.just("splice"), _OFFSET, st.binary(min_size=1, max_size=512)),
    st.tuples(st.just("duplicate"), _OFFSET, st.integers(1, 8192), _OFFSET),
    st.tuples(st.just("zero"), _OFFSET, st.integers(1, 8192)),
)
_MEMBER_OP = st.tuples(st.just("member"), _OFFSET, st.sampled_from(["garbage", "truncate", "drop"]),
                       st.binary(max_size=512), _OFFSET)


def _apply_byte_op(data: bytes, op: tuple) -> bytes:
    kind, n = op[0], len(data)
    if kind == "flip":
        out = bytearray(data)
        for pos, mask in op[1]:
            if out:
                out[pos % len(out)] ^= mask
        return bytes(out)
    if kind == "truncate":
        return data[:op[1] % (n + 1)]
    if kind == "splice":
        pos = op[1] % (n + 1)
        return data[:pos] + op[2] + data[pos:]
    if kind == "duplicate":
        start = op[1] % (n + 1)
        region = data[start:start + op[2]]
        dest = op[3] % (n + 1)
        return data[:dest] + region + data[dest:]
    if kind == "zero":
        start = op[1] % (n + 1)
        end = min(n, start + op[2])
        return data[:start] + bytes(end - start) + data[end:]
    raise AssertionError(kind)


def _apply_member_op(data: bytes, op: tuple) -> bytes:
    """Rewrite one member of the zip package: garbage bytes, truncated content, or removed altogether."""
    _, index, how, garbage, cut = op
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as src:
            infos = src.infolist()
            members = [(info, src.read(info)) for info in infos]
    except Exception:  # an earlier mutation already broke the package: nothing to rewrite inside
        return data
    if not members:
        return data
    target = index % len(members)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for i, (info, content) in enumerate(members):
            if i == target:
                if how == "drop":
                    continue
                content = garbage if how == "garbage" else content[:cut % (len(content) + 1)]
            dst.writestr(info, content)
    return out.getvalue()


def _mutate(data: bytes, ops: list[tuple]) -> bytes:
    for op in ops:
        data = _apply_member_op(data, op) if op[0] == "member" else _apply_byte_op(data, op)
    return data


def _ops_for(name: str) -> st.SearchStrategy[list[tuple]]:
    op = st.one_of(_MEMBER_OP, _BYTE_OP) if Path(name).suffix in ZIP_EXTENSIONS else _BYTE_OP
    return st.lists(op, min_size=1, max_size=4)


COPIES = 3  # mutated copies of each source per batch: files are cheap, a batch (a parser start) is not
MUTATIONS = st.fixed_dictionaries({name: st.lists(_ops_for(name), min_size=COPIES, max_size=COPIES)
                                   for name in SOURCES})

# ---- random files -------------------------------------------------------------------------------------------
_MAGIC = st.sampled_from([b"", b"", b"%PDF-1.7\n", b"PK\x03\x04", b"\xef\xbb\xbf", b"\xff\xfe", b"\xd0\xcf\x11\xe0",
                          b"From: a@b\nSubject: x\n\n", b"<html><body>"])
_PAYLOAD = st.one_of(
    st.binary(max_size=4096),
    st.text(max_size=2000).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.text(alphabet=" \t\r\n\x0b\x0c", max_size=300).map(str.encode),
)


@st.composite
def _random_file(draw: st.DrawFn) -> tuple[str, bytes]:
    ext = draw(st.sampled_from(EXTENSIONS))
    if draw(st.integers(0, 3)) == 0:  # a tiny zip package with random members, to get past the format check
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            for member in draw(st.lists(st.sampled_from(["[Content_Types].xml", "word/document.xml",
                                                        "ppt/presentation.xml", "xl/workbook.xml", "x.bin"]),
                                        min_size=1, max_size=3, unique=True)):
                archive.writestr(member, draw(st.binary(max_size=256)))
        return ext, out.getvalue()
    return ext, draw(_MAGIC) + draw(_PAYLOAD)


RANDOM_FILES = st.lists(_random_file(), min_size=6, max_size=14)


# ---- the shared index and the batch checks --------------------------------------------------------------------
@pytest.fixture(scope="module")
def fuzz_index(tmp_path_factory):
    """One index for the module, built as `vigie` builds it (its own embedder, from settings), small on purpose:

    - the real embedding model cut to 16 tokens a chunk: the tokenizer still reads every chunk whole, but junk
      text fills the 512-token window and embedding it at full length would dominate the run;
    - one torch thread: the parser process works beside the embedder, and two torch threads fighting it for two
      cores made embedding ten times slower. torch's thread count is process-wide: restored afterwards.
    """
    import torch

    if not (EMBEDDING_MODEL / "modules.json").is_file():
        pytest.fail(f"embedding model missing at {EMBEDDING_MODEL}: run scripts/install.sh")
    threads = torch.get_num_threads()
    home = tmp_path_factory.mktemp("fuzz-home")
    idx = DocumentIndex(VigieSettings(home=home, embedding_model=EMBEDDING_MODEL, embedding_max_seq_length=16,
                                      threads=1, parse_timeout_s=60))
    yield idx
    idx.close()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def batch_folders(tmp_path_factory):
    """A fresh folder per batch (hypothesis examples share the function's fixtures)."""
    root = tmp_path_factory.mktemp("fuzz-batches")
    counter = itertools.count()

    def new() -> Path:
        folder = root / f"batch-{next(counter):03d}"
        folder.mkdir()
        return folder.resolve()

    return new


def _ingest_and_check(folder: Path, idx: DocumentIndex) -> tuple[IngestReport, dict[str, str], set[str]]:
    """Ingest `folder` in one batch and check the invariants; returns (report, failures by name, indexed names)."""
    names = {p.name for p in folder.iterdir()}
    report = run_ingest([folder], idx)  # must not raise, whatever the files hold

    failed = {Path(f.path).name: f.reason for f in report.failed}
    assert len(failed) == len(report.failed), report.failed
    records = {Path(r.path).name: r for r in idx.catalog.all() if Path(r.path).parent == folder}
    indexed = set(records)
    assert CONTROL_NAME not in failed, failed.get(CONTROL_NAME)
    assert CONTROL_NAME in indexed
    assert indexed | set(failed) == names, names - indexed - set(failed)
    assert not indexed & set(failed), indexed & set(failed)
    for name, reason in failed.items():
        assert isinstance(reason, str) and reason.strip(), (name, reason)
        assert "Traceback" not in reason, (name, reason)
        assert len(reason) < 1000, (name, reason)
    assert report.files == len(names)
    assert report.files == report.indexed + report.unchanged + len(report.failed)
    assert report.indexed == len(indexed) and report.unchanged == 0

    # Nothing half-written: no pending replacement, one version per document, and the index holds exactly
    # the chunks the catalog committed.
    assert not idx.catalog.pending()
    catalog = idx.catalog.all()
    assert idx.store.doc_versions() == {r.doc_id: {r.sha256} for r in catalog}
    for name, record in records.items():
        assert record.sha256 and record.chunk_count > 0, (name, record)
        assert idx.store.count(doc_id=record.doc_id, doc_sha256=record.sha256) == record.chunk_count, name
    assert idx.store.count() == sum(r.chunk_count for r in catalog)
    assert report.chunks_added == sum(r.chunk_count for r in records.values())
    return report, failed, indexed


def _add_control(folder: Path, fixture_docs: dict[str, Path]) -> None:
    shutil.copy(fixture_docs[CONTROL_SOURCE], folder / CONTROL_NAME)


# ---- the tests ---------------------------------------------------------------------------------------------
@_fuzz(5)
@given(mutations=MUTATIONS)
def test_mutated_real_documents_never_crash_a_batch(mutations, fixture_docs, fuzz_index, batch_folders):
    folder = batch_folders()
    for name, copies in mutations.items():
        path, data = Path(name), fixture_docs[name].read_bytes()
        for k, ops in enumerate(copies):
            (folder / f"mut-{path.stem}-{k}{path.suffix}").write_bytes(_mutate(data, ops))
    _add_control(folder, fixture_docs)
    _ingest_and_check(folder, fuzz_index)


@_fuzz(3)
@given(files=RANDOM_FILES)
def test_random_files_never_crash_a_batch(files, fixture_docs, fuzz_index, batch_folders):
    folder = batch_folders()
    for i, (ext, data) in enumerate(files):
        (folder / f"random-{i}{ext}").write_bytes(data)
    _add_control(folder, fixture_docs)
    _report, failed, _indexed = _ingest_and_check(folder, fuzz_index)
    for i, (ext, data) in enumerate(files):
        if not data.strip():
            assert failed[f"random-{i}{ext}"] == "empty file"


def test_edge_case_files_fail_with_their_reason_and_never_crash_a_batch(fixture_docs, fuzz_index, batch_folders):
    folder = batch_folders()
    memo = fixture_docs["memo-utf8.txt"].read_bytes()
    expected: dict[str, str] = {}  # name -> substring of the failure reason
    may_index: set[str] = set()  # files whose content is damaged but still text: indexed or reported, never a crash
    must_index: dict[str, str] = {}  # name -> text its chunks must hold

    for ext in EXTENSIONS:
        stem = ext.lstrip(".")
        (folder / f"empty-{stem}{ext}").write_bytes(b"")
        expected[f"empty-{stem}{ext}"] = "empty file"
        (folder / f"blank-{stem}{ext}").write_bytes(b" \t\r\n\x0b\x0c" * 300)  # longer than the 1 KiB head
        expected[f"blank-{stem}{ext}"] = "empty file"

    for ext in TEXT_EXTENSIONS:
        stem = ext.lstrip(".")
        (folder / f"nul-head-{stem}{ext}").write_bytes(b"texte\x00avec\x00des\x00NUL " + memo)
        expected[f"nul-head-{stem}{ext}"] = "binary content"
        (folder / f"nul-tail-{stem}{ext}").write_bytes(memo * 2 + b"\x00" * 2048 + memo)  # NULs past the 1 KiB head
        (folder / f"bad-utf8-{stem}{ext}").write_bytes(memo + b"\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc\xff")
        (folder / f"utf16-odd-{stem}{ext}").write_bytes("中文文本".encode("utf-16") + b"A")  # BOM, odd length, no NUL
        (folder / f"huge-line-{stem}{ext}").write_bytes(b"renseignement " * 300 + b"x" * 2000)  # no newline
        (folder / f"huge-word-{stem}{ext}").write_bytes(b"A" * 5000)
        # Unicode-only whitespace (NBSP, em space, ideographic space, separators): past the byte check
        (folder / f"uni-blank-{stem}{ext}").write_bytes("\u00a0\u2003\u3000\u2028\x1c\n".encode() * 50)
        if ext != ".eml":
            expected[f"uni-blank-{stem}{ext}"] = "no text extracted"
        may_index |= {f"{kind}-{stem}{ext}" for kind in ("nul-tail", "bad-utf8", "utf16-odd", "huge-line",
                                                         "huge-word", "uni-blank")}

    memo_text = memo.decode("utf-8")
    for ext in (".txt", ".md", ".html"):  # UTF-16 with a BOM (Notepad "Unicode"): NUL bytes, but real text
        stem = ext.lstrip(".")
        (folder / f"utf16le-{stem}{ext}").write_bytes(memo_text.encode("utf-16"))
        (folder / f"utf16be-{stem}{ext}").write_bytes(b"\xfe\xff" + memo_text.encode("utf-16-be"))
        must_index |= {f"utf16le-{stem}{ext}": "supports amovibles", f"utf16be-{stem}{ext}": "supports amovibles"}

    for source in ("guide.docx", "briefing.pptx", "budget.xlsx"):  # two bytes inserted before the end record:
        data = fixture_docs[source].read_bytes()  # is_zipfile still finds it, the central directory is not there
        end = data.rfind(b"PK\x05\x06")
        (folder / f"shifted-{source}").write_bytes(data[:end] + b"#o" + data[end:])
        expected[f"shifted-{source}"] = "corrupt zip package"

    renamed = {  # a real file under another format's extension
        "rapport-as.docx": ("rapport.pdf", "not a valid .docx"),
        "guide-as.pdf": ("guide.docx", "not a PDF"),
        "budget-as.pptx": ("budget.xlsx", "no ppt/ part"),
        "briefing-as.txt": ("briefing.pptx", "binary content"),
        "note-as.xlsx": ("note.html", "not a valid .xlsx"),
        "guide-as.bin": ("guide.docx", "unsupported format"),
    }
    for name, (source, reason) in renamed.items():
        shutil.copy(fixture_docs[source], folder / name)
        expected[name] = reason
    shutil.copy(fixture_docs["message.eml"], folder / "message-as.html")  # wrong but text: may be indexed
    shutil.copy(fixture_docs["note.html"], folder / "note-as.md")
    may_index |= {"message-as.html", "note-as.md"}
    _add_control(folder, fixture_docs)

    _report, failed, indexed = _ingest_and_check(folder, fuzz_index)
    for name, reason in expected.items():
        assert name in failed, (name, "indexed" if name in indexed else "missing")
        assert reason in failed[name], (name, failed[name])
    assert set(failed) - set(expected) <= may_index, set(failed) - set(expected)
    records = {Path(r.path).name: r for r in fuzz_index.catalog.all() if Path(r.path).parent == folder}
    for name, text in must_index.items():
        assert name in records, (name, failed.get(name))
        chunks = " ".join(p.payload["text"] for p in fuzz_index.store.points(records[name].doc_id))
        assert text in chunks and "\x00" not in chunks, (name, chunks[:200])
