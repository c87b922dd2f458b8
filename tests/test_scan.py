"""The sensitivity scanner: known-format secrets and personal data are found, look-alikes are not.

Every secret-looking value here is built at test time from random characters: none is real.
"""

from __future__ import annotations

import base64
import json
import random
import string
from pathlib import Path

import pytest
from turnout.router.policy import Policy, parse_policy
from turnout.router.scan import (
    PathLabeler,
    Scanner,
    iban_valid,
    luhn_valid,
    mentioned_paths,
)

rng = random.Random(7)
ALNUM = string.ascii_letters + string.digits


def rand(alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def kinds(text: str, policy: Policy | None = None) -> list[str]:
    return [f.kind for f in Scanner(policy or Policy()).scan(text)]


def fake_jwt() -> str:
    def enc(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    sig = base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("=")
    return f"{enc({'alg': 'HS256', 'typ': 'JWT'})}.{enc({'sub': '42', 'iat': 1732600000})}.{sig}"


def fake_private_key() -> str:
    body = base64.b64encode(rng.randbytes(300)).decode()
    return "-----BEGIN RSA PRIVATE KEY-----\n" + body + "\n-----END RSA PRIVATE KEY-----"


SECRETS = [
    ("aws_access_key", lambda: f"aws_access_key_id = {'AKIA' + rand(string.ascii_uppercase + '234567', 16)}"),
    ("github_token", lambda: f"GITHUB_TOKEN={'ghp_' + rand(ALNUM, 36)}"),
    ("gitlab_token", lambda: f"token: {'glpat-' + rand(ALNUM, 20)}"),
    ("slack_token", lambda: f"hook = '{'xoxb-' + rand(string.digits, 11) + '-' + rand(ALNUM, 24)}'"),
    ("stripe_key", lambda: f"stripe.api_key = '{'sk_live_' + rand(ALNUM, 24)}'"),
    ("openai_key", lambda: f"OPENAI_API_KEY={'sk-proj-' + rand(ALNUM + '-_', 60)}"),
    ("anthropic_key", lambda: f"key={'sk-ant-api03-' + rand(ALNUM + '-_', 90)}"),
    ("google_api_key", lambda: f"maps_key: {'AIza' + rand(ALNUM + '-_', 35)}"),
    ("jwt", lambda: f"Cookie: session={fake_jwt()}"),
    ("private_key", fake_private_key),
    ("connection_string", lambda: f"DATABASE_URL=postgresql://app:{rand(ALNUM, 14)}!x@db.internal:5432/main"),
    ("password_assignment", lambda: f'DB_PASSWORD="{rand(ALNUM, 10)}#4aZ"'),
    ("high_entropy_assignment", lambda: f'client_secret = "{rand(ALNUM, 32)}"'),
]


@pytest.mark.parametrize(("kind", "make"), SECRETS, ids=[k for k, _ in SECRETS])
def test_a_known_format_secret_is_found_and_marked_redactable(kind: str, make: object) -> None:
    text = make()  # type: ignore[operator]
    findings = Scanner(Policy()).scan(f"config follows\n{text}\nend")
    assert [f.kind for f in findings] == [kind]
    assert findings[0].label == "secret" and findings[0].redactable


PERSONAL = [
    ("email", "Reported by maria.garcia7@acme-corp.com yesterday."),
    ("phone_number", "call +44 20 7946 0958 after 5pm"),
    ("phone_number", "office: (415) 555-2671"),
    ("card_number", "card 4539 1488 0343 6467 declined"),
    ("iban", "IBAN DE89 3704 0044 0532 0130 00 please"),
    ("iban", "to GB82WEST12345698765432 today"),
    ("us_ssn", "SSN 123-45-6789 on the form"),
    ("uk_nino", "NI number AB123456C"),
]


@pytest.mark.parametrize(("kind", "text"), PERSONAL)
def test_personal_data_is_found(kind: str, text: str) -> None:
    assert kinds(text) == [kind]


HARD_NEGATIVES = [
    "request_id = '3f2b8c1e-9d4a-4e6b-8f1a-2c3d4e5f6a7b'",
    "commit 4e1243bd22c66e76c2ba9eddc1f91394e57f9f83",
    "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "DATABASE_URL=postgres://user:password@localhost:5432/mydb",
    "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",
    'api_key = os.environ["OPENAI_API_KEY"]',
    "token = self._token_cache.get(key)",
    'OPENAI_API_KEY="sk-...your key..."',
    "Write to support@example.com",
    "git clone git@github.com:acme/turnout.git",
    "order 4539148803436468 shipped",  # fails the Luhn check
    "IBAN format: DE00 1234 5678 9012 3456 78",  # fails mod-97
    "listen 192.168.100.200:8080",
    "Released 2026-11-26 as v1.12.3",
    "@pytest.fixture\ndef key_store(tmp_path): ...",
    f'PNG_FIXTURE = base64.b64decode("iVBORw0KGgo{base64.b64encode(random.Random(1).randbytes(60)).decode()}")',
]


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_look_alikes_and_documentation_values_are_not_findings(text: str) -> None:
    assert kinds(text) == []


def test_a_finding_never_shows_its_value_in_its_repr() -> None:
    token = "ghp_" + rand(ALNUM, 36)
    (finding,) = Scanner(Policy()).scan(f"token {token}")
    assert token not in repr(finding) and finding.value == token


def test_the_policys_own_patterns_carry_its_label() -> None:
    policy = parse_policy({"labels": {"customers": {"patterns": [r"CUST-\d{6}"]}}}, "t.toml")
    findings = Scanner(policy).scan("ticket for CUST-004211 and CUST-12")
    assert [(f.kind, f.label, f.value) for f in findings] == [("pattern:customers", "customers", "CUST-004211")]


def test_luhn_and_mod97_checks() -> None:
    assert luhn_valid("4539148803436467") and not luhn_valid("4539148803436468")
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE88370400440532013000")
    assert not iban_valid("DE8937040044053201300")  # one digit short for Germany


# The path globs' table is tests/test_globs.py, shared with the files server's list_files.


def test_absolute_paths_inside_the_repo_are_matched_relative_to_it(tmp_path: Path) -> None:
    policy = parse_policy({"labels": {"conf": {"paths": ["secrets/**"]}}}, "t.toml")
    labeler = PathLabeler(policy, tmp_path)
    assert [h.label for h in labeler.labels_for(str(tmp_path / "secrets" / "db.env"))] == ["conf"]
    assert labeler.labels_for(str(tmp_path / "src" / "secrets.py")) == []
    # Outside the repo an anchored glob still matches a suffix: the label errs on the safe side.
    assert [h.label for h in labeler.labels_for("/elsewhere/secrets/x")] == ["conf"]


def test_paths_that_bring_their_content_are_recognised() -> None:
    text = (
        'Traceback (most recent call last):\n  File "/repo/secrets/loader.py", line 3, in <module>\n'
        "File app/settings.py:\n```python\nX = 1\n```\n"
        "data/customers/a.csv:12:maria,garcia\n"
        "--- a/config/prod.env\n+++ b/config/prod.env\n"
    )
    assert set(mentioned_paths(text)) == {
        "/repo/secrets/loader.py", "app/settings.py", "data/customers/a.csv", "config/prod.env",
    }


def test_the_shipped_corpus_meets_the_recall_and_precision_targets() -> None:
    from turnout.bench import detection

    result = detection.evaluate()
    assert result["items"] >= 300
    assert result["secret_recall"] >= 0.95
    assert result["precision"] >= 0.90
