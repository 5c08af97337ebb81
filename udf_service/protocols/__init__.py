"""Warehouse wire formats. Each module decodes a request into rows and encodes results (pure)."""
