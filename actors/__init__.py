"""Science actors: astronomers' own Python, run by the ``<survey>_science`` stage.

Each module here holding ``ACTOR = ScienceActor(...)`` (:mod:`boom_tasks.science.base`)
is an actor, enabled by naming it in the configuration (``science.actors``); see
``docs/science-actors.md``. Shipped: :mod:`actors.exgal_transients`. Modules are
imported in every process to read their declaration: heavy imports go in ``setup``.
"""
