"""A PDF page as PNG with a cited passage highlighted: the passage comes from pdfminer (as at ingestion), the page
text from pdfium, and the highlight must land on the passage's lines and nowhere else."""

from __future__ import annotations

import io
import itertools
import math
import re
import time
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pikepdf
import pypdfium2 as pdfium
import pytest
from fpdf import FPDF
from hypothesis import given, settings
from hypothesis import strategies as st
from pdfminer.high_level import extract_text
from PIL import Image, ImageChops, ImageStat

from app.pdf_pages import PageImage, PageRenderError, locate_passage, render_page_png

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
JO = SAMPLES / "journal_officiel_2023-06-21_extrait.pdf"  # 2 dense A4 pages of legal text
ANSSI = SAMPLES / "anssi_plaquette_NIS2_2024.pdf"  # 9 pages, two-page spreads in two columns


# ------------------------------------------------------------------------------------------------------- helpers


@cache
def miner_text(path: Path, page: int) -> str:
    """The 1-based page's text as pdfminer (the ingestion extractor) gives it."""
    return extract_text(str(path), page_numbers=[page - 1])


def miner_between(path: Path, page: int, start: str, stop: str) -> str:
    """pdfminer's text of the page from `start` (included) to `stop` (excluded): a paragraph, line breaks and all."""
    text = miner_text(path, page)
    return text[text.index(start):text.index(stop)]


def miner_lines(path: Path, page: int) -> list[str]:
    return [line for line in miner_text(path, page).splitlines() if line.strip()]


@cache
def pdfium_page(path: Path, page: int) -> tuple[str, float, float]:
    """(pdfium's text with one character per char index, page width, page height in points)."""
    pdf = pdfium.PdfDocument(path)
    try:
        pg = pdf[page - 1]
        assert pg.get_rotation() == 0 and pg.get_cropbox()[:2] == (0.0, 0.0)  # so pixels = points x scale
        textpage = pg.get_textpage()
        text = "".join(textpage.get_text_range(i, 1) or " " for i in range(textpage.count_chars()))
        width, height = pg.get_size()
        return text, width, height
    finally:
        pdf.close()


def char_box_px(path: Path, page: int, needle: str, scale: float, last: bool = False) -> tuple[float, ...]:
    """Pixel box (left, top, right, bottom) of the first (last) character of `needle`, found by pdfium."""
    pdf = pdfium.PdfDocument(path)
    try:
        pg = pdf[page - 1]
        textpage = pg.get_textpage()
        found = textpage.search(needle, match_case=True).get_next()
        assert found, f"{needle!r} not found by pdfium on page {page}"
        index = found[0] + (found[1] - 1 if last else 0)
        left, bottom, right, top = textpage.get_charbox(index, loose=True)
        height = pg.get_height()
        return left * scale, (height - top) * scale, right * scale, (height - bottom) * scale
    finally:
        pdf.close()


def decode(image: PageImage) -> Image.Image:
    assert image.png.startswith(b"\x89PNG\r\n\x1a\n")
    decoded = Image.open(io.BytesIO(image.png))
    decoded.load()
    return decoded.convert("RGB")


def non_space(text: str) -> int:
    return len("".join(text.split()))


def located(page_text: str, passage: str) -> str:
    return " | ".join(page_text[s:e] for s, e in locate_passage(page_text, passage))


# ---------------------------------------------------------------------------------------------------- rendering


@pytest.mark.parametrize(("path", "page", "pages"), [(JO, 1, 2), (JO, 2, 2), (ANSSI, 1, 9), (ANSSI, 3, 9)])
@pytest.mark.parametrize("scale", [1.0, 1.5])
def test_page_renders_as_png_of_the_page_size_times_scale(path: Path, page: int, pages: int, scale: float) -> None:
    image = render_page_png(path, page, scale=scale)
    _, width, height = pdfium_page(path, page)
    decoded = decode(image)
    assert decoded.size == (image.width, image.height) == (math.ceil(width * scale), math.ceil(height * scale))
    assert (image.page, image.page_count, image.highlights, image.matched_chars) == (page, pages, 0, 0)
    assert decoded.getextrema() != ((255, 255), (255, 255), (255, 255))  # something was drawn: not a blank page


