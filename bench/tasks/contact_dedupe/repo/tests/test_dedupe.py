from contacts.dedupe import merge_contacts


def test_names_and_phones_are_cleaned():
    [contact] = merge_contacts([{"email": "ada@example.org", "name": "ada  LOVELACE",
                                 "phone": "07700 900123"}])
    assert contact == {"email": "ada@example.org", "name": "Ada Lovelace",
                       "phone": "+447700900123"}


def test_same_address_in_other_case_is_one_person():
    records = [{"email": "Ada@Example.org", "name": "Ada"}, {"email": "ada@example.org"}]
    assert len(merge_contacts(records)) == 1


def test_padded_address_from_a_spreadsheet_is_one_person():
    records = [
        {"email": "alan@example.org", "name": "Alan Turing"},
        {"email": " alan@example.org\t", "phone": "+44 20 7946 0000"},
    ]
    assert merge_contacts(records) == [
        {"email": "alan@example.org", "name": "Alan Turing", "phone": "+442079460000"},
    ]


def test_different_people_stay_apart():
    records = [{"email": "a@example.org"}, {"email": "b@example.org"}]
    assert [c["email"] for c in merge_contacts(records)] == ["a@example.org", "b@example.org"]
