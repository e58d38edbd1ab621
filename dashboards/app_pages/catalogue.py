"""The Catalogue page."""

from dashboards.state import guarded
from dashboards.views.catalogue import render

if __name__ == "__main__":  # Streamlit runs pages as __main__; a spawned process must not
    guarded(render)()
