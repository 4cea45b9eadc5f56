"""Administration page: upload (admins only)."""

from app.ui import pages_admin

pages_admin.render_upload()
