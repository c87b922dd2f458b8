"""Generate the labelled detection corpus: realistic but FAKE secrets and personal data, and the
hard negatives a scanner must leave alone (UUIDs, git hashes, base64 fixtures, documentation keys).

Every value is made up here from a seeded random generator: nothing in the corpus was ever a real
credential. Run it again and the same corpus comes out:

    .venv/bin/python bench/make_corpus.py            # writes bench/data/detection_corpus.jsonl

Each line: {"id", "group" ("secret" | "pii" | "negative"), "text", "expected": [kind, ...]}.
`expected` lists every finding the text holds (empty for negatives); see bench/detection.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import uuid
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data" / "detection_corpus.jsonl"
rng = random.Random(20261126)

UPPER = string.ascii_uppercase
ALNUM = string.ascii_letters + string.digits
B32 = UPPER + "234567"
B64URL = ALNUM + "-_"


def pick(alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def b64(n_bytes: int) -> str:
    return base64.b64encode(rng.randbytes(n_bytes)).decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


# --- fake secrets, one maker per kind ------------------------------------------------------------

def aws_access_key() -> str:
    return rng.choice(["AKIA", "ASIA"]) + pick(B32, 16)


def github_token() -> str:
    return rng.choice(["ghp_", "gho_", "ghs_"]) + pick(ALNUM, 36)


def github_pat() -> str:
    return "github_pat_" + pick(ALNUM, 22) + "_" + pick(ALNUM, 59)


def gitlab_token() -> str:
    return "glpat-" + pick(ALNUM + "-_", 20)


def slack_token() -> str:
    return f"xoxb-{rng.randint(10**10, 10**12)}-{rng.randint(10**10, 10**12)}-{pick(ALNUM, 24)}"


def stripe_key() -> str:
    return rng.choice(["sk_live_", "rk_live_"]) + pick(ALNUM, 24)


def openai_key() -> str:
    return "sk-proj-" + pick(B64URL, 48) + "T3BlbkFJ" + pick(B64URL, 48)


def anthropic_key() -> str:
    return "sk-ant-api03-" + pick(B64URL, 93) + "AA"


def google_api_key() -> str:
    return "AIza" + pick(B64URL, 35)


def npm_token() -> str:
    return "npm_" + pick(ALNUM, 36)


def pypi_token() -> str:
    return "pypi-AgEIcHlwaS5vcmc" + pick(B64URL, 70)


def hf_token() -> str:
    return "hf_" + pick(string.ascii_letters, 34)


def sendgrid_key() -> str:
    return "SG." + pick(B64URL, 22) + "." + pick(B64URL, 43)


def private_key() -> str:
    body = base64.b64encode(rng.randbytes(600)).decode()
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    kind = rng.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "OPENSSH PRIVATE KEY", "EC PRIVATE KEY"])
    return f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----"


def jwt() -> str:
    header = b64url(json.dumps({"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"}).encode())
    claims = {"sub": str(rng.randint(1000, 99999)), "name": rng.choice(["ops", "svc-deploy", "ana"]),
              "iat": rng.randint(1_600_000_000, 1_800_000_000)}
    payload = b64url(json.dumps(claims).encode())
    return f"{header}.{payload}.{b64url(rng.randbytes(32))}"


def db_password() -> str:
    return pick(ALNUM, rng.randint(12, 20)) + rng.choice("!#%^*") + pick(ALNUM, 3)


def connection_string() -> tuple[str, str]:
    scheme = rng.choice(["postgresql", "mysql", "mongodb+srv", "redis", "amqp"])
    host = rng.choice(["db.internal", "10.2.3.4", "prod-db.eu-west-1.rds.amazonaws.com", "cache01"])
    password = db_password()
    return f"{scheme}://app_{pick(string.ascii_lowercase, 4)}:{password}@{host}:5432/main", password


def hex_secret(n: int = 40) -> str:
    return pick("0123456789abcdef", n)


# --- fake personal data -------------------------------------------------------------------------

FIRST = ["maria", "jon", "li", "ahmed", "sofia", "kenji", "olga", "pierre", "amara", "lucas"]
LAST = ["garcia", "smith", "wang", "haddad", "rossi", "tanaka", "ivanova", "martin", "okafor"]
DOMAINS = ["acme-corp.com", "mailbox.org", "gmail.com", "kundenservice.de", "uni-bonn.de", "corp.co.uk"]


def email() -> str:
    return f"{rng.choice(FIRST)}.{rng.choice(LAST)}{rng.randint(1, 99)}@{rng.choice(DOMAINS)}"


def luhn_complete(prefix_digits: str) -> str:
    digits = [int(d) for d in prefix_digits]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return prefix_digits + str((10 - total % 10) % 10)


def card() -> str:
    issuer, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("37", 15), ("6011", 16)])
    number = luhn_complete(issuer + "".join(rng.choice(string.digits) for _ in range(length - len(issuer) - 1)))
    if rng.random() < 0.5 and length == 16:
        return " ".join(number[i:i + 4] for i in range(0, 16, 4))
    return number


def iban() -> str:
    country, bban_len = rng.choice([("DE", 18), ("FR", 23), ("NL", 14), ("GB", 18), ("ES", 20)])
    if country == "NL":
        bban = pick(UPPER, 4) + "".join(rng.choice(string.digits) for _ in range(10))
    elif country == "GB":
        bban = pick(UPPER, 4) + "".join(rng.choice(string.digits) for _ in range(14))
    else:
        bban = "".join(rng.choice(string.digits) for _ in range(bban_len))
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(numeric) % 97
    compact = f"{country}{check:02d}{bban}"
    if rng.random() < 0.5:
        return " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))
    return compact


def ssn() -> str:
    return f"{rng.randint(100, 665):03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def nino() -> str:
    return pick("ABCEHJKLMPRSTWXYZ", 1) + pick("ABCEHJKLMPRSTWXYZ", 1) + "".join(
        rng.choice(string.digits) for _ in range(6)) + rng.choice("ABCD")


def phone() -> str:
    return rng.choice([
        f"+1 {rng.randint(201, 989)} {rng.randint(200, 999)} {rng.randint(1000, 9999)}",
        f"({rng.randint(201, 989)}) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
        f"+44 20 {rng.randint(7000, 7999)} {rng.randint(1000, 9999)}",
        f"+49 30 {rng.randint(1000000, 99999999)}",
        f"+33 6 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
        f"{rng.randint(201, 989)}-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
    ])


# --- the contexts values appear in ----------------------------------------------------------------

def secret_items() -> list[tuple[str, list[str]]]:
    items: list[tuple[str, list[str]]] = []
    token_makers = [
        ("aws_access_key", aws_access_key), ("github_token", github_token), ("github_token", github_pat),
        ("gitlab_token", gitlab_token), ("slack_token", slack_token), ("stripe_key", stripe_key),
        ("openai_key", openai_key), ("anthropic_key", anthropic_key), ("google_api_key", google_api_key),
        ("npm_token", npm_token), ("pypi_token", pypi_token), ("huggingface_token", hf_token),
        ("sendgrid_key", sendgrid_key), ("jwt", jwt),
    ]
    templates = [
        "export {NAME}={v}\n",
        '{name} = "{v}"\n',
        "  {name}: {v}\n",
        'client = Client(token="{v}")\n',
        "curl -H 'X-Token: {v}' https://api.internal/v2/items\n",
        "# rotated on Monday, old value {v}\n",
        '{{"{name}": "{v}", "region": "eu-west-1"}}\n',
    ]
    for kind, make in token_makers:
        for template in templates:
            name = rng.choice(["token", "api_key", "credentials", "deploy_token", "auth"])
            text = template.format(NAME=name.upper(), name=name, v=make())
            items.append((text, [kind]))
    for _ in range(8):
        items.append((f"Here is the deploy key:\n{private_key()}\n", ["private_key"]))
    for _ in range(10):
        url, _pw = connection_string()
        line = rng.choice(["DATABASE_URL={u}\n", 'engine = create_engine("{u}")\n', "  url: {u}\n"])
        items.append((line.format(u=url), ["connection_string"]))
    for _ in range(8):
        items.append((f"Authorization: Bearer {pick(B64URL, 40)}\n", ["bearer_token"]))
    for _ in range(10):
        pw = db_password()
        line = rng.choice(['DB_PASSWORD="{p}"\n', "password: '{p}'\n", 'conn = connect(password="{p}")\n',
                           "MYSQL_ROOT_PASSWORD={p}\n"])
        items.append((line.format(p=pw), ["password_assignment"]))
    for _ in range(10):
        value = rng.choice([hex_secret(40), b64(30), pick(ALNUM, 32)])
        line = rng.choice(['aws_secret_access_key = "{v}"\n', "SECRET_KEY={v}\n", 'client_secret: "{v}"\n',
                           'WEBHOOK_SIGNING_SECRET = "{v}"\n', "app.config['SECRET_KEY'] = '{v}'\n"])
        items.append((line.format(v=value), ["high_entropy_assignment"]))
    return items


def pii_items() -> list[tuple[str, list[str]]]:
    items: list[tuple[str, list[str]]] = []
    for _ in range(15):
        items.append((f"Ticket #{rng.randint(1000, 9999)} opened by {email()} about a refund.\n", ["email"]))
    for _ in range(15):
        items.append((f"customer,{rng.choice(FIRST)},{rng.choice(LAST)},{phone()}\n".replace(",", ", "),
                      ["phone_number"]))
    for _ in range(15):
        items.append((f"payment failed for card {card()} (expires 0{rng.randint(1, 9)}/29)\n", ["card_number"]))
    for _ in range(12):
        items.append((f"Please wire the deposit to IBAN {iban()} before Friday.\n", ["iban"]))
    for _ in range(8):
        items.append((f"SSN: {ssn()}\n", ["us_ssn"]))
    for _ in range(6):
        items.append((f"National Insurance number {nino()} on file.\n", ["uk_nino"]))
    for _ in range(6):
        items.append((f"{{'name': '{rng.choice(FIRST)}', 'email': '{email()}', 'phone': '{phone()}'}}\n",
                      ["email", "phone_number"]))
    return items


def negative_items() -> list[tuple[str, list[str]]]:
    items: list[tuple[str, list[str]]] = []
    for _ in range(10):
        items.append((f'request_id = "{uuid.UUID(int=rng.getrandbits(128), version=4)}"\n', []))
        items.append((f"trace {uuid.UUID(int=rng.getrandbits(128), version=4)} finished in 42 ms\n", []))
    for _ in range(10):
        sha = hashlib.sha1(rng.randbytes(16)).hexdigest()
        items.append((f"commit {sha}\nAuthor: CI Bot <ci@example.com>\n", []))
        items.append((f"Fixed in {sha[:12]}; see merge {hashlib.sha1(rng.randbytes(8)).hexdigest()}\n", []))
        items.append((f"sha256: {hashlib.sha256(rng.randbytes(16)).hexdigest()}\n", []))
    for _ in range(10):
        items.append((f'PNG_FIXTURE = base64.b64decode("iVBORw0KGgo{b64(90)}")\n', []))
        items.append((f'"integrity": "sha512-{b64(64)}"\n', []))
    docs = [
        "AWS docs: aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
        "DATABASE_URL=postgres://user:password@localhost:5432/mydb\n",
        "redis://:changeme@localhost:6379/0\n",
        "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n",
        "Authorization: Bearer <your-token-here>\n",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c\n",
        'api_key = os.environ["OPENAI_API_KEY"]\n',
        "api_key: str = Field(default=None, description='the key')\n",
        'password = getpass.getpass("Password: ")\n',
        "token = self._token_cache.get(key)\n",
        'OPENAI_API_KEY="sk-...your key..."\n',
        "export GITHUB_TOKEN=${{ secrets.GITHUB_TOKEN }}\n",
        'secret_name = "prod/db/credentials"\n',
        "Contact us at support@example.com or sales@example.org.\n",
        "git clone git@github.com:acme/turnout.git\n",
        "max_tokens = 1024; temperature = 0.2; top_k = 40\n",
        "Released 2026-11-26 as v1.12.3 (build 20261126.4)\n",
        "listen 192.168.100.200:8080\n",
        "order 4111111111111112 was shipped\n",
        "invoice 1234-5678-9012-3456 paid\n",
        "IBAN format: DE00 1234 5678 9012 3456 78\n",
        "timestamp 1732600000123, offset 3600000\n",
        "@pytest.fixture\ndef key_store(tmp_path): ...\n",
        'API_KEY_HEADER = "X-Api-Key"\n',
        "keyboard_layout = 'qwertzuiopasdfghjkl'\n",
        "password_min_length = 12\n",
        "ssh-keygen -t ed25519 -f ~/.ssh/id_ed25519\n",
    ]
    for text in docs:
        items.append((text, []))
    for _ in range(10):
        items.append((f"x = np.array([{', '.join(str(rng.randint(0, 999)) for _ in range(12))}])\n", []))
        items.append((f"case_id = {rng.randint(10**9, 10**10)}  # ticket {rng.randint(100, 999)}\n", []))
    return items


def main() -> None:
    rows = []
    for group, items in (("secret", secret_items()), ("pii", pii_items()), ("negative", negative_items())):
        for i, (text, expected) in enumerate(items):
            rows.append({"id": f"{group}-{i:03d}", "group": group, "text": text, "expected": expected})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} items to {OUT}")


if __name__ == "__main__":
    main()
