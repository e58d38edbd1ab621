"""The Streamlit dashboard: plan, profiles, catalogue and compare pages over the planner.

``backplan dashboard`` serves it; ``dashboards/app.py`` is the script Streamlit runs.
"""
