"""``Memory.from_config`` for mem0-style config dicts (mem0ai 2.x ``MemoryConfig``).

mem0's shape is ``{"llm": {"provider", "config"}, "embedder": {"provider", "config"}, "vector_store":
{"provider", "config"}, "history_db_path", "version", ...}``. What has a meaning in Engram is mapped to
an Engram config dict; the rest is refused with a ``ConfigurationError`` naming it and saying what to
use instead. Engram's own top-level keys (``retrieval``, ``guard``, ...) may sit beside mem0's."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from engram.config import EngramConfig
from engram.errors import ConfigurationError

#: Top-level keys only mem0's config has.
MEM0_ONLY_KEYS = frozenset({"vector_store", "history_db_path", "version", "reranker", "custom_instructions",
                            "graph_store"})
_OPENAI_URL = "https://api.openai.com/v1"
_OLLAMA_URL = "http://localhost:11434"
_LMSTUDIO_URL = "http://localhost:1234/v1"
_VLLM_URL = "http://localhost:8000/v1"
#: mem0's default model per provider, used when the config names none (mem0ai 2.2.1).
_LLM_MODELS = {"openai": "gpt-5-mini", "ollama": "llama3.1:70b", "vllm": "Qwen/Qwen2.5-32B-Instruct",
               "lmstudio": "lmstudio-community/Meta-Llama-3.1-70B-Instruct-GGUF/"
                           "Meta-Llama-3.1-70B-Instruct-IQ2_M.gguf", "azure_openai": "gpt-5-mini"}
_EMBED_MODELS = {"openai": "text-embedding-3-small", "ollama": "nomic-embed-text", "azure_openai":
                 "text-embedding-3-small", "lmstudio": "nomic-ai/nomic-embed-text-v1.5-GGUF/"
                 "nomic-embed-text-v1.5.f16.gguf", "huggingface": "multi-qa-MiniLM-L6-cos-v1"}
_OPENAI_COMPATIBLE_HINT = ("use provider 'openai' with config.openai_base_url set to the service's "
                           "OpenAI-compatible endpoint, or one of ollama, lmstudio, vllm, azure_openai")


def config_from_dict(config: object) -> EngramConfig:
    """The ``EngramConfig`` of an Engram or mem0-style config dict; a ``ConfigurationError`` naming what is
    wrong otherwise."""
    if not isinstance(config, dict):
        raise ConfigurationError(f"config must be a dict, got {type(config).__name__}", field="config")
    if is_mem0_config(config):
        config = engram_config_from_mem0(config)
    try:
        return EngramConfig.model_validate(config)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"invalid configuration: {exc}", field="config") from exc


def is_mem0_config(config: dict[str, Any]) -> bool:
    """True for a mem0-shaped dict: a mem0-only top-level key, or an ``llm`` / ``embedder`` section
    with mem0's nested ``config``."""
    if MEM0_ONLY_KEYS & set(config):
        return True
    return any(isinstance(config.get(key), dict) and "config" in config[key] for key in ("llm", "embedder"))


def engram_config_from_mem0(config: dict[str, Any]) -> dict[str, Any]:
    """The Engram config dict equivalent to mem0 config ``config``."""
    for key in ("reranker", "custom_instructions", "graph_store"):
        if config.get(key) is not None:
            raise ConfigurationError(f"mem0's {key!r} is not supported", field=key, hint=_UNSUPPORTED_KEYS[key])
    result = {key: value for key, value in config.items() if key not in MEM0_ONLY_KEYS | {"llm", "embedder"}}
    if config.get("llm") is not None:
        result["llm"] = _llm(_section(config, "llm"))
    if config.get("embedder") is not None:
        result["embedder"] = _embedder(_section(config, "embedder"))
    url = _vector_store_url(config.get("vector_store"))
    if url is not None:
        result["url"] = url
    elif config.get("history_db_path") is not None:
        result["path"] = _text(config["history_db_path"], "history_db_path")
    return result


_UNSUPPORTED_KEYS = {
    "reranker": "Engram ranks search results with its own learned ranker; drop 'reranker' (choose how it "
                "ranks with 'retrieval': fast, balanced, best or rrf)",
    "custom_instructions": "pass the instructions per call instead: add(..., prompt='...')",
    "graph_store": "Engram has no graph store; drop 'graph_store'",
}


