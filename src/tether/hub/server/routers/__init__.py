"""One APIRouter per resource; ``app.py`` includes them in its ``ROUTERS`` order.

users (whoami), repos (create, delete, settings, info, trees), refs (branches, tags),
commits (history, preupload, commit), xet (write token, CAS), lfs (batch, signed uploads
and downloads), git (smart HTTP clone and fetch), files (resolve), web (the pages, last).
A new resource (organisations) is one more module with its ``router``, added to ``ROUTERS``.

The order matters where two paths could match the same request: the API and CAS routes
come before the file routes, and a dataset's or space's file routes before a model's
(``/{namespace}/{name}/...``).

listing (find repos: ``/api/models`` and friends) comes before repos.
"""
