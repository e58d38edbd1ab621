"""Page scripts run by ``st.navigation`` in ``dashboards/app.py`` (and by AppTest alone)."""
