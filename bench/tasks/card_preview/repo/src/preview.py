"""Preview cards for blog posts on the front page: a title line and a teaser line."""

from textutil import collapse_whitespace, first_sentence, truncate


def teaser(body: str, width: int) -> str:
    """The body's first sentence, cut to the card's width."""
    return truncate(first_sentence(body), width)


def card_preview(post: dict[str, str], width: int = 40) -> str:
    """The two lines of a post's card; neither is longer than `width` characters."""
    title = truncate(collapse_whitespace(post["title"]), width)
    return f"{title}\n{teaser(post['body'], width)}"
