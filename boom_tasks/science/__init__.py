"""Science actors: astronomers' own Python run on the alerts between ML and the filters.

:mod:`.base` is the API an actor module implements; :mod:`.loader` finds the enabled
ones; :mod:`.stage` runs them on a batch; :mod:`.actor` is the ``<survey>_science``
Dramatiq actor; :mod:`.health` disables an actor failing batch after batch;
:mod:`.cli` is ``boom science``. See ``docs/science-actors.md``.
"""
