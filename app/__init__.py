"""moodspace service: FastAPI app, catalogue database, index store. Imports ``models``, never ``training``."""
