"""Log-in page."""

from app.ui import pages_login

pages_login.show()