PARAGRAPHS = [  # (file, page, pdfminer text from .. to, its first and last words as pdfium finds them)
    (JO, 1, "Art.  2.", "Art.  3.", "Art. 2.", "« Communication »."),
    (ANSSI, 3, "L’enjeu est", "L’ANSSI, en tant", "L’enjeu est", "résilience opérationnelle."),
    (ANSSI, 6, "Animée par", "Quelles obligations", "Animée par", "d’assistance opérationnelle."),
]


@pytest.mark.parametrize(("path", "page", "start", "stop", "first", "last"), PARAGRAPHS)
def test_real_paragraph_from_pdfminer_is_highlighted_on_its_lines(path: Path, page: int, start: str, stop: str,
                                                                  first: str, last: str) -> None:
    passage = miner_between(path, page, start, stop)
    assert 300 <= len(passage) <= 900 and passage not in pdfium_page(path, page)[0]  # another extractor's text
    plain = decode(render_page_png(path, page))
    image = render_page_png(path, page, [passage])
    lines = [line for line in passage.splitlines() if line.strip()]
    assert image.matched_chars >= 0.9 * non_space(passage)
    assert image.highlights >= len(lines)

    changed = ImageChops.difference(plain, decode(image)).getbbox()
    assert changed is not None
    top_left = char_box_px(path, page, first, 1.5)
    bottom_right = char_box_px(path, page, last, 1.5, last=True)
    tolerance = 4  # pixels: rounding of the boxes, at scale 1.5
    assert abs(changed[1] - top_left[1]) <= tolerance  # the highlight starts on the paragraph's first line ...
    assert abs(changed[3] - bottom_right[3]) <= tolerance  # ... and ends on its last one
    assert changed[0] <= top_left[0] + tolerance and changed[2] >= bottom_right[2] - tolerance
    if path == ANSSI:
        assert changed[2] - changed[0] < 0.5 * image.width  # one column of the two-page spread

    r, _, b = ImageStat.Stat(decode(image).crop(changed)).mean
    r0, _, b0 = ImageStat.Stat(plain.crop(changed)).mean
    assert b < b0 - 20 and r >= r0 - 2  # yellow over the text: less blue, no less red


def test_passage_from_another_page_gives_no_highlight_and_the_plain_image() -> None:
    elsewhere = miner_between(JO, 2, "Art.  6.", "Art.  7.")  # shares "Délégation est donnée à l'effet de" with p. 1
    image = render_page_png(JO, 1, [elsewhere])
    assert (image.highlights, image.matched_chars) == (0, 0)
    assert ImageChops.difference(decode(image), decode(render_page_png(JO, 1))).getbbox() is None
    other = miner_between(ANSSI, 6, "Animée par", "Quelles obligations")
    assert render_page_png(ANSSI, 3, [other]).highlights == 0


@pytest.mark.parametrize("with_header", [False, True])
def test_passage_across_a_page_break_is_split_between_the_two_pages(with_header: bool) -> None:
    end_of_1 = miner_lines(JO, 1)[-3:]  # the last three list items of page 1
    start_of_2 = miner_lines(JO, 2)[: 7 if with_header else None]
    if not with_header:
        start_of_2 = start_of_2[3:7]  # without the running header, as a cleaner may give it
    assert "Art.  4." in start_of_2[-4]
    first_half, second_half = "\n".join(end_of_1), "\n".join(start_of_2[-4:])
    passage = "\n".join(end_of_1 + start_of_2)

    text_1, text_2 = pdfium_page(JO, 1)[0], pdfium_page(JO, 2)[0]
    on_1, on_2 = located(text_1, passage), located(text_2, passage)
    assert "Ulrich Tan" in on_1 and "Campus du numérique" in on_1
    assert "Délégation" not in on_1  # the second half is legal boilerplate that page 1 repeats three times
    assert on_2.startswith("Art. 4. – Délégation") and on_2.rstrip().endswith("services numériques » :")
    assert "Fadila" not in on_2 and "cheffe" not in on_2

    page_1, page_2 = render_page_png(JO, 1, [passage]), render_page_png(JO, 2, [passage])
    assert page_1.highlights >= 3 and page_2.highlights >= 4
    assert page_1.matched_chars >= 0.9 * non_space(first_half) and page_2.matched_chars >= 0.9 * non_space(second_half)
    assert page_2.matched_chars <= non_space(second_half) + non_space("".join(start_of_2[:-4]))
    body = (0, int(char_box_px(JO, 1, "Décrets", 1.5)[1]), page_1.width, page_1.height)  # below the header
    changed = ImageChops.difference(decode(render_page_png(JO, 1)).crop(body), decode(page_1).crop(body)).getbbox()
    assert changed is not None and changed[1] + body[1] >= char_box_px(JO, 1, "M. Ulrich Tan", 1.5)[1] - 4


