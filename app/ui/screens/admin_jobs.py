"""Administration page: jobs (admins only)."""

from app.ui import pages_admin

pages_admin.render_jobs()
