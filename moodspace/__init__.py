"""The ``moodspace`` command line (``moodspace.cli``); the code lives in ``models/``, ``training/`` and ``app/``."""
