"""INEGI's credit has one wording, kept in riskmap.provenance and used by every producer."""

from __future__ import annotations

from riskmap.provenance import INEGI_CREDIT, attribution


def test_inegi_credit_is_worded_once():
    from riskmap.inegi import INEGI_ATTRIBUTION_EN, INEGI_ATTRIBUTION_ES
    from riskmap.inegi.simulate import label_card

    card = label_card({}, {"intercept": 0.0, "slopes": {}, "rate": 0.1})
    for lang, text in (("es", INEGI_ATTRIBUTION_ES), ("en", INEGI_ATTRIBUTION_EN)):
        assert text.endswith(INEGI_CREDIT[lang])
        assert card["attribution"][lang].endswith(INEGI_CREDIT[lang])
        assert attribution({"sources": ["INEGI, ITER 2020"]}, lang).endswith(INEGI_CREDIT[lang])
    assert "respalda" not in card["attribution"]["es"]
