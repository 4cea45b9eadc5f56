"""One PDF page rendered as PNG, with cited passages highlighted on it (the analyst's "show me the source" view).

The passage text was extracted at ingestion by another extractor (unstructured / pdfminer), so it is located on
the page by comparing normalised texts (case, NFKC, quotes, dashes, hyphenation, whitespace) word by word, with a
map back to pdfium's character indices; the characters found are then boxed line by line and drawn in yellow.

pdfium is not thread-safe: every pdfium call of this module runs under one module-level lock, and every pdfium
object is closed explicitly before the lock is released, so no finalizer runs pdfium code later on another thread.
"""

from __future__ import annotations

import io
import logging
import math
import re
import threading
import time
import unicodedata
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image, ImageDraw

log = logging.getLogger(__name__)

_PDFIUM_LOCK = threading.Lock()

HIGHLIGHT_RGB = (255, 221, 0)
HIGHLIGHT_ALPHA = 90
PNG_COMPRESS_LEVEL = 3  # zlib level: 3 is ~3x faster than 6 for a few % more bytes on rendered text pages

# Locating: a run of common words is kept only if it has at least `min_run` characters and two words, a chain of
# runs only if it holds 2 x `min_run` characters; a chain pays GAP_COST per character skipped between two of its
# runs (capped), so that stray common phrases far apart are not chained.
_GAP_COST = 0.5
_GAP_CAP = 120
_END_SLACK = 0.1  # share of the passage that may stay unmatched at the end where it "continues elsewhere"
_EDGE_ZONE = 0.2  # share of the page text, at its start or end, where a passage split by a page break must lie
_EDGE_ZONE_MIN = 400  # characters: headers and footers (pdfium often puts them at the end of the text)
_BULK_SHARE = 0.4  # a chain anywhere on the page is accepted when it holds this share of the passage
_EDGE_FILL_SHARE = 0.85  # share of a passage's end, beyond the page's edge, that must be found to be taken
_MAX_RUNS = 300  # longest runs kept for the chain search (bounds the work on repetitive pages, e.g. tables)

_QUOTES = str.maketrans({
    **dict.fromkeys("’‘‛‚′ʼ`´", "'"),
    **dict.fromkeys("“”„‟«»″〝〞", '"'),
    **dict.fromkeys("‐‑‒–—―−﹣－", "-"),
})
_HYPHENS = "-\u2010\u2011"  # may split a word at a line end (not en/em dashes, which stand between words)
_PDFIUM_EOL_HYPHEN = "\x02\ufffe"  # pdfium's hyphen at a line end (the line break itself is then omitted)
_SOFT_HYPHEN = "\u00ad"
_TOKEN = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class PageImage:
    """A rendered page: PNG bytes, its 1-based number, the document's page count and what was highlighted."""

    png: bytes
    page: int  # 1-based
    page_count: int
    width: int
    height: int
    highlights: int  # number of highlighted rectangles drawn (0: the passage was not found on this page)
    matched_chars: int  # passage characters located on the page


class PageRenderError(ValueError):
    """The page cannot be rendered: not a PDF, encrypted, unreadable, page out of range, invalid argument."""


# --------------------------------------------------------------------------------------------------- normalising


