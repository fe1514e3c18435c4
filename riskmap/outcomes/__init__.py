"""Inspection outcomes: the database, users and roles, visit imports and field validation.

Library code (no Flask): :mod:`.db` (tables, engine, migrations), :mod:`.users` (accounts,
password hashing, API tokens, login throttling), :mod:`.visits` (reading, validating,
importing and exporting visit records) and :mod:`.fieldstats` (hit rates, lift, AUC and the
Poisson regression that estimates λ). This is the only data the service writes; published
editions stay read-only.
"""
