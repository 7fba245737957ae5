"""What the dashboard tests share: the session their page stands for."""

SESSION = "session-1"
"""The session of the tests' page (a page's signed token names one: dashboard.sessions)."""
