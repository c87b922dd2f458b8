from moneykit import Money


def test_repr_shows_two_decimals():
    assert repr(Money("12.5", "EUR")) == "Money('12.50', 'EUR')"


def test_repr_of_a_negative_whole_amount():
    assert repr(Money(-3, "USD")) == "Money('-3.00', 'USD')"


def test_repr_round_trips():
    m = Money("1234.56", "gbp")
    assert eval(repr(m), {"Money": Money}) == m


def test_repr_in_a_list():
    assert repr([Money(1)]) == "[Money('1.00', 'EUR')]"


def test_str_unchanged():
    assert str(Money("12.5", "EUR")) == "12.50 EUR"
