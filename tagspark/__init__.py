"""tagspark: learn named hashtag categories from a post corpus with Apache Spark."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "CategoryEvaluator",
    "HashtagExtractor",
    "TagCategories",
    "TagCategoriesModel",
    "TagModel",
]


def __getattr__(name: str):
    """``from tagspark import TagCategories`` without importing Spark for the commands that
    do not need it."""
    if name in ("TagCategories", "TagCategoriesModel"):
        from tagspark import estimator

        return getattr(estimator, name)
    if name in ("HashtagExtractor", "CategoryEvaluator"):
        from tagspark import ml

        return getattr(ml, name)
    if name == "TagModel":
        from tagspark.model import TagModel

        return TagModel
    raise AttributeError(f"module 'tagspark' has no attribute {name!r}")
