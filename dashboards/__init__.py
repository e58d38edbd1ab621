"""Streamlit dashboards (filled by the dashboard issue)."""
