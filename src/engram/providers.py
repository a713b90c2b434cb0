"""Builds the configured providers (store, embedder) from an ``EngramConfig``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from engram.config import EmbedderConfig, EngramConfig, LLMConfig
from engram.errors import ConfigurationError
from engram.store.urls import store_target

if TYPE_CHECKING:
    from engram.embed.base import Embedder
    from engram.llm.base import LLM
    from engram.store.base import Store


def open_store(config: EngramConfig) -> Store:
    """The store named by the config's url/path (``sqlite:///file`` or ``postgresql://...``)."""
    url = config.resolved_url()
    target = store_target(url)
    if target.backend == "sqlite":
        from engram.store.sqlite import SQLiteStore

        path = target.location
        if not path or path == ":memory:":
            raise ConfigurationError("an SQLite store needs a file path", field="path",
                                     hint="e.g. Memory(path='engram.db')")
        return SQLiteStore(sqlite_file(path), synchronous=config.sqlite_synchronous,
                           exact_lexical=config.exact_lexical)
    try:
        from engram.store.postgres import PostgresStore
    except ImportError as exc:
        raise ConfigurationError(f"PostgreSQL support is not installed ({exc})", field="url",
                                 hint="pip install 'engramdb[postgres]'") from exc
    return PostgresStore(url, hnsw_ef_search=config.hnsw_ef_search,
                         hnsw_graph=(config.hnsw_m, config.hnsw_ef_construction))


def sqlite_file(path: str) -> Path:
    """``path`` as an SQLite store file: its folder must exist (it is not created) and it must not be
    a folder itself; ConfigurationError naming ``path`` otherwise."""
    file = Path(path).expanduser()
    folder = file.parent
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise ConfigurationError(f"cannot create a store at {file}: {folder} {problem}", field="path",
                                 hint="create the folder first, or choose another path")
    if file.is_dir():
        raise ConfigurationError(f"{file} is a folder, not a store file", field="path",
                                 hint="name a file, e.g. engram.db inside it")
    return file


def make_embedder(config: EmbedderConfig) -> Embedder:
    """The embedder the config describes (the offline ONNX MiniLM by default)."""
    from engram.embed import build_embedder

    options = {key: value for key, value in config.model_dump(exclude={"provider"}).items() if value is not None}
    return build_embedder(config.provider, **options)


def make_llm(config: LLMConfig) -> LLM | None:
    """The configured LLM: an OpenAI-compatible endpoint, a local llama.cpp model, or None."""
    if not config.enabled:
        return None
    if config.provider == "llamacpp":
        from engram.llm.llamacpp import LlamaCppLLM

        return LlamaCppLLM(model_path=config.model_path)
    if config.provider != "openai":
        raise ConfigurationError(f"unknown LLM provider {config.provider!r}", field="llm.provider",
                                 hint="use 'openai' (any OpenAI-compatible server) or 'llamacpp'")
    if not config.model:
        raise ConfigurationError("an LLM base_url needs a model name", field="llm.model",
                                 hint="set ENGRAM_LLM_MODEL (e.g. gpt-4o-mini, llama3.1:8b)")
    from engram.llm.openai_compat import OpenAICompatLLM

    return OpenAICompatLLM(base_url=str(config.base_url), model=config.model, api_key=config.api_key,
                           timeout_s=config.timeout_s, max_retries=config.max_retries,
                           max_concurrency=config.max_concurrency)
