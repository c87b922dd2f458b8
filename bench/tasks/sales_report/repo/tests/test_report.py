from report import sales_report


def test_two_regions():
    text = sales_report([("North", 120, 15000.5), ("South", 80, 5000.25)])
    assert text.splitlines() == [
        "Region  Units    Revenue   Share",
        "------  -----  ---------  ------",
        "North     120  15,000.50   75.0%",
        "South      80   5,000.25   25.0%",
        "Total     200  20,000.75  100.0%",
    ]


def test_small_amounts_keep_two_decimals():
    text = sales_report([("East", 1, 9.5)])
    assert text.splitlines()[2] == "East        1     9.50  100.0%"