class _Normalised:
    """A text in comparable form: `text` plus, for each of its characters, the source span [start, end)."""

    __slots__ = ("ends", "starts", "text", "tok_end", "tok_start", "tok_words", "tokens")

    def __init__(self, source: str) -> None:
        out: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        pending_space: int | None = None  # source index of a whitespace run not yet emitted
        n = len(source)
        i = 0
        while i < n:
            c = source[i]
            if c in _SOFT_HYPHEN or c in _HYPHENS or c in _PDFIUM_EOL_HYPHEN:
                j = i + 1
                while j < n and _is_space(source[j]):
                    j += 1
                follows_lower = j < n and source[j].islower()
                after_letter = bool(out) and pending_space is None and out[-1].isalpha()
                if c in _SOFT_HYPHEN:
                    i = j if follows_lower else i + 1  # never shown: drop it (and the line break it stands at)
                    continue
                if c in _PDFIUM_EOL_HYPHEN:
                    if follows_lower:
                        i = j
                        continue
                    _emit(out, starts, ends, pending_space, "-", i, i + 1)
                    pending_space = i  # the hyphen ended a line: a word boundary follows
                    i += 1
                    continue
                if after_letter and j > i + 1 and follows_lower:  # "défen-\nse": one word split at a line end
                    i = j
                    continue
            if _is_space(c):
                if pending_space is None and out:
                    pending_space = i
                i += 1
                continue
            if unicodedata.category(c) == "Cf":  # zero-width and other invisible format characters
                i += 1
                continue
            j = i + 1
            while j < n and unicodedata.combining(source[j]):
                j += 1
            folded = unicodedata.normalize("NFKC", source[i:j]).casefold().translate(_QUOTES)
            for f in folded:
                if _is_space(f):
                    if pending_space is None and out:
                        pending_space = i
                else:
                    _emit(out, starts, ends, pending_space, f, i, j)
                    pending_space = None
            i = j
        self.text = "".join(out)
        self.starts = starts
        self.ends = ends
        self.tokens: list[str] = []
        self.tok_start: list[int] = []
        self.tok_end: list[int] = []
        words = [0]
        for m in _TOKEN.finditer(self.text):
            self.tokens.append(m.group())
            self.tok_start.append(m.start())
            self.tok_end.append(m.end())
            words.append(words[-1] + (m.group()[0].isalnum() or m.group()[0] == "_"))
        self.tok_words = words  # prefix sums: word tokens among the first k tokens

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        """Source span [start, end) of normalised characters [start, end)."""
        return self.starts[start], self.ends[end - 1]

    def non_space(self, start: int, end: int) -> int:
        return end - start - self.text.count(" ", start, end)


def _is_space(c: str) -> bool:
    return c.isspace() or c in "\u200b\ufeff" or (unicodedata.category(c) == "Cc" and c not in _PDFIUM_EOL_HYPHEN)


def _emit(out: list[str], starts: list[int], ends: list[int], pending_space: int | None, c: str, start: int,
          end: int) -> None:
    if pending_space is not None and out:
        out.append(" ")
        starts.append(pending_space)
        ends.append(pending_space + 1)
    out.append(c)
    starts.append(start)
    ends.append(end)


# ------------------------------------------------------------------------------------------------------ locating


@dataclass(frozen=True)
class _Run:
    """Tokens a[ai:ai+k] of the passage equal tokens b[bj:bj+k] of the page."""

    ai: int
    bj: int
    k: int


def locate_passage(page_text: str, passage: str, min_run: int = 12) -> list[tuple[int, int]]:
    """Character spans [start, end) of `page_text` that hold the passage (pure function, unit-testable).

    `page_text` is the page's text as pdfium gives it (`\\r\\n` line ends, `\\x02` for a hyphen at a line end);
    `passage` the same text from another extractor. Returns [] when the passage is not on the page; the part of
    the passage that is on the page when it starts on the previous page or continues on the next one."""
    spans, _ = _locate(_Normalised(page_text), page_text, passage, min_run)
    return spans


def _locate(page: _Normalised, page_text: str, passage: str, min_run: int) -> tuple[list[tuple[int, int]], int]:
    """(spans of the page text, normalised non-space characters matched)."""
    psg = _Normalised(passage)
    if len(psg.text) < max(min_run, 1) or not page.text:
        return [], 0
    exact = page.text.find(psg.text)
    if exact >= 0:
        end = exact + len(psg.text)
        return [page.source_span(exact, end)], page.non_space(exact, end)
    runs = _common_runs(psg, page, min_run)
    if not runs:
        return [], 0
    chain = _best_chain(psg, page, runs, min_run)
    if not chain:
        return [], 0
    chain = _complete(psg, page, runs, chain, min_run)
    spans: list[tuple[int, int]] = []
    matched = 0
    for r in chain:
        s, e = page.tok_start[r.bj], page.tok_end[r.bj + r.k - 1]
        matched += page.non_space(s, e)
        spans.append(page.source_span(s, e))
    return _merge_spans(spans, page_text), matched


def _run_ok(page: _Normalised, bj: int, k: int, min_run: int) -> bool:
    """Tokens b[bj:bj+k] of the page span `min_run` characters and two words."""
    if k <= 0:
        return False
    chars = page.tok_end[bj + k - 1] - page.tok_start[bj]
    return chars >= min_run and page.tok_words[bj + k] - page.tok_words[bj] >= 2


def _run_len(page: _Normalised, r: _Run) -> int:
    return page.tok_end[r.bj + r.k - 1] - page.tok_start[r.bj]


