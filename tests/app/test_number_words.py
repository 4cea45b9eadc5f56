"""Numbers written in words are read as digits, and a lone article is not the number one."""

import pytest

from app.number_words import spelled_numbers


@pytest.mark.parametrize(("text", "expected"), [
    ("pour une durée maximum de vingt-quatre mois", {"24"}),
    ("un délai d'un jour franc", {"1"}),
    ("quatre-vingt-dix jours", {"90"}),
    ("soixante et onze ans", {"71"}),
    ("soixante-dix-sept", {"77"}),
    ("deux cent mille euros d'amende", {"200000"}),
    ("mille cinq cents", {"1500"}),
    ("within thirty days and one year", {"30", "1"}),
    ("three hundred and five", {"305"}),
])
def test_number_words_read_as_digits(text: str, expected: set[str]) -> None:
    assert spelled_numbers(text) == expected


@pytest.mark.parametrize("text", [
    "un officier de police judiciaire transmet le procès-verbal",
    "une amende de 3 750 euros",
    "one of the members",
    "Le ministre de la défense peut déléguer sa signature.",
])
def test_articles_and_digits_are_not_spelled_numbers(text: str) -> None:
    assert spelled_numbers(text) == set()
