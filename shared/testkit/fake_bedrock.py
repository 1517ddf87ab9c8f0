"""A fake Amazon Bedrock runtime, wire-compatible with the AWS SDKs, for tests and `make dev`.

local_aws.py mounts it on the local AWS endpoint: a request under /model/ signed for the
service `bedrock` (the credential scope of its SigV4 Authorization header, as the Bedrock
Runtime clients sign) or carrying a Bedrock API key (Authorization: Bearer) comes here,
outside the lock that serialises moto's requests (streams are long). The fake keeps no state
but its transcript, which has a lock of its own, so any number of calls run at once.

The protocol is Bedrock Runtime's (REST-JSON, botocore's bedrock-runtime service model):

* POST /model/{modelId}/converse (Converse) answers
  {"output": {"message": {"role": "assistant", "content": [...]}}, "stopReason", "usage":
  {"inputTokens", "outputTokens", "totalTokens"}, "metrics": {"latencyMs"}}.
* POST /model/{modelId}/converse-stream (ConverseStream) answers 200 with Content-Type
  application/vnd.amazon.eventstream, chunked, one event-stream message per event, each
  flushed as it is made: a prelude (total length, headers length, CRC32 of the two), the
  headers :event-type, :content-type (application/json) and :message-type (event), the
  event's JSON and the CRC32 of the whole message. The events come in AWS's order:
  messageStart {"role": "assistant"}; for text, contentBlockDelta {"contentBlockIndex",
  "delta": {"text"}} (a few words each) then contentBlockStop; for a tool use,
  contentBlockStart {"start": {"toolUse": {"toolUseId", "name"}}}, contentBlockDelta
  {"delta": {"toolUse": {"input": "<JSON text>"}}} and contentBlockStop; then messageStop
  {"stopReason"} and metadata {"usage", "metrics": {"latencyMs"}}. Like Bedrock's, each
  event's JSON also carries a padding field "p", which clients ignore. An error once the
  stream has begun is an exception message (:message-type exception, :exception-type such as
  modelStreamErrorException, payload {"message"}) that ends the stream.
* POST /model/{modelId}/invoke (InvokeModel) answers for Titan Text Embeddings V2 (a model id
  containing `amazon.titan-embed-text-v2`): the body {"inputText", "dimensions" (256, 512 or
  1024; 1024 when absent), "normalize" (true when absent), "embeddingTypes" (optional,
  ["float"] and/or ["binary"])} is answered {"embedding": [...], "inputTextTokenCount": n}
  (and "embeddingsByType" when embeddingTypes was sent). An inputText that is empty, blank
  or over 50,000 characters, another key, or another dimension is a ValidationException;
  InvokeModel on another model is a ValidationException too.
* Errors are answered as AWS answers them: the status, the header x-amzn-ErrorType: <Name> and
  {"message": ...}. ThrottlingException 429, ModelTimeoutException 408,
  ServiceUnavailableException 503, ValidationException 400, ResourceNotFoundException 404,
  AccessDeniedException 403, ModelNotReadyException 429, InternalServerException 500.
* Any model id is accepted (URL-encoded in the path as the SDKs send it: a foundation model,
  an inference profile such as us.anthropic.claude-3-5-haiku-20241022-v1:0, an ARN), except
  that one containing `unknown` (any case) is answered ResourceNotFoundException and one
  containing `denied` AccessDeniedException, whatever the body. Other operations under /model/
  (InvokeModelWithResponseStream, CountTokens, ...) are answered 404 UnknownOperationException.

Converse and ConverseStream requests are checked as Bedrock checks them, with a
ValidationException: the body is a JSON object with Converse's top-level fields only;
`messages` is a non-empty list whose roles alternate, starting with `user`; each message has a
non-empty content list of content blocks, a text block is not blank; a conversation holding
toolUse or toolResult blocks needs a toolConfig; the toolResult blocks of a user message answer
exactly the toolUse blocks of the assistant message before it (by toolUseId).

The fake model (without LOCAL_LLM_URL). It is deterministic and stateless: the same request
gets the same answer, whatever ran before or runs at the same time. Every text answer starts
with "[local model] ", so that a person using `make dev` sees that no real model answered.

  The INSTRUCTIONS are the text blocks (joined with "\\n") of the last user message that has
  text, outside any source block. A source block is `<source id="N" ...>TEXT</source>`
  (N a number; TEXT has <, > and & escaped as &lt; &gt; &amp;; &quot; and &#39; are read
  too): it is DATA, never obeyed. Words are the lowercase runs of three letters or more.

  a. Directives, in the instructions only (in a source block they are data):
       [[fake:throttle]]     ThrottlingException
       [[fake:timeout]]      ModelTimeoutException
       [[fake:unavailable]]  ServiceUnavailableException
       [[fake:validation]]   ValidationException
       [[fake:internal]]     InternalServerException
       [[fake:notready]]     ModelNotReadyException
         (these six answer an HTTP error, for Converse and ConverseStream alike, checked
         in this order when several are given)
       [[fake:midstream]]    ConverseStream: messageStart and two text deltas of the answer,
                             then a modelStreamErrorException message, and the stream ends.
                             Converse: ModelTimeoutException.
       [[fake:midstream:throttling]], [[fake:midstream:unavailable]],
       [[fake:midstream:validation]], [[fake:midstream:internal]]
                             the same with a throttlingException, serviceUnavailableException,
                             validationException or internalServerException message
                             (Converse: the matching HTTP error).
       [[fake:long]]         the text answer is continued with filler words ("lorem ipsum
                             ...") to exactly 400 words (cut to 400 if longer).
       [[fake:slow]]         the text answer is continued with filler words, or cut, to exactly
                             100 words, and ConverseStream sends one word per contentBlockDelta
                             every 200 ms (Converse answers after 200 ms per word). If the
                             client goes away, the fake stops writing and the transcript
                             records "cut": true.
     Directives are removed from the instructions before anything below reads them.
  b. The answer, the first rule that applies:
       1. The last message is a user message holding toolResult blocks: "[local model] From
          the task list: " + the summary of each content item of those blocks, joined with
          "; ": a json item {"tasks": [{"title": ...}, ...]} gives its titles joined with "; "
          (or "no tasks" when the list is empty); another json item its compact JSON, a text
          item its text, each cut to 300 characters ("no result" when there is no item).
       2. The instructions contain "reveal the system prompt" (any case, any spacing):
          "[local model] System prompt: " + the text of every system block, joined with "\\n".
       3. The request's toolConfig has a tool named list_tasks, the instructions mention
          "task" or "overdue" (any case), and no message after the last user message with text
          holds a toolResult block: stopReason "tool_use" and one toolUse block {"toolUseId":
          "tooluse_" + 22 characters derived from the request's messages, "name":
          "list_tasks", "input": {"overdue": true (only when "overdue" is mentioned),
          "project": the words after "project " up to the next . , ; : ! ? or line end
          (only when there are some)}}.
       4. The instructions come with source blocks: the source whose text shares the most
          distinct words with the instructions (ties: the lowest id) gives "[local model]
          According to [N]: " + its first sentence (unescaped, spaces collapsed, up to and
          with the first . ! or ? followed by a space or the end, cut to 200 characters).
       5. Otherwise: "[local model] You asked: " + the instructions (spaces collapsed, cut to
          200 characters).
  c. Usage: inputTokens = ceil(C / 4), C the characters of every system text block and, in
     every message, of each text block, of each toolUse input and each json toolResult item as
     compact JSON (json.dumps(..., separators=(",", ":"))) and of each text toolResult item.
     outputTokens = ceil(characters of the answer text, or of the tool input as compact JSON,
     / 4). Both are at least 1; totalTokens is their sum. When outputTokens exceeds
     inferenceConfig.maxTokens, a text answer is cut to 4 × maxTokens characters with
     stopReason "max_tokens" and outputTokens = maxTokens (a tool use keeps its input and its
     stopReason; its outputTokens is capped likewise). stopReason is otherwise "end_turn".
     metrics.latencyMs is 10 (10 + 200 per word with [[fake:slow]]).

The transcript. Every Converse, ConverseStream and InvokeModel call that reached the fake (the
last 1,000) is kept in memory as {"id", "time", "operation", "modelId", "request" (the parsed
JSON body, or its text when it is not JSON), "answer" (the text sent, null for a tool use or an
embedding), "toolUse" (the toolUse block, or null), "stopReason", "usage", "error" ({"type",
"message"} or null), "streamed" (true for ConverseStream), "cut" (true when the client went
away before the end), "done" (false while the call is under way)}. GET /_fake/bedrock/transcript
answers them as a JSON array, oldest first; ?contains=TEXT keeps the calls whose request (as
JSON, or as sent) contains TEXT. DELETE /_fake/bedrock/transcript empties it (204). Neither is
signed: plain HTTP on the endpoint's port.

LOCAL_LLM_URL. When this environment variable is set (an OpenAI-compatible server, such as
Ollama's http://localhost:11434/v1 or LM Studio's http://localhost:1234/v1), Converse and
ConverseStream go to POST {LOCAL_LLM_URL}/chat/completions instead of the fake model, as model
LOCAL_LLM_MODEL (default: the Bedrock model id). The system blocks become a system message,
each message a user or assistant message (toolUse blocks as tool_calls, toolResult blocks as
tool messages), toolConfig's tools OpenAI function tools (toolChoice auto, any, tool as auto,
required, the function), inferenceConfig's maxTokens, temperature, topP and stopSequences
max_tokens, temperature, top_p and stop. The answer comes back as Converse's: text and toolUse
blocks, finish_reason stop, length, tool_calls, content_filter as stopReason end_turn,
max_tokens, tool_use, content_filtered, and usage from the server's usage (estimated as above
when it sends none). ConverseStream asks for `stream: true` and turns each SSE `data:` chunk's
text into a contentBlockDelta as it arrives (tool calls follow the text, whole). Validation,
the model id rules, the six error directives and the transcript apply as without it; the
answers are the server's (no "[local model] " prefix). An unreachable server is a
ServiceUnavailableException, its HTTP errors are mapped to Bedrock's (400 ValidationException,
403 AccessDeniedException, 404 ResourceNotFoundException, 408 ModelTimeoutException, 429
ThrottlingException, 503 ServiceUnavailableException, others InternalServerException), and a
failure once a stream has begun is a modelStreamErrorException message. InvokeModel
(embeddings) is never forwarded.
"""

