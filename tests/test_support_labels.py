"""The support judge keys a pair on the model's words: a translated sentence's quote is the source's own text."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("support_labels", REPO / "bench" / "support_labels.py")
labels = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(labels)


def test_a_translated_quote_is_left_out_of_the_judged_claim() -> None:
    plain = "A fine of 18,000 euros is incurred once the hearing has opened [1]."
    quoted = ("A fine of 18,000 euros is incurred once the hearing has opened (« Dès l'ouverture de l'audience, "
              "l'emploi de tout appareil (photographique) est interdit. Toutefois, le président peut ») [1].")
    assert labels.claim(quoted) == labels.claim(plain) == plain[: -len(" [1].")] + "."
    assert labels.pair_key(quoted, "c1") == labels.pair_key(plain, "c1")


def test_a_french_quote_and_brackets_in_a_claim_are_kept() -> None:
    assert labels.claim("« Le ministre (de la défense) décide » [1].") == "« Le ministre (de la défense) décide »."
    assert labels.claim("Le ministre (de la défense) décide [2].") == "Le ministre (de la défense) décide."
