"""reader: a streaming long-form reading engine (text-to-speech for articles and books)."""

__version__ = "0.1.0"
