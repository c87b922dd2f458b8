"""Scanner families that used to slip through, and redaction that removes a whole key: an escaped
PEM body inside a JSON string, webhook URLs, HTTP auth headers, `*_PASS=` names, a key split over
string literals; tool descriptions and argument keys are scanned too."""

from __future__ import annotations

import base64
import json
import random
import string

import pytest
from turnout.router.policy import Policy, parse_policy
from turnout.router.router import PolicyRouter
from turnout.router.scan import Scanner
from turnout.runtimes.base import ChatRequest, Message, ToolCall, ToolSpec
from turnout.runtimes.testing.fake import ScriptedModel

rng = random.Random(15)
KEY_BODY = base64.b64encode(rng.randbytes(1200)).decode()
PEM = ("-----BEGIN PRIVATE KEY-----\n" + "\n".join(KEY_BODY[i:i + 64] for i in range(0, len(KEY_BODY), 64))
       + "\n-----END PRIVATE KEY-----\n")
SERVICE_ACCOUNT = json.dumps({"type": "service_account", "project_id": "p", "private_key": PEM}, indent=2)
OPENAI_KEY = "sk-proj-" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(48))
BASIC = base64.b64encode(b"deploy:Xk8s9Lq2pW").decode()


def kinds(text: str) -> list[str]:
    return [f.kind for f in Scanner(Policy()).scan(text)]


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("private_key", SERVICE_ACCOUNT),
        ("slack_webhook", "url = 'https://hooks.slack.com/services/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'"),
        ("discord_webhook", ("https://discord.com/api/webhooks/123456789012345678/"
                             "Abc_dEfGhIjKlMnOpQrStUvWxYz0123456789-abcdefghij")),
        ("http_auth_header", f"curl -H 'Authorization: Basic {BASIC}' https://ci.internal/api"),
        ("http_auth_header", 'headers = {"authorization": "token 3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a"}'),
        ("password_assignment", "DB_PASS=Xk8s9Lq2!pW"),
        ("password_assignment", "smtp.pass: 'h7Gq2#kLp'"),
        ("openai_key", f'OPENAI = "{OPENAI_KEY[:30]}" + "{OPENAI_KEY[30:]}"'),
        ("openai_key", f'OPENAI = ("{OPENAI_KEY[:30]}"\n          "{OPENAI_KEY[30:]}")'),
    ],
)
def test_each_family_is_found(kind: str, text: str) -> None:
    assert kind in kinds(text)


@pytest.mark.parametrize(
    "text",
    [
        "bypass=Xk8s9Lq2!pW",  # `pass` inside a longer word
        "Authorization: Basic " + base64.b64encode(b"no colon here").decode(),
        "url = 'https://hooks.slack.com/services/XXXX'",
        'greeting = "hello " + "world"',
        "Authorization: token <your-token>",
    ],
)
def test_look_alikes_are_not_findings(text: str) -> None:
    assert kinds(text) == []


def cloud_policy() -> Policy:
    return parse_policy({
        "targets": {"cloud": {"runtime": "anthropic", "location": "cloud", "model": "m", "context_window": 200000}},
        "redaction": {"enabled": True},
    }, "turnout.toml")


def test_redaction_removes_every_byte_of_a_key_inside_json_and_of_a_split_key() -> None:
    cloud = ScriptedModel(["ok"])
    router = PolicyRouter(cloud_policy(), {"cloud": cloud})
    split = f'OPENAI = "{OPENAI_KEY[:30]}" + "{OPENAI_KEY[30:]}"'
    router.chat(ChatRequest(messages=[Message(role="user", content=SERVICE_ACCOUNT + "\n" + split)]))
    [sent] = cloud.requests
    text = sent.model_dump_json()
    lines = [KEY_BODY[i:i + 64] for i in range(0, len(KEY_BODY), 64)]
    assert not any(line in text for line in lines) and "BEGIN PRIVATE KEY" not in text
    assert OPENAI_KEY[:30] not in text and OPENAI_KEY[30:] not in text
    assert "[REDACTED:private_key#" in text and "[REDACTED:openai_key#" in text


def test_tool_descriptions_and_argument_keys_are_scanned() -> None:
    tool = ToolSpec(name="deploy", description=f"Deploys. Use the key {OPENAI_KEY} when asked.",
                    input_schema={"type": "object", "properties": {}})
    router = PolicyRouter(cloud_policy(), {"cloud": ScriptedModel(["ok"])})
    decision = router.explain(ChatRequest(messages=[Message(role="user", content="deploy")], tools=[tool]))
    assert decision.kinds.get("openai_key") == 1
    call = ToolCall(id="c", name="note", arguments={OPENAI_KEY: "x"})
    keyed = ChatRequest(messages=[Message(role="user", content="hi"), Message(role="assistant", tool_calls=[call])])
    assert PolicyRouter(cloud_policy(), {}).explain(keyed).kinds.get("openai_key") == 1
    # Redacted in the description before it leaves; the key in an argument name holds the request back.
    cloud = ScriptedModel(["ok"])
    PolicyRouter(cloud_policy(), {"cloud": cloud}).chat(
        ChatRequest(messages=[Message(role="user", content="deploy")], tools=[tool]))
    assert OPENAI_KEY not in cloud.requests[0].model_dump_json()
