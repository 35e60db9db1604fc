"""Output: streaming markdown, plain and JSON writers, terminal-safe text.

Layer: render (imports rich only).
"""
