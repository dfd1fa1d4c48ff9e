"""moodspace models: torch/numpy only. Never imports ``app`` or ``training``."""