import base64
import hashlib
import http.client
import itertools
import json
import math
import os
import re
import select
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote

TRANSCRIPT_PATH = "/_fake/bedrock/transcript"
TRANSCRIPT_SIZE = 1000
PREFIX = "[local model] "
EMBEDDING_MODEL = "amazon.titan-embed-text-v2"
EMBEDDING_DIMENSIONS = (256, 512, 1024)
EMBEDDING_MAX_CHARS = 50_000
LONG_WORDS = 400
SLOW_WORDS = 100
SLOW_SECONDS_PER_WORD = 0.2
WORDS_PER_DELTA = 3
LATENCY_MS = 10
FILLER = (
    "lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do", "eiusmod", "tempor",
    "incididunt", "ut", "labore", "et", "dolore", "magna", "aliqua",
)

# Each Bedrock error: its HTTP status, and its name as an event-stream exception (if it has one).
ERRORS: dict[str, tuple[int, str | None]] = {
    "ThrottlingException": (429, "throttlingException"),
    "ModelTimeoutException": (408, None),
    "ServiceUnavailableException": (503, "serviceUnavailableException"),
    "ValidationException": (400, "validationException"),
    "ResourceNotFoundException": (404, None),
    "AccessDeniedException": (403, None),
    "ModelNotReadyException": (429, None),
    "InternalServerException": (500, "internalServerException"),
    "ModelStreamErrorException": (424, "modelStreamErrorException"),
    "ModelErrorException": (424, None),
}

# Directives answering an HTTP error, in the order they are checked.
ERROR_DIRECTIVES: dict[str, tuple[str, str]] = {
    "throttle": ("ThrottlingException", "Too many requests, please wait before trying again."),
    "timeout": ("ModelTimeoutException", "Model has timed out in processing the request. Try your request again."),
    "unavailable": ("ServiceUnavailableException", "Bedrock is unable to process your request."),
    "validation": ("ValidationException", "The local model was asked to refuse this request as invalid."),
    "internal": ("InternalServerException", "The system encountered an unexpected error during processing. Try your request again."),
    "notready": ("ModelNotReadyException", "The model is not ready to serve inference requests. Try your request again."),
}
# [[fake:midstream]] and its variants: the exception sent inside the stream.
MIDSTREAM: dict[str, tuple[str, str]] = {
    "midstream": ("ModelStreamErrorException", "The model stream was interrupted."),
    "midstream:throttling": ERROR_DIRECTIVES["throttle"],
    "midstream:unavailable": ERROR_DIRECTIVES["unavailable"],
    "midstream:validation": ERROR_DIRECTIVES["validation"],
    "midstream:internal": ERROR_DIRECTIVES["internal"],
}

CONVERSE_FIELDS = frozenset({
    "messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig", "additionalModelRequestFields",
    "promptVariables", "additionalModelResponseFieldPaths", "requestMetadata", "performanceConfig",
    "serviceTier", "outputConfig", "projectIdentifier",
})
CONTENT_BLOCKS = frozenset({
    "text", "image", "document", "video", "audio", "toolUse", "toolResult", "guardContent", "cachePoint",
    "reasoningContent", "citationsContent", "searchResult", "toolAddition", "toolRemoval",
})
EMBEDDING_FIELDS = frozenset({"inputText", "dimensions", "normalize", "embeddingTypes"})

