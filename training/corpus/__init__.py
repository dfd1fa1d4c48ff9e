"""The built-in emotion-conditioned music generator and the MIDI renderers."""