def test_a_hyphenated_word_at_a_line_end_is_highlighted_on_both_lines(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    for y, line in enumerate(["La politique de défen-", "se nationale est conduite par le", "Premier ministre."]):
        pdf.text(20, 30 + 8 * y, line)
    path = tmp_path / "hyphen.pdf"
    pdf.output(str(path))
    assert "défen\ufffese" in pdfium_page(path, 1)[0]  # pdfium's line-end hyphen, the line break dropped
    image = render_page_png(path, 1, ["politique de défen-\nse nationale est conduite par le Premier ministre."])
    assert image.highlights == 3 and image.matched_chars >= 55


def test_a_rotated_page_is_highlighted_along_its_vertical_lines(tmp_path: Path) -> None:
    rotated = tmp_path / "tourne.pdf"
    with pikepdf.open(JO) as pdf:
        pdf.pages[0].rotate(90, relative=True)
        pdf.save(rotated)
    passage = miner_between(JO, 1, "Art.  2.", "Art.  3.")
    image = render_page_png(rotated, 1, [passage])
    upright = render_page_png(JO, 1, [passage])
    assert (image.width, image.height) == (upright.height, upright.width)
    assert image.matched_chars == upright.matched_chars and 6 <= image.highlights <= 10  # one rectangle a line
    changed = ImageChops.difference(decode(render_page_png(rotated, 1)), decode(image)).getbbox()
    assert changed is not None and changed[3] - changed[1] > 3 * (changed[2] - changed[0])  # lines run downwards


def test_several_passages_and_blank_ones() -> None:
    art2 = miner_between(JO, 1, "Art.  2.", "Art.  3.")
    art3 = miner_between(JO, 1, "Art.  3.", "–  Mme Virginie")
    both = render_page_png(JO, 1, [art2, "", "   ", art3])
    one, other = render_page_png(JO, 1, [art2]), render_page_png(JO, 1, [art3])
    assert both.highlights == one.highlights + other.highlights
    assert both.matched_chars == one.matched_chars + other.matched_chars


def test_concurrent_calls_from_a_thread_pool_give_the_same_images() -> None:
    passage = miner_between(JO, 1, "Art.  2.", "Art.  3.")
    jobs = [(JO, 1 + i % 2, [passage]) for i in range(6)] + [(ANSSI, 1 + i, []) for i in range(6)]
    expected = [render_page_png(path, page, passages, scale=0.5) for path, page, passages in jobs]
    with ThreadPoolExecutor(max_workers=6) as pool:
        got = list(pool.map(lambda job: render_page_png(job[0], job[1], job[2], scale=0.5), jobs * 2))
    assert got == expected * 2


def test_one_call_on_a_dense_page_is_fast() -> None:
    passage = miner_text(JO, 1)[miner_text(JO, 1).index("Art.  1er"):][:2000].replace("agent", "agente")  # fuzzy
    render_page_png(JO, 1, [passage])
    began = time.perf_counter()
    image = render_page_png(JO, 1, [passage])
    elapsed = time.perf_counter() - began
    assert image.matched_chars >= 0.9 * non_space(passage)
    assert elapsed < 2.0, f"{elapsed:.2f} s"  # ~0.1 s on a laptop; generous for a loaded CI machine


# ------------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("page", [0, -1, 3, 100])
def test_page_out_of_range_names_the_page_count(page: int) -> None:
    expected = rf"{re.escape(JO.name)}: page {page} out of range, the document has 2 pages"
    with pytest.raises(PageRenderError, match=expected):
        render_page_png(JO, page)


def test_a_text_file_named_pdf_is_refused_naming_the_file(tmp_path: Path) -> None:
    fake = tmp_path / "rapport_secret.pdf"
    fake.write_text("Ceci n'est pas un PDF.\n", encoding="utf-8")
    with pytest.raises(PageRenderError, match=r"rapport_secret\.pdf: not a PDF file") as info:
        render_page_png(fake, 1)
    assert "pdfium" not in str(info.value).lower() and info.value.__cause__ is None
    empty = tmp_path / "vide.pdf"
    empty.write_bytes(b"")
    with pytest.raises(PageRenderError, match=r"vide\.pdf"):
        render_page_png(empty, 1)


def test_encrypted_missing_and_truncated_files_are_refused(tmp_path: Path) -> None:
    encrypted = tmp_path / "chiffre.pdf"
    with pikepdf.open(JO) as pdf:
        pdf.save(encrypted, encryption=pikepdf.Encryption(user="secret", owner="owner"))
    with pytest.raises(PageRenderError, match=r"chiffre\.pdf: the PDF is encrypted"):
        render_page_png(encrypted, 1)
    with pytest.raises(PageRenderError, match=r"absent\.pdf: file not found"):
        render_page_png(tmp_path / "absent.pdf", 1)
    with pytest.raises(PageRenderError, match=r"not a regular file"):
        render_page_png(tmp_path, 1)
    truncated = tmp_path / "tronque.pdf"
    truncated.write_bytes(JO.read_bytes()[:2000])
    with pytest.raises(PageRenderError, match=r"tronque\.pdf"):
        render_page_png(truncated, 1)


@pytest.mark.parametrize("scale", [0, -1.5, float("nan"), float("inf")])
def test_invalid_scale_is_refused(scale: float) -> None:
    with pytest.raises(PageRenderError, match="scale must be a positive number"):
        render_page_png(JO, 1, scale=scale)


def test_a_very_large_scale_is_reduced_to_fit_max_pixels() -> None:
    _, width, height = pdfium_page(JO, 1)
    passage = miner_between(JO, 1, "Art.  2.", "Art.  3.")
    image = render_page_png(JO, 1, [passage], scale=400, max_pixels=2_000_000)
    decoded = decode(image)
    assert decoded.size == (image.width, image.height)
    assert 0.98 * 2_000_000 <= image.width * image.height <= 2_000_000
    assert abs(image.width / image.height - width / height) < 0.01
    assert image.highlights >= 6 and image.matched_chars >= 0.9 * non_space(passage)


# ------------------------------------------------------------------------------------------- locating (pure)

PAGE = ("Article 12\r\nLa politique de défen-\r\nse nationale est déﬁnie par le Premier ministre, après avis du "
        "conseil de défense et de sécurité nationale.\r\nL’Agence « nationale » coordonne l’action des services.\r\n"
        "Les ministres sont responsables de la sécurité de leurs systèmes d’information.")


def test_hyphenation_across_a_line_break() -> None:
    for passage in ("La politique de défense nationale est", "la politique de défen-\nse nationale est",
                    "politique de défen- se nationale est"):
        assert located(PAGE, passage).endswith("se nationale est"), passage
    pdfium_style = "La politique de défen\x02se nationale est définie par le Premier ministre."  # pdfium's marker
    assert located(pdfium_style, "politique de défen-\nse nationale est définie") == \
        "politique de défen\x02se nationale est définie"
    assert located("mise en œuvre-\r\nEnsuite le texte", "mise en œuvre- Ensuite le") == "mise en œuvre-\r\nEnsuite le"


def test_ligatures_match_their_letters_both_ways() -> None:
    assert located(PAGE, "nationale est définie par le Premier ministre") == \
        "nationale est déﬁnie par le Premier ministre"
    assert located("Une politique définie par décret.", "politique déﬁnie par décret") == "politique définie par décret"


def test_typographic_apostrophes_quotes_and_dashes() -> None:
    assert located(PAGE, "L'Agence \"nationale\" coordonne l'action des services.") == \
        "L’Agence « nationale » coordonne l’action des services."
    assert located("Art. 1er. – Délégation est donnée", "Art. 1er. - Délégation est donnée") == \
        "Art. 1er. – Délégation est donnée"


def test_whitespace_case_and_non_breaking_spaces() -> None:
    passage = "  LES   MINISTRES\u00a0sont\tresponsables\n\n de la  sécurité de leurs systèmes d'information. "
    assert located(PAGE, passage) == "Les ministres sont responsables de la sécurité de leurs systèmes d’information."


def test_spans_map_back_to_the_page_characters() -> None:
    spans = locate_passage(PAGE, "après avis du conseil de défense")
    assert spans == [(PAGE.index("après"), PAGE.index("de défense et") + len("de défense"))]


def test_a_short_common_word_or_phrase_is_not_highlighted_alone() -> None:
    assert locate_passage(PAGE, "de") == []
    assert locate_passage(PAGE, "la sécurité") == []  # 11 characters < min_run
    assert locate_passage(PAGE, "Le chat de la voisine dort sur le canapé du salon, près de la fenêtre.") == []
    assert locate_passage(PAGE, "Le rapport annuel sur la situation budgétaire, selon le Premier ministre, reste "
                                "en préparation au cabinet depuis des mois.") == []
    assert locate_passage(PAGE, "") == [] and locate_passage("", "La politique de défense") == []


def test_fuzzy_passage_keeps_only_long_common_runs() -> None:
    passage = ("La politique de défense nationale est arrêtée par le Premier ministre, après avis du conseil de "
               "défense et de sécurité nationale.")  # "arrêtée" where the page says "définie"
    got = located(PAGE, passage)
    assert got.startswith("La politique de défen-\r\nse nationale est | ") and "Premier ministre, après avis" in got
    assert "déﬁnie" not in got


def test_part_of_a_passage_at_the_end_or_start_of_the_page() -> None:
    page = ("En-tête du journal\r\nPremier paragraphe sans rapport avec la suite du texte cité plus bas. "
            + "Texte de remplissage sans intérêt. " * 20
            + "\r\nLe Premier ministre dirige l’action du Gouvernement et assure l’exécution des lois.")
    continued = ("Le Premier ministre dirige l'action du Gouvernement et assure l'exécution des lois. Sous réserve des "
                 "dispositions de l'article 13, il exerce le pouvoir réglementaire et nomme aux emplois civils.")
    got = located(page, continued)
    assert got == "Le Premier ministre dirige l’action du Gouvernement et assure l’exécution des lois."
    next_page = ("dispositions de l’article 13, il exerce le pouvoir réglementaire et nomme aux emplois civils.\r\n"
                 "Article 22\r\n" + "Autre texte sans rapport. " * 30)
    assert located(next_page, continued) == \
        "dispositions de l’article 13, il exerce le pouvoir réglementaire et nomme aux emplois civils."


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="abcdé ’'-\r\n\x02ﬁ«»", max_size=300), st.integers(0, 300), st.integers(12, 120))
def test_any_text_gives_sorted_disjoint_spans_in_range(text: str, start: int, length: int) -> None:
    passage = text[start:start + length]
    spans = locate_passage(text, passage)
    assert all(0 <= s < e <= len(text) for s, e in spans)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    plain = not any(c in passage for c in "-\x02")  # a hyphen may join words differently in a cut-out piece
    if plain and len(passage.split()) > 1 and len(" ".join(passage.split())) >= 12:
        assert spans  # a piece of the page itself is always found
