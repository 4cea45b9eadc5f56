"""OCR of a scanned French PDF: `run_ingest` on a 50-page scan made from a real PDF, word recall, page citations.

The scan is made here from a real PDF with a text layer (default: Code pénal, Légifrance, pages 1-50): each
page is rendered at `--dpi` (300) in grayscale and the images are written as an image-only PDF, as a scanner
would give it. That PDF is ingested into a fresh VIGIE_HOME with `run_ingest`, exactly as `vigie ingest` does
(parser worker, per-page OCR with tesseract fra+eng on one thread, chunking, embeddings, Qdrant).

Then, against the original text layer:
- word recall: the share of each original page's words that OCR read on that page (with repeats; case and
  punctuation aside), from a second, in-process `parse_file` of the scan (the pipeline keeps no per-page text),
  and over the whole document from the indexed chunks;
- citations: for `--samples` pages drawn with `--seed`, a distinctive sentence of the page's text layer (10-30
  words of body text, found on no other page; running headers and footers left out) is searched (hybrid,
  restricted to the document); hit@1 / hit@5 = the first hit / one of the first five cites a page range
  holding that page; "cited right" = the chunks holding the sentence cite its page (retrieval aside);
- baseline: the same pages with their text layer (cut from the source with pikepdf) are ingested too and
  checked the same way, so that what OCR costs is told apart from what retrieval does on this text.

    python bench/ocr_bench.py
    python bench/ocr_bench.py --source /work/shared/data/corpus/pdf/constitution_1958_conseil_constitutionnel_2015.pdf \
        --first-page 1 --pages 40
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import re
import statistics
import sys
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

from common import (
    SHARED_DATA,
    RssMonitor,
    Stopwatch,
    add_common_args,
    fresh_home,
    make_settings,
    markdown_table,
    public_settings,
    rate,
    write_result,
)

from index.document_index import DocumentIndex
from index.models import SearchFilter
from ingest.parse import parse_file
from ingest.pipeline import run_ingest

NAME = "ocr_bench"
DEFAULT_SOURCE = SHARED_DATA / "corpus" / "pdf" / "code_penal_legifrance_2024-03.pdf"


def words(text: str, fold: bool = False) -> list[str]:
    """Lower-cased words; pdfium's U+FFFE (hyphen at a line end) read as a hyphen; `fold` drops accents."""
    text = text.replace("\ufffe\r\n", "-").replace("\ufffe", "-").replace("’", "'")
    text = unicodedata.normalize("NFD" if fold else "NFC", text).lower()
    if fold:
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.findall(r"\w+", text)


def word_recall(reference: str, read: str) -> float | None:
    ref, got = Counter(words(reference)), Counter(words(read))
    total = sum(ref.values())
    return sum((ref & got).values()) / total if total else None


