"""mem0 next to Engram in ``engram bench ingest --vs mem0``: mem0's ``Memory`` configured offline.

mem0ai is not a dependency of Engram: :func:`mem0_available` says whether it is installed, and the
benchmark skips mem0 with a message when it is not. When it is, mem0 runs with ``infer=False`` (each
message stored verbatim, as Engram's offline path does), its default local vector store (Qdrant in
local mode, in a folder of the run) and its SQLite history, with telemetry off, and with **Engram's own
embedder** behind mem0's embedding interface, so the comparison measures everything but the model.
mem0's configured LLM is never called with ``infer=False``; it is given a placeholder key only because
mem0 builds its client when the ``Memory`` is created.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path
from typing import Any

from engram.embed.base import Embedder

#: Read by mem0 when it is first imported: no usage events are sent.
TELEMETRY_ENV = "MEM0_TELEMETRY"
#: mem0's home folder (user id file, migrations store), read once when mem0 is imported: set to a
#: folder of the temporary directory, not the user's ``~/.mem0``, unless the caller set it.
HOME_ENV = "MEM0_DIR"


def mem0_available() -> bool:
    """Whether the ``mem0ai`` package is installed."""
    return importlib.util.find_spec("mem0") is not None


def mem0_version() -> str | None:
    """The installed ``mem0ai`` version, when there is one."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mem0ai")
    except PackageNotFoundError:
        return None


def offline_mem0(folder: Path, embedder: Embedder) -> Any:
    """A mem0 ``Memory`` storing under ``folder`` and embedding with ``embedder`` (no network)."""
    os.environ[TELEMETRY_ENV] = "False"
    os.environ.setdefault(HOME_ENV, str(Path(tempfile.gettempdir()) / "engram-bench-mem0"))
    from mem0 import Memory as Mem0Memory
    from mem0.embeddings.base import EmbeddingBase

    class EngramEmbedding(EmbeddingBase):
        """mem0's embedding interface over an Engram embedder."""

        def embed(self, text: Any, memory_action: str | None = None) -> list[float]:
            if memory_action == "search":
                return [float(value) for value in embedder.embed_query(str(text))]
            return [float(value) for value in embedder.embed([str(text)])[0]]

    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "vector_store": {"provider": "qdrant", "config": {"path": str(folder / "qdrant"), "collection_name": "bench",
                                                           "embedding_model_dims": embedder.dim}},
        "embedder": {"provider": "openai", "config": {"api_key": "offline", "embedding_dims": embedder.dim}},
        "llm": {"provider": "openai", "config": {"api_key": "offline"}},
        "history_db_path": str(folder / "history.db"),
    }
    memory = Mem0Memory.from_config(config)
    memory.embedding_model = EngramEmbedding()
    return memory


def mem0_session(session_messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as mem0 takes them (``role``, ``content``, ``name``; mem0 OSS refuses a timestamp)."""
    return [{"role": message["role"], "content": message["content"], "name": message["name"]}
            for message in session_messages]
