"""Merging imported contact records into one entry per person (keyed by email address)."""

from contacts.normalize import normalize_email, normalize_name, normalize_phone


def merge_contacts(records: list[dict[str, str]]) -> list[dict[str, str]]:
    """One contact per email address, in order of first appearance.

    Fields of later records fill in fields that earlier ones left empty; they never overwrite.
    """
    merged: dict[str, dict[str, str]] = {}
    for record in records:
        key = normalize_email(record["email"])
        clean = {
            "email": key,
            "name": normalize_name(record.get("name", "")),
            "phone": normalize_phone(record["phone"]) if record.get("phone") else "",
        }
        if key not in merged:
            merged[key] = clean
            continue
        existing = merged[key]
        for field, value in clean.items():
            if not existing[field]:
                existing[field] = value
    return list(merged.values())