def _common_runs(psg: _Normalised, page: _Normalised, min_run: int) -> list[_Run]:
    """Maximal runs of equal tokens (each one as long as it can be on both sides), long enough to count."""
    a, b = psg.tokens, page.tokens
    na, nb = len(a), len(b)
    where: dict[str, list[int]] = defaultdict(list)
    for j, tok in enumerate(b):
        where[tok].append(j)
    runs: list[_Run] = []
    for i, tok in enumerate(a):
        for j in where.get(tok, ()):
            if i and j and a[i - 1] == b[j - 1]:
                continue  # not the start of a maximal run
            k = 1
            while i + k < na and j + k < nb and a[i + k] == b[j + k]:
                k += 1
            if _run_ok(page, j, k, min_run):
                runs.append(_Run(i, j, k))
    if len(runs) > _MAX_RUNS:
        runs = sorted(runs, key=lambda r: _run_len(page, r), reverse=True)[:_MAX_RUNS]
    runs.sort(key=lambda r: (r.ai, r.bj))
    return runs


def _best_chain(psg: _Normalised, page: _Normalised, runs: list[_Run], min_run: int) -> list[_Run]:
    """The best chain of runs in the same order on both sides, among the plausible placements of a passage:

    - its start, at the end of the page (the passage continues on the next page);
    - its end, at the start of the page (the passage started on the previous page);
    - anywhere, provided the chain holds a good share of the passage (the passage is on this page).
    """
    p_len = len(psg.text)
    slack = max(2 * min_run, _END_SLACK * p_len)
    zone = max(_EDGE_ZONE_MIN, _EDGE_ZONE * len(page.text))
    b_len = len(page.text)

    def a_start(r: _Run) -> int:
        return psg.tok_start[r.ai]

    def a_end(r: _Run) -> int:
        return psg.tok_end[r.ai + r.k - 1]

    def b_start(r: _Run) -> int:
        return page.tok_start[r.bj]

    def b_end(r: _Run) -> int:
        return page.tok_end[r.bj + r.k - 1]

    candidates: list[tuple[float, list[_Run]]] = []
    for mode in ("head", "tail", "bulk"):
        if mode == "head":
            starts = [a_start(r) <= slack for r in runs]
            finals = [b_len - b_end(r) <= zone for r in runs]
        elif mode == "tail":
            starts = [b_start(r) <= zone for r in runs]
            finals = [p_len - a_end(r) <= slack for r in runs]
        else:
            starts = [True] * len(runs)
            finals = [True] * len(runs)
        chain, score = _chain_dp(psg, page, runs, starts, finals, min_run)
        if not chain or score <= 0:
            continue
        matched = sum(_run_len(page, r) for r in chain)
        if matched < 2 * min_run or (mode == "bulk" and matched < _BULK_SHARE * p_len):
            continue
        candidates.append((score, chain))
    if not candidates:
        return []
    return max(candidates, key=lambda c: c[0])[1]


def _chain_dp(psg: _Normalised, page: _Normalised, runs: list[_Run], starts: list[bool], finals: list[bool],
              min_run: int) -> tuple[list[_Run], float]:
    """Highest-scoring chain (matched characters less gap costs) that starts at a `starts` run and ends at a
    `finals` run; a run overlapping its predecessor is trimmed at its start."""
    n = len(runs)
    score: list[float] = [-math.inf] * n
    back: list[int] = [-1] * n
    used: list[_Run] = list(runs)  # the (possibly trimmed) run each chain ends with
    for x in range(n):
        r = runs[x]
        if starts[x]:
            score[x] = _run_len(page, r)
        for y in range(x):
            if score[y] == -math.inf:
                continue
            p = used[y]
            pa_end, pb_end = p.ai + p.k, p.bj + p.k
            if r.ai + r.k <= pa_end or r.bj + r.k <= pb_end:
                continue
            t = max(0, pa_end - r.ai, pb_end - r.bj)
            if t and not _run_ok(page, r.bj + t, r.k - t, min_run):
                continue
            ai, bj, k = r.ai + t, r.bj + t, r.k - t
            gap = max(psg.tok_start[ai] - psg.tok_end[pa_end - 1], page.tok_start[bj] - page.tok_end[pb_end - 1])
            value = score[y] + page.tok_end[bj + k - 1] - page.tok_start[bj] - _GAP_COST * min(gap, _GAP_CAP)
            if value > score[x]:
                score[x], back[x] = value, y
                used[x] = _Run(ai, bj, k) if t else r
    best, best_score = -1, -math.inf
    for x in range(n):
        if finals[x] and score[x] > best_score:
            best, best_score = x, score[x]
    chain: list[_Run] = []
    while best >= 0:
        chain.append(used[best])
        best = back[best]
    chain.reverse()
    return chain, best_score


