"""A configurable classification scale (`VIGIE_CLASSIFICATION_LEVELS`): ranks, partitions, labels and the access
filter follow it on the real engine, and an index refuses to open under another scale than it was built with."""

from __future__ import annotations

import pytest

from index import level_scale
from index.access import Reader
from index.document_index import DocumentIndex
from index.level_scale import LevelScale, LevelsChanged
from index.models import AccessLabel
from index.settings import VigieSettings
from ingest.pipeline import run_ingest
from tests.model_paths import EMBEDDING_MODEL

SCALE = "NP,DR,CD,S,TS"  # a ministry's scale with "Confidentiel Défense" between DR and S


@pytest.fixture(autouse=True)
def default_scale_afterwards():
    yield
    level_scale.configure(level_scale.DEFAULT_LEVELS)


def test_parse_validates_and_keeps_aliases_of_present_levels():
    scale = LevelScale.parse(" np, dr ,cd,S,ts ")
    assert scale.names == ("NP", "DR", "CD", "S", "TS") and scale.top == "TS"
    assert scale.rank("cd") == 2
    assert scale.normalize("Très secret") == "TS" and scale.normalize("diffusion_restreinte") == "DR"
    assert LevelScale.parse("C1,C2").aliases == {}
    for bad, reason in (("", "at least one"), ("NP,NP", "twice"), ("NP,2X", "not a level"), ("NP,A/B", "not")):
        with pytest.raises(ValueError, match=reason):
            LevelScale.parse(bad)
    with pytest.raises(ValueError, match="expected one of NP, DR, CD, S, TS"):
        scale.normalize("ULTRA")


def test_settings_configure_the_process_scale_and_refuse_a_bad_one():
    VigieSettings(classification_levels=SCALE)
    assert level_scale.current().names == ("NP", "DR", "CD", "S", "TS")
    assert AccessLabel("default", "cd").classification == "CD"
    assert Reader("CD", ()).may_see("DR", ()) and not Reader("CD", ()).may_see("S", ())
    with pytest.raises(ValueError, match="classification_levels"):
        VigieSettings(classification_levels="NP,,NP")
    VigieSettings()
    assert level_scale.current().names == level_scale.DEFAULT_LEVELS
    with pytest.raises(ValueError, match="unknown classification 'CD'"):
        AccessLabel("default", "CD")


def test_a_custom_level_gets_its_partition_and_the_filter_follows_the_scale(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for level in ("DR", "CD", "S"):
        (corpus / f"note-{level}.md").write_text(f"# Note {level}\n\nLa procédure MARQUE{level}XQ fixe le délai de "
                                                 "préavis de trente jours pour le personnel de réserve.\n",
                                                 encoding="utf-8")
        (corpus / f"note-{level}.md.vigie.toml").write_text(f'classification = "{level}"\n', encoding="utf-8")
    settings = VigieSettings(home=tmp_path / "home", embedding_model=EMBEDDING_MODEL, classification_levels=SCALE)
    index = DocumentIndex(settings)
    try:
        report = run_ingest([corpus], index)
        assert report.indexed == 3, report.failed
        assert (settings.resolved_index_path / "levels" / "CD").is_dir()
        for clearance, expected in (("DR", {"DR"}), ("CD", {"DR", "CD"}), ("S", {"DR", "CD", "S"})):
            flt = Reader(clearance, ()).search_filter()
            hits = index.search("procédure délai de préavis", k=10, flt=flt)
            assert {h.chunk.access.classification for h in hits} == expected
    finally:
        index.close()

    with pytest.raises(LevelsChanged, match="NP,DR,CD,S,TS"):  # the same index under the default scale
        DocumentIndex(VigieSettings(home=tmp_path / "home", embedding_model=EMBEDDING_MODEL))
    level_scale.configure(SCALE)
    DocumentIndex(VigieSettings(home=tmp_path / "home", embedding_model=EMBEDDING_MODEL,
                                classification_levels=SCALE)).close()  # the right scale opens it again
