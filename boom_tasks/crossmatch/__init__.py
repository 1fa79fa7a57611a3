"""The crossmatch stage: each new object matched with archival catalogs, once.

:mod:`.config` (what to match), :mod:`.match` (pure matching of fetched rows),
:mod:`.stage` (per batch, against MongoDB), :mod:`.reprocess` and :mod:`.cli`
(``boom crossmatch reprocess``).
"""
