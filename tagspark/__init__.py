"""tagspark: learn named hashtag categories from a post corpus with Apache Spark."""

from __future__ import annotations

__version__ = "0.1.0"
