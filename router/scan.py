"""The local sensitivity scanner: secrets, personal data, labelled paths and the policy's patterns.

Everything runs in process, before a request leaves: no hosted classifier, no network. It must
cost little next to a model call (the benchmark's budget is 5 ms for a 32k-token request), so:

- every expression is compiled once, and none can backtrack catastrophically: repetitions are
  bounded, and a detector runs only where its gate (`b"://"` for connection strings, ...) matches
  the UTF-8 bytes: all the gates are one RE2 automaton, one pass over the text;
- every expression that runs over the whole text begins with a literal, so the regex engine
  jumps between occurrences in C (a leading character class is tested at every character,
  about ten times slower): emails are found from each `@`, secret assignments from each keyword,
  and numbers on a copy of the bytes where every digit is `0`;
- scanning a pathological input (128 KB of one character, of `key=`, of BEGIN lines...) stays
  linear: `bench/overhead.py` times them;
- a hit is confirmed by what the format guarantees (Luhn for card numbers, mod-97 for IBANs, a
  JSON header for JWTs, entropy for generic assignments) and documentation values
  (`AKIAIOSFODNN7EXAMPLE`, `user:password@localhost`, `example.com`) are not findings;
- results are cached per text, because an agent resends its whole history on every turn.

A `Finding` keeps the matched value in memory only, for redaction; it is never logged (its
`repr` leaves the value out), and the audit log records kinds and counts.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import math
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import re2
from turnout.router.paths import spellings
from turnout.router.patterns import compile_pattern
from turnout.router.policy import PII, SECRET, Policy
from turnout.tools.globs import glob_regex


@dataclass(frozen=True, slots=True)
class Finding:
    """One sensitive span in a text. `kind` is e.g. `aws_access_key`; `label` the policy label."""

    kind: str
    label: str
    start: int
    end: int
    value: str = field(repr=False, compare=False)
    redactable: bool = False  # a value that can be replaced by a placeholder and put back


# ---------------------------------------------------------------------------------------------
# Secrets with a known format. Each has a literal that must occur for it to match at all.

# Families of tokens with a known format. Each family has a gate (see `_GATES`), an expression
# that must match somewhere for any of its formats to; each format also begins with a literal,
# so the regex engine jumps from one occurrence to the next. Boundaries are checked in Python.
_TOKEN_FAMILIES: list[tuple[bytes, list[tuple[str, re.Pattern[str]]]]] = [
    (rb"A(?:KIA|SIA|BIA|CCA|Iza|ccountKey=)", [
        ("aws_access_key", re.compile(r"A(?:KIA|SIA|BIA|CCA)[A-Z2-7]{16}")),
        ("google_api_key", re.compile(r"AIza[0-9A-Za-z_-]{35}")),
        ("azure_storage_key", re.compile(r"AccountKey=[A-Za-z0-9+/]{80,90}={0,2}")),
    ]),
    (rb"g(?:h[pousr]_|ithub_pat_|lpat-)", [
        ("github_token", re.compile(r"gh[pousr]_[A-Za-z0-9]{36,76}")),
        ("github_token", re.compile(r"github_pat_[A-Za-z0-9_]{60,100}")),
        ("gitlab_token", re.compile(r"glpat-[A-Za-z0-9_-]{20,40}")),
    ]),
    (rb"sk-", [
        ("anthropic_key", re.compile(r"sk-ant-[a-z]{3,6}\d{2}-[A-Za-z0-9_-]{40,120}")),
        ("openai_key", re.compile(r"sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,200}")),
    ]),
    (rb"k_live_", [("stripe_key", re.compile(r"[sr]k_live_[0-9A-Za-z]{16,100}"))]),
    (rb"xox", [("slack_token", re.compile(r"xox[abposr]-[0-9A-Za-z-]{10,120}"))]),
    (rb"ya29\.", [("google_oauth_token", re.compile(r"ya29\.[0-9A-Za-z_-]{30,300}"))]),
    (rb"npm_", [("npm_token", re.compile(r"npm_[A-Za-z0-9]{36}"))]),
    (rb"pypi-", [("pypi_token", re.compile(r"pypi-AgE[A-Za-z0-9_-]{50,300}"))]),
    (rb"hf_", [("huggingface_token", re.compile(r"hf_[A-Za-z]{34}"))]),
    (rb"SG\.", [("sendgrid_key", re.compile(r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"))]),
    # Webhook URLs: whoever holds one may post as the workspace or channel.
    (rb"hooks\.slack\.com/", [("slack_webhook", re.compile(
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{20,200}"))]),
    (rb"/api/webhooks/", [("discord_webhook", re.compile(
        r"https://(?:(?:canary|ptb)\.)?discord(?:app)?\.com/api/webhooks/\d{5,30}/[A-Za-z0-9_-]{30,100}"))]),
]
# Characters that may not touch a token on either side (it would be part of a longer word).
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


_PRIVATE_KEY_BEGIN = re.compile(r"-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----")
# Base64 lines, also as the `\n`-escaped string of a JSON file (a GCP service-account key).
_KEY_BODY = re.compile(r"(?:[A-Za-z0-9+/=\s]|\\[nr])*")
_KEY_HEADER_LINE = re.compile(r"(?m)^[A-Za-z-]+:.*$")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,1000}\.eyJ[A-Za-z0-9_-]{8,4000}\.[A-Za-z0-9_-]{16,1000}")
# Found from the "://", then the scheme is read backwards: an expression that began with the
# scheme would start at every letter of the text.
_CONNECTION = re.compile(r"://([^\s:/@\"'`<>]{0,64}):([^\s@/\"'`<>]{6,128})@([A-Za-z0-9.-]{1,253})")
_SCHEME_BEFORE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{1,24}\Z")
_BEARER = re.compile(r"Bearer ([A-Za-z0-9._~+/-]{20,500}=*)")
# `Authorization: Basic <base64>` / `token <hex>` (GitHub's form), found from the lowercase
# tail of the header's name so one literal serves `Authorization` and `authorization`.
_AUTH_HEADER = re.compile(
    r"uthorization[\"']?[ \t]{0,3}[:=][ \t]{0,3}[\"']?(?i:(basic|token|digest))[ \t]+([A-Za-z0-9._~+/:=-]{8,500})"
)

# Generic `name = value` where the name says it is a secret. Found from each keyword.
# `pass` only as a whole name or its last part (`DB_PASS=`, `smtp.pass:`), not `bypass=`.
_SECRET_WORDS = ("key", "secret", "token", "passw", "pwd", "credential", "auth", "pass")
_SECRET_WORDS_BYTES = tuple(word.encode() for word in _SECRET_WORDS)
_ASSIGNMENT_TAIL = re.compile(
    rb"[A-Za-z0-9_.-]{0,30}[\"']?\]?[ \t]{0,3}(?::=|=>|[:=])[ \t]{0,3}"
    rb"(?:[bru]?([\"'`]))?([^\s\"'`,;)(\]\[{}<>]{6,300})(\1)?"
)

_NAME_BYTES = frozenset(bytes([c]) for c in b"abcdefghijklmnopqrstuvwxyz0123456789_")
# String literals joined by `+` or by adjacency across a line break (Python, C, JavaScript).
_LITERAL = re.compile(r"\"[^\"\\\n]{0,200}\"|'[^'\\\n]{0,200}'")
_CHAIN = re.compile(
    r"(?:\"[^\"\\\n]{0,200}\"|'[^'\\\n]{0,200}')"
    r"(?:(?:[ \t]{0,8}\+[ \t\r\n]{0,40}|[ \t]{0,8}\r?\n[ \t]{0,40})(?:\"[^\"\\\n]{0,200}\"|'[^'\\\n]{0,200}')){1,20}"
)


# The closing quote of a literal that another literal follows, after `+` (a line break may
# follow it) or on the next line. The expression starts with a class, which the engine tests at
# every character, so it runs only where the `chain` gate says it matches somewhere.
_CHAIN_START_SOURCE = r"[\"'][ \t]{0,8}(?:\+[ \t\r\n]{0,40}|\r?\n[ \t]{0,40})[\"']"
_CHAIN_START = re.compile(_CHAIN_START_SOURCE)


def _gate_set(sources: dict[str, bytes]) -> tuple[re2.Set, list[str]]:
    gates = re2.Set.SearchSet(_gate_options())
    for source in sources.values():
        gates.Add(source)
    gates.Compile()
    return gates, list(sources)


def _gate_options() -> re2.Options:
    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1  # bytes as they are: a lone surrogate's too
    return options


# Gates: for each detector, an expression without a match for which it cannot find anything.
# They run together as one RE2 automaton, a single pass over the bytes that tells which are
# open (on the benchmark's 128 KB request, 0.19 ms where the token gates alone cost 0.81 ms
# tested one after another), so a text pays for the detectors it could trigger only.
_GATES, _GATE_NAMES = _gate_set({
    "private_key": rb"-----BEGIN",
    "jwt": rb"eyJ",
    "connection": rb"://",
    "bearer": rb"Bearer ",
    "auth_header": rb"uthorization",
    "chain": _CHAIN_START_SOURCE.encode(),
    **{f"token:{i}": gate for i, (gate, _) in enumerate(_TOKEN_FAMILIES)},
})


def open_gates(raw: bytes) -> frozenset[str]:
    """The names of the gates that match somewhere in `raw`."""
    return frozenset(_GATE_NAMES[i] for i in _GATES.Match(raw) or ())

# Placeholders and documentation values: never a finding.
_PLACEHOLDER_WORDS = (
    "example", "xxxx", "your", "placeholder", "dummy", "changeme", "redacted", "sample",
    "****", "...", "${", "{{", "<", ">", "todo", "replace", "insert", "fixme",
)
_PLACEHOLDER_PASSWORDS = frozenset(
    {"password", "passwd", "pass", "secret", "pwd", "user", "username", "admin", "root", "test",
     "xxx", "changeme", "example", "postgres", "guest"}
)
_KNOWN_EXAMPLES = frozenset(
    {
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        # jwt.io's sample token signature
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    }
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX = re.compile(r"[0-9a-f]+|[0-9A-F]+")
_IDENTIFIER_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")

# ---------------------------------------------------------------------------------------------
# Personal data. Boundaries are checked in Python: a look-behind in front of an expression
# would stop the regex engine from skipping ahead to its first character.

_LOCAL_CHARS = frozenset(string.ascii_letters + string.digits + "._%+-")
_EMAIL_LOCAL_REVERSED = re.compile(r"[A-Za-z0-9._%+-]{1,64}")
_AT_DOMAIN = re.compile(r"@([A-Za-z0-9][A-Za-z0-9-]{0,62}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24})")
_EXAMPLE_DOMAINS = ("example.com", "example.org", "example.net", ".example", ".test", ".invalid",
                    ".localhost", "localhost", ".local", "domain.com", "email.com")
_CARD = re.compile(r"\d(?:[ -]?\d){12,18}")
_IBAN = re.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?")
# A run of digits with the separators numbers are written with; IBAN letters come from the window.
_ZERO_RUN = re.compile(rb"0[0 ()./+-]{5,60}")
_DIGITS_TO_ZERO = bytes.maketrans(b"0123456789", b"0000000000")
_DROP_DIGITS = str.maketrans("", "", "0123456789")
_SSN = re.compile(r"\d{3}-\d{2}-\d{4}")
_NINO = re.compile(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]")
_PHONE = re.compile(
    r"\+\d{1,3}[ .-]?(?:\(0\)[ .-]?)?\(?\d{1,4}\)?(?:[ .-]?\d{2,4}){2,4}"
    r"|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}"
    r"|\d{3}[.-]\d{3}[.-]\d{4}"
    r"|0\d{1,4}(?: \d{2,4}){2,4}"
)
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21,
    "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "ES": 24, "FI": 18,
    "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21,
    "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27,
    "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26,
    "UA": 29, "VG": 24, "XK": 20,
}

# ---------------------------------------------------------------------------------------------
# Mentions of a path that carry the file's content with them: tracebacks, `File x:` headers
# (the agent loop's first prompt), diff headers and `path:line:` search hits.

# One literal gates each family (a diff has both header lines, and 'File ' begins both forms).
_PATH_MENTIONS = (
    ("File ", (re.compile(r'File "([^"\n]{1,300})", line \d+'), re.compile(r"\nFile ([^\s:\"]{1,300}):\n"))),
    ("\n+++ ", (re.compile(r"\n\+\+\+ (?:b/)?([^\s]{1,300})"), re.compile(r"\n--- (?:a/)?([^\s]{1,300})"))),
    # The read_file tool's header names the real path it read (`# secrets/x lines 1-9 of 9`).
    ("\n# ", (re.compile(r"\n# (\S{1,300}) lines \d+-\d+ of "),)),
)
# `path:line:` search hits are found from the `:123:`, then the path is read back to the line's
# start: an expression tried at every line start would backtrack over each line.
_LINE_NUMBER = re.compile(r":\d{1,7}:")
# A file of any name: `secrets/customers`, `.env`, `Makefile` (no spaces or colons, which the
# search tool's `path:line: text` could not tell apart).
_HIT_PATH = re.compile(r"[^\s:]{1,300}")


def _entropy(value: str) -> float:
    counts = Counter(value)
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _looks_like_placeholder(value: str) -> bool:
    lowered = value.lower()
    return value in _KNOWN_EXAMPLES or "%s" in value or any(word in lowered for word in _PLACEHOLDER_WORDS)


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_network(digits: str) -> bool:
    """Issuer prefixes of the major networks: a Luhn-valid number outside them is likely an id."""
    n = len(digits)
    two, four = int(digits[:2]), int(digits[:4])
    return (
        (digits[0] == "4" and n in (13, 16, 19))
        or (51 <= two <= 55 and n == 16)
        or (2221 <= four <= 2720 and n == 16)
        or (two in (34, 37) and n == 15)
        or ((digits.startswith(("6011", "65"))) and n in (16, 19))
        or (3528 <= four <= 3589 and n in (16, 19))
        or (two in (36, 38, 39) and n in (14, 16))
        or (digits.startswith("62") and 16 <= n <= 19)
    )


def iban_valid(compact: str) -> bool:
    country = compact[:2]
    if _IBAN_LENGTHS.get(country) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def _ssn_valid(value: str) -> bool:
    area, group, serial = value.split("-")
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


# ---------------------------------------------------------------------------------------------
# Path globs


def glob_to_regex(glob: str) -> str:
    """Gitignore-like: a glob without '/' matches a name at any depth (a file or a folder whose
    contents it then covers); a glob with '/' is anchored at the repository root. Inside, the
    dialect every path glob of turnout speaks (`tools/globs.py`): `**/` is zero or more folders,
    `*` and `?` stay within one name."""
    pattern = glob.removeprefix("./")
    anchored = "/" in pattern.rstrip("/")
    body = glob_regex(pattern.rstrip("/"))
    return ("^" if anchored else "(?:^|/)") + body + "(?:/.*)?$"


@dataclass(frozen=True, slots=True)
class PathLabel:
    label: str
    glob: str
    path: str  # the repository path that matched: the real one where the name could be resolved
    named: str = ""  # the name as written, when it differs (`alias.txt`, `HEAD:secrets/x`)


class PathLabeler:
    """Which labels a file's content carries, from the policy's path globs.

    Globs are matched against every spelling of a name (`paths.spellings`): its real path in
    the repository (symlinks followed, `..` resolved), the path as written, and the path part
    of a git object name `REV:path`."""

    def __init__(self, policy: Policy, repo: Path | None = None) -> None:
        self._repo = repo.resolve() if repo is not None else None
        self._cache: dict[str, list[PathLabel]] = {}  # tool arguments repeat on every turn
        self._globs = [
            (label, glob, re.compile(glob_to_regex(glob)))
            for label, rule in policy.labels.items()
            for glob in rule.paths
        ]

    @property
    def active(self) -> bool:
        return bool(self._globs)

    @property
    def repo(self) -> Path | None:
        return self._repo

    def labels_for(self, path: str) -> list[PathLabel]:
        if not self._globs:
            return []
        cached = self._cache.get(path)
        if cached is None:
            if len(self._cache) >= 4096:
                self._cache.clear()
            cached = self._cache[path] = self._labels_for(path)
        return cached

    def folders(self) -> list[str]:
        """The repository folders that hold every file a glob can match (`secrets/**` ->
        `secrets`; a glob without '/' or with a wildcard in its first part -> `.`)."""
        out: set[str] = set()
        for _, glob, _ in self._globs:
            pattern = glob.removeprefix("./").rstrip("/")
            if "/" not in pattern:
                return ["."]
            fixed = []
            for part in pattern.split("/")[:-1]:
                if any(c in part for c in "*?[{"):
                    break
                fixed.append(part)
            if not fixed:
                return ["."]
            out.add("/".join(fixed))
        return sorted(f for f in out if not any(f.startswith(other + "/") for other in out))

    def labels_of_relative(self, relative: str) -> list[PathLabel]:
        """Labels of a path already relative to the repository root (a file found by a walk)."""
        return [PathLabel(label, glob, relative) for label, glob, regex in self._globs if regex.search(relative)]

    def _labels_for(self, path: str) -> list[PathLabel]:
        raw = path.strip()
        if not raw or "\n" in raw or len(raw) > 1000:
            return []
        candidates = spellings(self._repo, raw)
        found = []
        for label, glob, regex in self._globs:
            hit = next((c for c in candidates if regex.search(c)), None)
            if hit is not None:
                found.append(PathLabel(label=label, glob=glob, path=hit, named=raw if raw != hit else ""))
        return found


def mentioned_paths(text: str) -> list[str]:
    """Paths named in a way that carries the file's content (tracebacks, headers, diffs, hits)."""
    padded = "\n" + text
    paths: list[str] = []
    for literal, regexes in _PATH_MENTIONS:
        if literal in padded:
            for regex in regexes:
                paths.extend(m.group(1) for m in regex.finditer(padded))
    for m in _LINE_NUMBER.finditer(text):
        line_start = text.rfind("\n", max(0, m.start() - 320), m.start()) + 1
        if line_start == 0 and m.start() > 320:
            continue  # a line longer than any path we would read back
        if _HIT_PATH.fullmatch(text, line_start, m.start()):
            paths.append(text[line_start:m.start()])
    return paths


