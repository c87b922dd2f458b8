"""Canonical forms of contact fields, so that the same person is recognised across imports."""

import re

_NOT_DIGITS = re.compile(r"[^0-9]")


def normalize_email(address: str) -> str:
    """The form addresses are compared in: lowercased, surrounding whitespace removed.

    (Strictly the part before the '@' may be case-sensitive; no mail provider we see treats it
    so, and people type it every which way.)
    """
    return address.strip().lower()


def normalize_phone(number: str, country_code: str = "44") -> str:
    """Digits only, in international form: "07700 900123" -> "+447700900123"."""
    digits = _NOT_DIGITS.sub("", number)
    if number.strip().startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    if digits.startswith("0"):
        return f"+{country_code}{digits[1:]}"
    return "+" + digits


def normalize_name(name: str) -> str:
    """Single spaces, each word capitalised: "  ada   LOVELACE" -> "Ada Lovelace"."""
    return " ".join(word.capitalize() for word in name.split())
