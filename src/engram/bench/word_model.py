"""Tiny model2vec-style folders for ``StaticEmbedder`` (provider ``static``): word-level tokenizers with
seeded random word vectors: cheap, deterministic embedders of any dimension, for tests and for measuring
what surrounds the embedder (``engram.bench.reembed_speed``)."""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np


def write_word_model(folder: Path, words: Iterable[str], *, dim: int, seed: int) -> Path:
    """Write a static model over ``words`` (lower-cased, split on non-letters) with ``dim``-dimensional
    random vectors drawn from ``seed``; returns the folder."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    vocabulary = sorted({word for text in words for word in re.findall(r"[a-z]+", text.lower())})
    vocab = {"[UNK]": 0, **{word: index for index, word in enumerate(vocabulary, start=1)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    folder.mkdir(parents=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    embeddings = np.random.default_rng(seed).standard_normal((len(vocab), dim)).astype(np.float32)
    embeddings[0] = 0.0
    header = {"embeddings": {"dtype": "F32", "shape": list(embeddings.shape), "data_offsets": [0, embeddings.nbytes]}}
    encoded = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(encoded)) + encoded + embeddings.tobytes())
    return folder