def _complete(psg: _Normalised, page: _Normalised, runs: list[_Run], chain: list[_Run], min_run: int) -> list[_Run]:
    """The chain, plus the passage text it left out that is elsewhere on the page (a block pdfium reads in another
    order, e.g. in the other column), in runs of at least 2 x `min_run` characters on page text not yet used.

    The gaps between runs of the chain are filled freely. The passage's unmatched start (end) is filled freely
    too, unless the chain begins (ends) at the page's edge: then that part of the passage is rather on the
    previous (next) page, and text found here is only taken if it holds nearly all of it (a page that merely
    repeats some of its phrases, as legal texts do, gets no highlight for them)."""
    zone = max(_EDGE_ZONE_MIN, _EDGE_ZONE * len(page.text))
    first, last = chain[0], chain[-1]
    free = [(chain[x].ai + chain[x].k, chain[x + 1].ai) for x in range(len(chain) - 1)]
    edges: list[tuple[int, int]] = []
    if first.ai > 0:
        (free if page.tok_start[first.bj] > zone else edges).append((0, first.ai))
    if last.ai + last.k < len(psg.tokens):
        after = len(page.text) - page.tok_end[last.bj + last.k - 1]
        (free if after > zone else edges).append((last.ai + last.k, len(psg.tokens)))
    claimed = [(r.bj, r.bj + r.k) for r in chain]
    found = list(chain)
    found += _fill(psg, page, runs, free, claimed, 2 * min_run)
    for lo, hi in edges:
        extra = _fill(psg, page, runs, [(lo, hi)], list(claimed), 2 * min_run)
        covered = sum(psg.non_space(psg.tok_start[r.ai], psg.tok_end[r.ai + r.k - 1]) for r in extra)
        if covered >= _EDGE_FILL_SHARE * psg.non_space(psg.tok_start[lo], psg.tok_end[hi - 1]):
            found += extra
            claimed += [(r.bj, r.bj + r.k) for r in extra]
    return sorted(found, key=lambda r: r.bj)


def _fill(psg: _Normalised, page: _Normalised, runs: list[_Run], gaps: list[tuple[int, int]],
          claimed: list[tuple[int, int]], min_run: int) -> list[_Run]:
    """The longest runs on unclaimed page text, greedily, inside each passage token range of `gaps` (claims them)."""
    extra: list[_Run] = []
    gaps = list(gaps)
    while gaps:
        lo, hi = gaps.pop()
        if hi <= lo:
            continue
        best: _Run | None = None
        best_len = 0
        for r in runs:
            ai, aj = max(r.ai, lo), min(r.ai + r.k, hi)
            if aj <= ai:
                continue
            cut = _Run(ai, r.bj + ai - r.ai, aj - ai)
            if any(cut.bj < e and s < cut.bj + cut.k for s, e in claimed):
                continue
            if not _run_ok(page, cut.bj, cut.k, min_run):
                continue
            if (length := _run_len(page, cut)) > best_len:
                best, best_len = cut, length
        if best is None:
            continue
        extra.append(best)
        claimed.append((best.bj, best.bj + best.k))
        gaps += [(lo, best.ai), (best.ai + best.k, hi)]
    return extra


def _merge_spans(spans: list[tuple[int, int]], text: str) -> list[tuple[int, int]]:
    """Sorted spans, those separated by whitespace only merged into one."""
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if merged and (s <= merged[-1][1] or not text[merged[-1][1]:s].strip()):
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged


# ----------------------------------------------------------------------------------------------------- rendering


