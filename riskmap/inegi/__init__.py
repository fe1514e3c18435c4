"""INEGI-specific code: source mappings, municipal ITER tables, semi-synthetic Mexico,
imported editions and downloads of the official files.

Nothing here is needed by the synthetic demo; everything works on files the user supplies
(or downloads with ``riskmap fetch``).
"""

from ..provenance import inegi_attribution

#: Attribution required by INEGI's "Términos de Libre Uso de la Información" (the one wording
#: of :data:`riskmap.provenance.INEGI_CREDIT`).
INEGI_ATTRIBUTION_ES = inegi_attribution(
    ["Marco Geoestadístico", "Censo de Población y Vivienda 2020, ITER"], "es")
INEGI_ATTRIBUTION_EN = inegi_attribution(
    ["Marco Geoestadístico", "2020 Population and Housing Census, ITER"], "en")