# ---------------------------------------------------------------------------------------------


class Scanner:
    """Finds secrets, personal data and the policy's own patterns in text; caches per text."""

    def __init__(self, policy: Policy, cache_size: int = 512) -> None:
        # On RE2 where it can run them (linear time): a user's pattern must not hang a request.
        self._user_patterns = [
            (label, compile_pattern(p)) for label, rule in policy.labels.items() for p in rule.patterns
        ]
        self._cache: dict[str, tuple[Finding, ...]] = {}
        self._cache_size = cache_size
        self._detectors: list[Callable[[str, bytes, frozenset[str]], Iterable[Finding]]] = [
            self._concatenated,  # first: a key split over literals is redacted whole
            self._private_keys,
            self._token_formats,
            self._jwts,
            self._connection_strings,
            self._bearer_tokens,
            self._auth_headers,
            self._assignments,
            self._emails,
            self._numbers,
        ]
        self._secret_detectors = self._detectors[1:-2]  # what a split literal is scanned with

    def scan(self, text: str) -> tuple[Finding, ...]:
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        findings = self.scan_uncached(text)
        if len(self._cache) >= self._cache_size:
            self._cache.pop(next(iter(self._cache)))
        self._cache[text] = findings
        return findings

    def scan_uncached(self, text: str) -> tuple[Finding, ...]:
        if not text:
            return ()
        # Literal tests run on the UTF-8 bytes: one byte per ASCII character, and as fast on a
        # text with a single non-ASCII character as on plain ASCII (str searches are not).
        raw = text.encode("utf-8", "surrogatepass")
        gates = open_gates(raw)
        found: list[Finding] = []
        for detect in self._detectors:
            found.extend(detect(text, raw, gates))
        for label, regex in self._user_patterns:
            found.extend(
                Finding(f"pattern:{label}", label, m.start(), m.end(), m.group(0))
                for m in regex.finditer(text)
            )
        return _without_overlaps(found)

    # --- secrets --------------------------------------------------------------------------

    def _private_keys(self, text: str, raw: bytes, gates: frozenset[str]) -> Iterable[Finding]:
        if "private_key" not in gates:
            return
        pos = 0
        next_end = text.find("-----END")
        while next_end != -1 and (m := _PRIVATE_KEY_BEGIN.search(text, pos)) is not None:
            # The nearest END marker is looked up again only once passed, so a text full of
            # BEGIN lines costs one pass, not one search per line.
            if next_end < m.end():
                next_end = text.find("-----END", m.end())
                if next_end == -1:
                    return
            end_marker = f"-----END {m.group(1)}-----"
            end = next_end if text.startswith(end_marker, next_end) else -1
            if end == -1 or end - m.end() > 10_000:
                pos = m.end()
                continue
            # Encrypted PEM keys carry `Proc-Type:` header lines before the base64 body.
            body = _KEY_HEADER_LINE.sub("", text[m.end():end])
            if len(body) >= 64 and _KEY_BODY.fullmatch(body):  # a documentation stub has no body
                stop = end + len(end_marker)
                yield Finding("private_key", SECRET, m.start(), stop, text[m.start():stop], True)
                pos = stop
            else:
                pos = m.end()

    def _token_formats(self, text: str, raw: bytes, gates: frozenset[str]) -> Iterable[Finding]:
        for family, (_, formats) in enumerate(_TOKEN_FAMILIES):
            if f"token:{family}" not in gates:
                continue
            for kind, regex in formats:
                for m in regex.finditer(text):
                    s, e = m.start(), m.end()
                    if (s and text[s - 1] in _TOKEN_CHARS) or (e < len(text) and text[e] in _TOKEN_CHARS):
                        continue
                    value = m.group(0)
                    if value in _KNOWN_EXAMPLES or "EXAMPLE" in value or _looks_like_placeholder(value):
                        continue
                    if kind == "openai_key" and _entropy(value[3:]) < 3.5:
                        continue  # sk-aaaa..., sk-test-test-...: not a key
                    yield Finding(kind, SECRET, s, e, value, True)

    def _jwts(self, text: str, raw: bytes, gates: frozenset[str]) -> Iterable[Finding]:
        if "jwt" not in gates:
            return
        for m in _JWT.finditer(text):
            value = m.group(0)
            header = value.split(".", 1)[0]
            try:
                decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
            except (binascii.Error, ValueError):
                continue
            if b'"alg"' not in decoded or value.rsplit(".", 1)[1] in _KNOWN_EXAMPLES:
                continue
            yield Finding("jwt", SECRET, m.start(), m.end(), value, True)

    def _connection_strings(self, text: str, raw: bytes, gates: frozenset[str]) -> Iterable[Finding]:
        if "connection" not in gates:
            return
        for m in _CONNECTION.finditer(text):
            scheme = _SCHEME_BEFORE.search(text, max(0, m.start() - 25), m.start())
            if scheme is None:
                continue
            password, host = m.group(2), m.group(3).lower()
            lowered = password.lower()
            if (
                lowered.rstrip("0123456789") in _PLACEHOLDER_PASSWORDS
                or _looks_like_placeholder(password)
                or any(word in lowered for word in ("secret", "password", "pass"))
            ):
                continue
            if host.endswith(_EXAMPLE_DOMAINS) and password.lower() in _PLACEHOLDER_PASSWORDS:
                continue
            # Only the password is redacted: the rest of the URL tells the model what it is.
            yield Finding("connection_string", SECRET, m.start(2), m.end(2), password, True)

    def _bearer_tokens(self, text: str, raw: bytes, gates: frozenset[str]) -> Iterable[Finding]:
        if "bearer" not in gates:
            return
        for m in _BEARER.finditer(text):
            token = m.group(1)
            if _entropy(token) >= 3.5 and not _looks_like_placeholder(token):
                yield Finding("bearer_token", SECRET, m.start(1), m.end(1), token, True)

    def _auth_headers(self, text: str, raw: bytes, gates: frozenset[str]) -> Iterable[Finding]:
        if "auth_header" not in gates:
            return
        for m in _AUTH_HEADER.finditer(text):
            if m.start() == 0 or text[m.start() - 1] not in "Aa":
                continue
            scheme, value = m.group(1).lower(), m.group(2)
            if _looks_like_placeholder(value) or value.lower() in _PLACEHOLDER_PASSWORDS:
                continue
            if scheme == "basic":
                try:
                    decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
                except (binascii.Error, ValueError):
                    continue
                if b":" not in decoded:
                    continue  # Basic carries user:password
            elif len(value) < 16 or _entropy(value) < 3.0:
                continue
            yield Finding("http_auth_header", SECRET, m.start(2), m.end(2), value, True)

    def _concatenated(self, text: str, raw: bytes, gates: frozenset[str]) -> Iterable[Finding]:
        """A secret split over string literals joined by `+` or by adjacency across a line
        (`"sk-proj-abc" + "def..."`): the literals are joined and scanned, and a secret that
        crosses a literal's edge is a finding over the whole chain."""
        if "chain" not in gates:
            return
        covered = 0
        for start in _CHAIN_START.finditer(text):
            first_close = start.start()
            if first_close < covered:
                continue
            quote = text[first_close]
            opening = text.rfind(quote, max(0, first_close - 201), first_close)
            if opening == -1 or "\n" in text[opening:first_close]:
                continue
            m = _CHAIN.match(text, opening)
            if m is None or m.end() <= first_close + 1:
                continue
            covered = m.end()
            contents = [p[1:-1] for p in _LITERAL.findall(m.group(0))]
            joined = "".join(contents)
            edges, offset = set(), 0
            for piece in contents[:-1]:
                offset += len(piece)
                # Only where a word crosses the edge could a split token hide (`"sk-ab" "cd"`);
                # prose split at a space (`"hello " "world"`) is left alone.
                if piece and offset < len(joined) and not piece[-1].isspace() and not joined[offset].isspace():
                    edges.add(offset)
            if not edges:
                continue
            joined_raw = joined.encode("utf-8", "surrogatepass")
            joined_gates = open_gates(joined_raw)
            for detect in self._secret_detectors:
                for inner in detect(joined, joined_raw, joined_gates):
                    if inner.label == SECRET and any(inner.start < edge < inner.end for edge in edges):
                        yield Finding(inner.kind, SECRET, m.start(), m.end(), m.group(0), True)
                        break
                else:
                    continue
                break

    def _assignments(self, text: str, raw: bytes, gates: frozenset[str]) -> Iterable[Finding]:
        # Keywords are found in the lowercased UTF-8 bytes (bytes.lower() changes ASCII letters
        # only, so offsets stay put), one str.find-speed pass per keyword, and the rest of the
        # assignment is matched on the bytes from there. Offsets are converted to characters
        # only for a finding in a non-ASCII text.
        lowered = raw.lower()
        ascii_only = text.isascii()
        seen: set[int] = set()
        for word in _SECRET_WORDS_BYTES:
            start = lowered.find(word)
            while start != -1:
                after = start + len(word)
                if word == b"pass" and (
                    (start and lowered[start - 1:start].isalpha()) or lowered[after:after + 1] in _NAME_BYTES
                ):
                    start = lowered.find(word, after)
                    continue
                m = _ASSIGNMENT_TAIL.match(raw, after)
                if m is not None and m.start(2) not in seen:
                    finding = _assignment_finding(
                        word.decode("ascii"),
                        lowered[max(0, start - 40):m.start(2)].decode("utf-8", "replace"),
                        m.group(1).decode("ascii") if m.group(1) else "",
                        m.group(2).decode("utf-8", "replace"),
                        bool(m.group(3)),
                    )
                    if finding is not None:
                        seen.add(m.start(2))
                        s, e = m.start(2), m.end(2)
                        if not ascii_only:
                            s = len(raw[:s].decode("utf-8", "ignore"))
                            e = s + len(finding[1])
                        yield Finding(finding[0], SECRET, s, e, finding[1], True)
                    after = m.end()  # `key=key=key=...` is read once, not once per keyword
                start = lowered.find(word, after)


    # --- personal data ----------------------------------------------------------------------

    def _emails(self, text: str, raw: bytes, gates: frozenset[str]) -> Iterable[Finding]:
        pos = 0
        # The expression starts with '@', so the regex engine jumps between '@'s in C and a
        # match exists only where a domain follows: `a@a@a@...` costs one pass.
        while (hit := _AT_DOMAIN.search(text, pos)) is not None:
            at = hit.start()
            domain = hit if at and text[at - 1] in _LOCAL_CHARS else None
            if domain is not None:
                # The local part, read backwards from the '@' with one match on the reversed
                # window: a search that tried every start in the window would be quadratic.
                reversed_window = text[max(0, at - 64):at][::-1]
                local_len = _EMAIL_LOCAL_REVERSED.match(reversed_window)
                start = at - (local_len.end() if local_len else 0)
                local = text[start:at]
                host = domain.group(1).lower()
                end = domain.end()
                if (
                    local
                    and local[0] not in ".-"
                    and text[start - 1:start] != ":"  # user:password@host in a URL
                    and not host.endswith(_EXAMPLE_DOMAINS)
                    and local.lower() not in ("git", "noreply", "no-reply")
                    and not (end < len(text) and _is_word_char(text[end]))
                ):
                    yield Finding("email", PII, start, end, text[start:end])
                pos = end
            else:
                pos = at + 1

    def _numbers(self, text: str, raw: bytes, gates: frozenset[str]) -> Iterable[Finding]:
        """Card numbers, IBANs, national ids and phone numbers, from one pass over the text.

        Each of these has a run of at least six digits, so one cheap expression finds the runs
        and the exact formats are tried only in a small window around each. The runs are found
        in the UTF-8 bytes with every digit turned into '0': the expression then starts with a
        literal, and the regex engine jumps from digit to digit instead of testing a character
        class at every character (several times slower).
        """
        ascii_only = text.isascii()
        chars_before, bytes_before = 0, 0  # for non-ASCII text: char offset of a byte offset
        for run in _ZERO_RUN.finditer(raw.translate(_DIGITS_TO_ZERO)):
            if _digit_count(run.group(0).decode("ascii"), zeros=True) < 6:
                continue
            lo, hi = max(0, run.start() - 16), min(len(raw), run.end() + 40)
            if ascii_only:
                offset, window = lo, text[lo:hi]
            else:
                chars_before += len(raw[bytes_before:lo].decode("utf-8", "ignore"))
                bytes_before = lo
                offset, window = chars_before, raw[lo:hi].decode("utf-8", "replace")
            yield from _window_findings(window, offset)


