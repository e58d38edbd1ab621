"""One module per page, each with a ``render()`` (the page scripts in ``app_pages/`` call it)."""
