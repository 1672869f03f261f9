"""The hub's web page: server-rendered HTML for people, beside the API for clients.

``routers/web.py`` holds the routes; this package holds what they share: the model card
renderer (``card.py``, markdown with raw HTML off), the data the pages show (``views.py``:
the repos a caller may read, a folder of a commit's tree, a small text file), the sign-in
cookie (``session.py``) and the templates with their security headers (``pages.py``).

No script runs on these pages, ours or a card's: the templates are plain HTML and CSS, and
every page carries ``Content-Security-Policy: script-src 'none'``, so a card that slipped
markup past the renderer would still be inert.
"""
