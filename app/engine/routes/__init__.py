"""One router per concern: health and log-in, search, answers, documents and ingestion, OpenAI, audit."""
