"""backplan's dashboard: ``backplan dashboard`` runs ``streamlit run dashboards/app.py``.

A multipage app: Plan, Profiles, Catalogue, Compare, the scripts in ``app_pages/`` (a folder
named ``pages/`` would also be served by Streamlit on its own, outside this navigation).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

HERE = Path(__file__).parent

st.set_page_config(page_title="backplan", page_icon=":material/memory:", layout="wide")
page = st.navigation(
    [
        st.Page(HERE / "app_pages" / "plan.py", title="Plan", icon=":material/shopping_cart:"),
        st.Page(HERE / "app_pages" / "profiles.py", title="Profiles", icon=":material/speed:"),
        st.Page(HERE / "app_pages" / "catalogue.py", title="Catalogue", icon=":material/list:"),
        st.Page(HERE / "app_pages" / "compare.py", title="Compare", icon=":material/compare:"),
    ]
)
st.sidebar.caption("backplan: is a verifier worth it on your machines, and what to buy?")
page.run()
