"""Faust tables and their typed accessors.

Tables hold raw bytes under raw byte keys: the typed accessors here turn them
into domain records, so a recovered table (whose keys come back as bytes) and
a live one always agree.
"""
