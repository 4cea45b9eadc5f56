"""Page scripts run by `st.navigation` (each one line: the page module's `render`)."""