def make_scan(source: Path, first: int, count: int, dpi: int, out: Path) -> list[str]:
    """Write pages first..first+count-1 of `source` as an image-only PDF; returns their text layers."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(source)
    try:
        if first < 1 or first + count - 1 > len(pdf):
            raise SystemExit(f"error: {source} has {len(pdf)} pages; cannot take {count} from page {first}")
        texts, images = [], []
        for n in range(first - 1, first - 1 + count):
            page = pdf[n]
            texts.append(page.get_textpage().get_text_range())
            images.append(page.render(scale=dpi / 72, grayscale=True).to_pil())
    finally:
        pdf.close()
    images[0].save(out, "PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return texts


def make_text_pdf(source: Path, first: int, count: int, out: Path) -> None:
    """The same pages with their text layer (the baseline)."""
    import pikepdf

    with pikepdf.open(source) as src, pikepdf.new() as dst:
        dst.pages.extend(src.pages[first - 1:first - 1 + count])
        dst.save(out)


def _folded(text: str) -> str:
    return f' {" ".join(words(text, fold=True))} '


def pick_sentences(texts: list[str], samples: int, seed: int) -> dict[int, str]:
    """{page (1-based in the scan): a body sentence of 10-30 words of that page found on no other page}."""
    folded = [_folded(t) for t in texts]
    line_pages = Counter(line.strip() for t in texts for line in set(t.splitlines()) if line.strip())
    candidates: dict[int, list[str]] = {}
    for page, text in enumerate(texts, start=1):
        text = text.replace("\ufffe\r\n", "-").replace("\ufffe", "-")
        body = [line for line in text.splitlines() if line.strip() and line_pages[line.strip()] <= 2
                and not re.match(r"\s*(Article|Chapitre|Titre|Section|Livre|Partie)\b", line)]
        for sentence in re.split(r"(?<=[.;:])\s+", re.sub(r"\s+", " ", " ".join(body))):
            n = len(words(sentence))
            if 10 <= n <= 30 and sum(_folded(sentence) in f for f in folded) == 1:
                candidates.setdefault(page, []).append(sentence.strip())
    rng = random.Random(seed)
    pages = sorted(rng.sample(sorted(candidates), min(samples, len(candidates))))
    return {p: rng.choice(candidates[p]) for p in pages}


def citation_checks(idx: DocumentIndex, doc_id: str, sentences: dict[int, str]) -> dict[str, Any]:
    """Search each sentence in the document; where its hits and the chunks holding it point."""
    flt = SearchFilter(doc_ids=(doc_id,))
    points = idx.store.points(doc_id)
    checks = []
    for page, sentence in sentences.items():
        spans = [(h.chunk.page_start, h.chunk.page_end) for h in idx.search(sentence, k=5, flt=flt)]
        cites = [s is not None and e is not None and s <= page <= e for s, e in spans]
        holding = [(p.payload["page_start"], p.payload["page_end"]) for p in points
                   if _folded(sentence) in _folded(p.payload["text"])]
        checks.append({"page": page, "sentence": sentence, "top_pages": spans, "hit1": bool(cites) and cites[0],
                       "hit5": any(cites), "top_exact": bool(spans) and spans[0] == (page, page),
                       "chunks_holding": holding,
                       "cited_right": bool(holding) and all(s <= page <= e for s, e in holding)})
    n = len(checks)

    def share(key: str) -> float | None:
        return round(sum(bool(c[key]) for c in checks) / n, 3) if n else None

    return {"samples": n, "hit_at_1": share("hit1"), "hit_at_5": share("hit5"),
            "top_hit_on_that_page_only": share("top_exact"), "cited_right": share("cited_right"),
            "sentence_found_in_a_chunk": share("chunks_holding"), "checks": checks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="PDF with a text layer to scan")
    parser.add_argument("--first-page", type=int, default=1, help="first page of the source to scan")
    parser.add_argument("--pages", type=int, default=50, help="number of pages to scan")
    parser.add_argument("--dpi", type=int, default=300, help="resolution of the scan (grayscale)")
    parser.add_argument("--samples", type=int, default=20, help="pages whose sentence is searched")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--no-baseline", action="store_true", help="skip ingesting the text-layer original")
    parser.add_argument("--no-recall-pass", action="store_true",
                        help="skip the in-process parse that measures per-page recall (halves the run time)")
    add_common_args(parser)
    args = parser.parse_args(argv)
    source = args.source.expanduser().resolve()
    if not source.is_file():
        parser.error(f"no such PDF: {source}")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # what ingest.ocr gives tesseract anyway

    with RssMonitor() as rss, fresh_home() as home:
        scan = home / f"scan-{source.stem}-p{args.first_page}-{args.first_page + args.pages - 1}.pdf"
        with Stopwatch() as make:
            texts = make_scan(source, args.first_page, args.pages, args.dpi, scan)
        scan_mb = round(scan.stat().st_size / 1e6, 1)
        print(f"scan: {scan.name}, {args.pages} pages at {args.dpi} dpi, {scan_mb} MB, made in {make.seconds:.1f} s",
              file=sys.stderr)
        settings = make_settings(home, args.model, args.threads)
        idx = DocumentIndex(settings)
        try:
            with Stopwatch() as load:
                _ = idx.embedder
            report = run_ingest([scan], idx)
            if report.failed:
                raise SystemExit(f"error: the scan failed to ingest: {report.failed[0].reason}")
            memory = rss.report()  # the OCR ingest's peaks, before the baseline and the recall pass below
            scan_id = next(r.doc_id for r in idx.catalog.all() if r.path == str(scan))
            points = idx.store.points(scan_id)
            sentences = pick_sentences(texts, args.samples, args.seed)
            cit = citation_checks(idx, scan_id, sentences)
            baseline = None
            if not args.no_baseline:
                original = home / f"text-{scan.name.removeprefix('scan-')}"
                make_text_pdf(source, args.first_page, args.pages, original)
                base_report = run_ingest([original], idx)
                base_id = next(r.doc_id for r in idx.catalog.all() if r.path == str(original))
                baseline = {"ingest_seconds": round(base_report.seconds, 1), "ocr_pages": base_report.ocr_pages,
                            "chunks": base_report.chunks_added, **citation_checks(idx, base_id, sentences)}
        finally:
            idx.close()
        chunk_text = " ".join(p.payload["text"] for p in points)
        per_page: list[float | None] = []
        recall_seconds = None
        if not args.no_recall_pass:
            with Stopwatch() as again:
                doc = parse_file(scan, "pdf")
            recall_seconds = again.seconds
            for page, text in enumerate(texts, start=1):
                per_page.append(word_recall(text, " ".join(el.text for el in doc.elements if el.page == page)))

    measured = [r for r in per_page if r is not None]
    result: dict[str, Any] = {
        "source": str(source), "first_page": args.first_page, "pages": args.pages, "dpi": args.dpi,
        "scan_mb": scan_mb,
        "scan_make_seconds": round(make.seconds, 2),
        "settings": public_settings(settings),
        "model_load_seconds": round(load.seconds, 2),
        "ingest": {**report.to_json(), "seconds_per_page": round(report.seconds / args.pages, 2),
                   "pages_per_minute": rate(args.pages * 60, report.seconds)},
        "chunks": len(points),
        "word_recall": {
            "per_page_mean": round(statistics.fmean(measured), 4) if measured else None,
            "per_page_median": round(statistics.median(measured), 4) if measured else None,
            "per_page_min": round(min(measured), 4) if measured else None,
            "pages_below_0.95": sum(r < 0.95 for r in measured),
            "document_from_chunks": round(word_recall("\n".join(texts), chunk_text) or 0.0, 4),
            "per_page": [round(r, 4) if r is not None else None for r in per_page],
            "recall_pass_seconds": round(recall_seconds, 1) if recall_seconds else None,
        },
        "citations": {"seed": args.seed, **cit},
        "baseline_text_layer": baseline,
        "memory": memory,
    }
    path = write_result(NAME, result, args.output)

    rec, n = result["word_recall"], cit["samples"]
    base = baseline or {}
    print(markdown_table(["metric", "value"], [
        ["source", f"{source.name} pages {args.first_page}-{args.first_page + args.pages - 1}"],
        ["scan", f"{args.pages} pages, {args.dpi} dpi grayscale, image only, {result['scan_mb']} MB"],
        ["ingest seconds (run_ingest)", round(report.seconds, 1)],
        ["seconds per page", result["ingest"]["seconds_per_page"]],
        ["parse s / embed s / index s", f"{report.parse_seconds:.1f} / {report.embed_seconds:.1f} / "
                                        f"{report.index_seconds:.1f}"],
        ["pages OCR'd (report.ocr_pages)", report.ocr_pages],
        ["chunks", len(points)],
        ["word recall per page: mean / median / min", f"{rec['per_page_mean']} / {rec['per_page_median']} / "
                                                      f"{rec['per_page_min']}"],
        ["pages with recall < 0.95", rec["pages_below_0.95"]],
        ["word recall, whole document from the chunks", rec["document_from_chunks"]],
        [f"citation hit@1 / hit@5 ({n} sampled pages)", f"{cit['hit_at_1']} / {cit['hit_at_5']}"],
        ["top hit cites that page alone", cit["top_hit_on_that_page_only"]],
        ["chunks holding the sentence cite its page", f"{cit['cited_right']} (sentence found in a chunk: "
                                                      f"{cit['sentence_found_in_a_chunk']})"],
        ["baseline, text layer: hit@1 / hit@5 / cited right", f"{base.get('hit_at_1')} / {base.get('hit_at_5')} / "
                                                              f"{base.get('cited_right')}"],
        ["baseline, text layer: ingest seconds / chunks", f"{base.get('ingest_seconds')} / {base.get('chunks')}"],
        ["model load s (not in ingest)", result["model_load_seconds"]],
        ["peak RSS parent / children / total (MiB)", f"{memory['peak_rss_parent_mib']} / "
                                                     f"{memory['peak_rss_children_sampled_mib']} / "
                                                     f"{memory['peak_rss_total_sampled_mib']}"],
    ]))
    for c in (c for c in cit["checks"] if not c["hit1"]):
        print(f"hit@1 miss: page {c['page']}: top pages {c['top_pages']}: {c['sentence'][:100]}", file=sys.stderr)
    print(f"\nresult: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
