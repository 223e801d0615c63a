"""``fak3zer0 serve``: web app and REST API (FastAPI).

    from fak3zer0.server import Settings, create_app
    app = create_app(Settings(data_dir="data", models=["model.pt"]))
"""
from fak3zer0.server.settings import Settings  # noqa: F401


def create_app(settings: "Settings"):
    """Build the FastAPI app (see :func:`fak3zer0.server.app.create_app`)."""
    from fak3zer0.server.app import create_app as _create

    return _create(settings)


__all__ = ["Settings", "create_app"]
