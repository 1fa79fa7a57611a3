"""One picture per alert: its three stamps and its object's light curve, as a PNG.

Step 1: gather what the picture shows into an :class:`~boom_tasks.pictures.view.AlertView`,
        from a published message (``boom-print``) or from the stored documents
        (the API and the dashboard, :mod:`boom_tasks.pictures.documents`);
Step 2: read each stamp (:mod:`boom_tasks.pictures.stamps`); one that cannot be
        read becomes the reason, drawn in its panel;
Step 3: draw the figure (:mod:`boom_tasks.pictures.figure`) with matplotlib's
        Agg canvas, and encode it as PNG.

Nothing here is survey-specific: the survey plugin says how a point's band is
named (``Survey.band_field``) and how a forced-photometry point becomes a
magnitude (``Survey.forced_magnitude``).
"""

from boom_tasks.pictures.figure import build_figure, build_thumbnail, render_png
from boom_tasks.pictures.view import AlertView, from_documents, from_message

__all__ = [
    "AlertView",
    "build_figure",
    "build_thumbnail",
    "from_documents",
    "from_message",
    "render_png",
]