_RUNTIME_PATH = re.compile(r"/model/(?P<model>.+)/(?P<operation>[a-z-]+)")
_OPERATIONS = {"converse": "Converse", "converse-stream": "ConverseStream", "invoke": "InvokeModel"}
_DIRECTIVE = re.compile(r"\[\[fake:([a-z]+(?::[a-z]+)?)\]\]")
_SOURCE = re.compile(r"<source\b([^>]*)>(.*?)</source>", re.DOTALL)
_SOURCE_ID = re.compile(r"""\bid\s*=\s*["']?(\d+)""")
_WORD = re.compile(r"[^\W\d_]{3,}")
_TOKEN = re.compile(r"\w+")
_SENTENCE = re.compile(r"(.+?[.!?])(?=\s|$)")
_PROJECT = re.compile(r"\bproject\s+([^.,;:!?\n]+)", re.IGNORECASE)


class BedrockError(Exception):
    """A Bedrock error answer: its name (x-amzn-ErrorType) and message."""

    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message

    @property
    def status(self) -> int:
        return ERRORS.get(self.name, (400, None))[0]


def _invalid(message: str) -> BedrockError:
    return BedrockError("ValidationException", message)


# --- the event-stream encoding (application/vnd.amazon.eventstream) ------------------------


def event_message(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One event-stream message: prelude (total length, headers length, their CRC32), headers
    (each a 1-byte name length, the name, type 7 (string), a 2-byte value length, the value),
    payload, and the CRC32 of all that comes before it."""
    encoded = b"".join(
        struct.pack("B", len(name.encode())) + name.encode() + b"\x07" + struct.pack(">H", len(value.encode())) + value.encode()
        for name, value in headers
    )
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def _padded(payload: dict[str, Any]) -> bytes:
    """The event's JSON with Bedrock's padding field "p" (its length varies with the event)."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    padding = alphabet[: 1 + len(body) % len(alphabet)]
    return json.dumps({**payload, "p": padding}, separators=(",", ":"), ensure_ascii=False).encode()


def event_frame(event_type: str, payload: dict[str, Any]) -> bytes:
    headers = [(":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")]
    return event_message(headers, _padded(payload))


def exception_frame(exception_type: str, message: str) -> bytes:
    headers = [(":exception-type", exception_type), (":content-type", "application/json"), (":message-type", "exception")]
    return event_message(headers, json.dumps({"message": message}).encode())


def decode_event_messages(data: bytes) -> list[tuple[dict[str, str], bytes]]:
    """The (headers, payload) of each message in `data`, CRCs checked (for tests)."""
    messages = []
    while data:
        total, headers_length = struct.unpack(">II", data[:8])
        if struct.unpack(">I", data[8:12])[0] != zlib.crc32(data[:8]):
            raise ValueError("prelude CRC mismatch")
        message = data[:total]
        if struct.unpack(">I", message[-4:])[0] != zlib.crc32(message[:-4]):
            raise ValueError("message CRC mismatch")
        raw, headers = message[12 : 12 + headers_length], {}
        while raw:
            name_length = raw[0]
            name = raw[1 : 1 + name_length].decode()
            value_length = struct.unpack(">H", raw[2 + name_length : 4 + name_length])[0]
            headers[name] = raw[4 + name_length : 4 + name_length + value_length].decode()
            raw = raw[4 + name_length + value_length :]
        messages.append((headers, message[12 + headers_length : -4]))
        data = data[total:]
    return messages


# --- reading a conversation ------------------------------------------------------------------


@dataclass
class Source:
    id: int
    text: str  # unescaped


@dataclass
class Prompt:
    """What the fake model reads of a Converse request."""

    system: str
    instructions: str  # directives removed, outside source blocks
    directives: list[str]
    sources: list[Source]
    tool_results: list[dict[str, Any]] | None  # of the last message, when it is a user's holding some
    tool_result_after_text: bool


def _unescape(text: str) -> str:
    for escaped, plain in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#39;", "'"), ("&amp;", "&")):
        text = text.replace(escaped, plain)
    return text


def _collapse(text: str) -> str:
    return " ".join(text.split())


def split_sources(text: str) -> tuple[str, list[Source]]:
    """The text outside source blocks, and the numbered source blocks (in order)."""
    sources = []
    for match in _SOURCE.finditer(text):
        number = _SOURCE_ID.search(match.group(1))
        if number is not None:
            sources.append(Source(int(number.group(1)), _unescape(match.group(2))))
    return _SOURCE.sub(" ", text), sources


def _texts(message: dict[str, Any]) -> list[str]:
    return [block["text"] for block in message.get("content", []) if isinstance(block, dict) and isinstance(block.get("text"), str)]


def read_prompt(request: dict[str, Any]) -> Prompt:
    messages = request["messages"]
    system = "\n".join(block["text"] for block in request.get("system") or [] if isinstance(block.get("text"), str))
    last_text = max((i for i, m in enumerate(messages) if m["role"] == "user" and _texts(m)), default=None)
    raw = "\n".join(_texts(messages[last_text])) if last_text is not None else ""
    outside, sources = split_sources(raw)
    directives = _DIRECTIVE.findall(outside)
    instructions = _DIRECTIVE.sub(" ", outside)
    last = messages[-1]
    results = [block["toolResult"] for block in last["content"] if "toolResult" in block] if last["role"] == "user" else []
    after = messages[last_text + 1 :] if last_text is not None else messages
    return Prompt(
        system=system,
        instructions=instructions,
        directives=directives,
        sources=sources,
        tool_results=results or None,
        tool_result_after_text=any("toolResult" in block for m in after for block in m["content"]),
    )


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def input_characters(request: dict[str, Any]) -> int:
    """The characters usage counts in a request (see the module docstring, c)."""
    count = sum(len(block.get("text") or "") for block in request.get("system") or [])
    for message in request["messages"]:
        for block in message["content"]:
            if isinstance(block.get("text"), str):
                count += len(block["text"])
            elif "toolUse" in block:
                count += len(_compact(block["toolUse"].get("input")))
            elif "toolResult" in block:
                for item in block["toolResult"].get("content") or []:
                    if "json" in item:
                        count += len(_compact(item["json"]))
                    elif isinstance(item.get("text"), str):
                        count += len(item["text"])
    return count


def _tokens(characters: int) -> int:
    return max(1, math.ceil(characters / 4))


# --- the fake model --------------------------------------------------------------------------


@dataclass
class Reply:
    """A model's answer as Converse gives it."""

    content: list[dict[str, Any]]
    stop_reason: str
    input_tokens: int
    output_tokens: int
    latency_ms: int = LATENCY_MS
    seconds_per_word: float = 0.0  # > 0: streamed one word at a time, that far apart
    midstream: tuple[str, str] | None = None  # (error name, message) sent after two deltas

    @property
    def text(self) -> str | None:
        texts = [block["text"] for block in self.content if "text" in block]
        return "".join(texts) if texts else None

    @property
    def tool_use(self) -> dict[str, Any] | None:
        return next((block["toolUse"] for block in self.content if "toolUse" in block), None)

    def usage(self) -> dict[str, int]:
        return {
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "totalTokens": self.input_tokens + self.output_tokens,
        }


def _words_exactly(text: str, count: int) -> str:
    """The text continued with FILLER (from its first word on), or cut, to `count` words."""
    words = text.split()
    filler = [FILLER[i % len(FILLER)] for i in range(max(0, count - len(words)))]
    return " ".join((words + filler)[:count])


def _tool_result_summary(results: list[dict[str, Any]]) -> str:
    parts = []
    for result in results:
        for item in result.get("content") or []:
            if "json" in item:
                document = item["json"]
                tasks = document.get("tasks") if isinstance(document, dict) else None
                if isinstance(tasks, list):
                    titles = [str(t.get("title")) for t in tasks if isinstance(t, dict) and "title" in t]
                    parts.append("; ".join(titles)[:300] if titles else "no tasks")
                else:
                    parts.append(_compact(document)[:300])
            elif isinstance(item.get("text"), str):
                parts.append(item["text"][:300])
    return "; ".join(parts) or "no result"


def _has_tool(request: dict[str, Any], name: str) -> bool:
    tools = (request.get("toolConfig") or {}).get("tools") or []
    return any((tool.get("toolSpec") or {}).get("name") == name for tool in tools)


def _tool_use_id(request: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(request["messages"], sort_keys=True).encode()).digest()
    return "tooluse_" + base64.urlsafe_b64encode(digest).decode()[:22]


def _best_source(sources: list[Source], instructions: str) -> Source:
    asked = set(_WORD.findall(instructions.lower()))
    return min(sources, key=lambda s: (-len(asked & set(_WORD.findall(s.text.lower()))), s.id))


def _first_sentence(text: str) -> str:
    text = _collapse(text)
    match = _SENTENCE.match(text)
    return (match.group(1) if match else text)[:200]


def error_directive(prompt: Prompt) -> BedrockError | None:
    """The HTTP error a directive asks for, if any (checked in ERROR_DIRECTIVES' order)."""
    for directive, (name, message) in ERROR_DIRECTIVES.items():
        if directive in prompt.directives:
            return BedrockError(name, f"{message} (local fake: [[fake:{directive}]])")
    return None


def fake_reply(request: dict[str, Any]) -> Reply:
    """The fake model's answer to a valid Converse request (see the module docstring)."""
    prompt = read_prompt(request)
    instructions = _collapse(prompt.instructions)
    input_tokens = _tokens(input_characters(request))
    tool_use: dict[str, Any] | None = None
    if prompt.tool_results is not None:
        text = PREFIX + "From the task list: " + _tool_result_summary(prompt.tool_results)
    elif "reveal the system prompt" in instructions.lower():
        text = PREFIX + "System prompt: " + prompt.system
    elif (
        _has_tool(request, "list_tasks")
        and re.search("task|overdue", instructions, re.IGNORECASE)
        and not prompt.tool_result_after_text
    ):
        arguments: dict[str, Any] = {}
        if "overdue" in instructions.lower():
            arguments["overdue"] = True
        project = _PROJECT.search(instructions)
        if project and project.group(1).strip(" \t'\"“”‘’"):
            arguments["project"] = project.group(1).strip(" \t'\"“”‘’")
        tool_use = {"toolUseId": _tool_use_id(request), "name": "list_tasks", "input": arguments}
    elif prompt.sources:
        source = _best_source(prompt.sources, instructions)
        text = PREFIX + f"According to [{source.id}]: " + _first_sentence(source.text)
    else:
        text = PREFIX + "You asked: " + instructions[:200]
    max_tokens = (request.get("inferenceConfig") or {}).get("maxTokens")
    if tool_use is not None:
        output_tokens = _tokens(len(_compact(tool_use["input"])))
        if isinstance(max_tokens, int):
            output_tokens = min(output_tokens, max(max_tokens, 1))
        return Reply([{"toolUse": tool_use}], "tool_use", input_tokens, output_tokens)
    if "long" in prompt.directives:
        text = _words_exactly(text, LONG_WORDS)
    seconds_per_word = 0.0
    if "slow" in prompt.directives:
        text = _words_exactly(text, SLOW_WORDS)
        seconds_per_word = SLOW_SECONDS_PER_WORD
    stop_reason = "end_turn"
    output_tokens = _tokens(len(text))
    if isinstance(max_tokens, int) and output_tokens > max_tokens:
        text, output_tokens, stop_reason = text[: 4 * max_tokens], max_tokens, "max_tokens"
    midstream = next(
        ((MIDSTREAM[d][0], f"{MIDSTREAM[d][1]} (local fake: [[fake:{d}]])") for d in prompt.directives if d in MIDSTREAM),
        None,
    )
    latency = LATENCY_MS + int(1000 * seconds_per_word) * len(text.split())
    return Reply([{"text": text}], stop_reason, input_tokens, output_tokens, latency, seconds_per_word, midstream)


# --- checking a Converse request as Bedrock does -----------------------------------------------


def check_converse(request: Any) -> dict[str, Any]:
    """The request if Bedrock would take it, else the ValidationException it would answer."""
    if not isinstance(request, dict):
        raise _invalid("Malformed input request, please reformat your input and try again.")
    extra = sorted(set(request) - CONVERSE_FIELDS)
    if extra:
        raise _invalid(f"Malformed input request: extraneous key [{extra[0]}] is not permitted, please reformat your input and try again.")
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("A conversation must start with a user message. Try again with a conversation that starts with a user message.")
    uses_tools = False
    previous_tool_uses: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise _invalid(f"messages.{i}.role: the role must be user or assistant.")
        expected = "user" if i % 2 == 0 else "assistant"
        if message["role"] != expected:
            if i == 0:
                raise _invalid("A conversation must start with a user message. Try again with a conversation that starts with a user message.")
            raise _invalid(
                "A conversation must alternate between user and assistant roles. "
                "Make sure the conversation alternates between user and assistant roles and try again."
            )
        content = message.get("content")
        if not isinstance(content, list) or not content:
            raise _invalid(
                f"The content field in the Message object at messages.{i} is empty. "
                "Add a ContentBlock object to the content field and try again."
            )
        tool_uses, tool_results = set(), set()
        for j, block in enumerate(content):
            if not isinstance(block, dict) or len(block) != 1 or next(iter(block)) not in CONTENT_BLOCKS:
                raise _invalid(f"messages.{i}.content.{j}: a content block has exactly one member of ContentBlock.")
            if "text" in block and (not isinstance(block["text"], str) or not block["text"].strip()):
                raise _invalid(
                    f"The text field in the ContentBlock object at messages.{i}.content.{j} is blank. "
                    "Add text to the text field, and try again."
                )
            if "toolUse" in block:
                uses_tools = True
                tool_uses.add(str((block["toolUse"] or {}).get("toolUseId")))
            if "toolResult" in block:
                uses_tools = True
                tool_results.add(str((block["toolResult"] or {}).get("toolUseId")))
        if message["role"] == "user" and (tool_results or previous_tool_uses) and tool_results != previous_tool_uses:
            missing = sorted(previous_tool_uses - tool_results) or sorted(tool_results - previous_tool_uses)
            raise _invalid(
                f"Expected toolResult blocks at messages.{i}.content for the following Ids: {', '.join(missing)}"
                if previous_tool_uses - tool_results
                else f"The toolResult blocks at messages.{i}.content answer no toolUse of the previous turn: {', '.join(missing)}"
            )
        previous_tool_uses = tool_uses
    if uses_tools and not request.get("toolConfig"):
        raise _invalid("The toolConfig field must be defined when using toolUse and toolResult content blocks.")
    system = request.get("system")
    if system is not None and (not isinstance(system, list) or not all(isinstance(b, dict) for b in system)):
        raise _invalid("system: a list of SystemContentBlock objects.")
    tool_config = request.get("toolConfig")
    if tool_config is not None:
        tools = tool_config.get("tools") if isinstance(tool_config, dict) else None
        if not isinstance(tools, list) or not tools:
            raise _invalid("The value at toolConfig.tools must contain at least one tool.")
    inference = request.get("inferenceConfig") or {}
    max_tokens = inference.get("maxTokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise _invalid("The maximum tokens you requested is not valid: inferenceConfig.maxTokens is at least 1.")
    return request


# --- embeddings (Titan Text Embeddings V2) -----------------------------------------------------


def embed(text: str, dimensions: int = 1024, normalize: bool = True) -> list[float]:
    """A deterministic embedding: the lowercased word tokens (weight 1) and word bigrams
    (weight 0.5) hashed with SHA-256 into `dimensions` signed buckets, then L2-normalized. The
    same text gets the same vector in every process; texts sharing words are closer (cosine)
    than texts sharing none. A text without words hashes as a whole."""
    words = _TOKEN.findall(text.lower())
    features = [(w, 1.0) for w in words] + [(f"{a} {b}", 0.5) for a, b in itertools.pairwise(words)]
    if not features:
        features = [(text, 1.0)]
    vector = [0.0] * dimensions
    for feature, weight in features:
        digest = hashlib.sha256(feature.encode()).digest()
        bucket = int.from_bytes(digest[:8], "big") % dimensions
        vector[bucket] += weight if digest[8] & 1 else -weight
    if normalize:
        norm = math.sqrt(sum(v * v for v in vector))
        if norm > 0:
            vector = [v / norm for v in vector]
    return vector


def titan_embedding(body: Any) -> dict[str, Any]:
    """Titan Text Embeddings V2's answer to an InvokeModel body, or its ValidationException."""
    if not isinstance(body, dict):
        raise _invalid("Malformed input request, please reformat your input and try again.")
    extra = sorted(set(body) - EMBEDDING_FIELDS)
    if extra:
        raise _invalid(f"Malformed input request: extraneous key [{extra[0]}] is not permitted, please reformat your input and try again.")
    text = body.get("inputText")
    if not isinstance(text, str) or not text.strip():
        raise _invalid("Malformed input request: #/inputText: expected minLength: 1, please reformat your input and try again.")
    if len(text) > EMBEDDING_MAX_CHARS:
        raise _invalid(
            f"Malformed input request: #/inputText: expected maxLength: {EMBEDDING_MAX_CHARS}, actual: {len(text)}, "
            "please reformat your input and try again."
        )
    dimensions = body.get("dimensions", 1024)
    if isinstance(dimensions, bool) or dimensions not in EMBEDDING_DIMENSIONS:
        raise _invalid(f"Malformed input request: #/dimensions: {dimensions} is not a valid enum value, please reformat your input and try again.")
    normalize = body.get("normalize", True)
    if not isinstance(normalize, bool):
        raise _invalid("Malformed input request: #/normalize: expected type: Boolean, please reformat your input and try again.")
    types = body.get("embeddingTypes")
    if types is not None and (not isinstance(types, list) or not types or not set(types) <= {"float", "binary"}):
        raise _invalid("Malformed input request: #/embeddingTypes: a non-empty list of float, binary, please reformat your input and try again.")
    vector = embed(text, dimensions, normalize)
    answer: dict[str, Any] = {"embedding": vector, "inputTextTokenCount": _tokens(len(text))}
    if types is not None:
        by_type: dict[str, Any] = {}
        if "float" in types:
            by_type["float"] = vector
        if "binary" in types:
            by_type["binary"] = [1 if v > 0 else 0 for v in vector]
        answer["embeddingsByType"] = by_type
    return answer


# --- an OpenAI-compatible local model (LOCAL_LLM_URL) ----------------------------------------

# A streamed answer, item by item: ("event", event type, payload) or ("exception", Bedrock
# error name, message), and ("reply", "", {...}) last, with what the transcript keeps.
StreamItem = tuple[str, str, dict[str, Any]]

_FINISH = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use", "content_filter": "content_filtered"}
_HTTP_ERRORS = {400: "ValidationException", 403: "AccessDeniedException", 401: "AccessDeniedException", 404: "ResourceNotFoundException",
                408: "ModelTimeoutException", 429: "ThrottlingException", 503: "ServiceUnavailableException"}


def _tool_result_text(result: dict[str, Any]) -> str:
    parts = []
    for item in result.get("content") or []:
        if "json" in item:
            parts.append(_compact(item["json"]))
        elif isinstance(item.get("text"), str):
            parts.append(item["text"])
    return "\n".join(parts)


def openai_request(request: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
    """A Converse request as an OpenAI chat completion request."""
    messages: list[dict[str, Any]] = []
    system = "\n".join(block["text"] for block in request.get("system") or [] if isinstance(block.get("text"), str))
    if system:
        messages.append({"role": "system", "content": system})
    for message in request["messages"]:
        text = "\n".join(_texts(message))
        if message["role"] == "assistant":
            calls = [
                {"id": b["toolUse"]["toolUseId"], "type": "function",
                 "function": {"name": b["toolUse"]["name"], "arguments": _compact(b["toolUse"].get("input"))}}
                for b in message["content"] if "toolUse" in b
            ]
            assistant: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
            if calls:
                assistant["tool_calls"] = calls
            messages.append(assistant)
            continue
        for block in message["content"]:
            if "toolResult" in block:
                result = block["toolResult"]
                messages.append({"role": "tool", "tool_call_id": result.get("toolUseId"), "content": _tool_result_text(result)})
        if text:
            messages.append({"role": "user", "content": text})
    payload: dict[str, Any] = {"model": model, "messages": messages, "stream": stream}
    if stream:
        payload["stream_options"] = {"include_usage": True}
    inference = request.get("inferenceConfig") or {}
    for ours, theirs in (("maxTokens", "max_tokens"), ("temperature", "temperature"), ("topP", "top_p"), ("stopSequences", "stop")):
        if inference.get(ours) is not None:
            payload[theirs] = inference[ours]
    tool_config = request.get("toolConfig") or {}
    tools = [
        {"type": "function", "function": {
            "name": spec["name"], "description": spec.get("description", ""),
            "parameters": (spec.get("inputSchema") or {}).get("json") or {"type": "object"},
        }}
        for spec in (t.get("toolSpec") for t in tool_config.get("tools") or []) if spec
    ]
    if tools:
        payload["tools"] = tools
        choice = tool_config.get("toolChoice") or {}
        if "any" in choice:
            payload["tool_choice"] = "required"
        elif "tool" in choice:
            payload["tool_choice"] = {"type": "function", "function": {"name": choice["tool"].get("name")}}
        elif "auto" in choice:
            payload["tool_choice"] = "auto"
    return payload


def _tool_input(arguments: str) -> Any:
    try:
        return json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {"arguments": arguments}


class LocalLlm:
    """Converse and ConverseStream answered by an OpenAI-compatible server (LOCAL_LLM_URL)."""

    def __init__(self, url: str, model: str | None = None, timeout: float = 600.0):
        self.url = url.rstrip("/") + "/chat/completions"
        self.model = model
        self.timeout = timeout

    def _open(self, request: dict[str, Any], model_id: str, stream: bool) -> Any:
        payload = openai_request(request, self.model or model_id, stream)
        http_request = urllib.request.Request(
            self.url,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json", "Accept": "text/event-stream" if stream else "application/json"},
            method="POST",
        )
        try:
            return urllib.request.urlopen(http_request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:500]
            name = _HTTP_ERRORS.get(error.code, "InternalServerException")
            raise BedrockError(name, f"The local model at {self.url} answered {error.code}: {detail}") from None
        except TimeoutError:
            raise BedrockError("ModelTimeoutException", f"The local model at {self.url} did not answer in time.") from None
        except (urllib.error.URLError, OSError) as error:
            raise BedrockError("ServiceUnavailableException", f"The local model at {self.url} is unreachable: {error}") from None

    def _not_a_completion(self) -> BedrockError:
        return BedrockError("InternalServerException", f"The local model at {self.url} answered something else than a chat completion.")

    def _usage(self, usage: Any, request: dict[str, Any], output: str) -> tuple[int, int]:
        if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int) and isinstance(usage.get("completion_tokens"), int):
            return usage["prompt_tokens"], usage["completion_tokens"]
        return _tokens(input_characters(request)), _tokens(len(output))

    def converse(self, request: dict[str, Any], model_id: str) -> Reply:
        started = time.monotonic()
        with self._open(request, model_id, stream=False) as response:
            try:
                answer = json.loads(response.read())
                choice = answer["choices"][0]
                message = choice.get("message") or {}
            except (ValueError, KeyError, IndexError, TypeError):
                raise self._not_a_completion() from None
        content: list[dict[str, Any]] = []
        if message.get("content"):
            content.append({"text": message["content"]})
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            content.append({"toolUse": {
                "toolUseId": call.get("id") or "tooluse_local", "name": function.get("name", ""),
                "input": _tool_input(function.get("arguments") or ""),
            }})
        if not content:
            content.append({"text": ""})
        stop = _FINISH.get(choice.get("finish_reason") or "stop", "end_turn")
        if stop == "end_turn" and any("toolUse" in block for block in content):
            stop = "tool_use"
        output = "".join(block.get("text", "") for block in content) + "".join(_compact(b["toolUse"]["input"]) for b in content if "toolUse" in b)
        input_tokens, output_tokens = self._usage(answer.get("usage"), request, output)
        latency = max(1, int(1000 * (time.monotonic() - started)))
        return Reply(content, stop, input_tokens, output_tokens, latency)

    def stream(self, request: dict[str, Any], model_id: str) -> Iterator[StreamItem]:
        """The events of ConverseStream as the server's SSE chunks arrive. Errors before the
        first event raise BedrockError (an HTTP error answer); later ones end the stream with a
        modelStreamErrorException."""
        started = time.monotonic()
        response = self._open(request, model_id, stream=True)
        text: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        finish, usage, text_open = None, None, False
        if response.headers.get_content_type() == "application/json":
            # A server that does not stream: its whole answer, as one delta.
            with response:
                try:
                    lines = _sse_of_completion(response.read())
                except (ValueError, KeyError, IndexError, TypeError):
                    raise self._not_a_completion() from None
            response = _Lines(lines)
        try:
            yield "event", "messageStart", {"role": "assistant"}
            for raw_line in response:
                line = raw_line.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                if not isinstance(chunk, dict) or "error" in chunk:
                    error = chunk.get("error") if isinstance(chunk, dict) else chunk
                    message = error.get("message") if isinstance(error, dict) else error
                    yield "exception", "ModelStreamErrorException", {"message": f"The local model failed: {message}"}
                    return
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    if delta.get("content"):
                        text.append(delta["content"])
                        text_open = True
                        yield "event", "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": delta["content"]}}
                    for call in delta.get("tool_calls") or []:
                        entry = calls.setdefault(call.get("index", 0), {"id": None, "name": "", "arguments": ""})
                        function = call.get("function") or {}
                        entry["id"] = call.get("id") or entry["id"]
                        entry["name"] += function.get("name") or ""
                        entry["arguments"] += function.get("arguments") or ""
                    finish = choice.get("finish_reason") or finish
        except (ValueError, OSError, http.client.HTTPException) as error:
            yield "exception", "ModelStreamErrorException", {"message": f"The local model's stream broke: {error}"}
            return
        finally:
            response.close()
        index = 0
        if text_open:
            yield "event", "contentBlockStop", {"contentBlockIndex": 0}
            index = 1
        tool_uses = []
        for position in sorted(calls):
            call = calls[position]
            tool_use = {"toolUseId": call["id"] or f"tooluse_local{position}", "name": call["name"], "input": _tool_input(call["arguments"])}
            tool_uses.append(tool_use)
            start = {"toolUse": {"toolUseId": tool_use["toolUseId"], "name": tool_use["name"]}}
            yield "event", "contentBlockStart", {"contentBlockIndex": index, "start": start}
            yield "event", "contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": call["arguments"] or "{}"}}}
            yield "event", "contentBlockStop", {"contentBlockIndex": index}
            index += 1
        stop = _FINISH.get(finish or "stop", "end_turn")
        if stop == "end_turn" and tool_uses:
            stop = "tool_use"
        output = "".join(text) + "".join(_compact(t["input"]) for t in tool_uses)
        input_tokens, output_tokens = self._usage(usage, request, output)
        reply = Reply([{"text": "".join(text)}] if text_open else [], stop, input_tokens, output_tokens)
        reply.content += [{"toolUse": t} for t in tool_uses]
        yield "event", "messageStop", {"stopReason": stop}
        latency = max(1, int(1000 * (time.monotonic() - started)))
        yield "event", "metadata", {"usage": reply.usage(), "metrics": {"latencyMs": latency}}
        yield "reply", "", {"stopReason": stop, "usage": reply.usage(), "toolUse": reply.tool_use}


