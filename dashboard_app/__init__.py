"""Streamlit dashboard for editors and operators (page: `page.py`, AWS access: `data.py`)."""
