"""Sweep folders: reading their jobs, laying their images out as figures, summarising them."""