class _Lines(list[bytes]):
    """Lines standing in for a streamed answer."""

    def close(self) -> None:
        pass


def _sse_of_completion(body: bytes) -> list[bytes]:
    """A (non-streamed) chat completion as the SSE lines of one streamed chunk."""
    answer = json.loads(body)
    choice = answer["choices"][0]
    message = choice.get("message") or {}
    calls = [dict(call, index=i) for i, call in enumerate(message.get("tool_calls") or [])]
    delta = {"content": message.get("content"), "tool_calls": calls}
    chunk = {"choices": [{"delta": delta, "finish_reason": choice.get("finish_reason")}], "usage": answer.get("usage")}
    return [b"data: " + json.dumps(chunk).encode(), b"data: [DONE]"]


def fake_stream(reply: Reply) -> Iterator[StreamItem]:
    """The events of ConverseStream for one of the fake model's replies, paced as it asks."""
    yield "event", "messageStart", {"role": "assistant"}
    for index, block in enumerate(reply.content):
        if "text" in block:
            pieces = re.findall(r"\s*\S+\s*", block["text"]) or [block["text"]]
            size = 1 if reply.seconds_per_word else WORDS_PER_DELTA
            deltas = ["".join(pieces[i : i + size]) for i in range(0, len(pieces), size)]
            for number, delta in enumerate(deltas):
                if reply.seconds_per_word and number:
                    time.sleep(reply.seconds_per_word)
                yield "event", "contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": delta}}
                if reply.midstream is not None and (number == 1 or number == len(deltas) - 1):
                    yield "exception", reply.midstream[0], {"message": reply.midstream[1]}
                    return
        else:
            tool_use = block["toolUse"]
            start = {"toolUse": {"toolUseId": tool_use["toolUseId"], "name": tool_use["name"]}}
            yield "event", "contentBlockStart", {"contentBlockIndex": index, "start": start}
            yield "event", "contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": _compact(tool_use["input"])}}}
        yield "event", "contentBlockStop", {"contentBlockIndex": index}
    yield "event", "messageStop", {"stopReason": reply.stop_reason}
    yield "event", "metadata", {"usage": reply.usage(), "metrics": {"latencyMs": reply.latency_ms}}


