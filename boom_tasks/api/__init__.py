"""The HTTP API: users query the broker's database with boom-client (BOOM's Python client).

Request and response shapes are BOOM's (boom-astro/boom, ``api/``), as boom-client
sends and reads them: ``POST /auth`` for a bearer token, ``/queries/*`` for find,
count, pipeline and cone searches on any readable collection ("catalog"),
``/catalogs`` to list and inspect them, ``/surveys/{survey}/cutouts`` for images,
``/filters`` for each user's own filters (create, version, activate, test).
Every answer but ``/auth``'s is ``{"message": ..., "data": ...}``, documents in
MongoDB's relaxed Extended JSON. See docs/api.md.
"""
