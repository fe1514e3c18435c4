"""INEGI-specific code: source mappings, municipal ITER tables, semi-synthetic Mexico,
imported editions and downloads of the official files.

Nothing here is needed by the synthetic demo; everything works on files the user supplies
(or downloads with ``riskmap fetch``).
"""

#: Attribution required by INEGI's "Términos de Libre Uso de la Información".
INEGI_ATTRIBUTION_ES = ("Fuente: INEGI (Marco Geoestadístico; Censo de Población y Vivienda "
                        "2020, ITER). Datos transformados por riskmap; INEGI no respalda este "
                        "producto.")
INEGI_ATTRIBUTION_EN = ("Source: INEGI (Marco Geoestadístico; 2020 Population and Housing "
                        "Census, ITER). Data transformed by riskmap; INEGI does not endorse "
                        "this product.")