# --- the transcript --------------------------------------------------------------------------


class Transcript:
    """The last calls, for tests (thread-safe)."""

    def __init__(self, size: int = TRANSCRIPT_SIZE):
        self._lock = threading.Lock()
        self._calls: deque[dict[str, Any]] = deque(maxlen=size)
        self._raw: dict[int, str] = {}
        self._ids = iter(range(1, 1 << 62))

    def start(self, operation: str, model_id: str, request: Any, raw: str, streamed: bool) -> dict[str, Any]:
        call = {
            "id": 0, "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "operation": operation, "modelId": model_id, "request": request, "answer": None, "toolUse": None,
            "stopReason": None, "usage": None, "error": None, "streamed": streamed, "cut": False, "done": False,
        }
        with self._lock:
            call["id"] = next(self._ids)
            if len(self._calls) == self._calls.maxlen:
                self._raw.pop(self._calls[0]["id"], None)
            self._calls.append(call)
            self._raw[call["id"]] = raw
        return call

    def update(self, call: dict[str, Any], **changes: Any) -> None:
        with self._lock:
            call.update(changes)

    def calls(self, contains: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            found = [
                json.loads(json.dumps(call))
                for call in self._calls
                if contains is None
                or contains in json.dumps(call["request"], ensure_ascii=False)
                or contains in self._raw.get(call["id"], "")
            ]
        return found

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
            self._raw.clear()


# --- the WSGI application --------------------------------------------------------------------


def signing_service(authorization: str) -> str | None:
    """The service of a SigV4 Authorization header's credential scope."""
    match = re.search(r"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request", authorization)
    return match.group(1) if match else None


def handles(environ: dict[str, Any]) -> bool:
    """Whether a request is the fake's: its transcript, or a Bedrock Runtime call (under /model/,
    signed for `bedrock` or with a Bedrock API key)."""
    path = environ.get("PATH_INFO", "")
    if path == TRANSCRIPT_PATH:
        return True
    if not path.startswith("/model/"):
        return False
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    return authorization.startswith("Bearer ") or signing_service(authorization) == "bedrock"


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    if environ.get("wsgi.input_terminated"):
        return stream.read()
    try:
        remaining = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return b""
    chunks = []
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def client_gone(environ: dict[str, Any]) -> bool:
    """Whether the client closed its connection (its socket reads as end of file)."""
    connection = environ.get("werkzeug.socket")
    if connection is None:
        return False
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def _status(code: int) -> str:
    return f"{code} {HTTPStatus(code).phrase}"


Respond = Callable[..., Any]


class FakeBedrock:
    """The WSGI application (see the module docstring). `llm` answers Converse and
    ConverseStream instead of the fake model when given (LocalLlm.from_environment())."""

    def __init__(self, llm: LocalLlm | None = None, transcript: Transcript | None = None):
        self.llm = llm
        self.transcript = transcript or Transcript()

    @classmethod
    def from_environment(cls) -> "FakeBedrock":
        url = os.environ.get("LOCAL_LLM_URL")
        return cls(LocalLlm(url, os.environ.get("LOCAL_LLM_MODEL") or None) if url else None)

    def __call__(self, environ: dict[str, Any], start_response: Respond) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == TRANSCRIPT_PATH:
            return self._transcript(environ, start_response)
        request_id = str(uuid.uuid4())
        target = (environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")).split("?", 1)[0]
        match = _RUNTIME_PATH.fullmatch(target) or _RUNTIME_PATH.fullmatch(environ.get("PATH_INFO", ""))
        operation = _OPERATIONS.get(match.group("operation")) if match else None
        if match is None or operation is None or environ.get("REQUEST_METHOD") != "POST":
            _read_body(environ)
            error = BedrockError("UnknownOperationException", "The local fake Bedrock serves Converse, ConverseStream and InvokeModel only.")
            return self._error(start_response, error, request_id, status=404)
        model_id = unquote(match.group("model"))
        raw = _read_body(environ)
        try:
            request: Any = json.loads(raw) if raw else {}
        except ValueError:
            request = None
        text = raw.decode("utf-8", "replace")
        call = self.transcript.start(operation, model_id, request if request is not None else text, text, operation == "ConverseStream")
        try:
            self._check_model(model_id)
            if request is None:
                raise _invalid("Malformed input request, please reformat your input and try again.")
            if operation == "InvokeModel":
                return self._invoke(start_response, call, model_id, request, request_id)
            check_converse(request)
            if (refusal := error_directive(read_prompt(request))) is not None:
                raise refusal
            if operation == "ConverseStream":
                return self._converse_stream(environ, start_response, call, model_id, request, request_id)
            return self._converse(environ, start_response, call, model_id, request, request_id)
        except BedrockError as error:
            self.transcript.update(call, error={"type": error.name, "message": error.message}, done=True)
            return self._error(start_response, error, request_id)

    @staticmethod
    def _check_model(model_id: str) -> None:
        lowered = model_id.lower()
        if "unknown" in lowered:
            raise BedrockError("ResourceNotFoundException", "The provided model identifier is invalid.")
        if "denied" in lowered:
            raise BedrockError("AccessDeniedException", "You don't have access to the model with the specified model ID.")

    def _json(
        self, start_response: Respond, status: int, document: Any, request_id: str, headers: list[tuple[str, str]] | None = None
    ) -> list[bytes]:
        body = json.dumps(document, ensure_ascii=False).encode()
        start_response(_status(status), [
            ("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("x-amzn-RequestId", request_id),
            *(headers or []),
        ])
        return [body]

    def _error(self, start_response: Respond, error: BedrockError, request_id: str, status: int | None = None) -> list[bytes]:
        return self._json(start_response, status or error.status, {"message": error.message}, request_id, [("x-amzn-ErrorType", error.name)])

    def _transcript(self, environ: dict[str, Any], start_response: Respond) -> list[bytes]:
        method = environ.get("REQUEST_METHOD")
        if method == "GET":
            contains = parse_qs(environ.get("QUERY_STRING", "")).get("contains", [None])[0]
            return self._json(start_response, 200, self.transcript.calls(contains), str(uuid.uuid4()))
        if method == "DELETE":
            self.transcript.clear()
            start_response(_status(204), [("Content-Length", "0")])
            return []
        start_response(_status(405), [("Allow", "GET, DELETE"), ("Content-Length", "0")])
        return []

    def _invoke(self, start_response: Respond, call: dict[str, Any], model_id: str, request: Any, request_id: str) -> list[bytes]:
        if EMBEDDING_MODEL not in model_id:
            raise _invalid(f"The local fake Bedrock answers InvokeModel for {EMBEDDING_MODEL}:0 only, not {model_id}.")
        answer = titan_embedding(request)
        self.transcript.update(call, usage={"inputTokens": answer["inputTextTokenCount"]}, done=True)
        return self._json(start_response, 200, answer, request_id)

    def _converse(
        self, environ: dict[str, Any], start_response: Respond, call: dict[str, Any], model_id: str, request: dict[str, Any], request_id: str
    ) -> list[bytes]:
        if self.llm is not None:
            reply = self.llm.converse(request, model_id)
        else:
            reply = fake_reply(request)
            if reply.midstream is not None:
                name, message = reply.midstream
                if name == "ModelStreamErrorException":
                    name = "ModelTimeoutException"
                raise BedrockError(name, message)
            if reply.seconds_per_word:
                deadline = time.monotonic() + reply.seconds_per_word * len((reply.text or "").split())
                while time.monotonic() < deadline:
                    if client_gone(environ):
                        self.transcript.update(call, cut=True, done=True, stopReason=reply.stop_reason)
                        start_response(_status(200), [("Content-Length", "0")])
                        return []
                    time.sleep(0.05)
        self.transcript.update(call, answer=reply.text, toolUse=reply.tool_use, stopReason=reply.stop_reason, usage=reply.usage(), done=True)
        document = {
            "output": {"message": {"role": "assistant", "content": reply.content}},
            "stopReason": reply.stop_reason,
            "usage": reply.usage(),
            "metrics": {"latencyMs": reply.latency_ms},
        }
        return self._json(start_response, 200, document, request_id)

    def _converse_stream(
        self, environ: dict[str, Any], start_response: Respond, call: dict[str, Any], model_id: str, request: dict[str, Any], request_id: str
    ) -> Iterable[bytes]:
        if self.llm is not None:
            items = self.llm.stream(request, model_id)
            first = next(items)  # raises BedrockError (an HTTP error) when the server cannot be asked
            events: Iterator[StreamItem] = _chain(first, items)
        else:
            reply = fake_reply(request)
            self.transcript.update(call, toolUse=reply.tool_use, stopReason=reply.stop_reason, usage=reply.usage())
            events = fake_stream(reply)
        start_response(_status(200), [("Content-Type", "application/vnd.amazon.eventstream"), ("x-amzn-RequestId", request_id)])
        return self._frames(environ, call, events)

    def _frames(self, environ: dict[str, Any], call: dict[str, Any], events: Iterator[StreamItem]) -> Iterator[bytes]:
        """Each event as a frame, written (and flushed by the server) as soon as it is made;
        stops, and records the cut, when the client goes away."""
        text: list[str] = []
        finished = False
        try:
            for kind, name, payload in events:
                if kind == "reply":
                    self.transcript.update(call, **payload)
                    continue
                if client_gone(environ):
                    break
                if kind == "exception":
                    self.transcript.update(call, error={"type": name, "message": payload["message"]})
                    yield exception_frame(ERRORS[name][1] or "modelStreamErrorException", payload["message"])
                    finished = True
                    break
                delta_text = (payload.get("delta") or {}).get("text")
                if delta_text is not None:
                    text.append(delta_text)
                    self.transcript.update(call, answer="".join(text))
                yield event_frame(name, payload)
            else:
                finished = True
        finally:
            if hasattr(events, "close"):
                events.close()
            self.transcript.update(call, cut=not finished, done=True)


def _chain(first: StreamItem, rest: Iterator[StreamItem]) -> Iterator[StreamItem]:
    yield first
    yield from rest