def _section(config: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    section = config[name]
    if not isinstance(section, dict):
        raise ConfigurationError(f"must be an object with 'provider' and 'config', got {type(section).__name__}",
                                 field=name)
    unknown = sorted(set(section) - {"provider", "config"})
    if unknown:
        raise ConfigurationError(f"unknown key(s) {unknown}", field=name, hint="mem0 sections hold provider and config")
    provider = section.get("provider", "openai")
    options = section.get("config") or {}
    if not isinstance(provider, str) or not isinstance(options, dict):
        raise ConfigurationError("provider must be a string and config an object", field=name)
    return provider, options


def _llm(section: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    provider, options = section
    endpoint = _endpoint(provider, options, "llm")
    if endpoint is None:
        raise ConfigurationError(f"LLM provider {provider!r} is not supported", field="llm.provider",
                                 hint=_OPENAI_COMPATIBLE_HINT)
    base_url, api_key, model = endpoint
    return {"provider": "openai", "base_url": base_url, "api_key": api_key,
            "model": options.get("model") or model or _LLM_MODELS.get(provider)}


def _embedder(section: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    provider, options = section
    dims = options.get("embedding_dims")
    if provider == "huggingface" and not options.get("huggingface_base_url"):
        return {"provider": "sentence-transformers", "model": options.get("model") or _EMBED_MODELS[provider]}
    if provider == "huggingface":
        return {"provider": "openai", "base_url": str(options["huggingface_base_url"]),
                "api_key": options.get("api_key") or os.environ.get("HUGGINGFACE_API_KEY"),
                "model": options.get("model") or "tei", "dimensions": dims}
    endpoint = _endpoint(provider, options, "embedder")
    if endpoint is None:
        raise ConfigurationError(
            f"embedder provider {provider!r} is not supported", field="embedder.provider",
            hint="leave 'embedder' out for Engram's offline ONNX MiniLM, or " + _OPENAI_COMPATIBLE_HINT
                 + ", huggingface")
    base_url, api_key, model = endpoint
    return {"provider": "openai", "base_url": base_url, "api_key": api_key,
            "model": options.get("model") or model or _EMBED_MODELS.get(provider),
            "dimensions": dims if provider in ("openai", "azure_openai") else None}


def _endpoint(provider: str, options: dict[str, Any], section: str) -> tuple[str, str | None, str | None] | None:
    """``(base_url, api_key, model override)`` of an OpenAI-compatible provider, None for others."""
    key = options.get("api_key")
    if provider in ("openai", "openai_structured"):
        url = options.get("openai_base_url") or os.environ.get("OPENAI_BASE_URL") or _OPENAI_URL
        return str(url), key or os.environ.get("OPENAI_API_KEY"), None
    if provider == "ollama":
        return str(options.get("ollama_base_url") or _OLLAMA_URL).rstrip("/") + "/v1", key, None
    if provider == "lmstudio":
        return str(options.get("lmstudio_base_url") or _LMSTUDIO_URL), key or "lm-studio", None
    if provider == "vllm" and section == "llm":
        url = options.get("vllm_base_url") or os.environ.get("VLLM_BASE_URL") or _VLLM_URL
        return str(url), key or os.environ.get("VLLM_API_KEY") or "vllm-api-key", None
    if provider in ("azure_openai", "azure_openai_structured"):
        return _azure(options.get("azure_kwargs") or {}, "LLM" if section == "llm" else "EMBEDDING")
    return None


def _azure(azure: dict[str, Any], env_prefix: str) -> tuple[str, str | None, str | None]:
    """Azure OpenAI through its OpenAI-compatible v1 API (``{endpoint}/openai/v1``), the deployment as model."""
    endpoint = azure.get("azure_endpoint") or os.environ.get(f"{env_prefix}_AZURE_ENDPOINT")
    if not endpoint:
        raise ConfigurationError("azure_openai needs azure_kwargs.azure_endpoint", field="azure_kwargs.azure_endpoint",
                                 hint=f"set it, or {env_prefix}_AZURE_ENDPOINT")
    api_key = azure.get("api_key") or os.environ.get(f"{env_prefix}_AZURE_OPENAI_API_KEY")
    deployment = azure.get("azure_deployment") or os.environ.get(f"{env_prefix}_AZURE_DEPLOYMENT")
    return str(endpoint).rstrip("/") + "/openai/v1", api_key, deployment


def _vector_store_url(section: Any) -> str | None:
    """A PostgreSQL URL from a ``pgvector`` section; None when there is no vector store section."""
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ConfigurationError("must be an object with 'provider' and 'config'", field="vector_store")
    provider = section.get("provider", "qdrant")
    options = section.get("config") or {}
    if provider != "pgvector":
        raise ConfigurationError(
            f"vector store {provider!r} is not supported: Engram stores vectors itself", field="vector_store.provider",
            hint="leave vector_store out for the embedded SQLite store (history_db_path names its file), or use "
                 "provider 'pgvector' (PostgreSQL)")
    if options.get("connection_pool") is not None:
        raise ConfigurationError("a connection_pool object cannot be used", field="vector_store.config.connection_pool",
                                 hint="give connection_string (or user, password, host, port, dbname)")
    if options.get("connection_string"):
        return _text(options["connection_string"], "vector_store.config.connection_string")
    user, password = quote(str(options.get("user") or ""), safe=""), quote(str(options.get("password") or ""), safe="")
    auth = f"{user}:{password}@" if password else f"{user}@" if user else ""
    host = options.get("host") or "localhost"
    port = f":{options['port']}" if options.get("port") else ""
    ssl = f"?sslmode={quote(str(options['sslmode']))}" if options.get("sslmode") else ""
    return f"postgresql://{auth}{host}{port}/{quote(str(options.get('dbname') or 'postgres'))}{ssl}"


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError("must be a non-empty string", field=field)
    return value