def _digit_count(chunk: str, zeros: bool = False) -> int:
    return chunk.count("0") if zeros else len(chunk) - len(chunk.translate(_DROP_DIGITS))


def _window_findings(window: str, offset: int) -> Iterable[Finding]:
    """Findings in a window of text; boundaries are checked inside the window, whose margins
    around the digit run are wider than any format's context."""
    n = len(window)

    def before(i: int) -> str:
        return window[i - 1] if i > 0 else " "

    def after(i: int) -> str:
        return window[i] if i < n else " "

    for m in _CARD.finditer(window):
        s, e = m.start(), m.end()
        if before(s).isdigit() or before(s) in "-." or after(e).isdigit() or after(e) == "-":
            continue
        digits = m.group(0).replace(" ", "").replace("-", "")
        if 13 <= len(digits) <= 19 and _card_network(digits) and luhn_valid(digits):
            yield Finding("card_number", PII, offset + s, offset + e, m.group(0))
    for m in _IBAN.finditer(window):
        s, e = m.start(), m.end()
        if _is_word_char(before(s)) or _is_word_char(after(e)):
            continue
        if iban_valid(m.group(0).replace(" ", "")):
            yield Finding("iban", PII, offset + s, offset + e, m.group(0))
    for m in _SSN.finditer(window):
        s, e = m.start(), m.end()
        if before(s).isdigit() or before(s) == "-" or after(e).isdigit() or after(e) == "-":
            continue
        if _ssn_valid(m.group(0)):
            yield Finding("us_ssn", PII, offset + s, offset + e, m.group(0))
    for m in _NINO.finditer(window):
        s, e = m.start(), m.end()
        if _is_word_char(before(s)) or _is_word_char(after(e)):
            continue
        if m.group(0)[:2] not in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ"):
            yield Finding("uk_nino", PII, offset + s, offset + e, m.group(0))
    for m in _PHONE.finditer(window):
        s, e = m.start(), m.end()
        b, a = before(s), after(e)
        if _is_word_char(b) or b in "+.-/:" or _is_word_char(a) or a in ".-/:":
            continue
        if 9 <= _digit_count(m.group(0)) <= 15:
            yield Finding("phone_number", PII, offset + s, offset + e, m.group(0))


