"""HTTP routes: one blueprint per warehouse wire format, plus operations."""
