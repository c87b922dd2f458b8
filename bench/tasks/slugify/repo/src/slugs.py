"""URL slugs for blog posts: "Crème Brûlée, Done Right!" -> "creme-brulee-done-right"."""

import re
import unicodedata

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def slugify(title: str, max_length: int = 60) -> str:
    """A lowercase ASCII slug of `title`: accents dropped, runs of other characters as one '-'.

    The slug is cut at `max_length` characters on a word boundary when possible.
    """
    text = unicodedata.normalize("NFKD", title)
    text = text.encode("ascii", "ignore").decode("ascii")
    slug = _NON_ALNUM.sub("-", text).strip("-")
    if len(slug) > max_length:
        cut = slug.rfind("-", 0, max_length + 1)
        slug = slug[:cut] if cut > 0 else slug[:max_length]
    return slug


def unique_slug(title: str, taken: set[str]) -> str:
    """A slug of `title` not in `taken`, numbered ("post-2", "post-3") when it is."""
    base = slugify(title) or "post"
    slug, n = base, 2
    while slug in taken:
        slug = f"{base}-{n}"
        n += 1
    return slug
