"""Home of pluggable science actors (classifiers, enrichers) that later stages add.

The built-in pipeline stages are declared in :mod:`boom_tasks.actors`, the module
Dramatiq imports (``dramatiq boom_tasks.actors``); nothing lives here yet.
"""
