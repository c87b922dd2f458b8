from preview import card_preview, teaser

POST = {
    "title": "Ten  things I learned\nrunning a bakery",
    "body": "Flour goes everywhere. Also, get up early.",
}


def test_short_teaser_is_unchanged():
    assert teaser("Short one. Then more.", 40) == "Short one."


def test_long_teaser_fits_the_width():
    line = teaser("A sentence that is far too long for the card.", 12)
    assert line == "A sentence…"
    assert len(line) <= 12


def test_card_lines_fit_the_width():
    card = card_preview(POST, width=20)
    assert card == "Ten things I learne…\nFlour goes everywhe…"
    assert all(len(line) <= 20 for line in card.splitlines())


def test_wide_card_keeps_everything():
    assert card_preview(POST, width=60) == (
        "Ten things I learned running a bakery\nFlour goes everywhere."
    )
