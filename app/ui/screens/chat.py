"""Chat page."""

from app.ui import pages_chat

pages_chat.show()