def render_page_png(pdf_path: Path, page: int, passages: Sequence[str] = (), scale: float = 1.5,
                    max_pixels: int = 12_000_000) -> PageImage:
    """The 1-based `page` of `pdf_path` as PNG, with each passage's text highlighted where found.

    `scale` is pixels per PDF point (1.5: 108 dpi); it is reduced so that the image has at most `max_pixels`.
    Raises PageRenderError (naming the file) for a missing, non-PDF, encrypted or unreadable file, a page out of
    range or an invalid argument. pdfium runs under the module's lock; locating, drawing and PNG encoding do not."""
    began = time.perf_counter()
    pdf_path = Path(pdf_path)
    name = pdf_path.name
    if isinstance(page, bool) or not isinstance(page, int):
        raise PageRenderError(f"{name}: page must be an integer, not {page!r}")
    if not (isinstance(scale, int | float) and math.isfinite(scale) and scale > 0):
        raise PageRenderError(f"{name}: scale must be a positive number, not {scale!r}")
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise PageRenderError(f"{name}: max_pixels must be a positive integer, not {max_pixels!r}")
    if not pdf_path.exists():
        raise PageRenderError(f"{name}: file not found")
    if not pdf_path.is_file():
        raise PageRenderError(f"{name}: not a regular file")
    wanted = [p for p in passages if p and p.strip()]
    with _PDFIUM_LOCK:
        pdf = _open_pdf(pdf_path)
    pg: pdfium.PdfPage | None = None
    textpage: pdfium.PdfTextPage | None = None
    try:
        with _pdfium_calls(f"{name}: page {page} cannot be rendered"):
            page_count = len(pdf)
            if not 1 <= page <= page_count:
                raise PageRenderError(f"{name}: page {page} out of range, the document has {page_count} "
                                      f"page{'s' if page_count != 1 else ''}")
            pg = pdf[page - 1]
            image, posconv = _render(pg, scale, max_pixels, f"{name} page {page}")
            if wanted:
                textpage = pg.get_textpage()
                text = _page_text(textpage)
        spans: list[tuple[int, int]] = []
        matched = 0
        if wanted:
            normalised = _Normalised(text)
            for passage in wanted:
                found, count = _locate(normalised, text, passage, 12)
                spans += found
                matched += count
        groups: list[list[tuple[float, ...]]] = []
        if spans and textpage is not None:
            with _pdfium_calls(f"{name}: page {page}: the text boxes cannot be read"):
                groups = _span_boxes(textpage, posconv, text, spans)
    finally:
        with _PDFIUM_LOCK:
            for obj in (textpage, pg, pdf):
                if obj is not None:
                    obj.close()
    rects = _draw_highlights(image, groups)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    log.debug("rendered %s page %d/%d (%dx%d, %d highlights, %d chars) in %.0f ms", name, page, page_count,
              image.width, image.height, rects, matched, 1000 * (time.perf_counter() - began))
    return PageImage(png=buffer.getvalue(), page=page, page_count=page_count, width=image.width,
                     height=image.height, highlights=rects, matched_chars=matched)


@contextmanager
def _pdfium_calls(failure: str) -> Iterator[None]:
    """Holds the pdfium lock; a pdfium failure becomes a PageRenderError with the `failure` message."""
    with _PDFIUM_LOCK:
        try:
            yield
        except PageRenderError:
            raise
        except Exception as exc:  # pdfium reports failures as PdfiumError, ValueError, ctypes errors...
            log.warning("%s", failure, exc_info=True)
            raise PageRenderError(f"{failure} ({exc})") from None


def _open_pdf(pdf_path: Path) -> pdfium.PdfDocument:
    """The document, or a PageRenderError naming the file and the reason (call under the pdfium lock)."""
    name = pdf_path.name
    try:
        return pdfium.PdfDocument(pdf_path)
    except FileNotFoundError:
        raise PageRenderError(f"{name}: file not found") from None
    except pdfium.PdfiumError as exc:
        raise PageRenderError(f"{name}: {_load_reason(exc)}") from None
    except OSError as exc:
        raise PageRenderError(f"{name}: cannot be read ({exc.strerror or exc})") from None


def _render(pg: pdfium.PdfPage, scale: float, max_pixels: int, what: str) -> tuple[Image.Image, pdfium.PdfPosConv]:
    """The page as an RGB image, and the page-to-image coordinate converter (call under the pdfium lock)."""
    width_pt, height_pt = pg.get_size()
    if not (width_pt > 0 and height_pt > 0):
        raise PageRenderError(f"{what} has no size ({width_pt} x {height_pt} pt)")
    fitted = _fit_scale(width_pt, height_pt, scale, max_pixels, what)
    if fitted != scale:
        log.info("%s: scale %.3g reduced to %.3g to stay within %d pixels", what, scale, fitted, max_pixels)
    bitmap = pg.render(scale=fitted)
    try:
        return bitmap.to_pil().convert("RGB"), bitmap.get_posconv(pg)  # a copy: the bitmap is freed on close
    finally:
        bitmap.close()


