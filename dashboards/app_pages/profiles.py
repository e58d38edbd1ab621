"""The Profiles page."""

from dashboards.state import guarded
from dashboards.views.profiles import render

# Streamlit runs a page as __main__; a process spawned from the page (the profiler's workers)
# imports it under another name and must not render it again
if __name__ == "__main__":
    guarded(render)()
