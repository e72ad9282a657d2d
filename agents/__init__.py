"""The stages: one module each, a short loop that decodes, decides and emits."""