def _fit_scale(width_pt: float, height_pt: float, scale: float, max_pixels: int, what: str) -> float:
    def pixels(s: float) -> int:
        return math.ceil(width_pt * s) * math.ceil(height_pt * s)

    if pixels(scale) <= max_pixels:
        return scale
    fitted = math.sqrt(max_pixels / (width_pt * height_pt))
    while fitted > 0 and pixels(fitted) > max_pixels:
        fitted *= 0.995
    if math.ceil(width_pt * fitted) < 1 or math.ceil(height_pt * fitted) < 1 or pixels(fitted) < 1:
        raise PageRenderError(f"{what} ({width_pt:.0f} x {height_pt:.0f} pt) cannot fit in {max_pixels} pixels")
    return fitted


def _load_reason(exc: pdfium.PdfiumError) -> str:
    code = getattr(exc, "err_code", None)
    return {
        pdfium_c.FPDF_ERR_PASSWORD: "the PDF is encrypted (password protected)",
        pdfium_c.FPDF_ERR_SECURITY: "the PDF uses an unsupported security scheme",
        pdfium_c.FPDF_ERR_FORMAT: "not a PDF file, or a damaged one",
        pdfium_c.FPDF_ERR_FILE: "the file cannot be opened",
        pdfium_c.FPDF_ERR_PAGE: "the PDF has no readable page",
    }.get(code, "the PDF cannot be read")


def _page_text(textpage: pdfium.PdfTextPage) -> str:
    """The text with exactly one character per pdfium character index (get_text_range may insert or drop some)."""
    get = pdfium_c.FPDFText_GetUnicode
    chars = []
    for i in range(textpage.count_chars()):
        code = get(textpage, i)
        chars.append(chr(code) if 0 < code < 0x110000 else " ")
    return "".join(chars)


def _span_boxes(textpage: pdfium.PdfTextPage, posconv: pdfium.PdfPosConv, text: str,
                spans: list[tuple[int, int]]) -> list[list[tuple[float, ...]]]:
    """Image boxes (x0, y0, x1, y1) of the visible characters of each span (call under the pdfium lock)."""
    groups: list[list[tuple[float, ...]]] = []
    for start, end in spans:
        group = []
        for i in range(start, end):
            if _is_space(text[i]):
                continue
            try:
                left, bottom, right, top = textpage.get_charbox(i, loose=True)
            except pdfium.PdfiumError:
                continue
            if right <= left and top <= bottom:
                continue
            x0, y0 = posconv.to_bitmap(left, bottom)
            x1, y1 = posconv.to_bitmap(right, top)
            group.append((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
        if group:
            groups.append(group)
    return groups


def _line_rects(boxes: list[tuple[float, ...]]) -> list[tuple[float, float, float, float]]:
    """Consecutive character boxes merged into one rectangle per line (horizontal, or vertical on a rotated page)."""
    rects: list[list[float]] = []
    orient: list[str] = []  # "h", "v", or "" while a rectangle holds one character
    for x0, y0, x1, y1 in boxes:
        if rects:
            r = rects[-1]
            height = max(r[3] - r[1], y1 - y0, 1.0)
            width = max(r[2] - r[0], x1 - x0, 1.0)
            across = min(r[3], y1) - max(r[1], y0) >= 0.5 * min(r[3] - r[1], y1 - y0)
            along = r[0] - height <= x0 <= r[2] + 3 * height
            down = min(r[2], x1) - max(r[0], x0) >= 0.5 * min(r[2] - r[0], x1 - x0)
            stacked = r[1] - 3 * width <= y0 <= r[3] + 3 * width
            kind = "h" if across and along else "v" if down and stacked else ""
            if kind and orient[-1] in ("", kind):
                r[0], r[1], r[2], r[3] = min(r[0], x0), min(r[1], y0), max(r[2], x1), max(r[3], y1)
                orient[-1] = kind
                continue
        rects.append([x0, y0, x1, y1])
        orient.append("")
    return [(r[0], r[1], r[2], r[3]) for r in rects]


def _draw_highlights(image: Image.Image, groups: list[list[tuple[float, ...]]]) -> int:
    """Draw the line rectangles of each group, semi-transparent; returns how many were drawn."""
    rects = [rect for group in groups for rect in _line_rects(group)]
    if not rects:
        return 0
    mask = Image.new("L", image.size, 0)
    draw = ImageDraw.Draw(mask)
    for x0, y0, x1, y1 in rects:  # on one mask, so that overlapping rectangles do not darken twice
        draw.rectangle((math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1)), fill=HIGHLIGHT_ALPHA)
    image.paste(Image.new("RGB", image.size, HIGHLIGHT_RGB), (0, 0), mask)
    return len(rects)
