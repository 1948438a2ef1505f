"""SQuAD's answer scoring as the QA set's README defines it (tests/support/squad_qa.py)."""

from __future__ import annotations

import pytest

from tests.support import squad_qa


def test_normalisation_drops_case_punctuation_articles_and_markers():
    assert squad_qa.exact_match(squad_qa.strip_markers("The Denver Broncos! [1]"), "denver broncos")
    assert not squad_qa.exact_match("Denver", "Denver Broncos")


def test_token_f1_and_containment():
    assert squad_qa.token_f1("Denver Broncos won", "the Denver Broncos") == pytest.approx(0.8)
    assert squad_qa.token_f1("Carolina", "Denver") == 0.0
    assert squad_qa.contains("In 1977 the Department was created.", "1977")
    assert not squad_qa.contains("In 19770 it was.", "1977")  # whole words only


def test_splits_are_disjoint_by_article_and_cover_the_set():
    if not squad_qa.available():
        pytest.skip("the QA set is not in ../shared")
    qa = squad_qa.load()
    tune, report = qa.split(squad_qa.TUNE), qa.split(squad_qa.REPORT)
    assert {q.article for q in tune}.isdisjoint({q.article for q in report})
    assert len(tune) + len(report) == len(qa.questions)