def _has_mixed_classes(value: str) -> bool:
    classes = (
        any(c.islower() for c in value),
        any(c.isupper() for c in value),
        any(c.isdigit() for c in value),
        any(not c.isalnum() for c in value),
    )
    return sum(classes) >= 3


def _without_overlaps(found: list[Finding]) -> tuple[Finding, ...]:
    """Drop a finding that overlaps an earlier one: detectors run from specific to generic."""
    starts: list[int] = []
    kept: list[Finding] = []
    for f in found:
        i = bisect.bisect_left(starts, f.start)
        if i > 0 and kept[i - 1].end > f.start:
            continue
        if i < len(kept) and kept[i].start < f.end:
            continue
        starts.insert(i, f.start)
        kept.insert(i, f)
    return tuple(kept)


def _assignment_finding(word: str, name: str, quote: str, value: str, closed: bool) -> tuple[str, str] | None:
    """(kind, value) when `name = value` holds a secret, else None."""
    if quote and not closed:
        return None  # `key = "a b c"` or a string that goes on: not one token
    if _looks_like_placeholder(value):
        return None
    if word in ("passw", "pwd", "pass"):
        if not quote and (not _has_mixed_classes(value) or _IDENTIFIER_PATH.fullmatch(value)):
            return None  # `password = get_password(...)`, `password = Prompt.ask(...)`
        if value.lower().rstrip("0123456789") in _PLACEHOLDER_PASSWORDS:
            return None  # password, password1, admin123
        return "password_assignment", value
    if len(value) < 16:
        return None
    if not quote and _IDENTIFIER_PATH.fullmatch(value) and (
        "." in value or "_" in value or not any(c.isdigit() for c in value)
    ):
        return None  # `token = self.token_value`, `auth = _SigV4Auth(...)`: code, not a value
    if ":" in value:
        return None  # URNs, URLs, `a:b` pairs; keys in base64 or hex have no colon
    if _UUID.fullmatch(value) and not any(w in name for w in ("secret", "token", "api_key", "apikey")):
        return None  # ids: request_id, idempotency_key
    if not (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
        return None
    threshold = 3.0 if _HEX.fullmatch(value) else 3.5
    if _entropy(value) < threshold:
        return None
    return "high_entropy_assignment", value
